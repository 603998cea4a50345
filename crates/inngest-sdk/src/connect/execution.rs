//! One execution request run through the serve engine: the request becomes the `POST` a serve
//! endpoint would receive (`fnId`/`stepId` query, the same JSON body, the trace headers), the
//! [`ServeHandler`] answers it exactly as it answers HTTP (ops, memo, checkpointing, errors), and
//! the answer becomes the `SDKResponse` reply: its status squeezed into
//! `DONE`/`NOT_COMPLETED`/`ERROR`, the body untouched, `X-Inngest-No-Retry`, `Retry-After` and
//! `X-Inngest-Req-Version` carried over.
//!
//! The socket is authenticated, so the request carries no signature from the gateway; in cloud
//! mode the worker signs the synthetic request with its own key so the handler's signature check
//! (and the key it then uses for API calls) stays the same code path as HTTP.

use bytes::Bytes;
use http::{HeaderValue, Method};

use crate::serve::ServeHandler;
use inngest_protocol::connect::{status, GatewayExecutorRequestData, SdkResponse, SERVER_KIND};
use inngest_protocol::signature::{self, SigningKey};
use inngest_protocol::wire::{self, headers as h};

/// The serve request for a connect execution request.
pub(super) fn to_http(
    req: &GatewayExecutorRequestData,
    sign: Option<&SigningKey>,
) -> Result<http::Request<Bytes>, String> {
    let step = req.step_id.as_deref().unwrap_or(wire::DISCOVERY_STEP_ID);
    let uri = format!(
        "/api/inngest?{}={}&{}={}",
        wire::QUERY_FN_ID,
        encode(&req.function_slug),
        wire::QUERY_STEP_ID,
        encode(step)
    );
    let body = Bytes::from(req.request_payload.clone());
    let mut builder = http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(h::EXPECTED_SERVER_KIND, SERVER_KIND);
    let mut put = |name: &str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            builder = std::mem::take(&mut builder).header(name, v);
        }
    };
    put("x-request-id", &req.request_id);
    put("x-inngest-job-id", &req.job_id);
    put(h::RUN_ID, &req.run_id);
    if let Ok(serde_json::Value::Object(trace)) =
        serde_json::from_slice::<serde_json::Value>(&req.user_trace_ctx)
    {
        for name in [h::TRACEPARENT, h::TRACESTATE] {
            if let Some(v) = trace.get(name).and_then(serde_json::Value::as_str) {
                put(name, v);
            }
        }
    }
    if let Some(key) = sign {
        put(h::SIGNATURE, &signature::sign_now(key, &body));
    }
    builder
        .body(body)
        .map_err(|e| format!("could not build the serve request: {e}"))
}

/// The reply for a serve response.
pub(super) fn to_reply(
    req: &GatewayExecutorRequestData,
    res: http::Response<Bytes>,
) -> SdkResponse {
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    SdkResponse {
        request_id: req.request_id.clone(),
        account_id: req.account_id.clone(),
        env_id: req.env_id.clone(),
        app_id: req.app_id.clone(),
        status: status::from_http(res.status().as_u16()) as i32,
        no_retry: header(h::NO_RETRY).is_some_and(|v| v.eq_ignore_ascii_case("true")),
        retry_after: header(h::RETRY_AFTER).map(str::to_owned),
        sdk_version: header(h::SDK)
            .unwrap_or(crate::client::SDK_HEADER)
            .to_owned(),
        request_version: header(h::REQ_VERSION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
        system_trace_ctx: req.system_trace_ctx.clone(),
        user_trace_ctx: req.user_trace_ctx.clone(),
        run_id: req.run_id.clone(),
        body: res.into_body().to_vec(),
    }
}

/// Runs one request to its reply.
pub(super) async fn run(
    handler: &ServeHandler,
    req: &GatewayExecutorRequestData,
    sign: Option<&SigningKey>,
) -> Result<SdkResponse, String> {
    let http_req = to_http(req, sign)?;
    let res = handler.handle(http_req).await;
    Ok(to_reply(req, res))
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> GatewayExecutorRequestData {
        GatewayExecutorRequestData {
            request_id: "R1".into(),
            app_id: "A".into(),
            function_slug: "shop-greet me".into(),
            step_id: Some("abc".into()),
            request_payload: b"{}".to_vec(),
            user_trace_ctx:
                br#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#
                    .to_vec(),
            run_id: "RUN".into(),
            job_id: "J".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_serve_request_has_the_query_headers_and_body() {
        let req = to_http(&request(), None).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "/api/inngest?fnId=shop-greet+me&stepId=abc"
        );
        let hv = |n: &str| req.headers().get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(hv("x-inngest-expected-server-kind"), "connect");
        assert_eq!(hv("x-request-id"), "R1");
        assert_eq!(hv("x-run-id"), "RUN");
        assert_eq!(
            hv("traceparent"),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert!(req.headers().get("x-inngest-signature").is_none());
        assert_eq!(req.body().as_ref(), b"{}");

        let discovery = GatewayExecutorRequestData {
            step_id: None,
            ..request()
        };
        assert!(to_http(&discovery, None)
            .unwrap()
            .uri()
            .to_string()
            .ends_with("stepId=step"));
        let key = SigningKey::parse("signkey-test-12345678").unwrap();
        let signed = to_http(&request(), Some(&key)).unwrap();
        let sig = signed.headers()[h::SIGNATURE].to_str().unwrap();
        assert!(signature::verify(
            Some(sig),
            b"{}",
            Some(&key),
            None,
            chrono::Utc::now().timestamp()
        )
        .is_ok());
    }

    #[test]
    fn the_reply_carries_status_body_and_retry_headers() {
        let res = http::Response::builder()
            .status(206)
            .header(h::NO_RETRY, "true")
            .header(h::RETRY_AFTER, "30")
            .header(h::REQ_VERSION, "2")
            .header(h::SDK, "rust:v9")
            .body(Bytes::from_static(b"[]"))
            .unwrap();
        let reply = to_reply(&request(), res);
        assert_eq!(
            reply.status(),
            inngest_protocol::connect::SdkResponseStatus::NotCompleted
        );
        assert!(reply.no_retry);
        assert_eq!(reply.retry_after.as_deref(), Some("30"));
        assert_eq!(reply.request_version, 2);
        assert_eq!(reply.sdk_version, "rust:v9");
        assert_eq!(reply.body, b"[]");
        assert_eq!(
            (
                reply.request_id.as_str(),
                reply.run_id.as_str(),
                reply.app_id.as_str()
            ),
            ("R1", "RUN", "A")
        );
        let failed = to_reply(
            &request(),
            http::Response::builder()
                .status(500)
                .body(Bytes::new())
                .unwrap(),
        );
        assert_eq!(
            failed.status(),
            inngest_protocol::connect::SdkResponseStatus::Error
        );
        assert!(!failed.no_retry);
    }
}
