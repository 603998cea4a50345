//! Traces and metrics of execution calls.
//!
//! # Traces
//!
//! Every execution call runs in a `tracing` span named [`CALL_SPAN`] (`inngest.call`, kind
//! server) with the fields `fn_id`, `run_id`, `attempt`, `step` (the requested step id) and,
//! when the call ends, `outcome` (one of the [`CallOutcome`] labels). Every step the call
//! executes (`step.run`, `step.send_event`, …) runs its body in a child span named
//! [`STEP_SPAN`] (`inngest.step`) with `step.name` (the id given in code), `step.id` (the hashed
//! id of the protocol), `step.attempt`, and when the body ends `step.op` (`StepRun`,
//! `StepError` or `StepFailed`) and `step.outcome` (`ok`, `error` or `failed`). Failed calls and
//! steps set `otel.status_code = "error"`. Spans you open inside a step body nest under it.
//!
//! With the **`otel`** feature the spans become OpenTelemetry spans through a
//! [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry) layer that you install
//! with the exporter of your choice (OTLP, stdout, in-memory, …):
//!
//! - the call span's parent is the W3C `traceparent` (and `tracestate`) of the incoming request;
//!   the local executor sends one trace id for all the requests of a run, so a run is one
//!   trace whose calls are its root spans' children;
//! - [`Inngest::send`](crate::Inngest::send) and `step.send_event` put the current span's
//!   `traceparent`/`tracestate` on the event API request (where the JS SDK puts it), so the
//!   runs an event starts can be linked to the code that sent it.
//!
//! Without a `tracing-opentelemetry` layer nothing is exported and no header is added.
//!
//! ```no_run
//! # #[cfg(feature = "otel")] {
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::prelude::*;
//!
//! // Any span exporter: OTLP (`opentelemetry-otlp`), stdout, or in memory as here.
//! let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     .with_simple_exporter(exporter)
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-app")))
//!     .init();
//! # }
//! ```
//!
//! # Metrics
//!
//! With the **`metrics`** feature the SDK records through the
//! [`metrics`](https://docs.rs/metrics) facade; install any recorder (Prometheus, StatsD, …),
//! none is forced on you:
//!
//! | name | type | labels |
//! |---|---|---|
//! | [`CALLS_TOTAL`] `inngest_calls_total` | counter | `function`, `outcome` |
//! | [`STEP_DURATION_SECONDS`] `inngest_step_duration_seconds` | histogram | `function`, `outcome` (`ok`, `error`, `failed`) |
//! | [`ERRORS_TOTAL`] `inngest_errors_total` | counter | `function`, `kind` |
//! | [`CALL_STATE_BYTES`] `inngest_call_state_bytes` | histogram | `function` |
//!
//! `function` is the function's slug (`<app id>-<function id>`), `outcome` a [`CallOutcome`]
//! label, `kind` one of `step_error` (a step attempt failed and will be retried), `step_failed`
//! (a step failed for good), `function_error` (the function returned a retriable error),
//! `function_failed` (it returned a non-retriable error or let a failed step escape), `panic`
//! and `step_not_found`. The state size is the bytes of memoized step results the call
//! received. Call `describe_metrics` (feature `metrics`) once to give a recorder the
//! descriptions and units.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::task::{Context, Poll};

use inngest_protocol::wire::{Op, OpCode};
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "otel")]
mod otel;

#[cfg(feature = "metrics")]
pub use metrics::describe_metrics;

/// Name of the span of one execution call.
pub const CALL_SPAN: &str = "inngest.call";
/// Name of the span of one executed step.
pub const STEP_SPAN: &str = "inngest.step";
/// Counter of execution calls, by `function` and `outcome`.
pub const CALLS_TOTAL: &str = "inngest_calls_total";
/// Histogram of executed steps' durations in seconds, by `function` and `outcome`.
pub const STEP_DURATION_SECONDS: &str = "inngest_step_duration_seconds";
/// Counter of errors, by `function` and `kind`.
pub const ERRORS_TOTAL: &str = "inngest_errors_total";
/// Histogram of the memoized state (step results) a call received, in bytes, by `function`.
pub const CALL_STATE_BYTES: &str = "inngest_call_state_bytes";

/// How an execution call ended: the `outcome` of the call span and of [`CALLS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The function returned (`completed`).
    Completed,
    /// A step ran and succeeded (`step_ran`).
    StepRan,
    /// A step attempt failed and will be retried (`step_error`).
    StepError,
    /// A step failed for good (`step_failed`).
    StepFailed,
    /// New steps were reported to Inngest: sleeps, waits, planned steps (`steps_reported`).
    StepsReported,
    /// The function returned a retriable error (`function_error`).
    FunctionError,
    /// The function returned a non-retriable error or let a failed step escape
    /// (`function_failed`).
    FunctionFailed,
    /// The function panicked (`panicked`).
    Panicked,
    /// A targeted step was never reached (`step_not_found`).
    StepNotFound,
}

impl CallOutcome {
    /// The label of this outcome.
    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Completed => "completed",
            CallOutcome::StepRan => "step_ran",
            CallOutcome::StepError => "step_error",
            CallOutcome::StepFailed => "step_failed",
            CallOutcome::StepsReported => "steps_reported",
            CallOutcome::FunctionError => "function_error",
            CallOutcome::FunctionFailed => "function_failed",
            CallOutcome::Panicked => "panicked",
            CallOutcome::StepNotFound => "step_not_found",
        }
    }

    /// The `kind` label of [`ERRORS_TOTAL`] this outcome counts under, if it is an error.
    pub fn error_kind(self) -> Option<&'static str> {
        match self {
            CallOutcome::Completed | CallOutcome::StepRan | CallOutcome::StepsReported => None,
            CallOutcome::StepError => Some("step_error"),
            CallOutcome::StepFailed => Some("step_failed"),
            CallOutcome::FunctionError => Some("function_error"),
            CallOutcome::FunctionFailed => Some("function_failed"),
            CallOutcome::Panicked => Some("panic"),
            CallOutcome::StepNotFound => Some("step_not_found"),
        }
    }

    /// Whether the call span is marked as an error.
    fn is_error(self) -> bool {
        matches!(
            self,
            CallOutcome::FunctionError
                | CallOutcome::FunctionFailed
                | CallOutcome::Panicked
                | CallOutcome::StepNotFound
        )
    }
}

/// What a step span needs from its call, set while the call's future is polled.
#[derive(Clone)]
struct CallInfo {
    /// The function's slug, for the step metrics' labels (only allocated with `metrics`).
    #[cfg(feature = "metrics")]
    function: Arc<str>,
    attempt: u32,
}

thread_local! {
    static CURRENT: RefCell<Option<CallInfo>> = const { RefCell::new(None) };
}

/// The span of one execution call, parented (feature `otel`) from the request's `traceparent`.
pub(crate) fn call_span(
    fn_id: &str,
    run_id: &str,
    attempt: u32,
    step: &str,
    headers: &http::HeaderMap,
) -> Span {
    let span = tracing::info_span!(
        "inngest.call",
        otel.kind = "server",
        fn_id = %fn_id,
        run_id = %run_id,
        attempt,
        step = %step,
        outcome = Empty,
        otel.status_code = Empty,
    );
    #[cfg(feature = "otel")]
    otel::set_remote_parent(&span, headers);
    #[cfg(not(feature = "otel"))]
    let _ = headers;
    span
}

/// Runs the call's future in `span`, with the call's function and attempt known to the steps.
pub(crate) fn in_call<F: Future>(
    span: &Span,
    function: &str,
    attempt: u32,
    fut: F,
) -> InCall<Instrumented<F>> {
    #[cfg(not(feature = "metrics"))]
    let _ = function;
    InCall {
        info: CallInfo {
            #[cfg(feature = "metrics")]
            function: Arc::from(function),
            attempt,
        },
        inner: fut.instrument(span.clone()),
    }
}

/// Records how the call ended on its span and in the metrics.
pub(crate) fn call_finished(span: &Span, function: &str, outcome: CallOutcome, state_bytes: usize) {
    span.record("outcome", outcome.label());
    if outcome.is_error() {
        span.record("otel.status_code", "error");
    }
    #[cfg(feature = "metrics")]
    metrics::call(function, outcome, state_bytes);
    #[cfg(not(feature = "metrics"))]
    let _ = (function, state_bytes);
}

/// The span of one executed step, a child of the current (call) span.
pub(crate) fn step_span(name: &str, hashed_id: &str) -> Span {
    let attempt = CURRENT.with(|c| c.borrow().as_ref().map_or(0, |c| c.attempt));
    tracing::info_span!(
        "inngest.step",
        step.name = %name,
        step.id = %hashed_id,
        step.attempt = attempt,
        step.op = Empty,
        step.outcome = Empty,
        otel.status_code = Empty,
    )
}

/// Records how an executed step ended (its op) on its span and in the metrics, and ends the
/// span (a step future that succeeded may stay alive until its call ends).
pub(crate) fn step_finished(span: Span, op: &Op) {
    let (code, outcome) = match op.op {
        OpCode::StepError => ("StepError", "error"),
        OpCode::StepFailed => ("StepFailed", "failed"),
        _ => ("StepRun", "ok"),
    };
    span.record("step.op", code);
    span.record("step.outcome", outcome);
    if outcome != "ok" {
        span.record("otel.status_code", "error");
    }
    #[cfg(feature = "metrics")]
    if let (Some(function), Some(timing)) = (
        CURRENT.with(|c| c.borrow().as_ref().map(|c| c.function.clone())),
        op.timing.as_ref(),
    ) {
        metrics::step(&function, outcome, timing.b);
    }
}

/// Puts the current span's trace context on an outgoing request (feature `otel`; nothing
/// without it, or when the current span is not an OpenTelemetry span).
pub(crate) fn inject(headers: &mut http::HeaderMap) {
    #[cfg(feature = "otel")]
    otel::inject(&Span::current(), headers);
    #[cfg(not(feature = "otel"))]
    let _ = headers;
}

pin_project_lite::pin_project! {
    /// A future polled with its call's [`CallInfo`] set for the step spans.
    pub(crate) struct InCall<F> {
        info: CallInfo,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for InCall<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let previous = CURRENT.with(|c| c.replace(Some(this.info.clone())));
        let polled = this.inner.poll(cx);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        polled
    }
}
