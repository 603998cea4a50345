//! PUT: syncing the app's functions with Inngest, out-of-band (we POST `/fn/register`) or in-band
//! (the config goes back in the signed PUT response).

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::{error_response, json_response, Response, ServeHandler};
use crate::client::ApiError;
use inngest_protocol::register::{
    Capabilities, FunctionConfig, InBandInspection, InBandSyncResponse, RegisterReply,
    RegisterRequest, SyncRequest,
};
use inngest_protocol::signature::SigningKey;
use inngest_protocol::wire::headers as h;

/// The `sdk` field of the register payload: `<language>:v<version>`, from which the server reads
/// the SDK language.
pub(crate) const REGISTER_SDK: &str = concat!("rust:v", env!("CARGO_PKG_VERSION"));

impl ServeHandler {
    pub(super) async fn sync(&self, parts: &http::request::Parts, body: Bytes) -> Response {
        let config = self.inner.client.config();
        let in_band = parts
            .headers
            .get(h::SYNC_KIND)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("in_band"))
            && config.allow_in_band_sync();
        if in_band {
            return self.sync_in_band(parts, &body);
        }
        self.sync_out_of_band(parts, &body).await
    }

    fn sync_in_band(&self, parts: &http::request::Parts, body: &[u8]) -> Response {
        let key = match self.authenticate(&parts.headers, body) {
            Ok(key) => key,
            Err(e) => return super::unauthorized(&e),
        };
        let req: SyncRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("in-band sync body must be exactly {{\"url\": \"…\"}}: {e}"),
                    true,
                    key,
                )
            }
        };
        let url = match url::Url::parse(&req.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => self.apply_overrides(&u),
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "in-band sync `url` must be an absolute http(s) URL",
                    true,
                    key,
                )
            }
        };
        let body = self.in_band_body(url, key.is_some());
        tracing::info!(functions = self.function_count(), "in-band sync");
        let body = serde_json::to_value(&body).unwrap_or_default();
        let mut res = json_response(StatusCode::OK, body, key);
        res.headers_mut()
            .insert(h::SYNC_KIND, HeaderValue::from_static("in_band"));
        res
    }

    async fn sync_out_of_band(&self, parts: &http::request::Parts, body: &[u8]) -> Response {
        let config = self.inner.client.config();
        // Out-of-band sync needs no signature (the SDK only ever calls its own API origin), but a
        // signed PUT must verify, and then its response is signed.
        let key: Option<&SigningKey> = if parts.headers.contains_key(h::SIGNATURE) {
            match self.authenticate(&parts.headers, body) {
                Ok(k) => k,
                Err(e) => return super::unauthorized(&e),
            }
        } else {
            None
        };
        let query = super::Query::parse(parts.uri.query());
        let url = self.request_url(parts);
        let payload = self.register_payload(&url);
        let path = match &query.deploy_id {
            Some(id) => format!(
                "/fn/register?deployId={}",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            ),
            None => "/fn/register".to_owned(),
        };
        let server_kind = parts
            .headers
            .get(h::SERVER_KIND)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut headers = vec![
            (h::SYNC_KIND, "out_of_band".to_owned()),
            (h::FRAMEWORK, config.framework().to_owned()),
        ];
        if let Some(kind) = &server_kind {
            headers.push((h::EXPECTED_SERVER_KIND, kind.clone()));
        }
        let body = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        let result = self
            .inner
            .client
            .api_request(reqwest::Method::POST, &path, Some(body), &headers)
            .await;
        let mut res = match result {
            Ok((_, reply)) => {
                let reply: RegisterReply = serde_json::from_slice(&reply).unwrap_or_default();
                tracing::info!(
                    modified = reply.modified,
                    "synced with Inngest (out-of-band)"
                );
                json_response(
                    StatusCode::OK,
                    json!({ "message": "Successfully registered", "modified": reply.modified }),
                    key,
                )
            }
            Err(err) => {
                let (status, message) = match &err {
                    ApiError::Status { status, message } => (*status, message.clone()),
                    other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
                };
                tracing::error!(%status, error = %message, "sync with Inngest failed");
                let status = if status.is_client_error() || status.is_server_error() {
                    status
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                json_response(
                    status,
                    json!({ "message": message, "modified": false }),
                    key,
                )
            }
        };
        res.headers_mut()
            .insert(h::SYNC_KIND, HeaderValue::from_static("out_of_band"));
        if let Some(kind) = server_kind.and_then(|k| HeaderValue::from_str(&k).ok()) {
            res.headers_mut().insert(h::EXPECTED_SERVER_KIND, kind);
        }
        res
    }

    /// The URL Inngest should call: the request's own URL (honouring `X-Forwarded-Proto/Host`)
    /// with the serve origin/path overrides applied, without `deployId`.
    pub(crate) fn request_url(&self, parts: &http::request::Parts) -> String {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let proto = header(h::FORWARDED_PROTO)
            .or_else(|| parts.uri.scheme_str().map(str::to_owned))
            .unwrap_or_else(|| "http".to_owned());
        let host = header(h::FORWARDED_HOST)
            .or_else(|| header(http::header::HOST.as_str()))
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        let base = format!("{proto}://{host}{}", parts.uri.path());
        match url::Url::parse(&base) {
            Ok(u) => self.apply_overrides(&u),
            Err(_) => base,
        }
    }

    fn apply_overrides(&self, url: &url::Url) -> String {
        let config = self.inner.client.config();
        let mut url = url.clone();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != inngest_protocol::wire::QUERY_DEPLOY_ID)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if query.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(query);
        }
        let origin = config
            .serve_origin()
            .map(|o| o.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| url.origin().ascii_serialization());
        let path = config
            .serve_path()
            .map(str::to_owned)
            .unwrap_or_else(|| url.path().to_owned());
        let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        format!("{origin}{path}{query}")
    }

    /// Functions the app registers, `-failure` companions included.
    pub(super) fn function_count(&self) -> usize {
        self.inner
            .functions
            .iter()
            .map(|f| 1 + usize::from(f.on_failure.is_some()))
            .sum()
    }

    /// The function objects the app registers, `-failure` companions included.
    fn functions(&self, url: &str) -> Vec<FunctionConfig> {
        let app_id = self.inner.client.config().app_id();
        let mut out = Vec::new();
        for f in &self.inner.functions {
            out.push(f.config.to_register(app_id, url));
            if f.on_failure.is_some() {
                out.push(f.config.failure_register(app_id, url));
            }
        }
        out
    }

    /// The function objects a connect worker sends in `WORKER_CONNECT`: the same as for serve,
    /// with each step's runtime `{"type": "ws", "url": "wss://connect?fnId=…&stepId=step"}`.
    #[cfg(feature = "connect")]
    pub(crate) fn connect_functions(&self) -> Vec<FunctionConfig> {
        use inngest_protocol::connect::{STEP_RUNTIME_TYPE, STEP_URL_BASE};
        let mut functions = self.functions(STEP_URL_BASE);
        for f in &mut functions {
            if let Some(step) = f.step_mut() {
                step.runtime.kind = STEP_RUNTIME_TYPE.to_owned();
            }
        }
        functions
    }

    /// The `/fn/register` body.
    pub(crate) fn register_payload(&self, url: &str) -> RegisterRequest {
        let config = self.inner.client.config();
        let mut payload = RegisterRequest::new(config.app_id(), url, REGISTER_SDK);
        payload.app_version = config.app_version().map(str::to_owned);
        payload.capabilities = Some(capabilities());
        payload.framework = Some(config.framework().to_owned());
        payload.functions = self.functions(url);
        payload
    }

    /// The body of an in-band sync answer for the app at `url`.
    fn in_band_body(&self, url: String, authenticated: bool) -> InBandSyncResponse {
        let config = self.inner.client.config();
        let mut inspection = InBandInspection::default();
        inspection.authentication_succeeded = authenticated;
        inspection.function_count = self.function_count();
        inspection.mode = config.mode().as_str().to_owned();
        let mut body = InBandSyncResponse::default();
        body.app_version = config.app_version().map(str::to_owned);
        body.app_id = config.app_id().to_owned();
        body.capabilities = capabilities();
        body.env = config.env().map(str::to_owned);
        body.framework = config.framework().to_owned();
        body.functions = self.functions(&url);
        body.inspection = inspection;
        body.sdk = crate::client::SDK_HEADER.to_owned();
        body.sdk_author = "inngest-sdk-rust".to_owned();
        body.sdk_language = "rust".to_owned();
        body.sdk_version = env!("CARGO_PKG_VERSION").to_owned();
        body.url = url;
        body
    }
}

/// The capabilities this SDK advertises (introspection, register payload, in-band sync).
pub(super) fn capabilities() -> Capabilities {
    let mut c = Capabilities::default();
    c.in_band_sync = Some("v1".to_owned());
    c.trust_probe = Some("v1".to_owned());
    c
}
