//! [`InngestBuilder`]: every setting of the client in one builder.

use std::sync::Arc;
use std::time::Duration;

use super::{HttpSettings, Inngest, RetryPolicy};
use crate::config::{ConfigError, Settings};
use crate::middleware::{Middleware, Stack};

/// Builder of an [`Inngest`] client, started with [`Inngest::builder`]: app settings (mode, keys,
/// origins, serve options), HTTP timeouts and event-send retries. Setters win over environment
/// variables, which are read only when asked for ([`InngestBuilder::from_env`]).
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the client"]
pub struct InngestBuilder {
    settings: Settings,
    http: HttpSettings,
    retry: RetryPolicy,
    middleware: Stack,
}

impl InngestBuilder {
    pub(super) fn new(app_id: String) -> InngestBuilder {
        InngestBuilder {
            settings: Settings::new(app_id),
            http: HttpSettings::default(),
            retry: RetryPolicy::default(),
            middleware: Stack::default(),
        }
    }

    /// Reads `INNGEST_*` variables from the process environment (code settings still win).
    pub fn from_env(self) -> InngestBuilder {
        self.env_source(|name| std::env::var(name).ok())
    }

    /// Reads `INNGEST_*` variables through `source` instead of the process environment.
    pub fn env_source(
        mut self,
        source: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> InngestBuilder {
        self.settings.env_source = Some(Arc::new(source));
        self
    }

    /// Reads `INNGEST_*` variables from `vars` instead of the process environment.
    pub fn env_map(self, vars: std::collections::HashMap<String, String>) -> InngestBuilder {
        self.env_source(move |name| vars.get(name).cloned())
    }

    /// Forces dev (`true`) or cloud (`false`) mode, whatever `INNGEST_DEV` says.
    pub fn dev(mut self, dev: bool) -> InngestBuilder {
        self.settings.dev = Some(dev);
        self
    }

    /// Dev mode against the Dev Server at `url` (used for both the API and the event API).
    pub fn dev_url(mut self, url: impl Into<String>) -> InngestBuilder {
        self.settings.dev = Some(true);
        self.settings.dev_url = Some(url.into());
        self
    }

    /// Event key for sending events.
    pub fn event_key(mut self, key: impl Into<String>) -> InngestBuilder {
        self.settings.event_key = Some(key.into());
        self
    }

    /// Signing key (`signkey-<env>-<hex>` or bare hex); validated by [`InngestBuilder::build`].
    pub fn signing_key(mut self, key: impl Into<String>) -> InngestBuilder {
        self.settings.signing_key = Some(key.into());
        self
    }

    /// Fallback signing key, tried when the primary one fails (key rotation).
    pub fn signing_key_fallback(mut self, key: impl Into<String>) -> InngestBuilder {
        self.settings.signing_key_fallback = Some(key.into());
        self
    }

    /// Branch environment name (`X-Inngest-Env`).
    pub fn env(mut self, env: impl Into<String>) -> InngestBuilder {
        self.settings.env = Some(env.into());
        self
    }

    /// Origin for both the API and the event API.
    pub fn base_url(mut self, url: impl Into<String>) -> InngestBuilder {
        self.settings.base_url = Some(url.into());
        self
    }

    /// API origin (wins over [`InngestBuilder::base_url`]).
    pub fn api_base_url(mut self, url: impl Into<String>) -> InngestBuilder {
        self.settings.api_base_url = Some(url.into());
        self
    }

    /// Event API origin (wins over [`InngestBuilder::base_url`]).
    pub fn event_api_base_url(mut self, url: impl Into<String>) -> InngestBuilder {
        self.settings.event_api_base_url = Some(url.into());
        self
    }

    /// Origin reported at sync (e.g. `https://my-app.example.com`).
    pub fn serve_origin(mut self, origin: impl Into<String>) -> InngestBuilder {
        self.settings.serve_origin = Some(origin.into());
        self
    }

    /// Path reported at sync (e.g. `/api/inngest`).
    pub fn serve_path(mut self, path: impl Into<String>) -> InngestBuilder {
        self.settings.serve_path = Some(path.into());
        self
    }

    /// App version reported at sync.
    pub fn app_version(mut self, version: impl Into<String>) -> InngestBuilder {
        self.settings.app_version = Some(version.into());
        self
    }

    /// Allows or denies in-band sync.
    pub fn allow_in_band_sync(mut self, allow: bool) -> InngestBuilder {
        self.settings.allow_in_band_sync = Some(allow);
        self
    }

    /// Largest request body the serve handler accepts, in bytes.
    pub fn max_body_bytes(mut self, bytes: usize) -> InngestBuilder {
        self.settings.max_body_bytes = Some(bytes);
        self
    }

    /// Framework name reported to Inngest.
    pub fn framework(mut self, framework: impl Into<String>) -> InngestBuilder {
        self.settings.framework = Some(framework.into());
        self
    }

    /// Checkpointing (the JS SDK's default since 4.x): in a discovery call, a `step.run` that
    /// executes is recorded with Inngest right away (`POST {api}/v1/checkpoint/{run_id}/async`)
    /// and the function goes on in the same call, running the next step inline too, instead of
    /// answering with the step and waiting for the next call. A function that runs several
    /// steps in a row then costs one request instead of one per step. Sleeps, waits, invokes,
    /// parallel steps, failed attempts and retry attempts still end the call as usual (as in
    /// JS 4.24); a discovery call that sees the function return answers `206 [RunComplete]`. If
    /// a checkpoint cannot be recorded, the call falls back to answering with the step (nothing
    /// is lost). Default: off.
    ///
    /// ```
    /// let client = inngest_sdk::Inngest::builder("shop").dev(true).checkpointing(true).build().unwrap();
    /// assert!(client.config().checkpointing());
    /// ```
    pub fn checkpointing(mut self, enabled: bool) -> InngestBuilder {
        self.settings.checkpointing = enabled;
        self
    }

    /// Streaming keep-alive answers on the serve router (default off; `INNGEST_STREAMING`
    /// `true`/`1` when not set here). For hosts and proxies that cut a response when no byte
    /// arrives for a while (serverless platforms, load balancers with a short idle timeout): an
    /// execution call that is still running after
    /// [`streaming_threshold`](Self::streaming_threshold) is answered `201` with the SDK
    /// headers, then one space right away and one every
    /// [`streaming_interval`](Self::streaming_interval), then the whole answer as the final
    /// chunk `{"status":…,"headers":{…},"body":"…","version":…}` (the server unwraps it, see
    /// [`serve::stream_envelope`](crate::serve::stream_envelope)). A call that finishes before the
    /// threshold is answered as usual, so fast calls cost nothing (the JS SDK streams every
    /// call). Only execution calls (POST) stream; introspection (GET), sync (PUT) and probes never
    /// do. Independent of [`checkpointing`](Self::checkpointing): a checkpointing call is one
    /// long request, which is where streaming helps.
    ///
    /// [`build`](Self::build) fails with
    /// [`ConfigError::InvalidStreaming`](crate::config::ConfigError::InvalidStreaming) when this
    /// is on in a build without the `axum` feature: [`ServeHandler::handle`] answers in full, and
    /// the axum router is what streams.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = inngest_sdk::Inngest::builder("shop")
    ///     .dev(true)
    ///     .streaming(true)
    ///     .streaming_threshold(Duration::from_secs(10))
    ///     .build()
    ///     .unwrap();
    /// assert!(client.config().streaming());
    /// assert_eq!(client.config().streaming_threshold(), Duration::from_secs(10));
    /// assert_eq!(client.config().streaming_interval(), Duration::from_secs(3));
    /// ```
    ///
    /// [`ServeHandler::handle`]: crate::serve::ServeHandler::handle
    pub fn streaming(mut self, enabled: bool) -> InngestBuilder {
        self.settings.streaming = Some(enabled);
        self
    }

    /// How long an execution call may run before a streaming endpoint answers `201` and starts
    /// the keep-alive (default 3 s). Keep it below the shortest response timeout in front of
    /// the app. `Duration::ZERO` streams every call that is not answered at once, like the JS SDK.
    pub fn streaming_threshold(mut self, threshold: Duration) -> InngestBuilder {
        self.settings.streaming_threshold = Some(threshold);
        self
    }

    /// Time between two keep-alive spaces of a streamed answer (default 3 s, the JS SDK's).
    /// Must be longer than zero ([`build`](Self::build) fails otherwise).
    pub fn streaming_interval(mut self, interval: Duration) -> InngestBuilder {
        self.settings.streaming_interval = Some(interval);
        self
    }

    /// Time limit of a whole HTTP request to Inngest, from connecting to the end of the response
    /// body (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> InngestBuilder {
        self.http.timeout = timeout;
        self
    }

    /// Time limit of connecting to Inngest (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> InngestBuilder {
        self.http.connect_timeout = timeout;
        self
    }

    /// Retries after the first failed event send attempt (default 4, i.e. 5 attempts).
    pub fn send_retries(mut self, retries: u32) -> InngestBuilder {
        self.retry.attempts = retries.saturating_add(1);
        self
    }

    /// Base delay of the exponential backoff between send attempts (default 100 ms).
    pub fn send_backoff(mut self, base: Duration) -> InngestBuilder {
        self.retry.backoff_base = base;
        self
    }

    /// Adds a middleware for every function served with this client and for its own
    /// [`send`](Inngest::send) (outside the functions' own: see
    /// [`middleware`](crate::middleware) for the order).
    pub fn middleware(self, m: impl Middleware) -> InngestBuilder {
        self.middleware_arc(Arc::new(m))
    }

    /// [`middleware`](Self::middleware) for one already shared (the test harness's list).
    pub(crate) fn middleware_arc(mut self, m: Arc<dyn Middleware>) -> InngestBuilder {
        self.middleware = self.middleware.push(m);
        self
    }

    /// Resolves the configuration (code settings, then environment variables, then defaults)
    /// and builds the client.
    pub fn build(self) -> Result<Inngest, ConfigError> {
        let config = self.settings.build()?;
        Ok(Inngest::from_parts(
            config,
            &self.http,
            self.retry,
            self.middleware,
        ))
    }
}
