//! The executor's HTTP API: the Event API, `/fn/register`, the `/v0` run-state API used by
//! `use_api`, run history in the dev server's `/v1` REST shape, and the run dashboard's pages
//! (`crate::dashboard`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::checkpoint::CheckpointError;
use crate::persist::RunRecord;
use crate::registry::stable_uuid;
use crate::shared::{self, Inner, State as AppState};
use crate::state::{HistoryEntry, Run, RunStatus, StepView, StoredEvent};
use inngest_protocol::wire::headers as h;

/// The environment id the dev server reports.
const ENVIRONMENT_ID: &str = "00000000-0000-4000-b000-000000000000";

/// Largest request body accepted (event batches, register payloads, checkpoints).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

type Shared = Arc<Inner>;

pub(crate) fn router(inner: Shared) -> Router {
    // The Inngest API (sync, run state, history): bearer-checked when a signing key is set.
    let api = Router::new()
        .route("/fn/register", post(register))
        .route("/v1/checkpoint/{id}/async", post(checkpoint))
        .route("/v0/runs/{id}/actions", get(v0_actions))
        .route("/v0/runs/{id}/batch", get(v0_batch))
        .route("/v1/events", get(v1_events))
        .route("/v1/events/{id}", get(v1_event))
        .route("/v1/events/{id}/runs", get(v1_event_runs))
        .route("/v1/events/{id}/skips", get(v1_event_skips))
        .route("/v1/runs", get(v1_runs))
        .route("/v1/runs/{id}", get(v1_run).delete(v1_cancel_run))
        .route("/v1/runs/{id}/steps", get(v1_run_steps))
        .route("/v1/runs/{id}/history", get(v1_run_history))
        .route("/v1/apps", get(v1_apps))
        .route("/v1/apps/{app}/functions", get(v1_app_functions))
        .route("/v1/signals", post(post_signal))
        .merge(crate::realtime_api::api_routes())
        .merge(crate::connect_api::api_routes())
        // The run dashboard (HTML): it shows event data, so it is keyed like the rest.
        .merge(crate::dashboard::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            require_bearer,
        ));
    // The event API (keyed by the path) and health.
    Router::new()
        .route("/e/{key}", post(post_events))
        .route("/invoke/{function}", post(invoke))
        .route("/health", get(health))
        .merge(crate::realtime_api::subscriber_routes())
        .merge(crate::connect_api::socket_routes())
        .merge(api)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(server_kind))
        .with_state(inner)
}

async fn server_kind(mut res: Response) -> Response {
    res.headers_mut()
        .insert(h::SERVER_KIND, HeaderValue::from_static("dev"));
    res
}

fn json_status(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn not_found(what: &str) -> Response {
    json_status(
        StatusCode::NOT_FOUND,
        json!({"error": format!("{what} not found"), "status": 404}),
    )
}

/// `200 {"data": …, "metadata": {…}}`, the dev server's envelope.
fn envelope(now: DateTime<Utc>, data: impl serde::Serialize) -> Response {
    json_status(
        StatusCode::OK,
        json!({"data": data, "metadata": metadata(now)}),
    )
}

/// A run for the REST API: in memory, or read back from the store (it left memory).
enum Found<'a> {
    Live(&'a Run),
    Stored(Box<RunRecord>),
}

impl Found<'_> {
    fn steps(&self) -> &[StepView] {
        match self {
            Found::Live(r) => &r.steps,
            Found::Stored(r) => &r.steps,
        }
    }

    fn history(&self) -> &[HistoryEntry] {
        match self {
            Found::Live(r) => &r.history,
            Found::Stored(r) => &r.history,
        }
    }
}

/// The run with this id, in memory or in the store.
fn find_run<'a>(st: &'a AppState, id: &str) -> Option<Found<'a>> {
    match st.runs.get(id) {
        Some(run) => Some(Found::Live(run)),
        None => st.archived_run(id).map(|r| Found::Stored(Box::new(r))),
    }
}

/// The envelope around `f(run)`, or a 404 when there is no such run.
fn with_run(inner: &Inner, id: &str, f: impl FnOnce(&Found, &AppState) -> Value) -> Response {
    let now = inner.now();
    let st = inner.lock();
    match find_run(&st, id) {
        Some(run) => envelope(now, f(&run, &st)),
        None => not_found("run"),
    }
}

fn metadata(now: DateTime<Utc>) -> Value {
    json!({
        "fetched_at": stamp(now),
        "cached_until": stamp(now + chrono::Duration::seconds(3)),
    })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Checks `Authorization: Bearer …` against the signing key (hashed or raw, any
/// `signkey-<env>-` prefix) when one is configured; `Some` is the 401 to answer.
fn unauthorized(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let key = inner.settings.signing_key.as_ref()?;
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let token = strip_key_prefix(token).to_ascii_lowercase();
    let hashed = strip_key_prefix(key.bearer()).to_ascii_lowercase();
    let raw = String::from_utf8_lossy(key.hmac_key()).to_ascii_lowercase();
    let ok = !token.is_empty()
        && (bool::from(token.as_bytes().ct_eq(hashed.as_bytes()))
            || bool::from(token.as_bytes().ct_eq(raw.as_bytes())));
    if ok {
        None
    } else {
        tracing::warn!("rejected an API call with a missing or wrong signing key");
        Some((StatusCode::UNAUTHORIZED, "Authentication failed").into_response())
    }
}

async fn require_bearer(
    State(inner): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match unauthorized(&inner, req.headers()) {
        Some(res) => res,
        None => next.run(req).await,
    }
}

fn strip_key_prefix(k: &str) -> &str {
    k.strip_prefix("signkey-")
        .and_then(|rest| rest.split_once('-').map(|(_, key)| key))
        .unwrap_or(k)
}

async fn post_events(
    State(inner): State<Shared>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(expected) = &inner.settings.event_key {
        if !bool::from(key.as_bytes().ct_eq(expected.as_bytes())) {
            return json_status(
                StatusCode::UNAUTHORIZED,
                json!({"status": 401, "message": "", "error": "Event key not found"}),
            );
        }
    }
    let bad = |msg: String| {
        json_status(
            StatusCode::BAD_REQUEST,
            json!({"ids": [], "status": 400, "error": msg}),
        )
    };
    let events = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(a)) => a,
        Ok(obj @ Value::Object(_)) => vec![obj],
        Ok(_) => return bad("the body must be an event object or an array of events".into()),
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    let seed = headers
        .get(h::EVENT_ID_SEED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match inner.ingest(events, seed.as_deref()) {
        Ok(ids) => json_status(StatusCode::OK, json!({"ids": ids, "status": 200})),
        Err(e) => bad(e.to_string()),
    }
}

async fn register(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(kind) = headers
        .get(h::EXPECTED_SERVER_KIND)
        .and_then(|v| v.to_str().ok())
    {
        if !kind.is_empty() && kind != "dev" {
            return json_status(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("Expected server kind dev, got {kind}"), "status": 400}),
            );
        }
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json_status(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("invalid register payload: {e}"), "status": 400}),
            )
        }
    };
    match inner.register(&payload) {
        Ok((def, modified)) => json_status(
            StatusCode::OK,
            json!({"ok": true, "modified": modified, "sync_id": shared::random_uuid(), "app_id": def.uuid}),
        ),
        Err(errors) => {
            let functions = errors.iter().any(|e| e.starts_with("function"));
            let prefix = if functions {
                "At least one function is invalid: "
            } else {
                "Invalid app: "
            };
            tracing::warn!(errors = errors.len(), "sync refused: invalid configuration");
            json_status(
                StatusCode::BAD_REQUEST,
                json!({
                    "error": format!("{prefix}{}", errors.join("; ")),
                    "code": "invalid_function",
                    "data": {"errors": errors},
                    "status": 400,
                }),
            )
        }
    }
}

/// `POST /v1/signals` `{"signal", "data"}` (what the SDKs' `sendSignal` calls): resumes the
/// run waiting on the signal; `{"data": {"run_id"}}`, or 404 when nobody waits.
async fn post_signal(State(inner): State<Shared>, body: Bytes) -> Response {
    // The server's answers (`pkg/api/apiv1/signals.go` `receiveSignal`): `publicerr` bodies.
    let error = |status: StatusCode, msg: &str| {
        json_status(
            status,
            json!({"error": msg, "data": null, "status": status.as_u16()}),
        )
    };
    #[derive(serde::Deserialize)]
    struct SignalRequest {
        #[serde(default)]
        signal: String,
        #[serde(default)]
        data: Option<Value>,
    }
    let Ok(request) = serde_json::from_slice::<SignalRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid signal data");
    };
    if request.signal.is_empty() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to receive signal",
        );
    }
    let data = request.data.unwrap_or(Value::Null);
    match inner.send_signal(&request.signal, data) {
        Some(run_id) => json_status(
            StatusCode::OK,
            json!({"data": {"run_id": run_id}, "metadata": {"fetched_at": stamp(inner.now())}}),
        ),
        None => error(StatusCode::NOT_FOUND, "No signal found"),
    }
}

async fn invoke(
    State(inner): State<Shared>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(expected) = &inner.settings.event_key {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if given != expected {
            return json_status(
                StatusCode::UNAUTHORIZED,
                json!({"status": 401, "message": "", "error": "Event key not found"}),
            );
        }
    }
    let payload: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return json_status(
                    StatusCode::BAD_REQUEST,
                    json!({"status": 400, "error": format!("the body is not JSON: {e}")}),
                )
            }
        }
    };
    let mut data = payload
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let now = inner.now();
    data.insert(
        "_inngest".into(),
        json!({"fn_id": function, "expire": (now + chrono::Duration::days(365)).timestamp_millis(), "gid": shared::random_uuid(), "source_fn_v": 1}),
    );
    let ev = json!({"name": shared::EVENT_INVOKED, "data": data, "user": payload.get("user").cloned().unwrap_or_else(|| json!({}))});
    match inner.ingest_invoke(ev) {
        Ok(id) => json_status(StatusCode::OK, json!({"id": id, "status": 200})),
        Err(e) => json_status(
            StatusCode::BAD_REQUEST,
            json!({"status": 400, "error": e.to_string()}),
        ),
    }
}

async fn checkpoint(State(inner): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json_status(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("the body is not JSON: {e}"), "status": 400}),
            )
        }
    };
    match inner.checkpoint(&id, &payload) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(CheckpointError::RunNotFound) => not_found("run"),
        Err(CheckpointError::Invalid(e)) => {
            json_status(StatusCode::BAD_REQUEST, json!({"error": e, "status": 400}))
        }
    }
}

async fn v0_actions(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let st = inner.lock();
    match st.runs.get(&id) {
        Some(run) => json_status(StatusCode::OK, json!(run.steps_for_request())),
        None => not_found("run"),
    }
}

async fn v0_batch(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let st = inner.lock();
    match st.runs.get(&id) {
        Some(run) => json_status(StatusCode::OK, json!(run.events)),
        None => not_found("run"),
    }
}

/// A run in the shape of `GET /v1/runs/{id}` of the dev server.
fn v1_run_json(run: &Found, st: &AppState) -> Value {
    let (id, started_at, event_id, status, ended_at, output, error) = match run {
        Found::Live(r) => (
            &r.id,
            r.started_at,
            &r.event_id,
            r.status,
            r.ended_at,
            &r.output,
            &r.error,
        ),
        Found::Stored(r) => (
            &r.id,
            r.started_at,
            &r.event_id,
            r.status,
            r.ended_at,
            &r.output,
            &r.error,
        ),
    };
    let uuid = match run {
        Found::Live(r) => r.function.uuid.clone(),
        // A function no longer registered keeps the UUID it had: it is derived from the ids.
        Found::Stored(r) => st.functions.get(&r.function).map_or_else(
            || stable_uuid(&["fn", &r.app, &r.function]),
            |f| f.uuid.clone(),
        ),
    };
    let output = match status {
        RunStatus::Completed => output.clone().unwrap_or(Value::Null),
        RunStatus::Failed => error.clone().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "run_id": id,
        "run_started_at": started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "function_id": uuid,
        "function_version": 0,
        "environment_id": ENVIRONMENT_ID,
        "event_id": event_id,
        "status": status.as_str(),
        "ended_at": ended_at.map(stamp),
        "output": output,
    })
}

async fn v1_events(State(inner): State<Shared>) -> Response {
    let now = inner.now();
    let st = inner.lock();
    let data: Vec<Value> = st.events.iter().rev().map(event_json).collect();
    envelope(now, data)
}

fn event_json(e: &StoredEvent) -> Value {
    json!({
        "internal_id": e.internal_id,
        "environment_id": ENVIRONMENT_ID,
        "received_at": stamp(e.received_at),
        "id": e.event.get("id").cloned().unwrap_or(Value::Null),
        "name": e.event.get("name").cloned().unwrap_or(Value::Null),
        "data": e.event.get("data").cloned().unwrap_or(Value::Null),
        "ts": e.event.get("ts").cloned().unwrap_or(Value::Null),
    })
}

async fn v1_event(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let now = inner.now();
    let st = inner.lock();
    match st.event(&id) {
        Some(ev) => envelope(now, event_json(&ev)),
        None => not_found("event"),
    }
}

async fn v1_event_runs(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let now = inner.now();
    let st = inner.lock();
    let mut runs: Vec<Found> = st.runs_of_event(&id).into_iter().map(Found::Live).collect();
    let archived = st.archived_runs_of_event(&id);
    if !archived.is_empty() {
        runs.extend(archived.into_iter().map(|r| Found::Stored(Box::new(r))));
        let started = |f: &Found| match f {
            Found::Live(r) => (r.started_at, r.id.clone()),
            Found::Stored(r) => (r.started_at, r.id.clone()),
        };
        runs.sort_by_key(started);
    }
    let data: Vec<Value> = runs.iter().map(|r| v1_run_json(r, &st)).collect();
    envelope(now, data)
}

/// Flow-control skips of an event (idempotency, rate limit, debounce, singleton).
async fn v1_event_skips(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let now = inner.now();
    let st = inner.lock();
    let internal = st.resolve_event_id(&id).unwrap_or(id);
    let data: Vec<&crate::SkipView> = st
        .flow
        .skipped()
        .iter()
        .filter(|s| s.event_id == internal)
        .collect();
    envelope(now, data)
}

async fn v1_runs(State(inner): State<Shared>) -> Response {
    let now = inner.now();
    let st = inner.lock();
    let data: Vec<Value> = st
        .run_order
        .iter()
        .rev()
        .filter_map(|id| st.runs.get(id))
        .map(|r| v1_run_json(&Found::Live(r), &st))
        .collect();
    envelope(now, data)
}

async fn v1_run(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    with_run(&inner, &id, v1_run_json)
}

async fn v1_cancel_run(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    // A run only in the store has ended: there is nothing to cancel, and its view is answered.
    if !inner.lock().runs.contains_key(&id) {
        return with_run(&inner, &id, v1_run_json);
    }
    inner.cancel(&id, "cancelled through the REST API");
    with_run(&inner, &id, v1_run_json)
}

async fn v1_run_steps(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    with_run(&inner, &id, |run, _| json!(run.steps()))
}

async fn v1_run_history(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    with_run(&inner, &id, |run, _| json!(run.history()))
}

async fn v1_apps(State(inner): State<Shared>) -> Response {
    let now = inner.now();
    let st = inner.lock();
    let data: Vec<Value> = st
        .apps
        .values()
        .map(|a| serde_json::to_value(a.def.view()).unwrap_or(Value::Null))
        .collect();
    envelope(now, data)
}

async fn v1_app_functions(State(inner): State<Shared>, Path(app): Path<String>) -> Response {
    let st = inner.lock();
    let Some(entry) = st.apps.get(&app) else {
        return not_found("app");
    };
    let data: Vec<Value> = entry
        .def
        .functions
        .iter()
        .map(|f| {
            json!({
                "internal_id": f.uuid,
                "env_id": ENVIRONMENT_ID,
                "app_id": f.app_uuid,
                "id": f.slug,
                "name": f.name,
                "config": f.config,
                "created_at": stamp(entry.def.synced_at),
            })
        })
        .collect();
    json_status(StatusCode::OK, Value::Array(data))
}

async fn health() -> Response {
    json_status(StatusCode::OK, json!({"status": 200, "message": "OK"}))
}
