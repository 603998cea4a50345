//! The checkpoint API (`POST /v1/checkpoint/{run_id}/async`): steps an SDK ran inline and
//! reports before answering its request. They are memoized and stacked exactly as if a `206`
//! had reported them, without asking for discovery (the SDK is still running the function).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::lifecycle::complete_step;
use crate::response::{parse_ops, step_label, OpAction};
use crate::shared::{Inner, Job};
use crate::state::{HistoryKind, RunStatus, StepStatus};
use inngest_protocol::wire;

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    /// No run has the id.
    #[error("run not found")]
    RunNotFound,
    /// The body is not a checkpoint, or the run has ended.
    #[error("{0}")]
    Invalid(String),
}

impl Inner {
    /// Applies a checkpoint; returns the number of steps memoized.
    pub(crate) fn checkpoint(
        self: &Arc<Self>,
        run_id: &str,
        body: &Value,
    ) -> Result<usize, CheckpointError> {
        let invalid = CheckpointError::Invalid;
        let now = self.now();
        let steps = body
            .get("steps")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("checkpoint body has no `steps` array".into()))?;
        let raw = serde_json::to_vec(steps).map_err(|e| invalid(e.to_string()))?;
        let ops = parse_ops(&raw, now).map_err(invalid)?;
        let mut st = self.lock();
        let run = st
            .runs
            .get_mut(run_id)
            .ok_or(CheckpointError::RunNotFound)?;
        if run.status != RunStatus::Running {
            return Err(invalid(format!("run is {}", run.status.as_str())));
        }
        let job = Job {
            sent_at: Some(now),
            ..Job::new(run_id, wire::DISCOVERY_STEP_ID)
        };
        let mut applied = 0;
        for p in ops {
            let label = step_label(&p.op);
            let (memo, status) = match p.action {
                OpAction::Run(data) => (json!({ "data": data }), StepStatus::Completed),
                OpAction::Failed(err) => (json!({ "error": err }), StepStatus::Failed),
                _ => {
                    run.log(
                        now,
                        HistoryKind::InvalidResponse,
                        Some(&p.op.id),
                        None,
                        format!(
                            "checkpointed op `{}` ignored (only StepRun/StepFailed)",
                            p.name
                        ),
                    );
                    continue;
                }
            };
            if complete_step(run, &job, &p.op.id, &label, memo, status, now) {
                applied += 1;
            }
        }
        run.log(
            now,
            HistoryKind::Response,
            None,
            None,
            format!("checkpoint with {applied} step(s)"),
        );
        drop(st);
        self.notify();
        Ok(applied)
    }
}
