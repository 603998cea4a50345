//! The dead-letter recorder shared by the `on_failure` handlers of `process-order`,
//! `send-order-confirmation` and `update-printify-products`: it upserts the `failed_operations`
//! row and emits `operation/failed`, which `retry-failed-operation` picks up.

use inngest_sdk::{Error, FunctionFailed, Step};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{db_err, now_utc, Deps};
use crate::db::{NewFailedOperation, OperationStatus};
use crate::events::{self, OperationFailed};

/// What an `on_failure` handler returns (and the data of the `operation/failed` it emits).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recorded {
    operation_id: Uuid,
    status: OperationStatus,
    retry_count: i32,
}

/// The shared `on_failure` body: upsert the `failed_operations` row for `(op_type, dedupe_key)`
/// (status `pending`, payload = the failed run's event data, `last_error`), then emit
/// `operation/failed {operationId, type, payload, retryCount, error}` with a `step.send_event`
/// keyed by the failed run, so a replayed handler emits once. A row that is already `dead`
/// stays dead and nothing is emitted.
pub(crate) async fn record_failure(
    d: &Deps,
    step: &Step,
    failed: &FunctionFailed<Value>,
    op_type: &str,
    dedupe_key: Option<String>,
) -> Result<Value, Error> {
    let payload = failed.event.data.clone();
    let error = failed.error.message.clone();
    let rec: Recorded = step
        .run("record-failed-operation", || async {
            let op = d
                .app
                .db
                .record_failed_operation(
                    &NewFailedOperation {
                        op_type: op_type.to_string(),
                        dedupe_key: dedupe_key.clone(),
                        payload: payload.clone(),
                        error: error.clone(),
                    },
                    now_utc(),
                )
                .await
                .map_err(db_err)?;
            tracing::warn!(
                operation_id = %op.id,
                op_type,
                failed_function = %failed.function_id,
                failed_run = %failed.run_id,
                "operation failed; recorded for retry"
            );
            Ok(Recorded {
                operation_id: op.id,
                status: op.status,
                retry_count: op.retry_count,
            })
        })
        .await?;
    if rec.status == OperationStatus::Dead {
        return Ok(json!({
            "operationId": rec.operation_id,
            "deadLettered": true,
            "emitted": [],
        }));
    }
    let retry = OperationFailed {
        operation_id: rec.operation_id,
        kind: Some(op_type.to_string()),
        payload,
        retry_count: Some(rec.retry_count),
        error: Value::String(error),
    };
    let ids = step
        .send_event(
            "emit-operation-failed",
            events::with_id(retry, format!("operation-failed-{}", failed.run_id)),
        )
        .await?;
    Ok(json!({
        "operationId": rec.operation_id,
        "deadLettered": false,
        "emitted": ids,
    }))
}
