//! Fake Resend API: `POST /emails` validates, records and returns `{id}`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    bearer_ok, core_handle_methods, error_body, json_response, lock, Core, ErrorStyle, Running,
};
use crate::config::{ResendSettings, Secret};

/// A message the fake accepted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FakeEmail {
    /// Message id the fake returned (a UUID).
    pub id: String,
    /// Sender address.
    pub from: String,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// HTML body, if sent.
    pub html: Option<String>,
    /// Plain-text body, if sent.
    pub text: Option<String>,
    /// `Idempotency-Key` header, if sent. A repeated key returns the first message's id and
    /// records nothing new.
    pub idempotency_key: Option<String>,
}

#[derive(Debug)]
struct Inner {
    core: Core,
    api_key: String,
    emails: Mutex<Vec<FakeEmail>>,
}

/// Handle to a running fake Resend. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeResend {
    inner: Arc<Inner>,
    running: Running,
}

impl FakeResend {
    /// Start with [`super::SANDBOX_RESEND_KEY`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(super::SANDBOX_RESEND_KEY).await
    }

    /// Start expecting `Authorization: Bearer <api_key>`.
    pub async fn start_with(api_key: &str) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            core: Core::default(),
            api_key: api_key.to_string(),
            emails: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        Ok(FakeResend {
            running: Running::spawn(router).await?,
            inner,
        })
    }

    /// `http://127.0.0.1:<port>` (what `RESEND_BASE_URL` should be).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// Settings pointing a [`crate::services::email::ResendProvider`] at this fake.
    pub fn settings(&self) -> ResendSettings {
        ResendSettings {
            base_url: self.base_url(),
            api_key: Secret::new(self.inner.api_key.clone()),
        }
    }

    /// Accepted messages, in order.
    pub fn emails(&self) -> Vec<FakeEmail> {
        lock(&self.inner.emails).clone()
    }
}

core_handle_methods!(FakeResend);

fn resend_error(status: u16, name: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"statusCode": status, "name": name, "message": message}),
    )
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
            ("GET", "/__fake/emails") => json_response(200, json!(*lock(&inner.emails))),
            ("POST", "/__fake/reset") => {
                lock(&inner.emails).clear();
                inner.core.clear_requests();
                inner.core.clear_faults();
                json_response(200, json!({"reset": true}))
            }
            _ => resend_error(404, "not_found", "unknown control route"),
        };
    }
    let idx = inner.core.record(&method, &uri, &headers, &body);
    let resp = serve(&inner, &method, &path, &headers, &body);
    inner.core.finish(idx, resp)
}

fn serve(
    inner: &Inner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if let Some(r) = inner.core.take_fault(method, path, ErrorStyle::Resend) {
        return r;
    }
    if headers.get(axum::http::header::AUTHORIZATION).is_none() {
        return resend_error(
            401,
            "missing_api_key",
            "Missing API key in the authorization header.",
        );
    }
    if !bearer_ok(headers, &inner.api_key) {
        return resend_error(403, "invalid_api_key", "API key is invalid.");
    }
    if !(method == Method::POST && path == "/emails") {
        return resend_error(404, "not_found", "The requested endpoint does not exist.");
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return json_response(
            422,
            error_body(ErrorStyle::Resend, 422, "Invalid JSON body."),
        );
    };
    let invalid = |m: &str| resend_error(422, "validation_error", m);
    let from = match v.get("from").and_then(Value::as_str) {
        Some(f) if !f.trim().is_empty() => f.to_string(),
        _ => return invalid("Missing `from` field."),
    };
    let to: Vec<String> = match v.get("to") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if to.is_empty() || to.iter().any(|t| !t.contains('@')) {
        return invalid(
            "Invalid `to` field. The email address needs to follow the `email@example.com` format.",
        );
    }
    let subject = match v.get("subject").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return invalid("Missing `subject` field."),
    };
    let html = v.get("html").and_then(Value::as_str).map(str::to_string);
    let text = v.get("text").and_then(Value::as_str).map(str::to_string);
    if html.as_deref().unwrap_or("").is_empty() && text.as_deref().unwrap_or("").is_empty() {
        return invalid("Missing `html` or `text` field.");
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let mut emails = lock(&inner.emails);
    if let Some(k) = &key {
        if let Some(prev) = emails
            .iter()
            .find(|e| e.idempotency_key.as_deref() == Some(k.as_str()))
        {
            return json_response(200, json!({"id": prev.id}));
        }
    }
    let id = Uuid::new_v4().to_string();
    emails.push(FakeEmail {
        id: id.clone(),
        from,
        to,
        subject,
        html,
        text,
        idempotency_key: key,
    });
    json_response(200, json!({"id": id}))
}
