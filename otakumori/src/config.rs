//! Environment configuration for the Otakumori example app.
//!
//! [`Config::from_lookup`] takes an env *lookup function* instead of reading the process
//! environment, so tests can build configs from a `HashMap` without mutating global state;
//! [`Config::from_env`] is the thin wrapper used by the binary.
//!
//! Each external service is in one of two modes:
//!
//! * **sandbox**: none of the service's variables is set. The app starts the matching loopback
//!   fake from [`crate::sandbox`] in-process and talks to it (no network, deterministic data).
//! * **live**: the service's required variables are set. Base URLs default to the real providers.
//!
//! Setting only *some* of a service's variables (for example `PRINTIFY_API_KEY` without
//! `PRINTIFY_SHOP_ID`, or `STRIPE_API_BASE` without `STRIPE_SECRET_KEY`) is a startup error that
//! names the missing variable: a half-configured service would otherwise silently fall back to fake
//! data in production.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | `sqlite://…` or `postgres://…` | `sqlite://otakumori.db?mode=rwc` (file created on first run) |
//! | `PRINTIFY_API_URL` | Printify base URL, including `/v1` | `https://api.printify.com/v1` |
//! | `PRINTIFY_API_KEY`, `PRINTIFY_SHOP_ID` | Bearer token and shop id (both or neither) | sandbox |
//! | `STRIPE_API_BASE` | Stripe base URL, without `/v1` | `https://api.stripe.com` |
//! | `STRIPE_SECRET_KEY` | `sk_test_…`/`sk_live_…` | sandbox |
//! | `EMAIL_PROVIDER` | `log` (local outbox), `resend`, `smtp` or `sandbox` (in-process fake Resend) | `resend` if `RESEND_API_KEY` is set, `smtp` if `SMTP_URL` is set, else `log` |
//! | `RESEND_BASE_URL`, `RESEND_API_KEY` | Resend HTTP API | `https://api.resend.com` |
//! | `SMTP_URL` | lettre URL, e.g. `smtps://user:pass@smtp.example.com:465` | — |
//! | `EMAIL_FROM` | sender | `Otaku-mori <orders@otaku-mori.com>` |
//! | `ADMIN_ALERT_EMAIL` | recipient of inventory alerts / monthly audit | unset (alerts not emailed) |
//! | `CLERK_WEBHOOK_SECRET`, `STRIPE_WEBHOOK_SECRET`, `PRINTIFY_WEBHOOK_SECRET` | inbound webhook secrets | unset |
//! | `RETENTION_WEBHOOK_EVENTS_DAYS` / `_EMAIL_LOGS_DAYS` / `_OPERATIONS_DAYS` / `_CARTS_DAYS` / `_PENDING_ORDERS_DAYS` / `_ARCHIVE_ORDERS_DAYS` | cleanup windows | 30 / 180 / 30 / 30 / 7 / 365 |
//! | `HOST`, `PORT` | HTTP listen address | `127.0.0.1`, `3000` |
//! | `EXECUTOR_STATE_DIR` | where the embedded local executor journals events and runs (`serve` with the embedded executor); the empty string keeps them in memory | `otakumori-executor` for `serve`; in memory for the demo (see [`ExecutorState`]) |

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default database: a SQLite file in the working directory, created on first run.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://otakumori.db?mode=rwc";
/// Default state directory of the embedded executor in `serve` mode: relative to the working
/// directory, beside the default SQLite file.
pub const DEFAULT_EXECUTOR_STATE_DIR: &str = "otakumori-executor";
/// Default Printify base URL (the client appends `/shops/...`).
pub const DEFAULT_PRINTIFY_API_URL: &str = "https://api.printify.com/v1";
/// Default Stripe base URL (the client appends `/v1/...`).
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
/// Default Resend base URL (the client appends `/emails`).
pub const DEFAULT_RESEND_BASE_URL: &str = "https://api.resend.com";
/// Sender used by the original app.
pub const DEFAULT_EMAIL_FROM: &str = "Otaku-mori <orders@otaku-mori.com>";

/// A secret string (API key, webhook secret, SMTP URL with password). `Debug`/`Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The raw value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Startup configuration error. Messages name the offending variable but never echo secret values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A service is half-configured: `present` is set but `missing` is not.
    #[error("{missing} must be set when {present} is set (or unset {present} to use the built-in sandbox)")]
    Missing {
        /// The variable that has to be added.
        missing: &'static str,
        /// The variable whose presence made it required.
        present: &'static str,
    },
    /// A variable has a value that cannot be used.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// Why (without echoing secrets).
        reason: String,
    },
}

/// Service mode: the in-process sandbox fake, or a live (or externally hosted) endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceMode<T> {
    /// No variables set: use the loopback fake from [`crate::sandbox`].
    Sandbox,
    /// Fully configured.
    Live(T),
}

impl<T> ServiceMode<T> {
    /// `true` for [`ServiceMode::Sandbox`].
    pub fn is_sandbox(&self) -> bool {
        matches!(self, ServiceMode::Sandbox)
    }
    /// The live settings, if any.
    pub fn live(&self) -> Option<&T> {
        match self {
            ServiceMode::Live(t) => Some(t),
            ServiceMode::Sandbox => None,
        }
    }
}

/// Printify API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintifySettings {
    /// Base URL including the version segment, without trailing slash (e.g. `https://api.printify.com/v1`).
    pub api_url: String,
    /// Personal access token sent as `Authorization: Bearer …`.
    pub api_key: Secret,
    /// Shop id used in `/shops/{shop_id}/…` paths.
    pub shop_id: String,
}

/// Stripe API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSettings {
    /// Base URL without `/v1` (e.g. `https://api.stripe.com`).
    pub api_base: String,
    /// Secret key sent as `Authorization: Bearer …`.
    pub secret_key: Secret,
}

/// Resend API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResendSettings {
    /// Base URL (e.g. `https://api.resend.com`).
    pub base_url: String,
    /// API key sent as `Authorization: Bearer …`.
    pub api_key: Secret,
}

/// Which email transport to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTransport {
    /// Local outbox: each message is written to `email_outbox` and logged; no network.
    Log,
    /// The in-process fake Resend server from [`crate::sandbox`] (exercises the HTTP client).
    Sandbox,
    /// Resend HTTP API.
    Resend(ResendSettings),
    /// SMTP through lettre; the URL may carry credentials, hence [`Secret`].
    Smtp {
        /// lettre connection URL (`smtp://`, `smtps://`, `smtp://…?tls=required`).
        url: Secret,
    },
}

impl EmailTransport {
    /// Stable provider name as stored in `email_log.provider`.
    pub fn provider_name(&self) -> &'static str {
        match self {
            EmailTransport::Log => "log",
            EmailTransport::Sandbox | EmailTransport::Resend(_) => "resend",
            EmailTransport::Smtp { .. } => "smtp",
        }
    }
}

/// Email settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// Transport.
    pub transport: EmailTransport,
    /// `From` header (`EMAIL_FROM`).
    pub from: String,
    /// Admin recipient for inventory alerts and the monthly audit (`ADMIN_ALERT_EMAIL`).
    pub admin_alert_email: Option<String>,
}

/// Inbound webhook secrets (used by `crate::webhooks`). `None` = not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSecrets {
    /// `CLERK_WEBHOOK_SECRET` (`whsec_<base64>`, svix scheme).
    pub clerk: Option<Secret>,
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_…`, used verbatim as HMAC key).
    pub stripe: Option<Secret>,
    /// `PRINTIFY_WEBHOOK_SECRET`.
    pub printify: Option<Secret>,
}

/// Retention windows for the cleanup and monthly jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// `webhook_events` processed longer ago than this are deleted.
    pub webhook_events: Duration,
    /// `email_log` rows older than this are deleted.
    pub email_logs: Duration,
    /// `failed_operations` that are `succeeded`/`dead` and older than this are purged.
    pub operations: Duration,
    /// Items of carts not updated for this long are deleted.
    pub carts: Duration,
    /// Orders still `pending` after this long are cancelled.
    pub pending_orders: Duration,
    /// Final-state orders older than this are archived by the monthly job.
    pub archive_orders: Duration,
}

const DAY: u64 = 86_400;

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            webhook_events: Duration::from_secs(30 * DAY),
            email_logs: Duration::from_secs(180 * DAY),
            operations: Duration::from_secs(30 * DAY),
            carts: Duration::from_secs(30 * DAY),
            pending_orders: Duration::from_secs(7 * DAY),
            archive_orders: Duration::from_secs(365 * DAY),
        }
    }
}

/// Where the embedded local executor keeps its events and runs (`EXECUTOR_STATE_DIR`).
///
/// With a directory, the executor journals every event and run there, so after a restart (a
/// crash, a deploy, `kill -9`) each unfinished run resumes from its last memoized step once the
/// app has synced again. In memory, runs in flight are lost when the process stops.
///
/// | `EXECUTOR_STATE_DIR` | `serve` (embedded executor) | demo (`cargo run --example otakumori`) |
/// |---|---|---|
/// | unset | [`DEFAULT_EXECUTOR_STATE_DIR`] | in memory: the demo starts fresh every run |
/// | `<dir>` | `<dir>` | in memory: the demo starts fresh every run |
/// | empty (`EXECUTOR_STATE_DIR=`) | in memory | in memory |
///
/// The demo never persists: it plays a one-shot scenario on a freshly recreated database, so a
/// journal of earlier demo runs could only replay stale runs against rows that no longer exist.
/// Only the embedded executor reads this; with `INNGEST_DEV` or Inngest Cloud the state lives
/// in that server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorState {
    /// `EXECUTOR_STATE_DIR` unset: `serve` uses [`DEFAULT_EXECUTOR_STATE_DIR`].
    Default,
    /// `EXECUTOR_STATE_DIR=<dir>` (surrounding whitespace trimmed).
    Dir(PathBuf),
    /// `EXECUTOR_STATE_DIR=` set to the empty string (or only whitespace): in memory.
    InMemory,
}

impl ExecutorState {
    /// Parse the raw value of `EXECUTOR_STATE_DIR` (`None`: unset). Unlike the other variables,
    /// an empty value is meaningful here: it turns persistence off.
    pub fn from_var(value: Option<&str>) -> ExecutorState {
        match value.map(str::trim) {
            None => ExecutorState::Default,
            Some("") => ExecutorState::InMemory,
            Some(dir) => ExecutorState::Dir(PathBuf::from(dir)),
        }
    }

    /// The directory `serve` gives the embedded executor; `None` keeps its state in memory.
    pub fn serve_dir(&self) -> Option<&Path> {
        match self {
            ExecutorState::Default => Some(Path::new(DEFAULT_EXECUTOR_STATE_DIR)),
            ExecutorState::Dir(dir) => Some(dir),
            ExecutorState::InMemory => None,
        }
    }
}

/// The whole app configuration. `Debug` redacts the database password and all secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `DATABASE_URL` (may contain a password: never log it; use [`Config::database_url_redacted`]).
    pub database_url: String,
    /// Printify mode.
    pub printify: ServiceMode<PrintifySettings>,
    /// Stripe mode.
    pub stripe: ServiceMode<StripeSettings>,
    /// Email settings.
    pub email: EmailSettings,
    /// Inbound webhook secrets.
    pub webhooks: WebhookSecrets,
    /// Retention windows.
    pub retention: RetentionConfig,
    /// HTTP listen address (`HOST`, `PORT`).
    pub listen_addr: SocketAddr,
    /// Embedded executor state (`EXECUTOR_STATE_DIR`).
    pub executor_state: ExecutorState,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url_redacted())
            .field("printify", &self.printify)
            .field("stripe", &self.stripe)
            .field("email", &self.email)
            .field("webhooks", &self.webhooks)
            .field("retention", &self.retention)
            .field("listen_addr", &self.listen_addr)
            .field("executor_state", &self.executor_state)
            .finish()
    }
}

impl Config {
    /// Read from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Build from a lookup function (`name -> value`). Empty values count as unset, except for
    /// `EXECUTOR_STATE_DIR`, where the empty string means "in memory" ([`ExecutorState`]); pass
    /// the raw values for that to work.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                var: "DATABASE_URL",
                reason: "expected a sqlite: or postgres:// URL".into(),
            });
        }

        // Printify: key + shop id both required once anything is set.
        let p_url = get("PRINTIFY_API_URL");
        let p_key = get("PRINTIFY_API_KEY");
        let p_shop = get("PRINTIFY_SHOP_ID");
        let printify = match (&p_url, p_key, p_shop) {
            (None, None, None) => ServiceMode::Sandbox,
            (_, Some(key), Some(shop)) => ServiceMode::Live(PrintifySettings {
                api_url: normalize_base(
                    "PRINTIFY_API_URL",
                    p_url.as_deref(),
                    DEFAULT_PRINTIFY_API_URL,
                )?,
                api_key: Secret::new(key),
                shop_id: shop,
            }),
            (_, None, Some(_)) => return Err(missing("PRINTIFY_API_KEY", "PRINTIFY_SHOP_ID")),
            (_, Some(_), None) => return Err(missing("PRINTIFY_SHOP_ID", "PRINTIFY_API_KEY")),
            (Some(_), None, None) => return Err(missing("PRINTIFY_API_KEY", "PRINTIFY_API_URL")),
        };

        let s_base = get("STRIPE_API_BASE");
        let stripe = match (&s_base, get("STRIPE_SECRET_KEY")) {
            (None, None) => ServiceMode::Sandbox,
            (_, Some(key)) => ServiceMode::Live(StripeSettings {
                api_base: normalize_base(
                    "STRIPE_API_BASE",
                    s_base.as_deref(),
                    DEFAULT_STRIPE_API_BASE,
                )?,
                secret_key: Secret::new(key),
            }),
            (Some(_), None) => return Err(missing("STRIPE_SECRET_KEY", "STRIPE_API_BASE")),
        };

        let r_base = get("RESEND_BASE_URL");
        let r_key = get("RESEND_API_KEY");
        let smtp = get("SMTP_URL");
        let resend_settings = |key: String| -> Result<ResendSettings, ConfigError> {
            Ok(ResendSettings {
                base_url: normalize_base(
                    "RESEND_BASE_URL",
                    r_base.as_deref(),
                    DEFAULT_RESEND_BASE_URL,
                )?,
                api_key: Secret::new(key),
            })
        };
        let transport = match get("EMAIL_PROVIDER")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("log") | Some("outbox") => EmailTransport::Log,
            Some("sandbox") => EmailTransport::Sandbox,
            Some("resend") => match r_key {
                Some(k) => EmailTransport::Resend(resend_settings(k)?),
                None => return Err(missing("RESEND_API_KEY", "EMAIL_PROVIDER")),
            },
            Some("smtp") => match smtp {
                Some(u) => EmailTransport::Smtp {
                    url: Secret::new(u),
                },
                None => return Err(missing("SMTP_URL", "EMAIL_PROVIDER")),
            },
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "EMAIL_PROVIDER",
                    reason: format!(
                        "unknown provider {other:?} (expected log, resend, smtp or sandbox)"
                    ),
                })
            }
            None => match (r_key, smtp) {
                (Some(k), _) => EmailTransport::Resend(resend_settings(k)?),
                (None, Some(u)) => EmailTransport::Smtp {
                    url: Secret::new(u),
                },
                (None, None) if r_base.is_some() => {
                    return Err(missing("RESEND_API_KEY", "RESEND_BASE_URL"))
                }
                (None, None) => EmailTransport::Log,
            },
        };
        let email = EmailSettings {
            transport,
            from: get("EMAIL_FROM").unwrap_or_else(|| DEFAULT_EMAIL_FROM.to_string()),
            admin_alert_email: get("ADMIN_ALERT_EMAIL"),
        };

        let webhooks = WebhookSecrets {
            clerk: get("CLERK_WEBHOOK_SECRET").map(Secret::new),
            stripe: get("STRIPE_WEBHOOK_SECRET").map(Secret::new),
            printify: get("PRINTIFY_WEBHOOK_SECRET").map(Secret::new),
        };

        let d = RetentionConfig::default();
        let days = |var: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| Duration::from_secs(n * DAY))
                    .ok_or(ConfigError::Invalid {
                        var,
                        reason: "expected a positive whole number of days".into(),
                    }),
            }
        };
        let retention = RetentionConfig {
            webhook_events: days("RETENTION_WEBHOOK_EVENTS_DAYS", d.webhook_events)?,
            email_logs: days("RETENTION_EMAIL_LOGS_DAYS", d.email_logs)?,
            operations: days("RETENTION_OPERATIONS_DAYS", d.operations)?,
            carts: days("RETENTION_CARTS_DAYS", d.carts)?,
            pending_orders: days("RETENTION_PENDING_ORDERS_DAYS", d.pending_orders)?,
            archive_orders: days("RETENTION_ARCHIVE_ORDERS_DAYS", d.archive_orders)?,
        };

        let host: IpAddr = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h.parse().map_err(|_| ConfigError::Invalid {
                var: "HOST",
                reason: "expected an IP address".into(),
            })?,
        };
        let port: u16 = match get("PORT") {
            None => 3000,
            Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
                var: "PORT",
                reason: "expected a port number".into(),
            })?,
        };

        let executor_state = ExecutorState::from_var(lookup("EXECUTOR_STATE_DIR").as_deref());

        Ok(Config {
            database_url,
            printify,
            stripe,
            email,
            webhooks,
            retention,
            listen_addr: SocketAddr::new(host, port),
            executor_state,
        })
    }

    /// `true` when at least one service runs against its in-process sandbox fake.
    pub fn uses_sandbox(&self) -> bool {
        self.printify.is_sandbox()
            || self.stripe.is_sandbox()
            || self.email.transport == EmailTransport::Sandbox
    }

    /// The database URL with any password replaced by `***`, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url_password(&self.database_url)
    }
}

fn missing(missing: &'static str, present: &'static str) -> ConfigError {
    ConfigError::Missing { missing, present }
}

fn normalize_base(
    var: &'static str,
    value: Option<&str>,
    default: &str,
) -> Result<String, ConfigError> {
    let v = value.unwrap_or(default).trim_end_matches('/').to_string();
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            var,
            reason: "expected an http:// or https:// URL".into(),
        });
    }
    Ok(v)
}

/// Replace the password part of `scheme://user:password@host/...` with `***`.
pub fn redact_url_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _pw)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}{tail}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn empty_env_is_all_sandbox() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert!(c.printify.is_sandbox());
        assert!(c.stripe.is_sandbox());
        assert_eq!(c.email.transport, EmailTransport::Log);
        assert_eq!(c.email.from, DEFAULT_EMAIL_FROM);
        assert_eq!(c.retention, RetentionConfig::default());
        assert_eq!(c.listen_addr.port(), 3000);
        assert_eq!(c.executor_state, ExecutorState::Default);
        assert_eq!(
            c.executor_state.serve_dir(),
            Some(Path::new(DEFAULT_EXECUTOR_STATE_DIR))
        );
    }

    #[test]
    fn executor_state_dir_default_path_and_empty_for_in_memory() {
        // Unset: serve persists beside the default SQLite file.
        assert_eq!(DEFAULT_EXECUTOR_STATE_DIR, "otakumori-executor");
        // A path (trimmed) is used as given, relative or absolute.
        let c = cfg(&[("EXECUTOR_STATE_DIR", " /var/lib/otakumori/executor ")]).unwrap();
        assert_eq!(
            c.executor_state,
            ExecutorState::Dir(PathBuf::from("/var/lib/otakumori/executor"))
        );
        assert_eq!(
            c.executor_state.serve_dir(),
            Some(Path::new("/var/lib/otakumori/executor"))
        );
        let c = cfg(&[("EXECUTOR_STATE_DIR", "state/executor")]).unwrap();
        assert_eq!(
            c.executor_state.serve_dir(),
            Some(Path::new("state/executor"))
        );
        // Set to the empty string (or blanks): in memory. Unlike every other variable, empty is
        // not the same as unset here.
        for v in ["", "   "] {
            let c = cfg(&[("EXECUTOR_STATE_DIR", v)]).unwrap();
            assert_eq!(c.executor_state, ExecutorState::InMemory, "{v:?}");
            assert_eq!(c.executor_state.serve_dir(), None);
        }
        assert_eq!(ExecutorState::from_var(None), ExecutorState::Default);
        assert!(format!("{:?}", cfg(&[]).unwrap()).contains("executor_state: Default"));
    }

    #[test]
    fn half_configured_services_name_the_missing_variable() {
        let e = cfg(&[("PRINTIFY_API_KEY", "k")]).unwrap_err();
        assert_eq!(e, missing("PRINTIFY_SHOP_ID", "PRINTIFY_API_KEY"));
        assert!(e.to_string().contains("PRINTIFY_SHOP_ID"));
        let e = cfg(&[("PRINTIFY_SHOP_ID", "1")]).unwrap_err();
        assert_eq!(e, missing("PRINTIFY_API_KEY", "PRINTIFY_SHOP_ID"));
        let e = cfg(&[("PRINTIFY_API_URL", "http://127.0.0.1:1/v1")]).unwrap_err();
        assert_eq!(e, missing("PRINTIFY_API_KEY", "PRINTIFY_API_URL"));
        let e = cfg(&[("STRIPE_API_BASE", "http://127.0.0.1:1")]).unwrap_err();
        assert_eq!(e, missing("STRIPE_SECRET_KEY", "STRIPE_API_BASE"));
        let e = cfg(&[("EMAIL_PROVIDER", "smtp")]).unwrap_err();
        assert_eq!(e, missing("SMTP_URL", "EMAIL_PROVIDER"));
        let e = cfg(&[("EMAIL_PROVIDER", "resend")]).unwrap_err();
        assert_eq!(e, missing("RESEND_API_KEY", "EMAIL_PROVIDER"));
        let e = cfg(&[("RESEND_BASE_URL", "http://127.0.0.1:1")]).unwrap_err();
        assert_eq!(e, missing("RESEND_API_KEY", "RESEND_BASE_URL"));
    }

    #[test]
    fn live_settings_and_defaults() {
        let c = cfg(&[
            ("PRINTIFY_API_KEY", "pk"),
            ("PRINTIFY_SHOP_ID", "123"),
            ("STRIPE_SECRET_KEY", "sk_test_1"),
            ("RESEND_API_KEY", "re_1"),
            ("ADMIN_ALERT_EMAIL", "ops@example.com"),
            ("DATABASE_URL", "postgres://u:pw@127.0.0.1/test"),
            ("RETENTION_EMAIL_LOGS_DAYS", "10"),
        ])
        .unwrap();
        let p = c.printify.live().unwrap();
        assert_eq!(p.api_url, DEFAULT_PRINTIFY_API_URL);
        assert_eq!(p.shop_id, "123");
        assert_eq!(c.stripe.live().unwrap().api_base, DEFAULT_STRIPE_API_BASE);
        match &c.email.transport {
            EmailTransport::Resend(r) => assert_eq!(r.base_url, DEFAULT_RESEND_BASE_URL),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(c.retention.email_logs, Duration::from_secs(10 * DAY));
        assert_eq!(c.database_url_redacted(), "postgres://u:***@127.0.0.1/test");
        // Secrets never show up in Debug output.
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sk_test_1") && !dbg.contains("re_1") && !dbg.contains("\"pk\""));
        assert!(!dbg.contains("pw@"));
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert!(matches!(
            cfg(&[("EMAIL_PROVIDER", "pigeon")]),
            Err(ConfigError::Invalid {
                var: "EMAIL_PROVIDER",
                ..
            })
        ));
        assert!(matches!(
            cfg(&[("DATABASE_URL", "mysql://x")]),
            Err(ConfigError::Invalid {
                var: "DATABASE_URL",
                ..
            })
        ));
        assert!(matches!(
            cfg(&[("RETENTION_CARTS_DAYS", "0")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            cfg(&[("STRIPE_SECRET_KEY", "sk"), ("STRIPE_API_BASE", "ftp://x")]),
            Err(ConfigError::Invalid {
                var: "STRIPE_API_BASE",
                ..
            })
        ));
    }
}
