//! The retry ledger: `on_failure` handlers record failed operations, and
//! `retry-failed-operation` retries them with exponential backoff before dead-lettering.

use inngest_sdk::event::decode_data;
use inngest_sdk::{Concurrency, Ctx, Error, Function, FunctionFailed, NonRetriable, Step};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::orders::Submitted;
use super::{
    catalog, db_err, now_utc, orders, Deps, FN_RETRY_FAILED_OPERATION, OP_EMAIL_ORDER_CONFIRMATION,
    OP_ORDER_PROCESS, OP_PRINTIFY_SYNC,
};
use crate::db::{FailedOperation, OperationStatus};
use crate::events::{
    self, OperationFailed, OrderConfirmationSent, OrderCreated, PrintifyProductsUpdate,
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Loaded {
    op_type: String,
    payload: Value,
    retry_count: i32,
    status: OperationStatus,
    dead_lettered: bool,
}

/// One retry attempt, reported as data (not thrown) so the explicit backoff loop decides what
/// happens next.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attempt {
    ok: bool,
    result: Option<Value>,
    error: Option<String>,
    retry_count: i32,
    dead: bool,
}

/// A recorded payload as the event type of its operation: what does not match is a
/// non-retriable error naming the field (retrying would not change it).
fn payload<T: DeserializeOwned>(op_type: &str, payload: &Value) -> Result<T, Error> {
    decode_data(payload.clone())
        .map_err(|e| NonRetriable::new(format!("invalid `{op_type}` payload {e}")).into())
}

/// Re-run one operation directly (`retry-operation`): its payload is the failed run's event.
async fn run_operation(d: &Deps, op_type: &str, data: &Value) -> Result<Value, Error> {
    match op_type {
        OP_ORDER_PROCESS => {
            let ev: OrderCreated = payload(op_type, data)?;
            let out = orders::fulfil_paid_order(d, ev.order_id).await?;
            Ok(serde_json::to_value(out)?)
        }
        OP_EMAIL_ORDER_CONFIRMATION => {
            let ev: OrderConfirmationSent = payload(op_type, data)?;
            let sent = orders::deliver_confirmation(d, ev.order_id, ev.email).await?;
            Ok(json!({
                "orderId": ev.order_id,
                "emailId": sent.provider_message_id,
                "alreadySent": sent.already_sent,
            }))
        }
        OP_PRINTIFY_SYNC => {
            let ev: PrintifyProductsUpdate = payload(op_type, data)?;
            catalog::sync_now(d, ev.product_ids.filter(|v| !v.is_empty())).await
        }
        other => Err(NonRetriable::new(format!("unknown operation type `{other}`")).into()),
    }
}

/// **retryFailedOperation** (`retry-failed-operation`): the retry and dead-letter
/// queue behind the `on_failure` handlers.
///
/// * Trigger `operation/failed {operationId, type, payload, retryCount, error}`; concurrency 1
///   per `event.data.operationId`; retries 3 (Inngest's own retries cover transient errors of a
///   step); `on_failure` dead-letters the row.
/// * Step `load-operation`: reads `failed_operations`; a row already `succeeded`/`dead`, or with
///   `retry_count >= 3`, ends the run (the latter is set `dead`).
/// * Then, for each remaining attempt `n`: step `backoff-{n}` is a durable `step.sleep` of
///   `min(30 s · 2^n, 1 h)`, and step `retry-operation-{n}` marks the row `retrying` and re-runs
///   the operation directly — the Printify order POST (`order.process`), the confirmation email
///   (`email.order_confirmation`) or a catalog sync (`printify.sync`). A failed attempt bumps
///   `retry_count` (the row goes back to `pending`, or `dead` after the 3rd).
/// * Success: step `mark-succeeded` (`status='succeeded'`, `retry_count+1`); for a recovered
///   order also `send-confirmation` (`order/confirmation.sent`) and `clear-cart`.
/// * After the last failure: step `dead-letter` makes sure the row is `dead`.
/// * Returns `{success, operationType, retryCount, deadLettered}`.
pub fn retry_failed_operation() -> Function {
    Function::new(FN_RETRY_FAILED_OPERATION)
        .name("Retry failed operation")
        // Untyped on purpose, and so registered before `.on`: it dead-letters runs whose
        // event did not decode too (when it has an `operationId` at all).
        .on_failure(|ctx: Ctx<FunctionFailed<Value>>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let failed = &ctx.event.data;
            let Ok(OperationFailed {
                operation_id: op_id,
                ..
            }) = decode_data(failed.event.data.clone())
            else {
                return Ok(json!({"deadLettered": false, "reason": "no operationId"}));
            };
            let message = failed.error.message.clone();
            let op: FailedOperation = step
                .run("dead-letter", || async {
                    d.app
                        .db
                        .mark_operation_dead(op_id, Some(&message), now_utc())
                        .await
                        .map_err(db_err)
                })
                .await?;
            tracing::error!(operation_id = %op_id, "retry run failed; operation dead-lettered");
            Ok(json!({"deadLettered": true, "operationId": op.id, "status": op.status}))
        })
        .on::<OperationFailed>()
        .concurrency(Concurrency::new(1).key("event.data.operationId"))
        .retries(3)
        .handler(|ctx: Ctx<OperationFailed>, step: Step| async move {
            retry_operation(ctx.get()?, &step, ctx.event.data.operation_id).await
        })
        .into()
}

/// The steps of `retry-failed-operation`: load, then backoff and retry until it succeeds or
/// the retries are used up, then dead-letter.
async fn retry_operation(d: &Deps, step: &Step, op_id: Uuid) -> Result<Value, Error> {
    let max = d.options.max_operation_retries;
    let loaded: Loaded = step
        .run("load-operation", || load_operation(d, op_id))
        .await?;
    if matches!(
        loaded.status,
        OperationStatus::Succeeded | OperationStatus::Dead
    ) {
        return Ok(json!({
            "success": loaded.status == OperationStatus::Succeeded,
            "operationId": op_id,
            "operationType": loaded.op_type,
            "retryCount": loaded.retry_count,
            "deadLettered": loaded.dead_lettered,
            "skipped": true,
        }));
    }
    let mut retry_count = loaded.retry_count;
    let mut last_error = None;
    for n in loaded.retry_count..max {
        step.sleep(&format!("backoff-{n}"), d.options.backoff(n))
            .await;
        let attempt: Attempt = step
            .run(&format!("retry-operation-{n}"), || {
                attempt_operation(d, op_id, n, &loaded)
            })
            .await?;
        if attempt.ok {
            return succeeded(d, step, op_id, &loaded, attempt, n).await;
        }
        retry_count = attempt.retry_count;
        last_error = attempt.error;
        if attempt.dead {
            break;
        }
    }
    let op: FailedOperation = step
        .run("dead-letter", || async {
            let db = &d.app.db;
            db.mark_operation_dead(op_id, None, now_utc())
                .await
                .map_err(db_err)
        })
        .await?;
    tracing::error!(operation_id = %op_id, retries = op.retry_count, "operation dead-lettered");
    Ok(json!({
        "success": false,
        "operationId": op_id,
        "operationType": loaded.op_type,
        "retryCount": op.retry_count.max(retry_count),
        "deadLettered": true,
        "lastError": last_error,
    }))
}

/// Step `load-operation`: the `failed_operations` row; one whose retries are used up becomes
/// `dead` here.
async fn load_operation(d: &Deps, op_id: Uuid) -> Result<Loaded, Error> {
    let db = &d.app.db;
    let op = db
        .get_failed_operation(op_id)
        .await
        .map_err(db_err)?
        .ok_or_else(|| {
            Error::from(NonRetriable::new(format!(
                "failed operation {op_id} not found"
            )))
        })?;
    let mut status = op.status;
    let terminal = matches!(status, OperationStatus::Succeeded | OperationStatus::Dead);
    if !terminal && op.retry_count >= d.options.max_operation_retries {
        status = db
            .mark_operation_dead(op_id, None, now_utc())
            .await
            .map_err(db_err)?
            .status;
    }
    Ok(Loaded {
        dead_lettered: status == OperationStatus::Dead,
        op_type: op.op_type,
        payload: op.payload,
        retry_count: op.retry_count,
        status,
    })
}

/// Step `retry-operation-{n}`: mark the row `retrying` and run the operation; a failure is
/// recorded on the row and reported as data, so the backoff loop decides what comes next.
async fn attempt_operation(
    d: &Deps,
    op_id: Uuid,
    n: i32,
    loaded: &Loaded,
) -> Result<Attempt, Error> {
    let db = &d.app.db;
    db.mark_operation_retrying(op_id, None, now_utc())
        .await
        .map_err(db_err)?;
    let e = match run_operation(d, &loaded.op_type, &loaded.payload).await {
        Ok(result) => {
            return Ok(Attempt {
                ok: true,
                result: Some(result),
                error: None,
                retry_count: n,
                dead: false,
            })
        }
        Err(e) => e,
    };
    let max = d.options.max_operation_retries;
    let next = now_utc() + chrono::Duration::from_std(d.options.backoff(n + 1)).unwrap_or_default();
    let row = db
        .record_operation_attempt_failed(op_id, e.message(), max, Some(next), now_utc())
        .await
        .map_err(db_err)?;
    let dead = row.status == OperationStatus::Dead;
    tracing::warn!(operation_id = %op_id, attempt = n + 1, dead, "retry attempt failed");
    Ok(Attempt {
        ok: false,
        result: None,
        error: Some(e.message().to_string()),
        retry_count: row.retry_count,
        dead,
    })
}

/// After a successful retry: step `mark-succeeded`, and a recovered order's follow-ups.
async fn succeeded(
    d: &Deps,
    step: &Step,
    op_id: Uuid,
    loaded: &Loaded,
    attempt: Attempt,
    n: i32,
) -> Result<Value, Error> {
    let op: FailedOperation = step
        .run("mark-succeeded", || async {
            let db = &d.app.db;
            db.mark_operation_succeeded(op_id, now_utc())
                .await
                .map_err(db_err)
        })
        .await?;
    let result = attempt.result.unwrap_or(Value::Null);
    if loaded.op_type == OP_ORDER_PROCESS {
        recovered_order_follow_ups(d, step, &result).await?;
    }
    tracing::info!(operation_id = %op_id, attempts = n + 1, "operation succeeded on retry");
    Ok(json!({
        "success": true,
        "operationId": op_id,
        "operationType": loaded.op_type,
        "retryCount": op.retry_count,
        "deadLettered": false,
        "result": result,
    }))
}

/// After a recovered `order.process` (its `result` is the [`Submitted`] order): the
/// confirmation email (through its own function, like `process-order` does) and the cart.
async fn recovered_order_follow_ups(d: &Deps, step: &Step, result: &Value) -> Result<(), Error> {
    let Submitted {
        order_id, user_id, ..
    } = serde_json::from_value(result.clone())?;
    let confirmation = OrderConfirmationSent {
        order_id,
        email: None,
    };
    step.send_event(
        "send-confirmation",
        events::with_id(confirmation, orders::confirmation_event_id(order_id)),
    )
    .await?;
    let _cleared: u64 = step
        .run("clear-cart", || async {
            d.app
                .db
                .clear_cart(user_id, now_utc())
                .await
                .map_err(db_err)
        })
        .await?;
    Ok(())
}
