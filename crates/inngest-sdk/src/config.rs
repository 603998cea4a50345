//! SDK configuration: mode (cloud/dev), keys, origins and serve options.
//!
//! Values come from code (the [`InngestBuilder`] setters) and, when asked for, from environment
//! variables (`INNGEST_*`). Code always wins over the environment. Reading the environment is
//! opt-in: call [`InngestBuilder::from_env`] for the process environment, or
//! [`InngestBuilder::env_source`] / [`InngestBuilder::env_map`] to supply variables (handy in
//! tests). The resolved [`Config`] is read from the client with [`Inngest::config`].
//!
//! ```
//! use inngest_sdk::config::Mode;
//! use inngest_sdk::Inngest;
//!
//! let client = Inngest::builder("billing").dev(true).build().unwrap();
//! assert_eq!(client.config().mode(), Mode::Dev);
//! assert_eq!(client.config().api_origin().as_str(), "http://localhost:8288/");
//! ```
//!
//! [`InngestBuilder`]: crate::client::InngestBuilder
//! [`InngestBuilder::from_env`]: crate::client::InngestBuilder::from_env
//! [`InngestBuilder::env_source`]: crate::client::InngestBuilder::env_source
//! [`InngestBuilder::env_map`]: crate::client::InngestBuilder::env_map
//! [`Inngest::config`]: crate::Inngest::config

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use url::Url;

pub use inngest_protocol::signature::SigningKey;

/// Default API origin in cloud mode.
pub const DEFAULT_CLOUD_API_ORIGIN: &str = "https://api.inngest.com";
/// Default event API origin in cloud mode.
pub const DEFAULT_CLOUD_EVENT_API_ORIGIN: &str = "https://inn.gs";
/// Default origin of the Dev Server (API and event API alike).
pub const DEFAULT_DEV_ORIGIN: &str = "http://localhost:8288";
/// Default largest request body the serve handler accepts: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Default framework name reported to Inngest.
pub const DEFAULT_FRAMEWORK: &str = "axum";
/// Default time an execution call may take before a streaming serve endpoint switches to a
/// streamed `201` answer: 3 s.
pub const DEFAULT_STREAMING_THRESHOLD: std::time::Duration = std::time::Duration::from_secs(3);
/// Default time between two keep-alive spaces of a streamed answer: 3 s (the JS SDK's interval).
pub const DEFAULT_STREAMING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether the SDK talks to Inngest Cloud (or a self-hosted server) or to a local Dev Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Production: signatures are required and verified.
    Cloud,
    /// Local development against the Dev Server: no keys needed, signatures not checked.
    Dev,
}

impl Mode {
    /// The wire name: `"cloud"` or `"dev"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cloud => "cloud",
            Mode::Dev => "dev",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Invalid or incomplete configuration. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Cloud mode needs a signing key.
    #[error(
        "no signing key: cloud mode requires one; set INNGEST_SIGNING_KEY, \
         or set INNGEST_DEV=1 to use the local Dev Server"
    )]
    MissingSigningKey,
    /// A URL setting could not be used.
    #[error("invalid URL in {field} ({value:?}): {reason}")]
    InvalidUrl {
        /// Environment variable or builder setter the value came from.
        field: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A signing key is not `signkey-<env>-<hex>` or bare even-length hex.
    #[error("invalid {field}: {reason}")]
    InvalidSigningKey {
        /// Environment variable or builder setter the key came from.
        field: String,
        /// What is wrong with it (never the key itself).
        reason: String,
    },
    /// The app id is empty.
    #[error("the app id must not be empty")]
    EmptyAppId,
    /// The streaming settings cannot be used: a zero keep-alive interval, or streaming on in a
    /// build without the `axum` feature (the serve router is what streams).
    #[error("invalid streaming setting: {reason}")]
    InvalidStreaming {
        /// What is wrong.
        reason: String,
    },
    /// A boolean setting has an unrecognised value.
    #[error("invalid value {value:?} for {var}: expected 1, true, 0 or false")]
    InvalidBool {
        /// The environment variable.
        var: String,
        /// The offending value.
        value: String,
    },
}

/// Resolved SDK configuration, read from the client with [`Inngest::config`](crate::Inngest::config)
/// (set with [`Inngest::builder`](crate::Inngest::builder)).
///
/// `Debug` output redacts the event and signing keys.
#[derive(Clone)]
pub struct Config {
    app_id: String,
    app_version: Option<String>,
    mode: Mode,
    event_key: Option<String>,
    signing_key: Option<SigningKey>,
    signing_key_fallback: Option<SigningKey>,
    env: Option<String>,
    api_origin: Url,
    event_api_origin: Url,
    serve_origin: Option<String>,
    serve_path: Option<String>,
    allow_in_band_sync: bool,
    max_body_bytes: usize,
    framework: String,
    checkpointing: bool,
    streaming: bool,
    streaming_threshold: std::time::Duration,
    streaming_interval: std::time::Duration,
}

impl Config {
    /// The app id (functions are registered as `<app_id>-<fn_id>`).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Optional app version (`INNGEST_APP_VERSION`).
    pub fn app_version(&self) -> Option<&str> {
        self.app_version.as_deref()
    }

    /// Cloud or dev.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `true` in dev mode.
    pub fn is_dev(&self) -> bool {
        self.mode == Mode::Dev
    }

    /// The event key used to send events, if any.
    pub fn event_key(&self) -> Option<&str> {
        self.event_key.as_deref()
    }

    /// `hex(SHA-256(event_key))`, as reported by authenticated introspection.
    pub fn event_key_hash(&self) -> Option<String> {
        self.event_key
            .as_deref()
            .map(|k| hex::encode(Sha256::digest(k.as_bytes())))
    }

    /// The primary signing key.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing_key.as_ref()
    }

    /// The fallback signing key (key rotation).
    pub fn signing_key_fallback(&self) -> Option<&SigningKey> {
        self.signing_key_fallback.as_ref()
    }

    /// Branch environment name, sent as `X-Inngest-Env`.
    pub fn env(&self) -> Option<&str> {
        self.env.as_deref()
    }

    /// Origin of the Inngest API (`/fn/register`, `/v0`, `/v1`).
    pub fn api_origin(&self) -> &Url {
        &self.api_origin
    }

    /// Origin of the event API (`/e/<key>`).
    pub fn event_api_origin(&self) -> &Url {
        &self.event_api_origin
    }

    /// Origin to report at sync instead of the one seen on the request.
    pub fn serve_origin(&self) -> Option<&str> {
        self.serve_origin.as_deref()
    }

    /// Path to report at sync instead of the one seen on the request.
    pub fn serve_path(&self) -> Option<&str> {
        self.serve_path.as_deref()
    }

    /// Whether in-band sync is allowed (default `true`).
    pub fn allow_in_band_sync(&self) -> bool {
        self.allow_in_band_sync
    }

    /// Largest request body the serve handler accepts, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Framework name reported to Inngest (default `"axum"`).
    pub fn framework(&self) -> &str {
        &self.framework
    }

    /// Whether steps are checkpointed (default `false`): see
    /// [`InngestBuilder::checkpointing`](crate::client::InngestBuilder::checkpointing).
    pub fn checkpointing(&self) -> bool {
        self.checkpointing
    }

    /// Whether slow execution calls are answered as streamed `201` keep-alive responses
    /// (default `false`): see
    /// [`InngestBuilder::streaming`](crate::client::InngestBuilder::streaming).
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// How long an execution call may take before its answer is streamed (default 3 s): see
    /// [`InngestBuilder::streaming_threshold`](crate::client::InngestBuilder::streaming_threshold).
    pub fn streaming_threshold(&self) -> std::time::Duration {
        self.streaming_threshold
    }

    /// Time between two keep-alive spaces of a streamed answer (default 3 s): see
    /// [`InngestBuilder::streaming_interval`](crate::client::InngestBuilder::streaming_interval).
    pub fn streaming_interval(&self) -> std::time::Duration {
        self.streaming_interval
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |present: bool| if present { "[redacted]" } else { "None" };
        f.debug_struct("Config")
            .field("app_id", &self.app_id)
            .field("app_version", &self.app_version)
            .field("mode", &self.mode)
            .field("event_key", &redact(self.event_key.is_some()))
            .field("signing_key", &redact(self.signing_key.is_some()))
            .field(
                "signing_key_fallback",
                &redact(self.signing_key_fallback.is_some()),
            )
            .field("env", &self.env)
            .field("api_origin", &self.api_origin.as_str())
            .field("event_api_origin", &self.event_api_origin.as_str())
            .field("serve_origin", &self.serve_origin)
            .field("serve_path", &self.serve_path)
            .field("allow_in_band_sync", &self.allow_in_band_sync)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("framework", &self.framework)
            .field("checkpointing", &self.checkpointing)
            .field("streaming", &self.streaming)
            .field("streaming_threshold", &self.streaming_threshold)
            .field("streaming_interval", &self.streaming_interval)
            .finish()
    }
}

type EnvSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What [`InngestBuilder`](crate::client::InngestBuilder) collected: code settings and where to
/// read environment variables from, resolved into a [`Config`] by [`Settings::build`].
#[derive(Clone, Default)]
pub(crate) struct Settings {
    pub(crate) app_id: String,
    pub(crate) env_source: Option<EnvSource>,
    pub(crate) dev: Option<bool>,
    pub(crate) dev_url: Option<String>,
    pub(crate) event_key: Option<String>,
    pub(crate) signing_key: Option<String>,
    pub(crate) signing_key_fallback: Option<String>,
    pub(crate) env: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) api_base_url: Option<String>,
    pub(crate) event_api_base_url: Option<String>,
    pub(crate) serve_origin: Option<String>,
    pub(crate) serve_path: Option<String>,
    pub(crate) app_version: Option<String>,
    pub(crate) allow_in_band_sync: Option<bool>,
    pub(crate) max_body_bytes: Option<usize>,
    pub(crate) framework: Option<String>,
    pub(crate) checkpointing: bool,
    pub(crate) streaming: Option<bool>,
    pub(crate) streaming_threshold: Option<std::time::Duration>,
    pub(crate) streaming_interval: Option<std::time::Duration>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("app_id", &self.app_id)
            .field("reads_env", &self.env_source.is_some())
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub(crate) fn new(app_id: String) -> Settings {
        Settings {
            app_id,
            ..Settings::default()
        }
    }

    /// Resolves code settings, then environment variables, then defaults.
    pub(crate) fn build(self) -> Result<Config, ConfigError> {
        let app_id = self.app_id.trim().to_owned();
        if app_id.is_empty() {
            return Err(ConfigError::EmptyAppId);
        }
        let (mode, dev_origin) = self.resolve_mode()?;
        let (api_origin, event_api_origin) = self.resolve_origins(mode, dev_origin)?;
        let signing_key = self.key("signing_key", "INNGEST_SIGNING_KEY", &self.signing_key)?;
        let signing_key_fallback = self.key(
            "signing_key_fallback",
            "INNGEST_SIGNING_KEY_FALLBACK",
            &self.signing_key_fallback,
        )?;
        if mode == Mode::Cloud && signing_key.is_none() {
            return Err(ConfigError::MissingSigningKey);
        }
        Ok(Config {
            app_id,
            app_version: self.text(&self.app_version, &["INNGEST_APP_VERSION"]),
            mode,
            event_key: self.text(&self.event_key, &["INNGEST_EVENT_KEY"]),
            signing_key,
            signing_key_fallback,
            env: self.text(&self.env, &["INNGEST_ENV"]),
            api_origin,
            event_api_origin,
            serve_origin: self.text(
                &self.serve_origin,
                &["INNGEST_SERVE_ORIGIN", "INNGEST_SERVE_HOST"],
            ),
            serve_path: self.text(&self.serve_path, &["INNGEST_SERVE_PATH"]),
            allow_in_band_sync: self.resolve_in_band_sync()?,
            max_body_bytes: self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            framework: self
                .framework
                .clone()
                .unwrap_or_else(|| DEFAULT_FRAMEWORK.to_owned()),
            checkpointing: self.checkpointing,
            streaming: self.resolve_streaming()?,
            streaming_threshold: self
                .streaming_threshold
                .unwrap_or(DEFAULT_STREAMING_THRESHOLD),
            streaming_interval: self.streaming_interval()?,
        })
    }

    /// Streaming: the code setting, else `INNGEST_STREAMING` (JS 4.24's reading of it), else off.
    fn resolve_streaming(&self) -> Result<bool, ConfigError> {
        let on = match self.streaming {
            Some(on) => on,
            None => self
                .var("INNGEST_STREAMING")
                .is_some_and(|v| parse_streaming_var(&v)),
        };
        if on && !cfg!(feature = "axum") {
            return Err(ConfigError::InvalidStreaming {
                reason: "streaming needs the `axum` feature: its serve router is what streams \
                         (ServeHandler::handle always answers in full)"
                    .to_owned(),
            });
        }
        Ok(on)
    }

    fn streaming_interval(&self) -> Result<std::time::Duration, ConfigError> {
        match self.streaming_interval {
            Some(d) if d.is_zero() => Err(ConfigError::InvalidStreaming {
                reason: "the keep-alive interval must be longer than zero".to_owned(),
            }),
            Some(d) => Ok(d),
            None => Ok(DEFAULT_STREAMING_INTERVAL),
        }
    }

    /// An environment variable, trimmed; `None` when unset or when no env source is configured.
    fn var(&self, name: &str) -> Option<String> {
        let source = self.env_source.as_ref()?;
        source(name).map(|v| v.trim().to_owned())
    }

    /// A non-empty environment variable.
    fn non_empty_var(&self, name: &str) -> Option<(String, String)> {
        self.var(name)
            .filter(|v| !v.is_empty())
            .map(|v| (name.to_owned(), v))
    }

    /// A text setting: the code value, else the first non-empty variable; empty means unset.
    fn text(&self, code: &Option<String>, vars: &[&str]) -> Option<String> {
        let from_code = code.as_deref().map(|v| v.trim().to_owned());
        from_code
            .or_else(|| vars.iter().find_map(|v| self.non_empty_var(v)).map(|p| p.1))
            .filter(|v| !v.is_empty())
    }

    fn key(
        &self,
        setter: &str,
        var: &str,
        code: &Option<String>,
    ) -> Result<Option<SigningKey>, ConfigError> {
        let (field, value) = match code {
            Some(v) => (setter.to_owned(), v.clone()),
            None => match self.non_empty_var(var) {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        if value.trim().is_empty() {
            return Ok(None);
        }
        SigningKey::parse(&value)
            .map(Some)
            .map_err(|e| ConfigError::InvalidSigningKey {
                field,
                reason: e.reason().to_owned(),
            })
    }

    /// The mode and, when `INNGEST_DEV` or `dev_url` holds a URL, the Dev Server origin.
    fn resolve_mode(&self) -> Result<(Mode, Option<Url>), ConfigError> {
        if let Some(url) = &self.dev_url {
            return Ok((Mode::Dev, Some(parse_origin("dev_url", url)?)));
        }
        let from_env = match self.var("INNGEST_DEV") {
            Some(value) => Some(parse_dev_var(&value)?),
            None => None,
        };
        let env_url = from_env.as_ref().and_then(|(_, url)| url.clone());
        let mode = match (self.dev, &from_env) {
            (Some(true), _) => Mode::Dev,
            (Some(false), _) => Mode::Cloud,
            (None, Some((mode, _))) => *mode,
            (None, None) => Mode::Cloud,
        };
        Ok((mode, env_url.filter(|_| mode == Mode::Dev)))
    }

    /// API and event API origins: code (specific, base, dev URL), then env, then mode defaults.
    fn resolve_origins(
        &self,
        mode: Mode,
        dev_origin: Option<Url>,
    ) -> Result<(Url, Url), ConfigError> {
        let default = match mode {
            Mode::Cloud => (DEFAULT_CLOUD_API_ORIGIN, DEFAULT_CLOUD_EVENT_API_ORIGIN),
            Mode::Dev => (DEFAULT_DEV_ORIGIN, DEFAULT_DEV_ORIGIN),
        };
        let api = self.origin(
            [
                ("api_base_url", &self.api_base_url),
                ("base_url", &self.base_url),
            ],
            ["INNGEST_API_BASE_URL", "INNGEST_BASE_URL"],
            &dev_origin,
            default.0,
        )?;
        let events = self.origin(
            [
                ("event_api_base_url", &self.event_api_base_url),
                ("base_url", &self.base_url),
            ],
            ["INNGEST_EVENT_API_BASE_URL", "INNGEST_BASE_URL"],
            &dev_origin,
            default.1,
        )?;
        Ok((api, events))
    }

    fn origin(
        &self,
        code: [(&str, &Option<String>); 2],
        vars: [&str; 2],
        dev_origin: &Option<Url>,
        default: &str,
    ) -> Result<Url, ConfigError> {
        let from_code = code
            .into_iter()
            .find_map(|(field, v)| v.as_ref().map(|v| (field.to_owned(), v.clone())));
        if let Some((field, value)) = from_code {
            return parse_origin(&field, &value);
        }
        if let (Some(url), true) = (dev_origin, self.dev_url.is_some()) {
            return Ok(url.clone());
        }
        if let Some((var, value)) = vars.iter().find_map(|v| self.non_empty_var(v)) {
            return parse_origin(&var, &value);
        }
        match dev_origin {
            Some(url) => Ok(url.clone()),
            None => parse_origin("default origin", default),
        }
    }

    fn resolve_in_band_sync(&self) -> Result<bool, ConfigError> {
        if let Some(allow) = self.allow_in_band_sync {
            return Ok(allow);
        }
        let var = "INNGEST_ALLOW_IN_BAND_SYNC";
        match self.var(var) {
            None => Ok(true),
            Some(v) if v.is_empty() => Ok(true),
            Some(v) => parse_bool(&v).ok_or(ConfigError::InvalidBool {
                var: var.to_owned(),
                value: v,
            }),
        }
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// `INNGEST_STREAMING` (already trimmed), as JS 4.24 reads it: `true`/`1` on, `false`/`0` or
/// empty off (any case); the old `allow`/`force` are on with a deprecation warning; anything
/// else is off with a warning.
fn parse_streaming_var(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    match lower.as_str() {
        "" => false,
        "allow" | "force" => {
            tracing::warn!(
                "INNGEST_STREAMING={lower} is deprecated; set INNGEST_STREAMING=true instead"
            );
            true
        }
        other => parse_bool(other).unwrap_or_else(|| {
            tracing::warn!(
                "INNGEST_STREAMING has an unrecognised value (expected true, 1, false or 0): \
                 streaming stays off"
            );
            false
        }),
    }
}

/// `INNGEST_DEV`: `1`/`true` → dev, `0`/`false`/empty → cloud, an http(s) URL → dev at that URL.
fn parse_dev_var(value: &str) -> Result<(Mode, Option<Url>), ConfigError> {
    if value.is_empty() {
        return Ok((Mode::Cloud, None));
    }
    if let Some(dev) = parse_bool(value) {
        let mode = if dev { Mode::Dev } else { Mode::Cloud };
        return Ok((mode, None));
    }
    match parse_origin("INNGEST_DEV", value) {
        Ok(url) => Ok((Mode::Dev, Some(url))),
        Err(_) => Err(ConfigError::InvalidBool {
            var: "INNGEST_DEV".to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Parses an http(s) URL with a host; the result's path always ends with `/`.
fn parse_origin(field: &str, value: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(value.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().unwrap_or("").is_empty() {
        return Err(invalid("the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Inngest, InngestBuilder};

    /// The configuration a builder resolves to.
    trait Resolve {
        fn resolve(self) -> Result<Config, ConfigError>;
    }

    impl Resolve for InngestBuilder {
        fn resolve(self) -> Result<Config, ConfigError> {
            self.build().map(|client| client.config().clone())
        }
    }

    const KEY: &str =
        "signkey-prod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn with_env(vars: &[(&str, &str)]) -> InngestBuilder {
        let map = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Inngest::builder("app").env_map(map)
    }

    #[test]
    fn cloud_defaults() {
        let c = with_env(&[("INNGEST_SIGNING_KEY", KEY)]).resolve().unwrap();
        assert_eq!(c.mode(), Mode::Cloud);
        assert_eq!(c.mode().as_str(), "cloud");
        assert_eq!(c.api_origin().as_str(), "https://api.inngest.com/");
        assert_eq!(c.event_api_origin().as_str(), "https://inn.gs/");
        assert!(c.event_key().is_none());
        assert!(c.allow_in_band_sync());
        assert_eq!(c.max_body_bytes(), 64 * 1024 * 1024);
        assert_eq!(c.framework(), "axum");
        assert_eq!(c.app_id(), "app");
        assert!(c.signing_key().is_some());
        assert!(c.signing_key_fallback().is_none());
    }

    #[test]
    fn cloud_without_signing_key_fails_with_hint() {
        let err = with_env(&[]).resolve().unwrap_err();
        assert_eq!(err, ConfigError::MissingSigningKey);
        let msg = err.to_string();
        assert!(msg.contains("INNGEST_SIGNING_KEY") && msg.contains("INNGEST_DEV=1"));
    }

    #[test]
    fn no_env_read_unless_asked() {
        // Without an env source the builder must not look at the process environment.
        let c = Inngest::builder("app").dev(true).resolve().unwrap();
        assert!(c.signing_key().is_none() && c.event_key().is_none() && c.env().is_none());
    }

    #[test]
    fn inngest_dev_values() {
        for v in ["1", "true", "TRUE"] {
            let c = with_env(&[("INNGEST_DEV", v)]).resolve().unwrap();
            assert_eq!(c.mode(), Mode::Dev, "{v}");
            assert_eq!(c.api_origin().as_str(), "http://localhost:8288/");
            assert_eq!(c.event_api_origin().as_str(), "http://localhost:8288/");
        }
        for v in ["0", "false", ""] {
            let c = with_env(&[("INNGEST_DEV", v), ("INNGEST_SIGNING_KEY", KEY)])
                .resolve()
                .unwrap();
            assert_eq!(c.mode(), Mode::Cloud, "{v}");
        }
        let c = with_env(&[("INNGEST_DEV", "http://127.0.0.1:9999")])
            .resolve()
            .unwrap();
        assert_eq!(c.mode(), Mode::Dev);
        assert_eq!(c.api_origin().as_str(), "http://127.0.0.1:9999/");
        assert_eq!(c.event_api_origin().as_str(), "http://127.0.0.1:9999/");
        let err = with_env(&[("INNGEST_DEV", "maybe")]).resolve().unwrap_err();
        assert!(matches!(err, ConfigError::InvalidBool { ref var, .. } if var == "INNGEST_DEV"));
    }

    #[test]
    fn code_overrides_env() {
        let c = with_env(&[
            ("INNGEST_DEV", "1"),
            ("INNGEST_EVENT_KEY", "env-key"),
            ("INNGEST_ENV", "env-branch"),
        ])
        .dev(false)
        .signing_key(KEY)
        .event_key("code-key")
        .env("code-branch")
        .resolve()
        .unwrap();
        assert_eq!(c.mode(), Mode::Cloud);
        assert_eq!(c.event_key(), Some("code-key"));
        assert_eq!(c.env(), Some("code-branch"));
        let c = with_env(&[("INNGEST_DEV", "0")])
            .dev(true)
            .resolve()
            .unwrap();
        assert_eq!(c.mode(), Mode::Dev);
    }

    #[test]
    fn origin_precedence() {
        let c = with_env(&[
            ("INNGEST_DEV", "1"),
            ("INNGEST_BASE_URL", "http://base:1"),
            ("INNGEST_EVENT_API_BASE_URL", "http://events:2/prefix"),
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.api_origin().as_str(), "http://base:1/");
        assert_eq!(c.event_api_origin().as_str(), "http://events:2/prefix/");

        let c = with_env(&[
            ("INNGEST_DEV", "1"),
            ("INNGEST_API_BASE_URL", "http://env:1"),
        ])
        .base_url("http://code:3")
        .resolve()
        .unwrap();
        assert_eq!(c.api_origin().as_str(), "http://code:3/");
        assert_eq!(c.event_api_origin().as_str(), "http://code:3/");

        let c = Inngest::builder("app")
            .dev_url("http://127.0.0.1:5555")
            .api_base_url("http://api:1")
            .resolve()
            .unwrap();
        assert_eq!(c.mode(), Mode::Dev);
        assert_eq!(c.api_origin().as_str(), "http://api:1/");
        assert_eq!(c.event_api_origin().as_str(), "http://127.0.0.1:5555/");
    }

    #[test]
    fn invalid_urls() {
        for bad in ["not a url", "ftp://x", "http://", "http://h/?q=1"] {
            let err = with_env(&[("INNGEST_DEV", "1"), ("INNGEST_BASE_URL", bad)])
                .resolve()
                .unwrap_err();
            match err {
                ConfigError::InvalidUrl { field, value, .. } => {
                    assert_eq!(field, "INNGEST_BASE_URL");
                    assert_eq!(value, bad);
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let err = Inngest::builder("a").dev_url("nope").resolve().unwrap_err();
        assert!(matches!(err, ConfigError::InvalidUrl { ref field, .. } if field == "dev_url"));
    }

    #[test]
    fn signing_keys_validated_and_named() {
        let err = with_env(&[("INNGEST_SIGNING_KEY", "signkey-prod-xyz")])
            .resolve()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidSigningKey { ref field, .. } if field == "INNGEST_SIGNING_KEY")
        );
        assert!(!err.to_string().contains("xyz"));
        let err = Inngest::builder("a")
            .dev(true)
            .signing_key_fallback("abc")
            .resolve()
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidSigningKey { ref field, .. } if field == "signing_key_fallback")
        );
        let c = with_env(&[
            ("INNGEST_SIGNING_KEY", KEY),
            ("INNGEST_SIGNING_KEY_FALLBACK", "signkey-prod-abcd"),
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.signing_key_fallback().unwrap().hmac_key(), b"abcd");
    }

    #[test]
    fn serve_and_misc_vars() {
        let c = with_env(&[
            ("INNGEST_DEV", "1"),
            ("INNGEST_SERVE_HOST", "https://old.example.com"),
            ("INNGEST_SERVE_PATH", "/custom/inngest"),
            ("INNGEST_APP_VERSION", "v42"),
            ("INNGEST_ALLOW_IN_BAND_SYNC", "false"),
            ("INNGEST_EVENT_KEY", ""),
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.serve_origin(), Some("https://old.example.com"));
        assert_eq!(c.serve_path(), Some("/custom/inngest"));
        assert_eq!(c.app_version(), Some("v42"));
        assert!(!c.allow_in_band_sync());
        assert_eq!(c.event_key(), None);

        let c = with_env(&[
            ("INNGEST_DEV", "1"),
            ("INNGEST_SERVE_HOST", "https://old.example.com"),
            ("INNGEST_SERVE_ORIGIN", "https://new.example.com"),
            ("INNGEST_ALLOW_IN_BAND_SYNC", "1"),
        ])
        .allow_in_band_sync(false)
        .max_body_bytes(10)
        .resolve()
        .unwrap();
        assert_eq!(c.serve_origin(), Some("https://new.example.com"));
        assert!(!c.allow_in_band_sync());
        assert_eq!(c.max_body_bytes(), 10);

        let err = with_env(&[("INNGEST_DEV", "1"), ("INNGEST_ALLOW_IN_BAND_SYNC", "nah")])
            .resolve()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidBool { .. }));
    }

    /// The `WARN` lines logged while `f` runs.
    #[cfg(feature = "axum")]
    fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
        #[derive(Clone, Default)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_writer(move || writer.clone())
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        (out, text.lines().map(str::to_owned).collect())
    }

    #[cfg(feature = "axum")]
    #[test]
    fn inngest_streaming_values() {
        const DEPRECATED: &str = "is deprecated; set INNGEST_STREAMING=true instead";
        const UNRECOGNISED: &str = "INNGEST_STREAMING has an unrecognised value (expected true, 1, false or 0): streaming stays off";
        // (value, streaming, the warning logged)
        let table: &[(Option<&str>, bool, Option<&str>)] = &[
            (None, false, None),
            (Some("true"), true, None),
            (Some("1"), true, None),
            (Some("  TRUE \n"), true, None),
            (Some("True"), true, None),
            (Some("false"), false, None),
            (Some("0"), false, None),
            (Some(" FALSE "), false, None),
            (Some(""), false, None),
            (Some("   "), false, None),
            (Some("allow"), true, Some(DEPRECATED)),
            (Some(" Force "), true, Some(DEPRECATED)),
            (Some("yes"), false, Some(UNRECOGNISED)),
            (Some("on"), false, Some(UNRECOGNISED)),
            (Some("2"), false, Some(UNRECOGNISED)),
        ];
        for (value, streaming, warning) in table {
            let vars: Vec<(&str, &str)> = match value {
                Some(v) => vec![("INNGEST_DEV", "1"), ("INNGEST_STREAMING", v)],
                None => vec![("INNGEST_DEV", "1")],
            };
            let (c, warnings) = warnings_of(|| with_env(&vars).resolve().unwrap());
            assert_eq!(c.streaming(), *streaming, "{value:?}");
            match warning {
                None => assert!(warnings.is_empty(), "{value:?}: {warnings:?}"),
                Some(w) => {
                    assert_eq!(warnings.len(), 1, "{value:?}: {warnings:?}");
                    assert!(warnings[0].starts_with(" WARN "), "{warnings:?}");
                    assert!(warnings[0].ends_with(w), "{value:?}: {warnings:?}");
                }
            }
        }
        let (_, warnings) = warnings_of(|| {
            with_env(&[("INNGEST_DEV", "1"), ("INNGEST_STREAMING", "FORCE")]).resolve()
        });
        assert_eq!(
            warnings,
            [" WARN INNGEST_STREAMING=force is deprecated; set INNGEST_STREAMING=true instead"]
        );
        // The builder setting wins over the variable, and a bad variable is not read then.
        let (c, warnings) = warnings_of(|| {
            with_env(&[("INNGEST_DEV", "1"), ("INNGEST_STREAMING", "junk")])
                .streaming(true)
                .resolve()
                .unwrap()
        });
        assert!(c.streaming() && warnings.is_empty());
        let c = with_env(&[("INNGEST_DEV", "1"), ("INNGEST_STREAMING", "1")])
            .streaming(false)
            .resolve()
            .unwrap();
        assert!(!c.streaming());
        // The environment is read only when asked.
        assert!(!Inngest::builder("app")
            .dev(true)
            .resolve()
            .unwrap()
            .streaming());
    }

    #[cfg(feature = "axum")]
    #[test]
    fn streaming_timing() {
        use std::time::Duration;
        let c = Inngest::builder("app").dev(true).resolve().unwrap();
        assert_eq!(
            (
                c.streaming(),
                c.streaming_threshold(),
                c.streaming_interval()
            ),
            (false, Duration::from_secs(3), Duration::from_secs(3))
        );
        let c = Inngest::builder("app")
            .dev(true)
            .streaming(true)
            .streaming_threshold(Duration::ZERO)
            .streaming_interval(Duration::from_millis(250))
            .resolve()
            .unwrap();
        assert_eq!(
            (
                c.streaming(),
                c.streaming_threshold(),
                c.streaming_interval()
            ),
            (true, Duration::ZERO, Duration::from_millis(250))
        );
        let err = Inngest::builder("app")
            .dev(true)
            .streaming(true)
            .streaming_interval(Duration::ZERO)
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid streaming setting: the keep-alive interval must be longer than zero"
        );
        // A zero interval is refused even with streaming off: the setting is wrong either way.
        assert!(matches!(
            Inngest::builder("app")
                .dev(true)
                .streaming_interval(Duration::ZERO)
                .resolve(),
            Err(ConfigError::InvalidStreaming { .. })
        ));
    }

    #[cfg(not(feature = "axum"))]
    #[test]
    fn streaming_needs_the_axum_feature() {
        let err = Inngest::builder("app")
            .dev(true)
            .streaming(true)
            .resolve()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidStreaming { .. }));
        assert!(err.to_string().contains("the `axum` feature"), "{err}");
        let err = with_env(&[("INNGEST_DEV", "1"), ("INNGEST_STREAMING", "true")])
            .resolve()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidStreaming { .. }));
        assert!(!with_env(&[("INNGEST_DEV", "1")])
            .resolve()
            .unwrap()
            .streaming());
    }

    #[test]
    fn empty_app_id() {
        assert_eq!(
            Inngest::builder("  ").dev(true).resolve().unwrap_err(),
            ConfigError::EmptyAppId
        );
    }

    #[test]
    fn debug_redacts_keys() {
        let c = with_env(&[
            ("INNGEST_SIGNING_KEY", KEY),
            ("INNGEST_SIGNING_KEY_FALLBACK", "signkey-prod-abcd"),
            ("INNGEST_EVENT_KEY", "secret-event-key"),
        ])
        .resolve()
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789"), "{dbg}");
        assert!(!dbg.contains("abcd"), "{dbg}");
        assert!(!dbg.contains("secret-event-key"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn event_key_hash() {
        let c = Inngest::builder("a")
            .dev(true)
            .event_key("my-event-key")
            .resolve()
            .unwrap();
        assert_eq!(
            c.event_key_hash().as_deref(),
            Some("756db3455bd70816c089ed7fcd514ab0e66cf5cdf62ccb7a3bca66d96ee3132c")
        );
    }
}
