//! The local executor: the server side of the Inngest serve protocol, for tests and local development.

pub mod clock;
pub(crate) mod cron;
pub mod expr;
