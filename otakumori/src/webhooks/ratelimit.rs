//! Per-client-IP rate limiting of the webhook routes with `tower_governor` (a GCRA token bucket
//! from `governor`), keyed by the same client IP the allowlist uses ([`ClientIpPolicy`]).
//!
//! Configured by `WEBHOOK_RATE_PER_SEC` (replenish rate, may be fractional) and
//! `WEBHOOK_RATE_BURST` (bucket size). When the bucket is empty the route answers **429**
//! `{"error":"rate limit exceeded; retry after <n>s"}` with `Retry-After`.

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use governor::middleware::NoOpMiddleware;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use super::client_ip::ClientIpPolicy;

/// Default replenish rate when `WEBHOOK_RATE_PER_SEC` is unset.
pub const DEFAULT_RATE_PER_SEC: f64 = 10.0;
/// Default bucket size when `WEBHOOK_RATE_BURST` is unset.
pub const DEFAULT_RATE_BURST: u32 = 50;

/// Token-bucket parameters per client IP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    per_second: f64,
    burst: u32,
}

/// Rate-limit parameters out of range.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum InvalidRateLimit {
    /// The rate must be a finite number > 0 (at least one request per ~584 years).
    #[error("rate limit per second must be a finite number greater than 0, got {0}")]
    Rate(f64),
    /// The burst must be at least 1.
    #[error("rate limit burst must be at least 1")]
    Burst,
}

impl RateLimit {
    /// `per_second` requests replenished per second, up to `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Result<Self, InvalidRateLimit> {
        if !per_second.is_finite() || per_second <= 0.0 || 1.0 / per_second > u64::MAX as f64 {
            return Err(InvalidRateLimit::Rate(per_second));
        }
        if burst == 0 {
            return Err(InvalidRateLimit::Burst);
        }
        Ok(Self { per_second, burst })
    }

    /// Requests replenished per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Bucket size.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Interval after which one request is replenished (at least 1 ns).
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1))
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: DEFAULT_RATE_PER_SEC,
            burst: DEFAULT_RATE_BURST,
        }
    }
}

/// `tower_governor` key extractor: the client IP as resolved by [`ClientIpPolicy`] (socket peer,
/// or the right-most untrusted `X-Forwarded-For` entry behind a trusted proxy).
#[derive(Debug, Clone)]
pub struct ClientIpKeyExtractor {
    policy: Arc<ClientIpPolicy>,
}

impl ClientIpKeyExtractor {
    /// Extractor using `policy`.
    pub fn new(policy: Arc<ClientIpPolicy>) -> Self {
        Self { policy }
    }
}

impl KeyExtractor for ClientIpKeyExtractor {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        self.policy
            .client_ip_of(req)
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

/// The governor layer type used on the webhook routes.
pub type WebhookGovernorLayer = GovernorLayer<ClientIpKeyExtractor, NoOpMiddleware, Body>;

/// Builds the rate-limiting layer. When called inside a tokio runtime it also starts a
/// background task that forgets idle client IPs every minute (it stops once the layer is dropped).
pub fn layer(limit: RateLimit, policy: Arc<ClientIpPolicy>) -> WebhookGovernorLayer {
    let config = GovernorConfigBuilder::default()
        .period(limit.period())
        .burst_size(limit.burst)
        .key_extractor(ClientIpKeyExtractor::new(policy))
        .finish()
        .expect("RateLimit guarantees a non-zero period and burst");
    let config = Arc::new(config);
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let weak: Weak<_> = Arc::downgrade(config.limiter());
        handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else { break };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
    GovernorLayer::new(config).error_handler(governor_error_response)
}

fn governor_error_response(err: GovernorError) -> Response<Body> {
    let (status, message, headers) = match err {
        GovernorError::TooManyRequests { wait_time, headers } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("rate limit exceeded; retry after {wait_time}s"),
            headers,
        ),
        GovernorError::UnableToExtractKey => {
            tracing::error!("webhook rate limiter cannot determine the client address; serve with into_make_service_with_connect_info::<SocketAddr>()");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "client address unavailable".to_string(),
                None,
            )
        }
        GovernorError::Other { code, msg, headers } => (
            code,
            msg.unwrap_or_else(|| "request rejected".to_string()),
            headers,
        ),
    };
    let body = serde_json::json!({ "error": message }).to_string();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Some(headers) = headers {
        resp.headers_mut().extend(headers);
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_period() {
        assert!(RateLimit::new(0.0, 1).is_err());
        assert!(RateLimit::new(f64::NAN, 1).is_err());
        assert_eq!(RateLimit::new(1.0, 0), Err(InvalidRateLimit::Burst));
        assert_eq!(
            RateLimit::new(4.0, 2).unwrap().period(),
            Duration::from_millis(250)
        );
        assert_eq!(
            RateLimit::new(0.5, 2).unwrap().period(),
            Duration::from_secs(2)
        );
    }
}
