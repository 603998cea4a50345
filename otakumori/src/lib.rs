//! Otakumori example app: the background jobs of the Otakumori anime shop on `inngest-sdk`.
//!
//! Module map (non-Inngest half):
//!
//! * [`config`]: environment configuration, sandbox vs live mode per service.
//! * [`db`]: SQLite/PostgreSQL pool, migrations and the typed repository used by the functions.
//! * [`services`]: Printify, Stripe and email clients with retriable/permanent error classes.
//! * [`sandbox`]: loopback fake Printify/Stripe/Resend servers, used by tests and as the built-in
//!   stand-ins when no API keys are configured.
//! * [`context`]: wires config, database, sandbox fakes and clients into one [`context::AppContext`].
//! * [`webhooks`]: inbound webhook routes (Clerk, Stripe, Printify) that emit Inngest events.
//! * [`telemetry`]: `/metrics` (Prometheus) and OTLP traces when `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   is set.

#![warn(missing_docs, unreachable_pub)]

pub mod app;
pub mod config;
pub mod context;
pub mod db;
pub mod events;
pub mod functions;
pub mod sandbox;
pub mod services;
pub mod telemetry;
pub mod webhooks;
