//! Helpers shared by the `executor_*` integration tests: a middleware that records every request
//! the executor sends to the app, and small constructors.
#![allow(dead_code)]

pub mod checkout;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::Router;
use inngest_sdk::serve::ServeError;
use inngest_sdk::{Function, Inngest};
use serde_json::Value;

/// One request as the app received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }
}

/// Requests recorded by [`recording_router`].
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }

    /// Execution POSTs for one function (by composite id), in arrival order.
    pub fn posts_for(&self, fn_id: &str) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|r| r.method == "POST" && r.query("fnId") == Some(fn_id))
            .collect()
    }

    /// Execution POSTs for one run, in arrival order.
    pub fn posts_for_run(&self, run_id: &str) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|r| r.method == "POST" && r.body["ctx"]["run_id"] == run_id)
            .collect()
    }
}

/// A router builder for `TestHarnessBuilder::app_router`: the SDK's serve router wrapped in a
/// middleware that records each request.
pub fn recording_router(
    rec: Recorder,
) -> impl FnOnce(&Inngest, Vec<Function>) -> Result<Router, ServeError> + Send + 'static {
    move |client, functions| {
        let router = inngest_sdk::serve::axum::router(client, functions)?;
        Ok(router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let rec = rec.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX)
                        .await
                        .unwrap_or_default();
                    let query =
                        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                    rec.0.lock().unwrap().push(Recorded {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_owned(),
                        query,
                        headers: parts.headers.clone(),
                        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    });
                    next.run(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
            },
        )))
    }
}
