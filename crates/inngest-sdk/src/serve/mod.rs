//! The serve endpoint, framework-neutral: one [`ServeHandler`] answers the server's GET
//! (introspection), PUT (sync) and POST (execution) calls. [`axum`] mounts it.
//!
//! Every response carries `Content-Type: application/json`, `X-Inngest-SDK` and
//! `X-Inngest-Req-Version: 2`; error responses carry `X-Inngest-No-Retry`; responses to signed
//! requests are signed with the key that verified them.
//!
//! With [streaming](crate::client::InngestBuilder::streaming) on, the [`axum`] router answers a
//! slow execution call as a `201` keep-alive stream: [`ServeHandler::streams`] says which
//! requests may stream, [`ServeHandler::stream_head`] is the `201`, [`KEEPALIVE`] the bytes
//! written while the call runs and [`stream_envelope`] the final chunk. [`ServeHandler::handle`]
//! itself always answers in full.

#[cfg(feature = "axum")]
pub mod axum;
mod execute;
mod introspect;
mod sync;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::client::{Inngest, SDK_HEADER};
use crate::config::Mode;
use crate::function::{Function, InvalidFunction};
use crate::step::StepEnv;
use inngest_protocol::signature::{self, KeyUsed, SignatureError, SigningKey};
use inngest_protocol::wire::headers as h;

/// An incoming request as the handler sees it: method, URI, headers and the whole body.
pub type Request = http::Request<Bytes>;
/// The handler's response.
pub type Response = http::Response<Bytes>;

/// The keep-alive bytes of a streamed answer: one ASCII space (what the JS SDK writes). The
/// server parses the streamed body as one JSON value, so leading spaces are skipped.
pub const KEEPALIVE: &[u8] = b" ";

/// The app could not be served: a function is invalid or two share an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Two functions have the same id.
    #[error("duplicate function id `{0}` in app")]
    DuplicateFunction(String),
    /// A function's configuration is invalid.
    #[error(transparent)]
    InvalidFunction(#[from] InvalidFunction),
}

/// The framework-neutral serve handler. Cheap to clone.
#[derive(Clone)]
pub struct ServeHandler {
    inner: Arc<Inner>,
}

struct Inner {
    client: Inngest,
    functions: Vec<Function>,
    by_slug: HashMap<String, Target>,
    step_env: Arc<StepEnv>,
    step_not_found_timeout: Duration,
}

/// Which handler a `fnId` names.
#[derive(Debug, Clone, Copy)]
struct Target {
    index: usize,
    failure: bool,
}

impl std::fmt::Debug for ServeHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeHandler")
            .field("app_id", &self.inner.client.config().app_id())
            .field("functions", &self.inner.functions.len())
            .finish()
    }
}

impl ServeHandler {
    /// Validates the functions and builds the handler.
    pub fn new(
        client: &Inngest,
        functions: impl IntoIterator<Item: Into<Function>>,
    ) -> Result<Self, ServeError> {
        let app_id = client.config().app_id().to_owned();
        let functions: Vec<Function> = functions.into_iter().map(Into::into).collect();
        let mut by_slug = HashMap::new();
        for (index, f) in functions.iter().enumerate() {
            f.config.validate()?;
            let slug = format!("{app_id}-{}", f.config.id);
            let target = Target {
                index,
                failure: false,
            };
            if by_slug.insert(slug.clone(), target).is_some() {
                return Err(ServeError::DuplicateFunction(f.config.id.clone()));
            }
            if f.on_failure.is_some() {
                let target = Target {
                    index,
                    failure: true,
                };
                if by_slug.insert(format!("{slug}-failure"), target).is_some() {
                    return Err(ServeError::DuplicateFunction(format!(
                        "{}-failure",
                        f.config.id
                    )));
                }
            }
        }
        Ok(ServeHandler {
            inner: Arc::new(Inner {
                step_env: Arc::new(StepEnv {
                    app_id,
                    client: Some(client.clone()),
                }),
                client: client.clone(),
                functions,
                by_slug,
                step_not_found_timeout: Duration::from_secs(5),
            }),
        })
    }

    /// How long a targeted call waits for its step to appear before answering a retriable
    /// "step not found" error (default 5 s).
    pub fn step_not_found_timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.step_not_found_timeout = timeout;
        }
        self
    }

    /// The client this app serves with.
    pub fn client(&self) -> &Inngest {
        &self.inner.client
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let max = self.inner.client.config().max_body_bytes();
        if body.len() > max {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body of {} bytes is over the {max}-byte limit",
                    body.len()
                ),
                true,
                None,
            );
        }
        if let Some(encoding) = parts
            .headers
            .get(http::header::CONTENT_ENCODING)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("identity"))
        {
            // Inngest never sends compressed request bodies; refuse rather than mis-parse them.
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "Content-Encoding `{encoding}` is not supported: send the body uncompressed"
                ),
                true,
                None,
            );
        }
        match parts.method {
            Method::GET => self.introspect(&parts.headers),
            Method::PUT => self.sync(&parts, body).await,
            Method::POST => self.execute(&parts, body).await,
            _ => {
                let mut res = json_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({ "message": "Method not allowed" }),
                    None,
                );
                res.headers_mut().insert(
                    http::header::ALLOW,
                    HeaderValue::from_static("GET, PUT, POST"),
                );
                set_no_retry(&mut res, true);
                res
            }
        }
    }

    /// Whether the answer to `req` may be streamed: streaming is on in the client's
    /// configuration and `req` is an execution call (POST) that is not a probe. Introspection
    /// (GET), sync (PUT) and probes are never streamed, as in the JS SDK.
    pub fn streams<B>(&self, req: &http::Request<B>) -> bool {
        self.inner.client.config().streaming()
            && req.method() == Method::POST
            && Query::parse(req.uri().query()).probe.is_none()
    }

    /// The head of a streamed answer to `req`: `201 Created` with `Content-Type:
    /// application/json`, `X-Inngest-SDK` and the request's `traceparent`/`tracestate`, and no
    /// body. It carries no signature and no `X-Inngest-Req-Version`: those are in the final
    /// [`stream_envelope`], with the rest of the answer's headers.
    pub fn stream_head<B>(&self, req: &http::Request<B>) -> Response {
        let mut res = sdk_response(StatusCode::CREATED);
        echo_trace_headers(req.headers(), &mut res);
        res
    }

    /// Verifies a request signature in cloud mode. `Ok(None)`: dev mode (nothing checked).
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<&SigningKey>, SignatureError> {
        let config = self.inner.client.config();
        if config.mode() == Mode::Dev {
            return Ok(None);
        }
        let header = headers.get(h::SIGNATURE).and_then(|v| v.to_str().ok());
        let used = signature::verify(
            header,
            body,
            config.signing_key(),
            config.signing_key_fallback(),
            chrono::Utc::now().timestamp(),
        )?;
        Ok(match used {
            KeyUsed::Primary => config.signing_key(),
            KeyUsed::Fallback => config.signing_key_fallback(),
        })
    }
}

/// The final chunk of a streamed answer: the whole of `res` as one JSON object, in the JS SDK's
/// shape `{"status":<int>,"headers":{…},"body":"<the body as a JSON string>","version":<n|null>}`.
/// `headers` holds every header of `res` (lower-case names in the response's order; repeated
/// names joined with `, `), so the signature, `X-Inngest-Req-Version`, `X-Inngest-No-Retry` and
/// `Retry-After` travel inside; `version` is `X-Inngest-Req-Version` as a number, else `null`.
/// The server reads `status`, `headers` and `body` (unquoting the string once).
///
/// ```
/// use bytes::Bytes;
/// let res = http::Response::builder()
///     .status(206)
///     .header("content-type", "application/json")
///     .header("x-inngest-req-version", "2")
///     .body(Bytes::from_static(br#"[{"op":"StepRun","id":"a","data":1}]"#))
///     .unwrap();
/// assert_eq!(
///     inngest_sdk::serve::stream_envelope(&res),
///     Bytes::from_static(
///         br#"{"status":206,"headers":{"content-type":"application/json","x-inngest-req-version":"2"},"body":"[{\"op\":\"StepRun\",\"id\":\"a\",\"data\":1}]","version":2}"#
///     )
/// );
/// ```
pub fn stream_envelope(res: &Response) -> Bytes {
    let envelope = Envelope {
        status: res.status().as_u16(),
        headers: FlatHeaders(res.headers()),
        body: &String::from_utf8_lossy(res.body()),
        version: res
            .headers()
            .get(h::REQ_VERSION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok()),
    };
    // Serializing strings and numbers cannot fail.
    Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
}

#[derive(serde::Serialize)]
struct Envelope<'a> {
    status: u16,
    headers: FlatHeaders<'a>,
    body: &'a str,
    version: Option<i64>,
}

/// A header map as a flat JSON object of strings.
struct FlatHeaders<'a>(&'a HeaderMap);

impl serde::Serialize for FlatHeaders<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.keys().map(|name| {
            let values: Vec<_> = self
                .0
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect();
            (name.as_str(), values.join(", "))
        }))
    }
}

/// A JSON response with the SDK headers, signed with `sign` when given.
pub(crate) fn json_response(
    status: StatusCode,
    body: serde_json::Value,
    sign: Option<&SigningKey>,
) -> Response {
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"null".to_vec());
    raw_response(status, Bytes::from(bytes), sign)
}

/// A response with the SDK headers around an already serialized body.
pub(crate) fn raw_response(status: StatusCode, body: Bytes, sign: Option<&SigningKey>) -> Response {
    let mut res = sdk_response(status);
    let headers = res.headers_mut();
    headers.insert(
        h::REQ_VERSION,
        HeaderValue::from_static(inngest_protocol::wire::REQ_VERSION),
    );
    if let Some(key) = sign {
        let sig = signature::sign_now(key, &body);
        if let Ok(v) = HeaderValue::from_str(&sig) {
            headers.insert(h::SIGNATURE, v);
        }
    }
    *res.body_mut() = body;
    res
}

/// An empty response with `Content-Type: application/json` and `X-Inngest-SDK`.
fn sdk_response(status: StatusCode) -> Response {
    let mut res = http::Response::new(Bytes::new());
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(h::SDK, HeaderValue::from_static(SDK_HEADER));
    res
}

/// Copies the request's `traceparent` / `tracestate` onto the response.
pub(crate) fn echo_trace_headers(req: &HeaderMap, res: &mut Response) {
    for name in [h::TRACEPARENT, h::TRACESTATE] {
        if let Some(v) = req.get(name) {
            res.headers_mut().insert(name, v.clone());
        }
    }
}

/// An error response `{"name":"Error","message":…}` with `X-Inngest-No-Retry`.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    no_retry: bool,
    sign: Option<&SigningKey>,
) -> Response {
    let mut res = json_response(status, json!({ "name": "Error", "message": message }), sign);
    set_no_retry(&mut res, no_retry);
    res
}

pub(crate) fn set_no_retry(res: &mut Response, no_retry: bool) {
    res.headers_mut().insert(
        h::NO_RETRY,
        HeaderValue::from_static(if no_retry { "true" } else { "false" }),
    );
}

/// The 401 answered to a request whose signature does not verify.
pub(crate) fn unauthorized(err: &SignatureError) -> Response {
    tracing::warn!(reason = %err, "rejected a request with a bad or missing signature");
    let mut res = json_response(
        StatusCode::UNAUTHORIZED,
        json!({ "name": "Error", "message": format!("Unauthorized: {err}") }),
        None,
    );
    set_no_retry(&mut res, false);
    res
}

/// Query parameters of a serve request.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub fn_id: Option<String>,
    pub step_id: Option<String>,
    pub probe: Option<String>,
    pub deploy_id: Option<String>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let mut q = Query::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match k.as_ref() {
                inngest_protocol::wire::QUERY_FN_ID => &mut q.fn_id,
                inngest_protocol::wire::QUERY_STEP_ID => &mut q.step_id,
                inngest_protocol::wire::QUERY_PROBE => &mut q.probe,
                inngest_protocol::wire::QUERY_DEPLOY_ID => &mut q.deploy_id,
                _ => continue,
            };
            *slot = Some(v.into_owned());
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "signkey-prod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn stream_envelope_is_the_js_shape_byte_for_byte() {
        let key = SigningKey::parse(KEY).unwrap();
        let mut res = raw_response(
            StatusCode::PARTIAL_CONTENT,
            Bytes::from_static(br#"[{"op":"StepRun","id":"a","data":{"s":"\u00e9\n"}}]"#),
            Some(&key),
        );
        set_no_retry(&mut res, false);
        res.headers_mut()
            .append("x-extra", HeaderValue::from_static("one"));
        res.headers_mut()
            .append("x-extra", HeaderValue::from_static("two"));
        let sig = res.headers()[h::SIGNATURE].to_str().unwrap().to_owned();
        let expected = format!(
            concat!(
                r#"{{"status":206,"headers":{{"content-type":"application/json","#,
                r#""x-inngest-sdk":"{sdk}","x-inngest-req-version":"2","#,
                r#""x-inngest-signature":"{sig}","x-inngest-no-retry":"false","#,
                r#""x-extra":"one, two"}},"#,
                r#""body":"[{{\"op\":\"StepRun\",\"id\":\"a\",\"data\":{{\"s\":\"\\u00e9\\n\"}}}}]","#,
                r#""version":2}}"#
            ),
            sdk = SDK_HEADER,
            sig = sig,
        );
        assert_eq!(
            String::from_utf8(stream_envelope(&res).to_vec()).unwrap(),
            expected
        );
        // The signature in the envelope is over the inner body, which the server unquotes.
        let envelope: serde_json::Value = serde_json::from_slice(&stream_envelope(&res)).unwrap();
        let body = envelope["body"].as_str().unwrap();
        assert_eq!(body.as_bytes(), res.body().as_ref());
        signature::verify(
            envelope["headers"]["x-inngest-signature"].as_str(),
            body.as_bytes(),
            Some(&key),
            None,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    }

    #[test]
    fn stream_envelope_without_a_version_or_headers() {
        let mut res = http::Response::new(Bytes::from_static(b"null"));
        *res.status_mut() = StatusCode::OK;
        assert_eq!(
            stream_envelope(&res),
            Bytes::from_static(br#"{"status":200,"headers":{},"body":"null","version":null}"#)
        );
        let mut res = error_response(StatusCode::BAD_REQUEST, "no \"way\"", true, None);
        res.headers_mut()
            .insert(h::REQ_VERSION, HeaderValue::from_static("x"));
        assert_eq!(
            stream_envelope(&res),
            Bytes::from(format!(
                concat!(
                    r#"{{"status":400,"headers":{{"content-type":"application/json","#,
                    r#""x-inngest-sdk":"{}","x-inngest-req-version":"x","x-inngest-no-retry":"true"}},"#,
                    r#""body":"{{\"message\":\"no \\\"way\\\"\",\"name\":\"Error\"}}","version":null}}"#
                ),
                SDK_HEADER
            ))
        );
    }

    fn handler(streaming: bool) -> ServeHandler {
        let client = Inngest::builder("app")
            .dev(true)
            .streaming(streaming)
            .build()
            .unwrap();
        ServeHandler::new(&client, Vec::<Function>::new()).unwrap()
    }

    fn request(method: Method, uri: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header(
                h::TRACEPARENT,
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(Bytes::new())
            .unwrap()
    }

    #[test]
    fn only_execution_calls_stream() {
        let on = handler(true);
        let exec = "/api/inngest?fnId=app-f&stepId=step";
        assert!(on.streams(&request(Method::POST, exec)));
        assert!(!on.streams(&request(Method::GET, "/api/inngest")));
        assert!(!on.streams(&request(Method::PUT, "/api/inngest")));
        assert!(!on.streams(&request(Method::POST, "/api/inngest?probe=trust")));
        assert!(!on.streams(&request(Method::POST, "/api/inngest?fnId=app-f&probe=")));
        assert!(!handler(false).streams(&request(Method::POST, exec)));
    }

    #[test]
    fn stream_head_is_a_201_with_the_sdk_headers_only() {
        let head = handler(true).stream_head(&request(Method::POST, "/api/inngest"));
        assert_eq!(head.status(), StatusCode::CREATED);
        let headers: Vec<(&str, &str)> = head
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                ("content-type", "application/json"),
                ("x-inngest-sdk", SDK_HEADER),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                ),
            ]
        );
        assert!(head.body().is_empty());
    }
}
