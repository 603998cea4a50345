//! `email_log` (audit + send-once guard) and `email_outbox` (local `log` provider).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    with_db, Db, DbError, DbResult, EmailLogEntry, EmailStatus, NewEmailLog, NewOutboxMessage,
    OutboxMessage, RowExt,
};

fn map_log<R: RowExt>(r: &R) -> Result<EmailLogEntry, sqlx::Error> {
    Ok(EmailLogEntry {
        id: r.id("id")?,
        idempotency_key: r.opt_text("idempotency_key")?,
        user_id: r.opt_id("user_id")?,
        order_id: r.opt_id("order_id")?,
        to_address: r.text("to_address")?,
        provider: r.text("provider")?,
        template: r.text("template")?,
        subject: r.opt_text("subject")?,
        status: r.text("status")?,
        provider_message_id: r.opt_text("provider_message_id")?,
        error: r.opt_text("error")?,
        sent_at: r.opt_ts("sent_at")?,
        created_at: r.ts("created_at")?,
    })
}

fn map_outbox<R: RowExt>(r: &R) -> Result<OutboxMessage, sqlx::Error> {
    Ok(OutboxMessage {
        id: r.id("id")?,
        idempotency_key: r.text("idempotency_key")?,
        from_address: r.text("from_address")?,
        to_addresses: serde_json::from_value(r.json("to_addresses")?).unwrap_or_default(),
        subject: r.text("subject")?,
        html: r.opt_text("html")?,
        text_body: r.opt_text("text_body")?,
        created_at: r.ts("created_at")?,
    })
}

impl Db {
    /// The `sent` log row for an idempotency key, if any (the send-once guard).
    pub async fn find_sent_email(&self, idempotency_key: &str) -> DbResult<Option<EmailLogEntry>> {
        with_db!(self, |p, _d| {
            let row = sqlx::query(
                "SELECT * FROM email_log WHERE idempotency_key = $1 AND status = 'sent'",
            )
            .bind(idempotency_key)
            .fetch_optional(p)
            .await?;
            Ok(row.as_ref().map(map_log).transpose()?)
        })
    }

    /// The `sent` log row for `(order_id, template)`, if any (the skip check of `send-order-confirmation`).
    pub async fn find_sent_order_email(
        &self,
        order_id: Uuid,
        template: &str,
    ) -> DbResult<Option<EmailLogEntry>> {
        with_db!(self, |p, d| {
            let row = sqlx::query(
                "SELECT * FROM email_log WHERE order_id = $1 AND template = $2 AND status = 'sent'",
            )
            .bind(d::id(order_id))
            .bind(template)
            .fetch_optional(p)
            .await?;
            Ok(row.as_ref().map(map_log).transpose()?)
        })
    }

    /// Insert a log row. A second `sent` row for the same idempotency key or `(order_id,
    /// template)` is not inserted: the existing row is returned instead (idempotent).
    pub async fn insert_email_log(
        &self,
        e: &NewEmailLog,
        now: DateTime<Utc>,
    ) -> DbResult<EmailLogEntry> {
        let sent_at = (e.status == EmailStatus::Sent).then_some(now);
        let res = with_db!(self, |p, d| {
            sqlx::query(
                "INSERT INTO email_log (id, idempotency_key, user_id, order_id, to_address, provider, template, subject,
                   status, provider_message_id, error, sent_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 RETURNING *",
            )
            .bind(d::id(Uuid::new_v4()))
            .bind(&e.idempotency_key)
            .bind(d::opt_id(e.user_id))
            .bind(d::opt_id(e.order_id))
            .bind(&e.to_address)
            .bind(&e.provider)
            .bind(&e.template)
            .bind(&e.subject)
            .bind(e.status.as_str())
            .bind(&e.provider_message_id)
            .bind(&e.error)
            .bind(d::opt_ts(sent_at))
            .bind(d::ts(now))
            .fetch_one(p)
            .await
            .map_err(DbError::from)
            .and_then(|r| map_log(&r).map_err(DbError::from))
        });
        match res {
            Err(err) if err.is_unique_violation() && e.status == EmailStatus::Sent => {
                if let Some(k) = &e.idempotency_key {
                    if let Some(existing) = self.find_sent_email(k).await? {
                        return Ok(existing);
                    }
                }
                if let Some(o) = e.order_id {
                    if let Some(existing) = self.find_sent_order_email(o, &e.template).await? {
                        return Ok(existing);
                    }
                }
                Err(err)
            }
            other => other,
        }
    }

    /// All log rows, oldest first (tests, admin).
    pub async fn list_email_log(&self) -> DbResult<Vec<EmailLogEntry>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query("SELECT * FROM email_log ORDER BY created_at, id")
                .fetch_all(p)
                .await?;
            Ok(rows.iter().map(map_log).collect::<Result<_, _>>()?)
        })
    }

    /// Store a message in the local outbox, keyed by idempotency key. Returns the stored row and
    /// whether this call inserted it (`false` = replay; the first message is kept).
    pub async fn insert_outbox(
        &self,
        msg: &NewOutboxMessage<'_>,
        now: DateTime<Utc>,
    ) -> DbResult<(OutboxMessage, bool)> {
        let NewOutboxMessage {
            idempotency_key,
            from,
            to,
            subject,
            html,
            text,
        } = *msg;
        with_db!(self, |p, d| {
            let inserted = sqlx::query(
                "INSERT INTO email_outbox (id, idempotency_key, from_address, to_addresses, subject, html, text_body, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(d::id(Uuid::new_v4()))
            .bind(idempotency_key)
            .bind(from)
            .bind(d::json(&serde_json::json!(to)))
            .bind(subject)
            .bind(html)
            .bind(text)
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected()
                == 1;
            let row = sqlx::query("SELECT * FROM email_outbox WHERE idempotency_key = $1")
                .bind(idempotency_key)
                .fetch_one(p)
                .await?;
            Ok((map_outbox(&row)?, inserted))
        })
    }

    /// Outbox messages, oldest first.
    pub async fn list_outbox(&self) -> DbResult<Vec<OutboxMessage>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query("SELECT * FROM email_outbox ORDER BY created_at, id")
                .fetch_all(p)
                .await?;
            Ok(rows.iter().map(map_outbox).collect::<Result<_, _>>()?)
        })
    }
}
