//! [`AppContext`]: everything the Inngest functions need, built from [`Config`].
//!
//! `AppContext::init` connects the database (running migrations), starts the in-process sandbox
//! fakes for every service in sandbox mode, and builds the clients. Functions receive an
//! `Arc<AppContext>` and call `ctx.db`, `ctx.printify`, `ctx.stripe` and `ctx.mailer` step by step.

use std::sync::Arc;

use crate::config::{Config, EmailTransport, ServiceMode};
use crate::db::{Db, DbError};
use crate::sandbox::{FakePrintify, FakeResend, FakeStripe, SandboxServers};
use crate::services::email::{EmailProvider, Mailer, OutboxProvider, ResendProvider, SmtpProvider};
use crate::services::printify::PrintifyClient;
use crate::services::stripe::StripeClient;
use crate::services::ApiError;

/// Startup failure.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Connecting or migrating the database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A client could not be built (bad URL, TLS setup).
    #[error(transparent)]
    Client(#[from] ApiError),
    /// A sandbox server could not bind its loopback port.
    #[error("sandbox server failed to start: {0}")]
    Sandbox(#[from] std::io::Error),
}

/// Shared application state for the functions and routes.
#[derive(Debug)]
pub struct AppContext {
    /// The configuration it was built from.
    pub config: Config,
    /// Database handle.
    pub db: Db,
    /// Printify client (live or pointed at the sandbox fake).
    pub printify: PrintifyClient,
    /// Stripe client (live or pointed at the sandbox fake).
    pub stripe: StripeClient,
    /// Send-once mailer.
    pub mailer: Mailer,
    /// The fakes started for sandboxed services (kept alive as long as the context).
    pub sandbox: SandboxServers,
}

impl AppContext {
    /// Connect to `config.database_url` and build everything.
    pub async fn init(config: Config) -> Result<Arc<AppContext>, InitError> {
        let db = Db::connect(&config.database_url).await?;
        Self::init_with_db(config, db).await
    }

    /// Build everything on an existing database handle (migrations already applied).
    pub async fn init_with_db(config: Config, db: Db) -> Result<Arc<AppContext>, InitError> {
        let mut sandbox = SandboxServers {
            printify: None,
            stripe: None,
            resend: None,
        };
        let printify_settings = match &config.printify {
            ServiceMode::Live(s) => s.clone(),
            ServiceMode::Sandbox => {
                let fake = FakePrintify::start().await?;
                let s = fake.settings();
                sandbox.printify = Some(fake);
                s
            }
        };
        let stripe_settings = match &config.stripe {
            ServiceMode::Live(s) => s.clone(),
            ServiceMode::Sandbox => {
                let fake = FakeStripe::start().await?;
                let s = fake.settings();
                sandbox.stripe = Some(fake);
                s
            }
        };
        let provider: Arc<dyn EmailProvider> = match &config.email.transport {
            EmailTransport::Log => Arc::new(OutboxProvider::new(db.clone())),
            EmailTransport::Resend(s) => Arc::new(ResendProvider::new(s)?),
            EmailTransport::Smtp { url } => Arc::new(SmtpProvider::from_url(url)?),
            EmailTransport::Sandbox => {
                let fake = FakeResend::start().await?;
                let p = ResendProvider::new(&fake.settings())?;
                sandbox.resend = Some(fake);
                Arc::new(p)
            }
        };
        let mailer = Mailer::new(
            provider,
            db.clone(),
            config.email.from.clone(),
            config.email.admin_alert_email.clone(),
        );
        tracing::info!(
            database = %config.database_url_redacted(),
            printify = if config.printify.is_sandbox() { "sandbox" } else { "live" },
            stripe = if config.stripe.is_sandbox() { "sandbox" } else { "live" },
            email = mailer.provider_name(),
            "otakumori services ready"
        );
        Ok(Arc::new(AppContext {
            printify: PrintifyClient::new(&printify_settings)?,
            stripe: StripeClient::new(&stripe_settings)?,
            mailer,
            db,
            sandbox,
            config,
        }))
    }
}
