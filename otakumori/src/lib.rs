//! Otakumori example app: the background jobs of the Otakumori anime shop on `inngest-sdk`.
//!
//! Module map (non-Inngest half):
//!
//! * [`config`]: environment configuration, sandbox vs live mode per service.
//! * [`db`]: SQLite/PostgreSQL pool, migrations and the typed repository used by the functions.
//! * [`webhooks`]: inbound webhook routes (Clerk, Stripe, Printify) that emit Inngest events.

pub mod config;
pub mod db;
pub mod webhooks;
