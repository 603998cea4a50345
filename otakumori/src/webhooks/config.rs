//! Webhook ingress configuration, from code or from the environment.
//!
//! | Variable                   | Meaning                                                         | Default     |
//! |----------------------------|-----------------------------------------------------------------|-------------|
//! | `CLERK_WEBHOOK_SECRET`     | svix secret `whsec_<base64>` for `/webhooks/clerk`              | unset → 500 |
//! | `STRIPE_WEBHOOK_SECRET`    | Stripe endpoint secret `whsec_…` for `/webhooks/stripe`         | unset → 500 |
//! | `PRINTIFY_WEBHOOK_SECRET`  | Printify webhook secret for `/webhooks/printify`                | unset → 500 |
//! | `WEBHOOK_RATE_PER_SEC`     | per-client-IP replenish rate (float); `0` or `off` disables     | `10`        |
//! | `WEBHOOK_RATE_BURST`       | per-client-IP bucket size                                       | `50`        |
//! | `WEBHOOK_IP_ALLOWLIST`     | comma-separated CIDRs/IPs allowed to call the routes            | unset: all  |
//! | `WEBHOOK_TRUSTED_PROXIES`  | comma-separated CIDRs/IPs whose `X-Forwarded-For` is honoured   | unset: none |
//! | `WEBHOOK_BODY_LIMIT_BYTES` | maximum request body (larger → 413)                             | `1048576`   |
//!
//! Empty values count as unset. Errors name the variable, never a secret's value.

use std::time::Duration;

use ipnet::IpNet;

use super::allowlist::IpAllowlist;
use super::clerk::{SvixSecret, SVIX_TOLERANCE_SECS};
use super::client_ip::parse_cidr_list;
use super::printify::PrintifySecret;
use super::ratelimit::{RateLimit, DEFAULT_RATE_BURST, DEFAULT_RATE_PER_SEC};
use super::stripe::{StripeSecret, STRIPE_TOLERANCE_SECS};

/// Default maximum body size: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default time allowed for handing events to Inngest before answering 503.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable names.
pub mod env {
    /// svix secret for Clerk.
    pub const CLERK_WEBHOOK_SECRET: &str = "CLERK_WEBHOOK_SECRET";
    /// Stripe endpoint secret.
    pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";
    /// Printify webhook secret.
    pub const PRINTIFY_WEBHOOK_SECRET: &str = "PRINTIFY_WEBHOOK_SECRET";
    /// Per-IP replenish rate.
    pub const WEBHOOK_RATE_PER_SEC: &str = "WEBHOOK_RATE_PER_SEC";
    /// Per-IP burst.
    pub const WEBHOOK_RATE_BURST: &str = "WEBHOOK_RATE_BURST";
    /// Allowed client networks.
    pub const WEBHOOK_IP_ALLOWLIST: &str = "WEBHOOK_IP_ALLOWLIST";
    /// Trusted reverse proxies.
    pub const WEBHOOK_TRUSTED_PROXIES: &str = "WEBHOOK_TRUSTED_PROXIES";
    /// Body size limit.
    pub const WEBHOOK_BODY_LIMIT_BYTES: &str = "WEBHOOK_BODY_LIMIT_BYTES";
}

/// A configuration value is invalid. The message names the variable, not secret values.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid {var}: {reason}")]
pub struct WebhookConfigError {
    /// The environment variable (or setting) at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything the webhook routes need besides the sink.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// svix secret for `/webhooks/clerk` (unset: that route answers 500).
    pub clerk_secret: Option<SvixSecret>,
    /// Stripe endpoint secret for `/webhooks/stripe` (unset: 500).
    pub stripe_secret: Option<StripeSecret>,
    /// Printify secret for `/webhooks/printify` (unset: 500, fail closed).
    pub printify_secret: Option<PrintifySecret>,
    /// svix timestamp tolerance (default 300 s).
    pub svix_tolerance_secs: i64,
    /// Stripe timestamp tolerance (default 300 s).
    pub stripe_tolerance_secs: i64,
    /// Per-client-IP rate limit (`None`: disabled).
    pub rate_limit: Option<RateLimit>,
    /// Allowed client networks (empty: everyone).
    pub allowlist: IpAllowlist,
    /// Proxies whose `X-Forwarded-For` is honoured.
    pub trusted_proxies: Vec<IpNet>,
    /// Maximum body size in bytes.
    pub body_limit: usize,
    /// Time allowed for the sink before answering 503.
    pub send_timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            clerk_secret: None,
            stripe_secret: None,
            printify_secret: None,
            svix_tolerance_secs: SVIX_TOLERANCE_SECS,
            stripe_tolerance_secs: STRIPE_TOLERANCE_SECS,
            rate_limit: Some(RateLimit::default()),
            allowlist: IpAllowlist::default(),
            trusted_proxies: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }
}

impl WebhookConfig {
    /// Reads the variables listed in the module docs from the process environment.
    pub fn from_env() -> Result<Self, WebhookConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env) with a custom lookup (for tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, WebhookConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut cfg = Self::default();
        if let Some(s) = get(env::CLERK_WEBHOOK_SECRET) {
            cfg.clerk_secret = Some(SvixSecret::parse(&s).map_err(|e| WebhookConfigError {
                var: env::CLERK_WEBHOOK_SECRET,
                reason: e.to_string(),
            })?);
        }
        cfg.stripe_secret = get(env::STRIPE_WEBHOOK_SECRET).map(StripeSecret::new);
        cfg.printify_secret = get(env::PRINTIFY_WEBHOOK_SECRET).map(PrintifySecret::new);

        let rate = match get(env::WEBHOOK_RATE_PER_SEC) {
            None => Some(DEFAULT_RATE_PER_SEC),
            Some(v) if v.trim().eq_ignore_ascii_case("off") => None,
            Some(v) => {
                let r: f64 = v.trim().parse().map_err(|_| WebhookConfigError {
                    var: env::WEBHOOK_RATE_PER_SEC,
                    reason: format!("`{}` is not a number", v.trim()),
                })?;
                (r != 0.0).then_some(r)
            }
        };
        let burst = match get(env::WEBHOOK_RATE_BURST) {
            None => DEFAULT_RATE_BURST,
            Some(v) => v.trim().parse().map_err(|_| WebhookConfigError {
                var: env::WEBHOOK_RATE_BURST,
                reason: format!("`{}` is not a positive integer", v.trim()),
            })?,
        };
        cfg.rate_limit = match rate {
            None => None,
            Some(r) => Some(RateLimit::new(r, burst).map_err(|e| WebhookConfigError {
                var: match e {
                    super::ratelimit::InvalidRateLimit::Burst => env::WEBHOOK_RATE_BURST,
                    super::ratelimit::InvalidRateLimit::Rate(_) => env::WEBHOOK_RATE_PER_SEC,
                },
                reason: e.to_string(),
            })?),
        };

        if let Some(v) = get(env::WEBHOOK_IP_ALLOWLIST) {
            cfg.allowlist =
                IpAllowlist::new(parse_cidr_list(&v).map_err(|e| WebhookConfigError {
                    var: env::WEBHOOK_IP_ALLOWLIST,
                    reason: e.to_string(),
                })?);
        }
        if let Some(v) = get(env::WEBHOOK_TRUSTED_PROXIES) {
            cfg.trusted_proxies = parse_cidr_list(&v).map_err(|e| WebhookConfigError {
                var: env::WEBHOOK_TRUSTED_PROXIES,
                reason: e.to_string(),
            })?;
        }
        if let Some(v) = get(env::WEBHOOK_BODY_LIMIT_BYTES) {
            cfg.body_limit = v
                .trim()
                .parse()
                .ok()
                .filter(|n: &usize| *n > 0)
                .ok_or_else(|| WebhookConfigError {
                    var: env::WEBHOOK_BODY_LIMIT_BYTES,
                    reason: format!("`{}` is not a positive integer", v.trim()),
                })?;
        }
        Ok(cfg)
    }

    /// Sets the Clerk (svix) secret.
    pub fn with_clerk_secret(mut self, secret: SvixSecret) -> Self {
        self.clerk_secret = Some(secret);
        self
    }

    /// Sets the Stripe endpoint secret.
    pub fn with_stripe_secret(mut self, secret: StripeSecret) -> Self {
        self.stripe_secret = Some(secret);
        self
    }

    /// Sets the Printify secret.
    pub fn with_printify_secret(mut self, secret: PrintifySecret) -> Self {
        self.printify_secret = Some(secret);
        self
    }

    /// Sets (or with `None` disables) the per-client-IP rate limit.
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Restricts callers to `nets` (empty: no restriction).
    pub fn with_allowlist(mut self, nets: Vec<IpNet>) -> Self {
        self.allowlist = IpAllowlist::new(nets);
        self
    }

    /// Honours `X-Forwarded-For` from peers in `nets`.
    pub fn with_trusted_proxies(mut self, nets: Vec<IpNet>) -> Self {
        self.trusted_proxies = nets;
        self
    }

    /// Sets the maximum body size.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets the sink timeout.
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<WebhookConfig, WebhookConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WebhookConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert!(c.clerk_secret.is_none() && c.stripe_secret.is_none());
        assert!(c.printify_secret.is_none());
        assert_eq!(c.rate_limit, Some(RateLimit::default()));
        assert!(!c.allowlist.is_enabled());
        assert_eq!(c.body_limit, DEFAULT_BODY_LIMIT);
    }

    #[test]
    fn parses_everything() {
        let c = cfg(&[
            ("CLERK_WEBHOOK_SECRET", "whsec_c2VjcmV0"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("PRINTIFY_WEBHOOK_SECRET", "p"),
            ("WEBHOOK_RATE_PER_SEC", "2.5"),
            ("WEBHOOK_RATE_BURST", "7"),
            ("WEBHOOK_IP_ALLOWLIST", "10.0.0.0/8, 192.168.1.1"),
            ("WEBHOOK_TRUSTED_PROXIES", "127.0.0.1"),
            ("WEBHOOK_BODY_LIMIT_BYTES", "2048"),
        ])
        .unwrap();
        assert!(c.clerk_secret.is_some() && c.stripe_secret.is_some());
        assert_eq!(c.rate_limit, Some(RateLimit::new(2.5, 7).unwrap()));
        assert_eq!(c.allowlist.nets().len(), 2);
        assert_eq!(c.trusted_proxies.len(), 1);
        assert_eq!(c.body_limit, 2048);
        assert_eq!(
            cfg(&[("WEBHOOK_RATE_PER_SEC", "off")]).unwrap().rate_limit,
            None
        );
        assert_eq!(
            cfg(&[("WEBHOOK_RATE_PER_SEC", "0")]).unwrap().rate_limit,
            None
        );
    }

    #[test]
    fn errors_name_the_variable_not_the_secret() {
        let e = cfg(&[("CLERK_WEBHOOK_SECRET", "whsec_%%%topsecret")]).unwrap_err();
        assert_eq!(e.var, "CLERK_WEBHOOK_SECRET");
        assert!(!e.to_string().contains("topsecret"));
        assert_eq!(
            cfg(&[("WEBHOOK_RATE_BURST", "0")]).unwrap_err().var,
            "WEBHOOK_RATE_BURST"
        );
        assert_eq!(
            cfg(&[("WEBHOOK_RATE_PER_SEC", "-1")]).unwrap_err().var,
            "WEBHOOK_RATE_PER_SEC"
        );
        assert_eq!(
            cfg(&[("WEBHOOK_IP_ALLOWLIST", "10.0.0.0/33")])
                .unwrap_err()
                .var,
            "WEBHOOK_IP_ALLOWLIST"
        );
        assert_eq!(
            cfg(&[("WEBHOOK_BODY_LIMIT_BYTES", "0")]).unwrap_err().var,
            "WEBHOOK_BODY_LIMIT_BYTES"
        );
    }
}
