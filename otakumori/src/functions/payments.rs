//! Stripe webhooks (handlePaymentWebhook, id `process-payment-webhook`).

use inngest_sdk::{Ctx, Error, EventType, Function, Step};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::orders::order_created_event_id;
use super::{api_err, bad_payload, db_err, now_utc, Deps, FN_PROCESS_PAYMENT_WEBHOOK};
use crate::db::{Order, OrderStatus, WebhookSource};
use crate::events::{self, OrderCreated, StripeWebhook};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    inserted: bool,
    duplicate: bool,
}

/// Output of `mark-order-paid`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkedPaid {
    found: bool,
    order_id: Option<Uuid>,
    user_id: Option<Uuid>,
    paid: bool,
    payment_status: Option<String>,
    changed: bool,
}

/// Output of `mark-order-failed` / `mark-intent-succeeded`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntentUpdate {
    order_id: Option<Uuid>,
    changed: bool,
}

/// What the type-specific steps did: the order they touched and a summary for the output.
struct Handled {
    order_id: Option<Uuid>,
    result: Value,
}

/// **handlePaymentWebhook** (`process-payment-webhook`): verified Stripe events.
///
/// * Trigger `stripe/webhook {id, type, created, livemode, object}` (event id = the Stripe
///   `evt_…` id, so a redelivery is deduplicated by Inngest); idempotency `event.data.id`.
/// * Step `record-event`: `webhook_events` insert (`ON CONFLICT DO NOTHING`); an event already
///   processed ends the run with `{duplicate: true}` — a replay is a no-op. The row is only
///   marked processed at the end (`mark-processed`), so a run that failed half-way is redone,
///   unlike the original route which recorded the event first and then lost it.
/// * `checkout.session.completed`: step `mark-order-paid` finds the order by
///   `stripe_session_id = object.id` (falling back to `object.metadata.order_id`), **verifies the
///   session with the Stripe API** and, when `payment_status == 'paid'`, marks the order `paid`
///   (intent, `paid_at`, total, currency, shipping from `collected_information.shipping_details`
///   and the customer email). Then `step.send_event` `order/created {orderId, userId,
///   stripeSessionId}` with event id `order-created-<orderId>` (fan-out to `process-order`).
/// * `payment_intent.succeeded`: step `mark-intent-succeeded` sets `paid_at` on the order with
///   that intent (no-op if unknown).
/// * `payment_intent.payment_failed`: step `mark-order-failed` marks that order
///   `payment_failed` (by intent id, else `object.metadata.order_id`).
/// * Other types are ignored. Returns `{success, webhookType, orderId?, duplicate}`.
pub fn handle_payment_webhook() -> Function {
    Function::new(FN_PROCESS_PAYMENT_WEBHOOK)
        .name("Process Stripe webhook")
        .on::<StripeWebhook>()
        .idempotency("event.data.id")
        .handler(|ctx: Ctx<StripeWebhook>, step: Step| async move {
            process_stripe_event(ctx.get()?, &step, &ctx.event.data).await
        })
        .into()
}

/// The steps of `process-payment-webhook`: record, handle by type, mark processed.
async fn process_stripe_event(d: &Deps, step: &Step, ev: &StripeWebhook) -> Result<Value, Error> {
    let rec: Recorded = step.run("record-event", || record_event(d, ev)).await?;
    if rec.duplicate {
        tracing::info!(stripe_event = %ev.id, "stripe event already processed");
        return Ok(json!({"success": true, "webhookType": ev.kind, "duplicate": true}));
    }
    let handled = match ev.kind.as_str() {
        "checkout.session.completed" => checkout_completed(d, step, ev).await?,
        "payment_intent.succeeded" => {
            let intent = object_id(ev)?;
            let n: u64 = step
                .run("mark-intent-succeeded", || async {
                    let db = &d.app.db;
                    db.mark_intent_succeeded(intent, now_utc())
                        .await
                        .map_err(db_err)
                })
                .await?;
            Handled {
                order_id: None,
                result: json!({ "ordersUpdated": n }),
            }
        }
        "payment_intent.payment_failed" => {
            let up: IntentUpdate = step
                .run("mark-order-failed", || mark_order_failed(d, ev))
                .await?;
            if up.changed {
                tracing::warn!(order_id = ?up.order_id, "payment failed");
            }
            Handled {
                order_id: up.order_id,
                result: json!({ "changed": up.changed }),
            }
        }
        other => {
            tracing::debug!(stripe_type = other, "stripe event type ignored");
            Handled {
                order_id: None,
                result: json!({ "ignored": true }),
            }
        }
    };
    let _first: bool = step
        .run("mark-processed", || async {
            let db = &d.app.db;
            db.mark_webhook_processed(WebhookSource::Stripe, &ev.id, now_utc())
                .await
                .map_err(db_err)
        })
        .await?;
    if rec.inserted {
        tracing::info!(stripe_event = %ev.id, stripe_type = %ev.kind, "stripe event processed");
    }
    Ok(json!({
        "success": true,
        "webhookType": ev.kind,
        "orderId": handled.order_id,
        "duplicate": false,
        "result": handled.result,
    }))
}

/// `data.object.id`, which the handled event types require.
fn object_id(ev: &StripeWebhook) -> Result<&str, Error> {
    ev.object.id.as_deref().ok_or_else(|| {
        bad_payload(
            <StripeWebhook as EventType>::NAME,
            "object.id",
            "is missing",
        )
    })
}

/// `data.object.metadata.order_id` when it is a UUID (the checkout sets it).
fn metadata_order(ev: &StripeWebhook) -> Option<Uuid> {
    let id = ev.object.metadata.order_id.as_deref()?;
    Uuid::parse_str(id).ok()
}

/// Step `record-event`: the `webhook_events` row (a duplicate when already processed).
async fn record_event(d: &Deps, ev: &StripeWebhook) -> Result<Recorded, Error> {
    let payload = serde_json::to_value(ev)?;
    let r = d
        .app
        .db
        .record_webhook_event(WebhookSource::Stripe, &ev.id, &ev.kind, &payload, now_utc())
        .await
        .map_err(db_err)?;
    Ok(Recorded {
        inserted: r.inserted,
        duplicate: r.is_duplicate(),
    })
}

/// `checkout.session.completed`: step `mark-order-paid`, then the `order/created` fan-out.
async fn checkout_completed(d: &Deps, step: &Step, ev: &StripeWebhook) -> Result<Handled, Error> {
    let session_id = object_id(ev)?;
    let paid: MarkedPaid = step
        .run("mark-order-paid", || mark_order_paid(d, ev, session_id))
        .await?;
    let mut emitted = Vec::new();
    if let (true, Some(order_id)) = (paid.paid, paid.order_id) {
        let created = OrderCreated {
            order_id,
            user_id: paid.user_id.map(|u| u.to_string()),
            stripe_session_id: Some(session_id.to_string()),
        };
        emitted = step
            .send_event(
                "emit-order-created",
                events::with_id(created, order_created_event_id(order_id)),
            )
            .await?;
    }
    Ok(Handled {
        order_id: paid.order_id,
        result: json!({
            "found": paid.found,
            "paid": paid.paid,
            "paymentStatus": paid.payment_status,
            "orderCreatedEventIds": emitted,
        }),
    })
}

/// The order of a checkout session: by `stripe_session_id`, else by the metadata's order id.
async fn order_of_session(
    d: &Deps,
    ev: &StripeWebhook,
    session_id: &str,
) -> Result<Option<Order>, Error> {
    let db = &d.app.db;
    if let Some(o) = db
        .find_order_by_stripe_session(session_id)
        .await
        .map_err(db_err)?
    {
        return Ok(Some(o));
    }
    match metadata_order(ev) {
        Some(id) => db.get_order(id).await.map_err(db_err),
        None => Ok(None),
    }
}

/// Step `mark-order-paid`: verify the session with Stripe and mark its order paid.
async fn mark_order_paid(
    d: &Deps,
    ev: &StripeWebhook,
    session_id: &str,
) -> Result<MarkedPaid, Error> {
    let Some(order) = order_of_session(d, ev, session_id).await? else {
        tracing::warn!(stripe_event = %ev.id, "no order for the checkout session");
        return Ok(MarkedPaid::default());
    };
    let session = d
        .app
        .stripe
        .retrieve_checkout_session(session_id)
        .await
        .map_err(api_err)?;
    let mut out = MarkedPaid {
        found: true,
        order_id: Some(order.id),
        user_id: Some(order.user_id),
        paid: session.is_paid(),
        payment_status: Some(session.payment_status.clone()),
        changed: false,
    };
    if out.paid {
        let t = d
            .app
            .db
            .mark_order_paid(order.id, &session.payment_update(), now_utc())
            .await
            .map_err(db_err)?;
        tracing::info!(order_id = %order.id, changed = t.changed, "order marked paid");
        out.changed = t.changed;
    }
    Ok(out)
}

/// Step `mark-order-failed`: the order with the failed intent, else the metadata's order if it
/// is still `pending` or `paid`, becomes `payment_failed`.
async fn mark_order_failed(d: &Deps, ev: &StripeWebhook) -> Result<IntentUpdate, Error> {
    let db = &d.app.db;
    let intent = object_id(ev)?;
    if let Some(t) = db
        .mark_payment_failed_by_intent(intent, now_utc())
        .await
        .map_err(db_err)?
    {
        return Ok(IntentUpdate {
            order_id: Some(t.order_id),
            changed: t.changed,
        });
    }
    let Some(id) = metadata_order(ev) else {
        return Ok(IntentUpdate::default());
    };
    let Some(order) = db.get_order(id).await.map_err(db_err)? else {
        return Ok(IntentUpdate::default());
    };
    let mut up = IntentUpdate {
        order_id: Some(id),
        changed: false,
    };
    if matches!(order.status, OrderStatus::Pending | OrderStatus::Paid) {
        let t = db
            .mark_order_payment_failed(id, now_utc())
            .await
            .map_err(db_err)?;
        up.changed = t.changed;
    }
    Ok(up)
}
