//! The serve endpoint, framework-neutral: one [`ServeHandler`] answers the server's GET
//! (introspection), PUT (sync) and POST (execution) calls. [`axum`] mounts it.
//!
//! Every response carries `Content-Type: application/json`, `X-Inngest-SDK` and
//! `X-Inngest-Req-Version: 2`; error responses carry `X-Inngest-No-Retry`; responses to signed
//! requests are signed with the key that verified them.

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
    let mut res = http::Response::new(Bytes::new());
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(h::SDK, HeaderValue::from_static(SDK_HEADER));
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
