//! Requests to apps over HTTP: the body (`ExecRequest`: event, events, memoized steps, stack,
//! `ctx`, canonical JSON, `use_api` when it is too large), the real server's headers and
//! signature, the step URL (`fnId`, `stepId`), and the exchange itself with its timeout, size
//! limit and gzip handling. The answer is handed to [`crate::response::classify`].

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, USER_AGENT};
use serde_json::{json, Map};

use crate::response::{classify, Failure, Outcome, RawResponse};
use crate::shared::{describe_error, new_ulid, Inner, Job};
use crate::state::{HistoryKind, Run, RunStatus, StepStatus};
use inngest_protocol::signature;
use inngest_protocol::wire::{self, headers as h, CallCtx, ExecRequest, Stack};

const ACCOUNT_ID: &str = "00000000-0000-4000-a000-000000000000";
/// The environment id connect requests carry.
const ENV_ID: &str = "00000000-0000-4000-b000-000000000000";
/// Largest response body read from an app.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A request ready to send.
pub(crate) struct Prepared {
    url: url::Url,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Set when the function's app is served over connect (a `ws`/`wss` step URL).
    connect: Option<ConnectTarget>,
}

/// Who a connect request is for.
struct ConnectTarget {
    app: String,
    app_uuid: String,
    fn_uuid: String,
    run_id: String,
    job_id: String,
    request_id: String,
}

impl Inner {
    /// Sends one job's request and reads the answer (with the time it arrived). `None` when
    /// the run is gone or has ended.
    pub(crate) async fn exchange(&self, mut job: Job) -> Option<(Job, Outcome, DateTime<Utc>)> {
        let now = self.now();
        let prepared = {
            let mut st = self.lock();
            // A re-synced app may have moved (e.g. restarted on another port): call the current
            // registration of the function when there is one.
            let current = st
                .runs
                .get(&job.run_id)
                .and_then(|r| st.functions.get(&r.function.slug))
                .cloned();
            let run = st.runs.get_mut(&job.run_id)?;
            if run.status != RunStatus::Running {
                return None;
            }
            if let Some(f) = current {
                if !Arc::ptr_eq(&f, &run.function) {
                    run.function = f;
                }
            }
            job.sent_at = Some(now);
            self.prepare(run, &job, now)
        };
        self.notify();
        let result = self.send(prepared).await;
        let now = self.now();
        let outcome = match result {
            Ok(raw) => classify(raw, now),
            Err(message) => Outcome::Failure(Failure {
                error: json!({"name": "Error", "message": message}),
                retriable: true,
                retry_after: None,
                kind: HistoryKind::RequestFailed,
                reason: message,
            }),
        };
        Some((job, outcome, now))
    }

    /// Builds the request of `job` (counting it and logging it in the run's history).
    fn prepare(&self, run: &mut Run, job: &Job, now: DateTime<Utc>) -> Prepared {
        run.requests += 1;
        if !job.is_discovery() {
            if let Some(s) = run.find_step(&job.step_id) {
                if s.status == StepStatus::Planned {
                    s.status = StepStatus::Running;
                    s.started_at = now;
                }
            }
        }
        let request_id = new_ulid(now);
        let body = self.request_body(run, job, &request_id, now);
        let url = step_url(&run.function.url, &run.function.slug, &job.step_id);
        let headers = self.request_headers(run, job, &request_id, &body);
        let connect = matches!(url.scheme(), "ws" | "wss").then(|| ConnectTarget {
            app: run.function.app.clone(),
            app_uuid: run.function.app_uuid.clone(),
            fn_uuid: run.function.uuid.clone(),
            run_id: run.id.clone(),
            job_id: job.job_id.clone(),
            request_id: request_id.clone(),
        });
        run.log(
            now,
            HistoryKind::Request,
            Some(&job.step_id),
            Some(job.attempt),
            format!(
                "POST stepId={} attempt={} version={}",
                job.step_id, job.attempt, run.version
            ),
        );
        Prepared {
            url,
            headers,
            body,
            connect,
        }
    }

    /// The canonical JSON body; state over `max_inline_state` is left out (`use_api`).
    fn request_body(
        &self,
        run: &mut Run,
        job: &Job,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Vec<u8> {
        let ctx = CallCtx {
            attempt: job.attempt,
            disable_immediate_execution: run.force_step_plan,
            env: String::new(),
            fn_id: run.function.uuid.clone(),
            generation_id: job.generation,
            job_id: job.job_id.clone(),
            max_attempts: Some(run.max_attempts),
            qi_id: base64::engine::general_purpose::STANDARD
                .encode(format!("{}::default", job.job_id)),
            request_id: request_id.to_owned(),
            run_id: run.id.clone(),
            stack: Stack {
                current: run.stack.len() as u32,
                stack: run.stack.clone(),
            },
            step_id: wire::DISCOVERY_STEP_ID.to_owned(),
            use_api: false,
        };
        let mut req = ExecRequest {
            ctx,
            defers: Map::new(),
            event: run.event.clone(),
            events: run.events.clone(),
            steps: run.steps_for_request(),
            use_api: false,
            version: run.version,
        };
        let mut body = canonical(&req);
        if body.len() > self.settings.max_inline_state {
            req.ctx.use_api = true;
            req.use_api = true;
            req.steps = BTreeMap::new();
            req.events = Vec::new();
            body = canonical(&req);
            run.log(
                now,
                HistoryKind::Request,
                Some(&job.step_id),
                Some(job.attempt),
                "state too large to send inline: use_api set, the app fetches it from /v0/runs",
            );
        }
        body
    }

    /// The headers the real server sends, signed when a key is set.
    fn request_headers(&self, run: &Run, job: &Job, request_id: &str, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        };
        put(USER_AGENT.as_str(), "Inngest");
        put(CONNECTION.as_str(), "close");
        put("account-id", ACCOUNT_ID);
        put(CONTENT_TYPE.as_str(), "application/json");
        put(
            h::TRACEPARENT,
            &format!(
                "00-{:032x}-{:016x}-01",
                run_trace_id(&run.id),
                rand::random::<u64>().max(1)
            ),
        );
        put(
            h::TRACESTATE,
            &format!(
                "inngest@fn={},inngest@app={}",
                run.function.uuid, run.function.app_uuid
            ),
        );
        put("x-inngest-generation-id", &job.generation.to_string());
        put("x-inngest-job-id", &job.job_id);
        put(h::REQ_VERSION, &run.version.to_string());
        put(h::STEP_ID, &job.step_id);
        put("x-request-id", request_id);
        put(h::RUN_ID, &run.id);
        if let Some(key) = &self.settings.signing_key {
            put(h::SIGNATURE, &signature::sign_now(key, body));
        }
        headers
    }

    async fn send(&self, mut p: Prepared) -> Result<RawResponse, String> {
        if let Some(target) = p.connect.take() {
            return self.send_connect(p, target).await;
        }
        self.call(http::Method::POST, p.url, p.headers, p.body)
            .await
            .map_err(|e| format!("request to the app failed: {e}"))
    }

    /// Runs the request on a connect worker; its reply becomes the same [`RawResponse`] an HTTP
    /// answer would (status from the reply status, the no-retry, retry-after, version and SDK
    /// headers), so everything after it is shared with HTTP apps.
    async fn send_connect(&self, p: Prepared, t: ConnectTarget) -> Result<RawResponse, String> {
        use inngest_protocol::connect::{status, GatewayExecutorRequestData, SdkResponseStatus};
        let query = |key: &str| {
            p.url
                .query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        let header = |name: &str| {
            p.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut trace = serde_json::Map::new();
        for name in [h::TRACEPARENT, h::TRACESTATE] {
            if let Some(v) = header(name) {
                trace.insert(name.to_owned(), serde_json::Value::String(v));
            }
        }
        let trace = serde_json::to_vec(&trace).unwrap_or_default();
        let request = GatewayExecutorRequestData {
            request_id: t.request_id,
            account_id: ACCOUNT_ID.to_owned(),
            env_id: ENV_ID.to_owned(),
            app_id: t.app_uuid,
            app_name: t.app.clone(),
            function_id: t.fn_uuid,
            function_slug: query(wire::QUERY_FN_ID).unwrap_or_default(),
            step_id: query(wire::QUERY_STEP_ID),
            request_payload: p.body,
            system_trace_ctx: trace.clone(),
            user_trace_ctx: trace,
            run_id: t.run_id,
            lease_id: String::new(),
            job_id: t.job_id,
        };
        let reply = self
            .connect
            .forward(&t.app, request, &self.settings.connect)
            .await
            .map_err(|e| e.to_string())?;
        let reply_status =
            SdkResponseStatus::try_from(reply.status).unwrap_or(SdkResponseStatus::Error);
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        put(h::SDK, &reply.sdk_version);
        put(h::NO_RETRY, if reply.no_retry { "true" } else { "false" });
        put(h::REQ_VERSION, &reply.request_version.to_string());
        if let Some(after) = &reply.retry_after {
            put(h::RETRY_AFTER, after);
        }
        Ok(RawResponse {
            status: status::to_http(reply_status),
            headers,
            body: Bytes::from(reply.body),
        })
    }

    /// One HTTP exchange with an app. Plain `http` goes through hyper so the request carries
    /// exactly `headers` (plus `Host`, `Content-Length` and `Accept-Encoding: gzip`, like the
    /// real server's Go client); `https` goes through reqwest.
    pub(crate) async fn call(
        &self,
        method: http::Method,
        url: url::Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<RawResponse, String> {
        if url.scheme() != "http" {
            return self.call_https(method, url, headers, body).await;
        }
        self.call_plain(method, url, headers, body).await
    }

    async fn call_https(
        &self,
        method: http::Method,
        url: url::Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<RawResponse, String> {
        let res = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .timeout(self.settings.request_timeout)
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        if res
            .content_length()
            .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
        {
            return Err(too_big());
        }
        let body = res.bytes().await.map_err(|e| describe_error(&e))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn call_plain(
        &self,
        method: http::Method,
        url: url::Url,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<RawResponse, String> {
        use http_body_util::BodyExt as _;
        let timeout = self.settings.request_timeout;
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| format!("invalid URL `{url}`: {e}"))?;
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        let mut req = http::Request::new(http_body_util::Full::new(Bytes::from(body)));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let exchange = async {
            let res = self
                .plain
                .request(req)
                .await
                .map_err(|e| describe_error(&e))?;
            let (parts, body) = res.into_parts();
            let collected = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_big()
                    } else {
                        format!("could not read the response: {e}")
                    }
                })?;
            let mut body = collected.to_bytes();
            let gzipped = parts
                .headers
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
            if gzipped {
                body = gunzip(&body)?;
            }
            Ok(RawResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            format!(
                "no response within {}",
                inngest_protocol::timestr::format_go(timeout)
            )
        })?
    }
}

fn too_big() -> String {
    format!("response body over the {MAX_RESPONSE_BYTES}-byte limit")
}

/// The body bytes, keys sorted (RFC 8785), as the real executor sends them.
fn canonical<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v)
        .or_else(|_| serde_json::to_vec(v))
        .unwrap_or_default()
}

/// The registered step URL with `fnId` and `stepId` set.
fn step_url(base: &url::Url, slug: &str, step_id: &str) -> url::Url {
    let mut url = base.clone();
    let mut pairs: Vec<(String, String)> = base
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (key, value) in [(wire::QUERY_FN_ID, slug), (wire::QUERY_STEP_ID, step_id)] {
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = value.to_owned(),
            None => pairs.push((key.to_owned(), value.to_owned())),
        }
    }
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
}

/// Decompresses a gzip body.
fn gunzip(body: &[u8]) -> Result<Bytes, String> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid gzip body: {e}"))?;
    if out.len() > MAX_RESPONSE_BYTES {
        return Err(too_big());
    }
    Ok(Bytes::from(out))
}

/// The W3C trace id of a run: its ULID's 128 bits (a run id that is not a ULID is hashed), so
/// every request of a run carries the same trace id, across restarts, without storing it. Each
/// request gets its own parent span id.
pub fn run_trace_id(run_id: &str) -> u128 {
    use sha1::Digest;
    match ulid::Ulid::from_string(run_id).map(u128::from) {
        Ok(id) if id != 0 => id,
        _ => {
            let digest = sha1::Sha1::digest(run_id.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            u128::from_be_bytes(bytes).max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_urls_keep_other_params() {
        let base = url::Url::parse("http://h/api/inngest?fnId=app-f&stepId=step&x=1").unwrap();
        assert_eq!(
            step_url(&base, "app-f", "abc").as_str(),
            "http://h/api/inngest?fnId=app-f&stepId=abc&x=1"
        );
        let base = url::Url::parse("http://h/api/inngest").unwrap();
        assert_eq!(
            step_url(&base, "app-f", "step").as_str(),
            "http://h/api/inngest?fnId=app-f&stepId=step"
        );
    }

    #[test]
    fn run_trace_id_is_the_ulid_or_a_hash() {
        let id = "01M8GA0PM60JRWWJY8ZEE4VE6V";
        let ulid = u128::from(ulid::Ulid::from_string(id).unwrap());
        assert_eq!(super::run_trace_id(id), ulid);
        assert_eq!(
            super::run_trace_id("not a ulid"),
            super::run_trace_id("not a ulid")
        );
        assert_ne!(
            super::run_trace_id("not a ulid"),
            super::run_trace_id("other")
        );
        assert_ne!(super::run_trace_id("00000000000000000000000000"), 0);
    }
}
