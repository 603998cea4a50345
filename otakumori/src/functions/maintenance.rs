//! Retention and monthly maintenance crons (cleanupOldData, monthly operations).
//!
//! A cron run's context is the scheduler's `inngest/scheduled.timer` event, not an app event:
//! its handlers keep `Ctx<Value>` and read only the firing time from it.

use inngest_sdk::{Ctx, Function, Step, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    db_err, email_err, event_time, rfc3339, Deps, CRON_CLEANUP_OLD_DATA, CRON_MONTHLY_MAINTENANCE,
    FN_CLEANUP_OLD_DATA, FN_MONTHLY_MAINTENANCE,
};
use crate::db::maintenance::cutoff;
use crate::db::{ArchiveCounts, AuditReport};
use crate::services::email::{templates, EmailRequest};

/// `maintenance_reports.kind` of the monthly audit.
pub const MONTHLY_AUDIT_REPORT: &str = "monthly-audit";

/// **cleanupOldData** (`cleanup-old-data`): Sundays at 04:00 UTC (`0 4 * * 0`),
/// retention deletes. Each step returns the number of rows it touched (no shared mutable
/// state across steps, unlike the original GLB cleanup); windows come from
/// `RETENTION_*_DAYS` (defaults 30/180/30/30/7 days) and are measured from the cron's firing
/// time, so a retried step uses the same cutoff.
///
/// Steps: `delete-old-webhook-events` (processed > 30 d ago), `delete-old-email-logs` (> 180 d),
/// `delete-old-outbox-messages` (local outbox, same window), `purge-resolved-operations`
/// (`succeeded`/`dead`, > 30 d), `delete-abandoned-carts` (items of carts idle > 30 d),
/// `expire-stale-pending-orders` (`pending` > 7 d → `cancelled`).
///
/// Returns `{success, deleted:{webhookEvents, emailLogs, outboxMessages, operations, cartItems},
/// expiredOrders, timestamp}`.
pub fn cleanup_old_data() -> Function {
    Function::new(FN_CLEANUP_OLD_DATA)
        .name("Clean up old data")
        .trigger(Trigger::cron(CRON_CLEANUP_OLD_DATA))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let now = event_time(&ctx.event);
            let r = d.app.config.retention;
            let db = &d.app.db;
            let webhook_events: u64 = step
                .run("delete-old-webhook-events", || async {
                    db.delete_processed_webhook_events(cutoff(now, r.webhook_events))
                        .await
                        .map_err(db_err)
                })
                .await?;
            let email_logs: u64 = step
                .run("delete-old-email-logs", || async {
                    db.delete_email_logs_before(cutoff(now, r.email_logs))
                        .await
                        .map_err(db_err)
                })
                .await?;
            let outbox_messages: u64 = step
                .run("delete-old-outbox-messages", || async {
                    db.delete_outbox_before(cutoff(now, r.email_logs))
                        .await
                        .map_err(db_err)
                })
                .await?;
            let operations: u64 = step
                .run("purge-resolved-operations", || async {
                    db.purge_resolved_operations(cutoff(now, r.operations))
                        .await
                        .map_err(db_err)
                })
                .await?;
            let cart_items: u64 = step
                .run("delete-abandoned-carts", || async {
                    db.delete_abandoned_cart_items(cutoff(now, r.carts))
                        .await
                        .map_err(db_err)
                })
                .await?;
            let expired_orders: u64 = step
                .run("expire-stale-pending-orders", || async {
                    db.expire_stale_pending_orders(cutoff(now, r.pending_orders), now)
                        .await
                        .map_err(db_err)
                })
                .await?;
            tracing::info!(
                webhook_events,
                email_logs,
                outbox_messages,
                operations,
                cart_items,
                expired_orders,
                "cleanup done"
            );
            Ok(json!({
                "success": true,
                "deleted": {
                    "webhookEvents": webhook_events,
                    "emailLogs": email_logs,
                    "outboxMessages": outbox_messages,
                    "operations": operations,
                    "cartItems": cart_items,
                },
                "expiredOrders": expired_orders,
                "timestamp": rfc3339(now),
            }))
        })
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Audited {
    report_id: Uuid,
    audit: AuditReport,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Emailed {
    to: usize,
    email_log_id: Uuid,
    already_sent: bool,
}

/// **monthlyOperations** (`monthly-maintenance`; guide-only in the original): the
/// 1st of each month at 05:00 UTC (`0 5 1 * *`).
///
/// * `archive-orders`: in one transaction, orders in a final state (`shipped`/`delivered`/
///   `cancelled`) last updated more than `RETENTION_ARCHIVE_ORDERS_DAYS` (365) days before the
///   firing time are copied with their items to `orders_archive`/`order_items_archive` and
///   deleted. Replay-safe.
/// * `analyze-tables`: `ANALYZE` (the guide's "performance optimization").
/// * `audit-report`: health counts (users without email, orders paid but not in production
///   for 24 h, orders pending mapping, open inventory alerts, dead/pending operations, failed
///   emails) stored in `maintenance_reports` (`monthly-audit`).
/// * `email-audit-report` (when `ADMIN_ALERT_EMAIL` is set): the report by email, once per month.
/// * Returns `{success, archivedOrders, archivedItems, audit, reportId, emailed, timestamp}`.
pub fn monthly_operations() -> Function {
    Function::new(FN_MONTHLY_MAINTENANCE)
        .name("Monthly maintenance")
        .trigger(Trigger::cron(CRON_MONTHLY_MAINTENANCE))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let now = event_time(&ctx.event);
            let db = &d.app.db;
            let window = d.app.config.retention.archive_orders;
            let archived: ArchiveCounts = step
                .run("archive-orders", || async {
                    db.archive_final_orders(cutoff(now, window), now)
                        .await
                        .map_err(db_err)
                })
                .await?;
            let _analyzed: bool = step
                .run("analyze-tables", || async {
                    db.analyze_tables().await.map_err(db_err)?;
                    Ok(true)
                })
                .await?;
            let audited: Audited = step
                .run("audit-report", || async {
                    let audit = db.audit_report(now).await.map_err(db_err)?;
                    let report = db
                        .save_maintenance_report(
                            MONTHLY_AUDIT_REPORT,
                            &json!({
                                "asOf": rfc3339(now),
                                "archivedOrders": archived.orders,
                                "archivedItems": archived.order_items,
                                "audit": audit,
                            }),
                            now,
                        )
                        .await
                        .map_err(db_err)?;
                    Ok(Audited {
                        report_id: report.id,
                        audit,
                    })
                })
                .await?;
            let mut emailed: Option<Emailed> = None;
            if let Some(admin) = d.app.mailer.admin_alert_email().map(str::to_string) {
                let e: Emailed = step
                    .run("email-audit-report", || async {
                        let r = templates::monthly_audit(&audited.audit, archived.orders);
                        let sent = d
                            .app
                            .mailer
                            .send_once(&EmailRequest::rendered(
                                format!("monthly-audit:{}", now.format("%Y-%m")),
                                templates::MONTHLY_AUDIT,
                                admin.clone(),
                                r,
                            ))
                            .await
                            .map_err(email_err)?;
                        Ok(Emailed {
                            to: 1,
                            email_log_id: sent.log_id,
                            already_sent: sent.already_sent,
                        })
                    })
                    .await?;
                emailed = Some(e);
            }
            tracing::info!(
                archived_orders = archived.orders,
                dead_operations = audited.audit.dead_operations,
                "monthly maintenance done"
            );
            Ok(json!({
                "success": true,
                "archivedOrders": archived.orders,
                "archivedItems": archived.order_items,
                "audit": audited.audit,
                "reportId": audited.report_id,
                "emailed": emailed.is_some(),
                "email": emailed,
                "timestamp": rfc3339(now),
            }))
        })
}
