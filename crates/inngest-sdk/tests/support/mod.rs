//! Shared by the SDK's router-level tests: hand-built execution requests and their replies.

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A discovery request (`stepId=step`) for `<app>-<fn_id>` with this triggering event and these
/// memoized steps (hashed id → memo); the stack lists the steps in their order.
pub fn exec_request(app: &str, fn_id: &str, event: Value, steps: Value) -> http::Request<Body> {
    let stack: Vec<String> = steps
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let body = json!({
        "ctx": {
            "attempt": 0,
            "disable_immediate_execution": false,
            "env": "",
            "fn_id": "5b7e2c3a-0d7e-5c55-9d6c-0b0f4f0f2f10",
            "max_attempts": 4,
            "run_id": "01HZX9WB6E8KQ3N2A7C5D4F1GH",
            "stack": { "current": stack.len(), "stack": stack },
            "step_id": "step",
            "use_api": false
        },
        "event": event.clone(),
        "events": [event],
        "steps": steps,
        "use_api": false,
        "version": 2
    });
    http::Request::builder()
        .method("POST")
        .uri(format!("/api/inngest?fnId={app}-{fn_id}&stepId=step"))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).expect("body")))
        .expect("request")
}

/// What a test looks at in an answer.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `X-Inngest-No-Retry`, if present.
    pub no_retry: Option<String>,
    /// The JSON body.
    pub body: Value,
}

/// Sends `req` to `router` and reads the answer.
pub async fn call(router: axum::Router, req: http::Request<Body>) -> Reply {
    let res = router.oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let no_retry = res
        .headers()
        .get("x-inngest-no-retry")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).expect("JSON reply");
    Reply {
        status,
        no_retry,
        body,
    }
}
