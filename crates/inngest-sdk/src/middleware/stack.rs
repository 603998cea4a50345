//! The registered middleware of a client or function, and running each hook over all of them in
//! the documented order.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::{Failure, Input, Middleware, Next, Payload, RunInfo, SendResult, StepFuture, StepInfo};
use crate::error::Error;
use crate::event::Event;

/// An ordered list of middleware (outer first). Empty costs nothing: no allocation, and every
/// call site checks [`Stack::is_empty`] before doing any work for hooks.
#[derive(Clone, Default)]
pub(crate) struct Stack(Option<Arc<[Arc<dyn Middleware>]>>);

impl Stack {
    pub(crate) fn new(list: Vec<Arc<dyn Middleware>>) -> Stack {
        if list.is_empty() {
            Stack(None)
        } else {
            Stack(Some(list.into()))
        }
    }

    /// This list with `m` added last.
    pub(crate) fn push(&self, m: Arc<dyn Middleware>) -> Stack {
        let mut list = self.list().to_vec();
        list.push(m);
        Stack::new(list)
    }

    /// `outer` then `inner` (the client's, then the function's).
    pub(crate) fn chain(outer: &Stack, inner: &Stack) -> Stack {
        match (&outer.0, &inner.0) {
            (_, None) => outer.clone(),
            (None, _) => inner.clone(),
            (Some(a), Some(b)) => Stack(Some(a.iter().chain(b.iter()).cloned().collect())),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn list(&self) -> &[Arc<dyn Middleware>] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// `before_send_events`, inner first.
    pub(crate) async fn before_send(&self, events: &mut Vec<Event>) -> Result<(), Error> {
        for m in self.list().iter().rev() {
            m.before_send_events(events)
                .await
                .map_err(|e| hook_error(&**m, "before_send_events", &e))?;
        }
        Ok(())
    }

    /// `after_send_events`, outer first.
    pub(crate) async fn after_send(
        &self,
        events: &[Event],
        result: SendResult<'_>,
    ) -> Result<(), Error> {
        for m in self.list() {
            m.after_send_events(events, result)
                .await
                .map_err(|e| hook_error(&**m, "after_send_events", &e))?;
        }
        Ok(())
    }

    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        for m in self.list() {
            m.transform_input(input)
                .map_err(|e| hook_error(&**m, "transform_input", &e))?;
        }
        Ok(())
    }

    fn transform_step_input(
        &self,
        step: &StepInfo,
        value: Bytes,
        envelope: bool,
    ) -> Result<Bytes, Error> {
        let mut payload = if envelope {
            Payload::envelope(value)
        } else {
            Payload::bare(value)
        };
        for m in self.list() {
            m.transform_step_input(step, &mut payload)
                .map_err(|e| hook_error(&**m, "transform_step_input", &e))?;
        }
        Ok(payload.into_bytes())
    }

    async fn before_execution(&self, run: &RunInfo) -> Result<(), Error> {
        for m in self.list() {
            m.before_execution(run)
                .await
                .map_err(|e| hook_error(&**m, "before_execution", &e))?;
        }
        Ok(())
    }

    async fn after_execution(&self, run: &RunInfo) -> Result<(), Error> {
        for m in self.list().iter().rev() {
            m.after_execution(run)
                .await
                .map_err(|e| hook_error(&**m, "after_execution", &e))?;
        }
        Ok(())
    }

    fn transform_output(
        &self,
        hook: &str,
        output: Box<RawValue>,
        mut f: impl FnMut(&dyn Middleware, &mut Payload) -> Result<(), Error>,
    ) -> Result<Box<RawValue>, Error> {
        let mut payload = Payload::from_raw(&output);
        for m in self.list().iter().rev() {
            f(&**m, &mut payload).map_err(|e| hook_error(&**m, hook, &e))?;
        }
        if payload.touched() {
            payload.into_raw()
        } else {
            Ok(output)
        }
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list().iter().map(|m| m.name()))
            .finish()
    }
}

/// The error of a failed hook: names the middleware and the hook, keeps whether it may be retried.
fn hook_error(m: &dyn Middleware, hook: &str, e: &Error) -> Error {
    let err = Error::msg(format!(
        "middleware `{}` failed in `{hook}`: {}",
        m.name(),
        e.message()
    ))
    .with_name("MiddlewareError");
    if e.is_retriable() {
        err
    } else {
        err.non_retriable()
    }
}

/// The middleware of one call (client's, then function's; never empty) and the run it serves.
#[derive(Debug)]
pub(crate) struct CallHooks {
    pub(crate) stack: Stack,
    pub(crate) run: RunInfo,
}

impl CallHooks {
    /// `transform_input`: the event and events to go on with, and the attached values.
    pub(crate) fn input(
        &self,
        event: Bytes,
        events: Option<Bytes>,
        extensions: &mut super::Extensions,
    ) -> Result<(Bytes, Option<Bytes>), Error> {
        let mut input = Input::new(&self.run, event, events, extensions);
        self.stack.transform_input(&mut input)?;
        Ok(input.finish())
    }

    /// `transform_step_input` of a memoized step's value (`envelope`: `{"data": …}`, else the
    /// bare output of a step checkpointed in this call).
    pub(crate) fn step_input(
        &self,
        step: &StepInfo,
        value: Bytes,
        envelope: bool,
    ) -> Result<Bytes, Error> {
        self.stack.transform_step_input(step, value, envelope)
    }

    /// `before_execution`.
    pub(crate) async fn before_execution(&self) -> Result<(), Error> {
        self.stack.before_execution(&self.run).await
    }

    /// `after_execution`.
    pub(crate) async fn after_execution(&self) -> Result<(), Error> {
        self.stack.after_execution(&self.run).await
    }

    /// `wrap_step` around a step's body, then `transform_step_output` of its output.
    pub(crate) async fn run_step(
        &self,
        step: &StepInfo,
        body: StepFuture<'_>,
    ) -> Result<Box<RawValue>, Error> {
        let next = Next {
            chain: self.stack.list(),
            step,
            body,
        };
        let output = next.run().await?;
        self.stack
            .transform_output("transform_step_output", output, |m, p| {
                m.transform_step_output(step, p)
            })
    }

    /// `transform_output` of the function's return value.
    pub(crate) fn output(&self, output: Box<RawValue>) -> Result<Box<RawValue>, Error> {
        self.stack
            .transform_output("transform_output", output, |m, p| {
                m.transform_output(&self.run, p)
            })
    }

    /// `on_error`, inner first.
    pub(crate) fn on_error(&self, failure: &Failure<'_>) {
        for m in self.stack.list().iter().rev() {
            m.on_error(&self.run, failure);
        }
    }

    /// `on_panic`, inner first.
    pub(crate) fn on_panic(&self, message: &str) {
        for m in self.stack.list().iter().rev() {
            m.on_panic(&self.run, message);
        }
    }
}
