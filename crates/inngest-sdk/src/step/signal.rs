//! Signals: [`Step::wait_for_signal`] pauses a run until someone sends the named signal
//! ([`Inngest::send_signal`](crate::Inngest::send_signal)) or the timeout passes.
//!
//! The wire mirrors the JS SDK 4.x (inngest-js `packages/inngest/src/components/
//! InngestStepTools.ts` `waitForSignal`, `Inngest.ts` `sendSignal`): the op is
//! `WaitForSignal` with `name` = the signal and `opts: {signal, timeout, conflict}`; the memo is
//! `{"data": {"signal", "data"}}` (inngest `executor.go` `ResumeSignal`), or `null` on timeout. A signal has one waiter at a time: a second wait
//! on it fails its step with a "Signal conflict" error unless it was started with
//! [`WaitForSignal::replace_on_conflict`] (inngest `pkg/execution/executor/executor.go`
//! `handleGeneratorWaitForSignal`). A signal sent while nobody waits is dropped: the server
//! answers 404 and [`Inngest::send_signal`](crate::Inngest::send_signal) returns `Ok(None)`,
//! as the JS SDK does.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use inngest_protocol::wire::OpCode;

use super::{decode_result, Captures, Step};
use crate::StepError;

/// Options of [`Step::wait_for_signal`]: the signal, the timeout, what to do on a conflict.
#[derive(Debug, Clone)]
pub struct WaitForSignal {
    signal: String,
    timeout: Duration,
    replace: bool,
}

impl WaitForSignal {
    /// Wait for `signal` at most `timeout`. If another run already waits on it, this step fails
    /// with a "Signal conflict" error (`conflict: "fail"`).
    pub fn new(signal: impl Into<String>, timeout: Duration) -> Self {
        WaitForSignal {
            signal: signal.into(),
            timeout,
            replace: false,
        }
    }

    /// Take the signal over from a run already waiting on it (`conflict: "replace"`); that
    /// earlier wait can then only time out.
    pub fn replace_on_conflict(mut self) -> Self {
        self.replace = true;
        self
    }

    fn opts(&self) -> serde_json::Value {
        serde_json::json!({
            "signal": self.signal,
            "timeout": inngest_protocol::timestr::format(self.timeout),
            "conflict": if self.replace { "replace" } else { "fail" },
        })
    }
}

/// A received signal: its name and the data it was sent with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal<T> {
    /// The signal's name.
    pub signal: String,
    /// The data given to [`Inngest::send_signal`](crate::Inngest::send_signal).
    pub data: T,
}

impl Step {
    /// Waits for a signal; `None` when the timeout passes first. Data that does not decode as
    /// `T` is a [`StepError`] naming the field.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use inngest_sdk::{Signal, WaitForSignal};
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::StepError> {
    /// let approval: Option<Signal<serde_json::Value>> = step
    ///     .wait_for_signal(
    ///         "wait-for-approval",
    ///         WaitForSignal::new("approve/order-42", Duration::from_secs(3600)),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_signal<'s, 'i, T: DeserializeOwned>(
        &'s self,
        id: &'i str,
        opts: WaitForSignal,
    ) -> impl Future<Output = Result<Option<Signal<T>>, StepError>> + Captures<'s> + Captures<'i>
    {
        let reserved = self.reserve(id);
        let name = Some(opts.signal.clone());
        let op = self.async_op_named(reserved, OpCode::WaitForSignal, name, opts.opts());
        async move {
            let memo = op.await;
            if memo.as_ref() == b"null" {
                return Ok(None);
            }
            decode_result(&memo).map(Some)
        }
    }
}
