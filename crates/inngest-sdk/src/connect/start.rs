//! The start call: `POST <api>/v0/connect/start` with a `StartRequest` (the gateway groups to
//! avoid), authenticated with the hashed signing key in cloud mode, answered by a
//! `StartResponse` naming the gateway, the connection id and the session tokens.

use prost::Message as _;

use inngest_protocol::connect::{StartRequest, StartResponse, START_PATH};
use inngest_protocol::wire::headers as h;

/// Why a start call failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    /// 401: the key was refused (the next attempt tries the other key).
    #[error("the start call was refused (401): {0}")]
    Auth(String),
    /// 429: the account's connection limit.
    #[error("the start call hit the connection limit (429)")]
    Limit,
    /// Any other answer or a transport error.
    #[error("the start call failed: {0}")]
    Failed(String),
}

/// Asks `api` for a gateway.
pub(super) async fn start(
    http: &reqwest::Client,
    api: &url::Url,
    bearer: Option<&str>,
    env: Option<&str>,
    exclude: &[String],
) -> Result<StartResponse, StartError> {
    let url = api
        .join(START_PATH)
        .map_err(|e| StartError::Failed(format!("invalid API origin {api}: {e}")))?;
    let body = StartRequest {
        exclude_gateways: exclude.to_vec(),
    }
    .encode_to_vec();
    let mut req = http
        .post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/protobuf")
        .body(body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(env) = env {
        req = req.header(h::ENV, env);
    }
    let res = req
        .send()
        .await
        .map_err(|e| StartError::Failed(format!("POST {url}: {e}")))?;
    let status = res.status();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| StartError::Failed(format!("POST {url}: reading the answer: {e}")))?;
    if status == http::StatusCode::UNAUTHORIZED {
        return Err(StartError::Auth(snippet(&bytes)));
    }
    if status == http::StatusCode::TOO_MANY_REQUESTS {
        return Err(StartError::Limit);
    }
    if !status.is_success() {
        return Err(StartError::Failed(format!(
            "POST {url}: HTTP {}: {}",
            status.as_u16(),
            snippet(&bytes)
        )));
    }
    StartResponse::decode(bytes.as_ref()).map_err(|e| {
        StartError::Failed(format!(
            "POST {url}: the answer is not a StartResponse: {e}"
        ))
    })
}

/// The start of an error body, for the log line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}
