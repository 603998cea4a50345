//! Fake Stripe API: `GET /v1/checkout/sessions/{id}` from fixtures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::{
    bearer_ok, core_handle_methods, error_body, fixtures, json_response, lock, Core, ErrorStyle,
    Running,
};
use crate::config::{Secret, StripeSettings};

#[derive(Debug)]
struct Inner {
    core: Core,
    secret_key: String,
    sessions: Mutex<BTreeMap<String, Value>>,
}

/// Handle to a running fake Stripe. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeStripe {
    inner: Arc<Inner>,
    running: Running,
}

fn defaults() -> BTreeMap<String, Value> {
    fixtures::default_sessions()
        .into_iter()
        .filter_map(|s| Some((s.get("id")?.as_str()?.to_string(), s)))
        .collect()
}

impl FakeStripe {
    /// Start with [`super::SANDBOX_STRIPE_KEY`] and the default sessions.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(super::SANDBOX_STRIPE_KEY).await
    }

    /// Start expecting `Authorization: Bearer <secret_key>`.
    pub async fn start_with(secret_key: &str) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            core: Core::default(),
            secret_key: secret_key.to_string(),
            sessions: Mutex::new(defaults()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        Ok(FakeStripe {
            running: Running::spawn(router).await?,
            inner,
        })
    }

    /// `http://127.0.0.1:<port>` (what `STRIPE_API_BASE` should be).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// Settings pointing a [`crate::services::stripe::StripeClient`] at this fake.
    pub fn settings(&self) -> StripeSettings {
        StripeSettings {
            api_base: self.base_url(),
            secret_key: Secret::new(self.inner.secret_key.clone()),
        }
    }

    /// Add or replace a Checkout Session fixture (keyed by its `id`).
    pub fn put_session(&self, session: Value) {
        if let Some(id) = session
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            lock(&self.inner.sessions).insert(id, session);
        }
    }

    /// All session fixtures.
    pub fn sessions(&self) -> Vec<Value> {
        lock(&self.inner.sessions).values().cloned().collect()
    }
}

core_handle_methods!(FakeStripe);

fn stripe_error(status: u16, message: &str, code: Option<&str>) -> Response {
    let mut body = error_body(ErrorStyle::Stripe, status, message);
    if let Some(c) = code {
        body["error"]["code"] = c.into();
    }
    json_response(status, body)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/__fake/") {
        if let Some(r) = inner.core.control(&method, &path, &body) {
            return r;
        }
        return match (method.as_str(), path.as_str()) {
            ("GET", "/__fake/sessions") => json_response(
                200,
                json!(lock(&inner.sessions).values().collect::<Vec<_>>()),
            ),
            ("PUT", "/__fake/sessions") => match serde_json::from_slice::<Value>(&body) {
                Ok(s) if s.get("id").and_then(Value::as_str).is_some() => {
                    let id = s["id"].as_str().unwrap_or_default().to_string();
                    lock(&inner.sessions).insert(id.clone(), s);
                    json_response(200, json!({"id": id}))
                }
                _ => stripe_error(400, "expected a session object with an id", None),
            },
            ("POST", "/__fake/reset") => {
                *lock(&inner.sessions) = defaults();
                inner.core.clear_requests();
                inner.core.clear_faults();
                json_response(200, json!({"reset": true}))
            }
            _ => stripe_error(404, "unknown control route", None),
        };
    }
    let idx = inner.core.record(&method, &uri, &headers, &body);
    let resp = serve(&inner, &method, &path, &headers);
    inner.core.finish(idx, resp)
}

fn serve(inner: &Inner, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    if let Some(r) = inner.core.take_fault(method, path, ErrorStyle::Stripe) {
        return r;
    }
    if !bearer_ok(headers, &inner.secret_key) {
        return stripe_error(401, "Invalid API Key provided.", None);
    }
    match (method.as_str(), path.strip_prefix("/v1/checkout/sessions/")) {
        ("GET", Some(id)) if !id.is_empty() && !id.contains('/') => {
            match lock(&inner.sessions).get(id) {
                Some(s) => json_response(200, s.clone()),
                None => stripe_error(
                    404,
                    &format!("No such checkout.session: '{id}'"),
                    Some("resource_missing"),
                ),
            }
        }
        _ => stripe_error(
            404,
            &format!("Unrecognized request URL ({method} {path})."),
            None,
        ),
    }
}
