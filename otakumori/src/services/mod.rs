//! Outbound service clients: [`printify`], [`stripe`], [`email`] (Resend / SMTP / local outbox).
//!
//! Every HTTP client takes its base URL from config (so tests and the sandbox point it at a
//! loopback fake), authenticates with `Authorization: Bearer <key>`, and reports failures as
//! [`ApiError`], which separates:
//!
//! * **retriable**: transport errors/timeouts, 5xx, 408, and 429 ([`ApiError::RateLimited`]
//!   carries the provider's `Retry-After`). Inngest functions should let these throw (or map a
//!   rate limit to the SDK's retry-after error) so Inngest retries the step.
//! * **permanent**: other 4xx, with the provider's own error message. Functions should map these
//!   to the SDK's non-retriable error.
//!
//! Request/response bodies are never logged (they hold customer and payment data); logs carry the
//! service, method, path and status only.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};

pub mod email;
pub mod printify;
pub mod stripe;

/// `User-Agent` sent to every provider.
pub const USER_AGENT: &str = concat!("otakumori-rust/", env!("CARGO_PKG_VERSION"));

/// Default per-request timeout (Printify's original client used 15 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest error message kept from a provider response (characters).
const MAX_MESSAGE: usize = 500;

/// Error from an outbound API call.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// HTTP 429 (after any in-process retries were used up).
    #[error("{service}: rate limited{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// `printify`, `stripe`, `resend`, `smtp`.
        service: &'static str,
        /// Parsed `Retry-After`, if the provider sent one.
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx / 408: the provider failed; retry later.
    #[error("{service}: server error {status}: {message}")]
    Server {
        /// Service name.
        service: &'static str,
        /// HTTP status.
        status: u16,
        /// Provider message (or a body excerpt).
        message: String,
    },
    /// Connection error, timeout, TLS failure.
    #[error("{service}: transport error: {message}")]
    Transport {
        /// Service name.
        service: &'static str,
        /// Description (no secrets).
        message: String,
    },
    /// HTTP 4xx other than 408/429: the request is wrong and retrying will not help.
    #[error("{service}: request rejected with {status}: {message}")]
    Permanent {
        /// Service name.
        service: &'static str,
        /// HTTP status.
        status: u16,
        /// The provider's error message.
        message: String,
    },
    /// 2xx with a body that does not parse, or a client-side precondition failed.
    #[error("{service}: invalid data: {message}")]
    Invalid {
        /// Service name.
        service: &'static str,
        /// What was wrong.
        message: String,
        /// Whether retrying may help (a garbled 2xx body: yes; bad input: no).
        retriable: bool,
    },
}

impl ApiError {
    /// `true` if retrying the same call later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ApiError::RateLimited { .. } | ApiError::Server { .. } | ApiError::Transport { .. } => {
                true
            }
            ApiError::Permanent { .. } => false,
            ApiError::Invalid { retriable, .. } => *retriable,
        }
    }

    /// `true` if retrying will not help (map to a non-retriable Inngest error).
    pub fn is_permanent(&self) -> bool {
        !self.is_retriable()
    }

    /// `Retry-After` of a rate limit.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::RateLimited { .. } => Some(429),
            ApiError::Server { status, .. } | ApiError::Permanent { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `true` for a 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The service that failed.
    pub fn service(&self) -> &'static str {
        match self {
            ApiError::RateLimited { service, .. }
            | ApiError::Server { service, .. }
            | ApiError::Transport { service, .. }
            | ApiError::Permanent { service, .. }
            | ApiError::Invalid { service, .. } => service,
        }
    }

    pub(crate) fn invalid(
        service: &'static str,
        message: impl Into<String>,
        retriable: bool,
    ) -> Self {
        ApiError::Invalid {
            service,
            message: message.into(),
            retriable,
        }
    }

    pub(crate) fn transport(service: &'static str, e: &reqwest::Error) -> Self {
        // reqwest's Display includes the URL but no headers, so no credentials leak here.
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else {
            "request"
        };
        ApiError::Transport {
            service,
            message: format!("{kind}: {e}"),
        }
    }
}

/// Retry policy for HTTP 429 responses inside one client call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// How many times to sleep and retry after a 429 before returning [`ApiError::RateLimited`].
    /// `0` = never sleep in-process (let Inngest schedule the retry).
    pub max_retries: u32,
    /// Longest single `Retry-After` honoured in-process; longer waits are returned as errors.
    pub max_wait: Duration,
    /// Wait used when a 429 has no parseable `Retry-After`.
    pub default_wait: Duration,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_wait: Duration::from_secs(10),
            default_wait: Duration::from_secs(1),
        }
    }
}

/// Parse `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Send a request, honouring 429 + `Retry-After` per `policy`, and classify failures.
/// `build` is called once per attempt. Returns the successful (2xx) response.
pub(crate) async fn send_classified(
    service: &'static str,
    policy: RateLimitPolicy,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, ApiError> {
    let mut attempt = 0u32;
    loop {
        let resp = build()
            .send()
            .await
            .map_err(|e| ApiError::transport(service, &e))?;
        let status = resp.status();
        tracing::debug!(
            service,
            status = status.as_u16(),
            path = resp.url().path(),
            "api response"
        );
        if status.is_success() {
            return Ok(resp);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = parse_retry_after(resp.headers());
            let wait = retry_after.unwrap_or(policy.default_wait);
            if attempt < policy.max_retries && wait <= policy.max_wait {
                attempt += 1;
                tracing::warn!(
                    service,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "rate limited; retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(ApiError::RateLimited {
                service,
                retry_after,
            });
        }
        return Err(classify_error(service, resp).await);
    }
}

/// Turn a non-2xx, non-429 response into [`ApiError::Server`] or [`ApiError::Permanent`].
pub(crate) async fn classify_error(service: &'static str, resp: Response) -> ApiError {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let message = provider_message(&body).unwrap_or_else(|| {
        if body.trim().is_empty() {
            format!("HTTP {status}")
        } else {
            crate::db::truncate_chars(body.trim(), 200)
        }
    });
    let message = crate::db::truncate_chars(&message, MAX_MESSAGE);
    if status >= 500 || status == 408 || status == 425 {
        ApiError::Server {
            service,
            status,
            message,
        }
    } else {
        ApiError::Permanent {
            service,
            status,
            message,
        }
    }
}

/// Extract a human message from the common provider error shapes:
/// Stripe `{error:{message}}`, Printify `{message, errors:{reason}}`, Resend `{message, name}`.
pub(crate) fn provider_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut msg = v
        .pointer("/error/message")
        .and_then(s)
        .or_else(|| v.get("message").and_then(s))
        .or_else(|| v.get("error").and_then(s))?;
    if let Some(reason) = v.pointer("/errors/reason").and_then(s) {
        msg = format!("{msg} ({reason})");
    }
    Some(msg)
}

/// Build a reqwest client with the app's user agent and timeout.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .build()
        .map_err(|e| ApiError::transport("http", &e))
}

/// `true` if `id` is safe to put in a URL path segment (provider ids are alphanumeric + `_`/`-`).
pub(crate) fn is_safe_path_segment(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages() {
        assert_eq!(
            provider_message(
                r#"{"error":{"message":"No such checkout.session","type":"invalid_request_error"}}"#
            )
            .as_deref(),
            Some("No such checkout.session")
        );
        assert_eq!(
            provider_message(r#"{"status":"error","message":"Validation failed.","errors":{"reason":"address_to.country is required"}}"#)
                .as_deref(),
            Some("Validation failed. (address_to.country is required)")
        );
        assert_eq!(provider_message("not json"), None);
    }

    #[test]
    fn retry_after_parsing() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn classification() {
        let rl = ApiError::RateLimited {
            service: "printify",
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(rl.is_retriable());
        assert_eq!(rl.retry_after(), Some(Duration::from_secs(2)));
        let p = ApiError::Permanent {
            service: "stripe",
            status: 404,
            message: "x".into(),
        };
        assert!(p.is_permanent() && p.is_not_found());
        assert!(ApiError::invalid("x", "bad", true).is_retriable());
        assert!(ApiError::invalid("x", "bad", false).is_permanent());
    }
}
