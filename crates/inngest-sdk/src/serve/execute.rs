//! POST: execution calls. Parse the request once, run the function until it finishes, runs one
//! step, or discovers new steps, and answer `200`, `206` or an error.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use http::{HeaderValue, StatusCode};
use serde_json::json;
use serde_json::value::RawValue;
use tracing::Instrument;

use super::{
    echo_trace_headers, error_response, json_response, raw_response, set_no_retry, Query, Response,
    ServeHandler, Target,
};
use crate::error::{Error, ErrorKind};
use crate::function::{CallInput, Function, Handler};
use crate::middleware::{CallHooks, Extensions, Failure, RunInfo, Stack, StepInfo, StepKind};
use crate::step::state::{CallMode, CallState, Decision, Executed, Memo};
use crate::step::{panic_message, Step};
use crate::telemetry::{self, CallOutcome};
use inngest_protocol::signature::SigningKey;
use inngest_protocol::wire::{self, headers as h, ExecRequestRef, Op, OpCode};

/// Hashed id of the `RunComplete` op: sha1("complete").
const RUN_COMPLETE_ID: &str = "0737c22d3bfae812339732d14d8c7dbd6dc4e09c";
/// Checkpointing stops after this long in one call: the step that ends it is answered as
/// usual, so no request runs into the server's request timeout.
const CHECKPOINT_MAX_RUNTIME: Duration = Duration::from_secs(60);

/// The answer to a call that ends before its function runs (boxed: it is the rare path).
type Answer = Box<Response>;

/// The running function of one call.
type CallFuture = Pin<Box<dyn Future<Output = Result<Box<RawValue>, Error>> + Send>>;

/// Checkpointing in one call. Like JS 4.24: only a discovery call's first attempt checkpoints
/// (a step that succeeds on a retry is answered as a plain StepRun), and in checkpointing mode
/// every discovery call that sees the function return answers `RunComplete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checkpoints {
    /// Classic answers.
    Off,
    /// Steps are answered classically, a return is answered `206 [RunComplete]`.
    RunCompleteOnly,
    /// Executed `step.run`s are checkpointed and the call goes on; a return is `RunComplete`.
    Steps,
}

/// How a call ended.
enum Outcome {
    Returned(Result<Box<RawValue>, Error>),
    /// The function returned in checkpointing mode (`206 [RunComplete]`).
    Completed(Box<RawValue>),
    Executed(Box<Executed>),
    Report(Vec<Op>),
    Panicked(String),
    StepNotFound,
}

impl ServeHandler {
    pub(super) async fn execute(&self, parts: &http::request::Parts, body: Bytes) -> Response {
        let key = match self.authenticate(&parts.headers, &body) {
            Ok(key) => key,
            Err(e) => return super::unauthorized(&e),
        };
        let mut query = Query::parse(parts.uri.query());
        let step_id = requested_step(query.step_id.take(), &parts.headers);
        let (fn_id, target) = match self.route(&query, key) {
            Ok(routed) => routed,
            Err(answer) => return *answer,
        };
        // One UTF-8 check of the whole body: the parse and every memo value then trust it.
        let text = ByteString::try_from(body.clone()).ok();
        let mut req = match parse_request(&body, text.as_deref(), key) {
            Ok(req) => req,
            Err(answer) => return *answer,
        };
        let span = telemetry::call_span(
            fn_id,
            &req.ctx.run_id,
            req.ctx.attempt,
            &step_id,
            &parts.headers,
        );
        let state = match self.load_state(&body, text.as_ref(), &req, key).await {
            Ok(state) => state,
            Err(answer) => return *answer,
        };
        // The memo holds what the call needs from the steps and the stack: free the parsed lists
        // before running the function (peak memory per call).
        let state_bytes = state.memo.value_bytes();
        req.steps = None;
        req.ctx.stack.stack = Vec::new();
        let mode = call_mode(&state.memo, &step_id, !req.ctx.disable_immediate_execution);
        let checkpoints = self.checkpoints(&mode, &req.ctx);
        let targeted = matches!(mode, CallMode::Targeted(_));
        let max_attempts = req.ctx.max_attempts.unwrap_or(5).max(1);
        let function = &self.inner.functions[target.index];
        let hooks = self.call_hooks(function, &req.ctx, &mode, max_attempts);
        let call = Arc::new(
            CallState::new(state.memo, mode, req.ctx.attempt, max_attempts)
                .with_hooks(hooks)
                .with_run_id(&req.ctx.run_id),
        );
        let handler = if target.failure {
            function.on_failure.clone()
        } else {
            Some(function.handler.clone())
        };
        let Some(handler) = handler else {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "function has no failure handler",
                true,
                key,
            );
        };
        let input = CallInput {
            event: state.event,
            events: state.events,
            run_id: req.ctx.run_id.to_string(),
            attempt: req.ctx.attempt,
            max_attempts,
            step: Step {
                call: call.clone(),
                env: self.inner.step_env.clone(),
            },
            extensions: Extensions::empty(),
        };
        // The user's closure (and the decoding of its event type) runs before the first poll:
        // a panic there must become a 500 like any other, not a dropped connection.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            start(&*handler, &function.config.id, input, &call)
        }));
        let outcome = match started {
            Ok(mut fut) => {
                let run = self.run_call(&mut fut, &call, targeted, checkpoints, &req.ctx);
                telemetry::in_call(&span, fn_id, req.ctx.attempt, run).await
            }
            Err(panic) => Outcome::Panicked(panic_message(&*panic)),
        };
        let outcome = finish_hooks(outcome, &call).instrument(span.clone()).await;
        let _enter = span.enter();
        telemetry::call_finished(&span, fn_id, call_outcome(&outcome), state_bytes);
        let mut res = respond(outcome, &call, &step_id, key);
        echo_trace_headers(&parts.headers, &mut res);
        res
    }

    /// The middleware of a call (the client's, then the function's), if there is any.
    fn call_hooks(
        &self,
        function: &Function,
        ctx: &inngest_protocol::wire::CallCtxRef<'_>,
        mode: &CallMode,
        max_attempts: u32,
    ) -> Option<CallHooks> {
        let stack = Stack::chain(self.inner.client.middleware(), &function.middleware);
        (!stack.is_empty()).then(|| CallHooks {
            stack,
            run: RunInfo {
                function_id: function.config.id.clone(),
                run_id: ctx.run_id.to_string(),
                attempt: ctx.attempt,
                max_attempts,
                targeted_step: match mode {
                    CallMode::Targeted(hash) => Some(hash.clone()),
                    CallMode::Discovery { .. } => None,
                },
            },
        })
    }

    /// The function a request is for. `Err` is the whole answer: to a probe, or to a request
    /// that names no function of this app.
    fn route<'q>(
        &self,
        query: &'q Query,
        key: Option<&SigningKey>,
    ) -> Result<(&'q str, Target), Answer> {
        if let Some(probe) = query.probe.as_deref() {
            return Err(Box::new(if probe == "trust" {
                json_response(StatusCode::OK, json!({}), key)
            } else {
                error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown probe `{probe}`"),
                    true,
                    key,
                )
            }));
        }
        let Some(fn_id) = query.fn_id.as_deref() else {
            return Err(Box::new(error_response(
                StatusCode::BAD_REQUEST,
                "missing `fnId` query parameter",
                true,
                key,
            )));
        };
        let Some(target) = self.inner.by_slug.get(fn_id).copied() else {
            tracing::warn!(fn_id, "execution request for an unknown function");
            return Err(Box::new(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not find function with ID `{fn_id}` in this app"),
                false,
                key,
            )));
        };
        Ok((fn_id, target))
    }

    /// The memo and events of the call: from the body, or (`use_api`) from the Inngest API.
    /// `Err` is the answer to a call whose state cannot be had.
    async fn load_state(
        &self,
        body: &Bytes,
        text: Option<&ByteString>,
        req: &ExecRequestRef<'_>,
        key: Option<&SigningKey>,
    ) -> Result<State, Answer> {
        let stack = req.ctx.stack.stack.iter().map(|id| id.as_ref());
        if !(req.ctx.use_api || req.use_api.unwrap_or(false)) {
            return inline_state(body, text, req, stack)
                .map_err(|msg| Box::new(error_response(StatusCode::BAD_REQUEST, &msg, true, key)));
        }
        if !is_plain_id(&req.ctx.run_id) {
            return Err(Box::new(error_response(
                StatusCode::BAD_REQUEST,
                "`ctx.run_id` must be a run id (letters, digits, `-` or `_`) to load state",
                true,
                key,
            )));
        }
        self.fetch_state(&req.ctx.run_id, stack)
            .await
            .map_err(|msg| {
                Box::new(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &msg,
                    false,
                    key,
                ))
            })
    }

    /// Which answers of this call checkpoint (see [`Checkpoints`]).
    fn checkpoints(
        &self,
        mode: &CallMode,
        ctx: &inngest_protocol::wire::CallCtxRef<'_>,
    ) -> Checkpoints {
        match mode {
            CallMode::Discovery { .. } if !self.inner.client.config().checkpointing() => {
                Checkpoints::Off
            }
            CallMode::Discovery { immediate: true }
                if ctx.attempt == 0 && is_plain_id(&ctx.run_id) =>
            {
                Checkpoints::Steps
            }
            CallMode::Discovery { .. } => Checkpoints::RunCompleteOnly,
            CallMode::Targeted(_) => Checkpoints::Off,
        }
    }

    /// Drives the function to the outcome of this call. With [`Checkpoints::Steps`], each
    /// `step.run` it executes is recorded with Inngest and the function goes on in the same call
    /// (until the budget is spent or a checkpoint fails, which answers with the step instead).
    async fn run_call(
        &self,
        fut: &mut CallFuture,
        call: &CallState,
        targeted: bool,
        checkpoints: Checkpoints,
        ctx: &inngest_protocol::wire::CallCtxRef<'_>,
    ) -> Outcome {
        let started = std::time::Instant::now();
        let started_ms = chrono::Utc::now().timestamp_millis();
        loop {
            match drive(fut, call, targeted, self.inner.step_not_found_timeout).await {
                Outcome::Executed(e)
                    if checkpoints == Checkpoints::Steps
                        && e.op.op == OpCode::StepRun
                        && started.elapsed() < CHECKPOINT_MAX_RUNTIME =>
                {
                    if let Err(msg) = self.checkpoint(ctx, started_ms, &e.op).await {
                        tracing::warn!(error = %msg, "checkpoint failed: answering with the step instead");
                        return Outcome::Executed(e);
                    }
                    let data = e.op.data.as_deref().map_or("null", RawValue::get);
                    call.resume_executed(&e.op.id, Bytes::from(data.to_owned()));
                }
                Outcome::Returned(Ok(value)) if checkpoints != Checkpoints::Off => {
                    return Outcome::Completed(value)
                }
                other => return other,
            }
        }
    }

    /// Records an executed step with Inngest (`POST /v1/checkpoint/{run_id}/async`), in the
    /// shape JS 4.24 sends: the call's ids copied from `ctx`, the step as its `StepRun` op.
    async fn checkpoint(
        &self,
        ctx: &inngest_protocol::wire::CallCtxRef<'_>,
        started_ms: i64,
        op: &Op,
    ) -> Result<(), String> {
        let body = json!({
            "run_id": ctx.run_id,
            "fn_id": ctx.fn_id,
            "qi_id": ctx.qi_id,
            "request_id": ctx.request_id,
            "generation_id": ctx.generation_id,
            "request_started_at": started_ms,
            "steps": [op],
            "ts": chrono::Utc::now().timestamp_millis(),
        });
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let path = format!("/v1/checkpoint/{}/async", ctx.run_id);
        self.inner
            .client
            .api_request(http::Method::POST, &path, Some(Bytes::from(body)), &[])
            .await
            .map(|_| tracing::debug!(step = %op.id, "step checkpointed"))
            .map_err(|e| e.to_string())
    }

    /// `use_api`: the state was too large to send inline; fetch it from the API.
    async fn fetch_state<'s>(
        &self,
        run_id: &str,
        stack: impl IntoIterator<Item = &'s str> + Clone,
    ) -> Result<State, String> {
        let client = &self.inner.client;
        let get = |path: String| async move {
            client
                .api_request(http::Method::GET, &path, None, &[])
                .await
                .map(|(_, body)| body)
                .map_err(|e| format!("could not load run state from the Inngest API: {e}"))
        };
        let actions = get(format!("/v0/runs/{run_id}/actions")).await?;
        let batch = get(format!("/v0/runs/{run_id}/batch")).await?;
        let text = ByteString::try_from(actions.clone()).ok();
        let parsed = match text.as_deref() {
            Some(text) => serde_json::from_str(text),
            None => serde_json::from_slice(&actions),
        };
        let steps: BTreeMap<std::borrow::Cow<'_, str>, &RawValue> =
            parsed.map_err(|e| format!("invalid run actions from the Inngest API: {e}"))?;
        let memo = Memo::new(
            steps
                .iter()
                .map(|(k, v)| (k.as_ref(), memo_value(text.as_ref(), v))),
            stack,
        );
        let events: Vec<&RawValue> = serde_json::from_slice(&batch)
            .map_err(|e| format!("invalid run events from the Inngest API: {e}"))?;
        let first = events
            .first()
            .ok_or_else(|| "the Inngest API returned no events for this run".to_owned())?;
        Ok(State {
            memo,
            event: batch.slice_ref(first.get().as_bytes()),
            events: Some(batch.clone()),
        })
    }
}

/// The step a call targets: the `stepId` query parameter, else the `X-Inngest-Step-Id` header,
/// else discovery.
fn requested_step(from_query: Option<String>, headers: &http::HeaderMap) -> String {
    from_query
        .or_else(|| {
            headers
                .get(h::STEP_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| wire::DISCOVERY_STEP_ID.to_owned())
}

/// Parses the execution request (borrowing from `body`). `Err` is the answer to a body that is
/// not one, or to a protocol version this SDK does not speak.
fn parse_request<'b>(
    body: &'b Bytes,
    text: Option<&'b str>,
    key: Option<&SigningKey>,
) -> Result<ExecRequestRef<'b>, Answer> {
    // `text` is the body when it is UTF-8: no per-string checks then. A body that is not goes
    // through `from_slice`, which reports the error exactly as before.
    let parsed = match text {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(body),
    };
    let req: ExecRequestRef<'_> = parsed.map_err(|e| {
        Box::new(error_response(
            StatusCode::BAD_REQUEST,
            &format!("invalid execution request body: {e}"),
            true,
            key,
        ))
    })?;
    if req.version == Some(0) {
        return Err(Box::new(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "request version 0 is not supported (this SDK speaks version 2)",
            true,
            key,
        )));
    }
    Ok(req)
}

/// How the call runs: discovery (running a lone new step inline if `immediate`), or only the
/// targeted step.
fn call_mode(memo: &Memo, step_id: &str, immediate: bool) -> CallMode {
    if step_id == wire::DISCOVERY_STEP_ID {
        CallMode::Discovery { immediate }
    } else if memo.get(step_id).is_some() {
        // A targeted call for a step that already has a result (a duplicate delivery): never
        // run it again; replay as a discovery that only reports what is still to do.
        tracing::info!(step = %step_id, "targeted step is already memoized; replaying as discovery");
        CallMode::Discovery { immediate: false }
    } else {
        CallMode::Targeted(step_id.to_owned())
    }
}

/// The memo, event and events of a call; values are slices of the buffers they arrived in.
struct State {
    memo: Memo,
    event: Bytes,
    events: Option<Bytes>,
}

fn inline_state<'s>(
    body: &Bytes,
    text: Option<&ByteString>,
    req: &ExecRequestRef<'_>,
    stack: impl IntoIterator<Item = &'s str> + Clone,
) -> Result<State, String> {
    let event = req
        .event
        .ok_or_else(|| "execution request has no `event`".to_owned())?;
    let steps = req.steps.as_deref().unwrap_or_default();
    let memo = Memo::new(
        steps.iter().map(|(k, v)| (k.as_ref(), memo_value(text, v))),
        stack,
    );
    Ok(State {
        memo,
        event: body.slice_ref(event.get().as_bytes()),
        events: req.events.map(|e| body.slice_ref(e.get().as_bytes())),
    })
}

/// A memo value: a slice of `text`, the buffer `raw` was parsed from when that buffer is UTF-8
/// (no copy, no second check), else a copy of `raw` (which is UTF-8: `serde_json` checked it).
fn memo_value(text: Option<&ByteString>, raw: &RawValue) -> ByteString {
    match text {
        Some(text) => text.slice_ref(raw.get()),
        None => ByteString::from(raw.get()),
    }
}

/// Whether `id` can go into an API path as one segment as it is (run ids are ULIDs): the run id
/// comes from the request body, and must not steer the SDK's API calls to another path.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A waker that records whether it was woken, then forwards to the task's waker.
struct FlagWaker {
    woken: AtomicBool,
    inner: Waker,
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// Polls the function until it returns, runs a step, discovers steps, or (targeted) never reaches
/// its step. Decisions are taken only at quiescence: after a poll that woke nothing.
async fn drive(fut: &mut CallFuture, call: &CallState, targeted: bool, grace: Duration) -> Outcome {
    let mut idle_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(move |cx| {
        call.set_driver(cx.waker());
        let flag = Arc::new(FlagWaker {
            woken: AtomicBool::new(false),
            inner: cx.waker().clone(),
        });
        let waker = Waker::from(flag.clone());
        let mut sub = std::task::Context::from_waker(&waker);
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(&mut sub)));
        match polled {
            Err(panic) => return Poll::Ready(Outcome::Panicked(panic_message(&*panic))),
            Ok(Poll::Ready(result)) => return Poll::Ready(Outcome::Returned(result)),
            Ok(Poll::Pending) => {}
        }
        if flag.woken.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        match call.decide() {
            Decision::Failed(err) => Poll::Ready(Outcome::Returned(Err(err))),
            Decision::Executed(e) => Poll::Ready(Outcome::Executed(e)),
            Decision::Report(ops) => Poll::Ready(Outcome::Report(ops)),
            Decision::Continue => Poll::Pending,
            Decision::Idle if targeted => {
                let timer = idle_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(grace)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Outcome::StepNotFound),
                    Poll::Pending => Poll::Pending,
                }
            }
            Decision::Idle => Poll::Pending,
        }
    })
    .await
}

/// The function's future for this call. With middleware: `transform_input` first, then (when
/// nothing is memoized, so the code runs for the first time) `before_execution`, then the handler.
fn start(
    handler: &dyn Handler,
    function_id: &str,
    mut input: CallInput,
    call: &Arc<CallState>,
) -> CallFuture {
    let Some(hooks) = call.hooks() else {
        return handler.call(function_id, input);
    };
    let mut extensions = Extensions::default();
    match hooks.input(input.event.clone(), input.events.take(), &mut extensions) {
        Ok((event, events)) => (input.event, input.events) = (event, events),
        Err(e) => return Box::pin(async move { Err(e) }),
    }
    input.extensions = Arc::new(extensions);
    let fresh = !call.replay_flag().get();
    let fut = handler.call(function_id, input);
    let call = call.clone();
    Box::pin(async move {
        if let Some(hooks) = call.hooks().filter(|_| fresh) {
            hooks.before_execution().await?;
        }
        fut.await
    })
}

/// With middleware: `after_execution` (if the code ran for the first time), `transform_output`
/// of a return value, then `on_error` / `on_panic` for a failure.
async fn finish_hooks(mut outcome: Outcome, call: &CallState) -> Outcome {
    let Some(hooks) = call.hooks() else {
        return outcome;
    };
    if !call.replay_flag().get() {
        if let Err(e) = hooks.after_execution().await {
            outcome = Outcome::Returned(Err(e));
        }
    }
    outcome = match outcome {
        Outcome::Returned(Ok(value)) => Outcome::Returned(hooks.output(value)),
        Outcome::Completed(value) => match hooks.output(value) {
            Ok(value) => Outcome::Completed(value),
            Err(e) => Outcome::Returned(Err(e)),
        },
        other => other,
    };
    match &outcome {
        Outcome::Returned(Err(e)) => hooks.on_error(&Failure {
            step: None,
            name: e.name(),
            message: e.message(),
            will_retry: e.is_retriable() && !call.is_final_attempt(),
            from_step: e.kind() == &ErrorKind::StepFailed,
        }),
        Outcome::Executed(e) if e.op.op != OpCode::StepRun => {
            let Some(error) = e.op.error.as_ref() else {
                return outcome;
            };
            let step = step_info(&e.op, call.attempt);
            hooks.on_error(&Failure {
                step: Some(&step),
                name: &error.name,
                message: &error.message,
                will_retry: e.op.op == OpCode::StepError,
                from_step: false,
            });
        }
        Outcome::Panicked(msg) => hooks.on_panic(msg),
        _ => {}
    }
    outcome
}

/// What hooks are told about an executed step, from its op.
fn step_info(op: &Op, attempt: u32) -> StepInfo {
    let send = op.opts.as_ref().and_then(|o| o.get("type")) == Some(&json!("step.sendEvent"));
    StepInfo {
        id: op
            .userland
            .as_ref()
            .map(|u| u.id.clone())
            .or_else(|| op.name.clone())
            .unwrap_or_default(),
        hash: op.id.clone(),
        kind: if send {
            StepKind::SendEvent
        } else {
            StepKind::Run
        },
        attempt,
    }
}

fn respond(
    outcome: Outcome,
    call: &CallState,
    step_id: &str,
    key: Option<&SigningKey>,
) -> Response {
    match outcome {
        Outcome::Returned(Ok(value)) => {
            tracing::info!("function completed");
            let body = Bytes::from(value.get().to_owned());
            raw_response(StatusCode::OK, body, key)
        }
        Outcome::Returned(Err(err)) => function_error(&err, call, key),
        Outcome::Completed(value) => {
            tracing::info!("function completed (checkpointing)");
            let body = format!(
                r#"[{{"op":"RunComplete","id":"{RUN_COMPLETE_ID}","data":{}}}]"#,
                value.get()
            );
            raw_response(StatusCode::PARTIAL_CONTENT, Bytes::from(body), key)
        }
        Outcome::Executed(executed) => {
            let Executed { op, retry_after } = *executed;
            let code = op.op;
            tracing::info!(op = ?code, step = op.name.as_deref().unwrap_or(""), "step executed");
            let mut res = ops_response(&[op], key);
            match code {
                OpCode::StepError => {
                    set_no_retry(&mut res, false);
                    if let Some(at) = retry_after {
                        if let Ok(v) = HeaderValue::from_str(&at.header_value()) {
                            res.headers_mut().insert(h::RETRY_AFTER, v);
                        }
                    }
                }
                OpCode::StepFailed => set_no_retry(&mut res, true),
                _ => {}
            }
            res
        }
        Outcome::Report(ops) => {
            tracing::info!(count = ops.len(), "reporting discovered steps");
            ops_response(&ops, key)
        }
        Outcome::Panicked(msg) => {
            tracing::error!(panic = %msg, "function panicked");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("function panicked: {msg}"),
                false,
                key,
            )
        }
        Outcome::StepNotFound => {
            let found = call.found_ops();
            tracing::warn!(
                requested = step_id,
                found = found.len(),
                "targeted step not found"
            );
            let found_json: Vec<serde_json::Value> = found
                .iter()
                .map(|op| json!({ "id": op.id, "name": op.name, "displayName": op.display_name }))
                .collect();
            let mut res = json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({
                    "name": "Error",
                    "message": format!("could not find step `{step_id}` to run"),
                    "requestedStep": step_id,
                    "foundSteps": found_json,
                    "totalFoundSteps": found.len(),
                }),
                key,
            );
            set_no_retry(&mut res, false);
            res
        }
    }
}

fn ops_response(ops: &[Op], key: Option<&SigningKey>) -> Response {
    let body = serde_json::to_vec(ops).unwrap_or_else(|_| b"[]".to_vec());
    raw_response(StatusCode::PARTIAL_CONTENT, Bytes::from(body), key)
}

fn function_error(err: &Error, call: &CallState, key: Option<&SigningKey>) -> Response {
    let (status, no_retry) = match err.kind() {
        ErrorKind::NonRetriable | ErrorKind::StepFailed => (StatusCode::BAD_REQUEST, true),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, false),
    };
    tracing::warn!(
        error_name = err.name(),
        retriable = !no_retry,
        final_attempt = call.is_final_attempt(),
        "function returned an error"
    );
    let body = serde_json::to_value(err.to_wire()).unwrap_or(json!({}));
    let mut res = json_response(status, body, key);
    set_no_retry(&mut res, no_retry);
    if let ErrorKind::RetryAfter(at) = err.kind() {
        if let Ok(v) = HeaderValue::from_str(&at.header_value()) {
            res.headers_mut().insert(h::RETRY_AFTER, v);
        }
    }
    res
}

/// The telemetry label of how a call ended.
fn call_outcome(outcome: &Outcome) -> CallOutcome {
    match outcome {
        Outcome::Returned(Ok(_)) | Outcome::Completed(_) => CallOutcome::Completed,
        Outcome::Returned(Err(e)) => match e.kind() {
            ErrorKind::NonRetriable | ErrorKind::StepFailed => CallOutcome::FunctionFailed,
            _ => CallOutcome::FunctionError,
        },
        Outcome::Executed(e) => match e.op.op {
            OpCode::StepError => CallOutcome::StepError,
            OpCode::StepFailed => CallOutcome::StepFailed,
            _ => CallOutcome::StepRan,
        },
        Outcome::Report(_) => CallOutcome::StepsReported,
        Outcome::Panicked(_) => CallOutcome::Panicked,
        Outcome::StepNotFound => CallOutcome::StepNotFound,
    }
}
