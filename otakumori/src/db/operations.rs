//! `failed_operations`: the retry ledger / dead-letter queue.
//!
//! Lifecycle: `record_failed_operation` (status `pending`) → per attempt
//! `mark_operation_retrying` → `mark_operation_succeeded` **or**
//! `record_operation_attempt_failed` (back to `pending`, or `dead` once `max_retries` attempts
//! were made). `mark_operation_dead` is the explicit dead-letter (e.g. from `onFailure`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    with_db, Db, DbError, DbResult, FailedOperation, NewFailedOperation, OperationStatus, RowExt,
};

fn map_op<R: RowExt>(r: &R) -> Result<FailedOperation, sqlx::Error> {
    Ok(FailedOperation {
        id: r.id("id")?,
        op_type: r.text("type")?,
        dedupe_key: r.opt_text("dedupe_key")?,
        payload: r.json("payload")?,
        retry_count: r.i32("retry_count")?,
        last_error: r.opt_text("last_error")?,
        status: r.parsed("status")?,
        next_retry_at: r.opt_ts("next_retry_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

impl Db {
    /// Record a failure (`onFailure` handlers). With a `dedupe_key`, one row exists per
    /// `(op_type, dedupe_key)`: a repeat updates `payload`/`last_error`; a row that had
    /// `succeeded` is re-opened as `pending` with `retry_count = 0`; `dead` rows stay dead.
    pub async fn record_failed_operation(
        &self,
        op: &NewFailedOperation,
        now: DateTime<Utc>,
    ) -> DbResult<FailedOperation> {
        with_db!(self, |p, d| {
            let row = sqlx::query(
                "INSERT INTO failed_operations (id, type, dedupe_key, payload, retry_count, last_error, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 0, $5, 'pending', $6, $6)
                 ON CONFLICT (type, dedupe_key) DO UPDATE SET
                   payload = excluded.payload,
                   last_error = excluded.last_error,
                   retry_count = CASE WHEN failed_operations.status = 'succeeded' THEN 0 ELSE failed_operations.retry_count END,
                   status = CASE WHEN failed_operations.status = 'succeeded' THEN 'pending' ELSE failed_operations.status END,
                   next_retry_at = CASE WHEN failed_operations.status = 'succeeded' THEN NULL ELSE failed_operations.next_retry_at END,
                   updated_at = excluded.updated_at
                 RETURNING *",
            )
            .bind(d::id(Uuid::new_v4()))
            .bind(&op.op_type)
            .bind(&op.dedupe_key)
            .bind(d::json(&op.payload))
            .bind(&op.error)
            .bind(d::ts(now))
            .fetch_one(p)
            .await?;
            Ok(map_op(&row)?)
        })
    }

    /// One operation.
    pub async fn get_failed_operation(&self, id: Uuid) -> DbResult<Option<FailedOperation>> {
        with_db!(self, |p, d| {
            let row = sqlx::query("SELECT * FROM failed_operations WHERE id = $1")
                .bind(d::id(id))
                .fetch_optional(p)
                .await?;
            Ok(row.as_ref().map(map_op).transpose()?)
        })
    }

    async fn op_or_current(
        &self,
        id: Uuid,
        updated: Option<FailedOperation>,
    ) -> DbResult<FailedOperation> {
        match updated {
            Some(op) => Ok(op),
            None => self
                .get_failed_operation(id)
                .await?
                .ok_or(DbError::NotFound {
                    entity: "failed_operation",
                    id: id.to_string(),
                }),
        }
    }

    /// An attempt is starting: status `retrying`, `next_retry_at` = when it is scheduled (or `None`).
    /// Terminal rows (`succeeded`/`dead`) are returned unchanged.
    pub async fn mark_operation_retrying(
        &self,
        id: Uuid,
        next_retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DbResult<FailedOperation> {
        let op = with_db!(self, |p, d| {
            let row = sqlx::query(
                "UPDATE failed_operations SET status = 'retrying', next_retry_at = $2, updated_at = $3
                 WHERE id = $1 AND status IN ('pending', 'retrying')
                 RETURNING *",
            )
            .bind(d::id(id))
            .bind(d::opt_ts(next_retry_at))
            .bind(d::ts(now))
            .fetch_optional(p)
            .await?;
            row.as_ref().map(map_op).transpose()?
        });
        self.op_or_current(id, op).await
    }

    /// The retry worked: status `succeeded`, `retry_count + 1`, `next_retry_at` cleared.
    /// Idempotent (a second call changes nothing).
    pub async fn mark_operation_succeeded(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> DbResult<FailedOperation> {
        let op = with_db!(self, |p, d| {
            let row = sqlx::query(
                "UPDATE failed_operations SET status = 'succeeded', retry_count = retry_count + 1, next_retry_at = NULL,
                   updated_at = $2
                 WHERE id = $1 AND status NOT IN ('succeeded', 'dead')
                 RETURNING *",
            )
            .bind(d::id(id))
            .bind(d::ts(now))
            .fetch_optional(p)
            .await?;
            row.as_ref().map(map_op).transpose()?
        });
        self.op_or_current(id, op).await
    }

    /// The retry failed: `retry_count + 1`, `last_error`, and status `dead` once
    /// `retry_count >= max_retries`, else `pending` with `next_retry_at`.
    pub async fn record_operation_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        max_retries: i32,
        next_retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DbResult<FailedOperation> {
        let op = with_db!(self, |p, d| {
            let row = sqlx::query(
                "UPDATE failed_operations SET retry_count = retry_count + 1, last_error = $2,
                   status = CASE WHEN retry_count + 1 >= $3 THEN 'dead' ELSE 'pending' END,
                   next_retry_at = CASE WHEN retry_count + 1 >= $3 THEN NULL ELSE $4 END,
                   updated_at = $5
                 WHERE id = $1 AND status NOT IN ('succeeded', 'dead')
                 RETURNING *",
            )
            .bind(d::id(id))
            .bind(error)
            .bind(max_retries)
            .bind(d::opt_ts(next_retry_at))
            .bind(d::ts(now))
            .fetch_optional(p)
            .await?;
            row.as_ref().map(map_op).transpose()?
        });
        self.op_or_current(id, op).await
    }

    /// Dead-letter the operation (status `dead`; `last_error` updated when given). Idempotent.
    pub async fn mark_operation_dead(
        &self,
        id: Uuid,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<FailedOperation> {
        let op = with_db!(self, |p, d| {
            let row = sqlx::query(
                "UPDATE failed_operations SET status = 'dead', last_error = COALESCE($2, last_error), next_retry_at = NULL,
                   updated_at = $3
                 WHERE id = $1 AND status <> 'dead'
                 RETURNING *",
            )
            .bind(d::id(id))
            .bind(error)
            .bind(d::ts(now))
            .fetch_optional(p)
            .await?;
            row.as_ref().map(map_op).transpose()?
        });
        self.op_or_current(id, op).await
    }

    /// `pending` operations whose `next_retry_at` is unset or due, oldest first.
    pub async fn list_due_operations(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<FailedOperation>> {
        with_db!(self, |p, d| {
            let rows = sqlx::query(
                "SELECT * FROM failed_operations
                 WHERE status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= $1)
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(d::ts(now))
            .bind(limit)
            .fetch_all(p)
            .await?;
            Ok(rows.iter().map(map_op).collect::<Result<_, _>>()?)
        })
    }

    /// All operations with the given status (or all), oldest first.
    pub async fn list_operations(
        &self,
        status: Option<OperationStatus>,
    ) -> DbResult<Vec<FailedOperation>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query(
                "SELECT * FROM failed_operations WHERE status = $1 OR $2 ORDER BY created_at, id",
            )
            .bind(status.map(|s| s.as_str()).unwrap_or(""))
            .bind(status.is_none())
            .fetch_all(p)
            .await?;
            Ok(rows.iter().map(map_op).collect::<Result<_, _>>()?)
        })
    }
}
