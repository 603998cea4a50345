//! A [`FailureRecorder`] that writes each delivery the app could not forward to Inngest into the
//! `failed_operations` table, so an Inngest outage never drops a verified webhook silently.

use async_trait::async_trait;
use serde_json::json;

use super::sink::{FailureRecorder, IngressFailure};
use crate::db::{now_utc, Db, NewFailedOperation};

/// `failed_operations.op_type` of a webhook delivery that could not be forwarded.
pub const OP_WEBHOOK_FORWARD: &str = "webhook.forward";

/// Records forwarding failures as `failed_operations` rows (`op_type = webhook.forward`), one row
/// per provider delivery: a redelivery that fails again updates the same row.
#[derive(Debug, Clone)]
pub struct DbFailureRecorder {
    db: Db,
}

impl DbFailureRecorder {
    /// A recorder writing to `db`.
    pub fn new(db: Db) -> Self {
        DbFailureRecorder { db }
    }
}

#[async_trait]
impl FailureRecorder for DbFailureRecorder {
    async fn record(&self, failure: IngressFailure) {
        let op = NewFailedOperation {
            op_type: OP_WEBHOOK_FORWARD.to_owned(),
            dedupe_key: Some(format!("{}:{}", failure.provider, failure.delivery_id)),
            payload: json!({
                "provider": failure.provider.as_str(),
                "delivery_id": failure.delivery_id,
                "events": failure.events,
            }),
            error: failure.error,
        };
        match self.db.record_failed_operation(&op, now_utc()).await {
            Ok(row) => tracing::warn!(
                provider = failure.provider.as_str(),
                operation_id = %row.id,
                "webhook delivery could not be forwarded to Inngest; recorded in failed_operations"
            ),
            Err(e) => tracing::error!(
                provider = failure.provider.as_str(),
                error = %e,
                "webhook delivery could not be forwarded to Inngest, and recording it failed"
            ),
        }
    }
}
