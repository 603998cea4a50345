//! The app's middleware, registered once on its Inngest client by [`install`]:
//!
//! * [`Services`] hands every call the [`Deps`] (database, provider clients, mailer, tunables).
//!   A handler reads them with `ctx.get::<Deps>()?`, so no function captures them and the
//!   function builders take no arguments. A client without it fails each call with an error
//!   naming the missing type.
//! * [`FailureReporter`] is the one place failures are reported: every failed attempt of every
//!   function — its own error, a step's, or a panic — becomes one `tracing` event on target
//!   [`FAILURE_TARGET`] (`warn` while Inngest retries, `error` on the final attempt) and one
//!   count of [`FAILURES_TOTAL`]`{function, final}` on the `/metrics` page. It carries ids, the
//!   step id, the attempt, the error's name (`error`) and message (`reason`), never event data. The functions
//!   themselves do not log their failures; what a failure *does* (the dead-letter row) stays in
//!   the `on_failure` handlers, which Inngest runs once per failed run.

use std::sync::Arc;

use inngest_sdk::client::InngestBuilder;
use inngest_sdk::middleware::{Failure, Input, RunInfo};
use inngest_sdk::{Error, Middleware};

use super::Deps;

/// `tracing` target of the failure reports.
pub const FAILURE_TARGET: &str = "otakumori::failures";
/// Counter of failed attempts, labelled `function` (its id) and `final` (`true` when Inngest
/// will not retry).
pub const FAILURES_TOTAL: &str = "otakumori_function_failures_total";

/// Registers [`Services`] (with `deps`) and [`FailureReporter`] on a client being built.
pub fn install(client: InngestBuilder, deps: Deps) -> InngestBuilder {
    client
        .middleware(Services::new(deps))
        .middleware(FailureReporter)
}

/// Dependency injection: attaches the shared [`Deps`] to every call.
#[derive(Debug, Clone)]
pub struct Services(Arc<Deps>);

impl Services {
    /// The middleware for `deps`.
    pub fn new(deps: Deps) -> Self {
        Services(Arc::new(deps))
    }
}

impl Middleware for Services {
    fn name(&self) -> &str {
        "otakumori-services"
    }

    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        input.insert_arc(self.0.clone());
        Ok(())
    }
}

/// Reports every failed attempt to one place (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureReporter;

impl FailureReporter {
    fn report(run: &RunInfo, step: Option<&str>, name: &str, message: &str, final_: bool) {
        let attempt = run.attempt + 1;
        let step = step.unwrap_or("-");
        if final_ {
            tracing::error!(target: FAILURE_TARGET, function = %run.function_id, run_id = %run.run_id,
                step, attempt, max_attempts = run.max_attempts, error = name, reason = message,
                "function failed; no retry left");
        } else {
            tracing::warn!(target: FAILURE_TARGET, function = %run.function_id, run_id = %run.run_id,
                step, attempt, max_attempts = run.max_attempts, error = name, reason = message,
                "attempt failed; Inngest retries");
        }
        metrics::counter!(FAILURES_TOTAL,
            "function" => run.function_id.clone(),
            "final" => if final_ { "true" } else { "false" })
        .increment(1);
    }
}

impl Middleware for FailureReporter {
    fn name(&self) -> &str {
        "otakumori-failure-reporter"
    }

    fn on_error(&self, run: &RunInfo, failure: &Failure<'_>) {
        if failure.from_step {
            // Reported by the call where the step failed.
            return;
        }
        let step = failure.step.map(|s| s.id.as_str());
        Self::report(
            run,
            step,
            failure.name,
            failure.message,
            !failure.will_retry,
        );
    }

    fn on_panic(&self, run: &RunInfo, message: &str) {
        let final_ = run.attempt + 1 >= run.max_attempts;
        Self::report(run, None, "panic", message, final_);
    }
}
