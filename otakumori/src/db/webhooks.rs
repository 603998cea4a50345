//! `webhook_events`: provider event dedupe, keyed by `(source, id)`.

use chrono::{DateTime, Utc};

use super::{with_db, Db, DbResult, RowExt, WebhookRecord, WebhookSource};

impl Db {
    /// Step `record-event`: `INSERT … ON CONFLICT DO NOTHING`, then report whether this call
    /// inserted the row and whether the event was already processed (a duplicate).
    pub async fn record_webhook_event(
        &self,
        source: WebhookSource,
        event_id: &str,
        event_type: &str,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> DbResult<WebhookRecord> {
        with_db!(self, |p, d| {
            let inserted = sqlx::query(
                "INSERT INTO webhook_events (source, id, type, payload, received_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (source, id) DO NOTHING",
            )
            .bind(source.as_str())
            .bind(event_id)
            .bind(event_type)
            .bind(d::json(payload))
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected()
                == 1;
            let row = sqlx::query(
                "SELECT processed_at FROM webhook_events WHERE source = $1 AND id = $2",
            )
            .bind(source.as_str())
            .bind(event_id)
            .fetch_one(p)
            .await?;
            Ok(WebhookRecord {
                inserted,
                processed_at: row.opt_ts("processed_at")?,
            })
        })
    }

    /// Step `mark-processed`: set `processed_at` (first call wins). Returns `true` if this call set it.
    pub async fn mark_webhook_processed(
        &self,
        source: WebhookSource,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        with_db!(self, |p, d| {
            let n = sqlx::query(
                "UPDATE webhook_events SET processed_at = $3 WHERE source = $1 AND id = $2 AND processed_at IS NULL",
            )
            .bind(source.as_str())
            .bind(event_id)
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }
}
