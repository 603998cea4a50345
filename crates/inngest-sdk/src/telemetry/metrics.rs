//! The SDK's metrics through the `metrics` facade (feature `metrics`).

use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};

use super::{CallOutcome, CALLS_TOTAL, CALL_STATE_BYTES, ERRORS_TOTAL, STEP_DURATION_SECONDS};

/// Gives the installed recorder the descriptions and units of the SDK's metrics (for example
/// the `# HELP` lines of a Prometheus exporter). Call it once after installing the recorder;
/// the metrics are recorded whether or not it is called.
pub fn describe_metrics() {
    describe_counter!(
        CALLS_TOTAL,
        "Inngest execution calls, by function and outcome"
    );
    describe_histogram!(
        STEP_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of executed Inngest steps, by function and outcome"
    );
    describe_counter!(
        ERRORS_TOTAL,
        "Errors in Inngest calls, by function and kind"
    );
    describe_histogram!(
        CALL_STATE_BYTES,
        Unit::Bytes,
        "Memoized step state an Inngest call received, by function"
    );
}

/// One call ended.
pub(super) fn call(function: &str, outcome: CallOutcome, state_bytes: usize) {
    let function = function.to_owned();
    counter!(CALLS_TOTAL, "function" => function.clone(), "outcome" => outcome.label())
        .increment(1);
    if let Some(kind) = outcome.error_kind() {
        counter!(ERRORS_TOTAL, "function" => function.clone(), "kind" => kind).increment(1);
    }
    #[allow(clippy::cast_precision_loss)]
    histogram!(CALL_STATE_BYTES, "function" => function).record(state_bytes as f64);
}

/// One step body ran for `nanos`.
pub(super) fn step(function: &str, outcome: &'static str, nanos: u64) {
    #[allow(clippy::cast_precision_loss)]
    let seconds = nanos as f64 / 1e9;
    histogram!(STEP_DURATION_SECONDS, "function" => function.to_owned(), "outcome" => outcome)
        .record(seconds);
}
