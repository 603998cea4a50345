//! Rust SDK for [Inngest](https://www.inngest.com): durable functions made of steps, served from an
//! axum `Router`, plus a local executor that runs them end to end in tests.

pub mod client;
pub mod config;
pub mod event;
pub(crate) mod signature;
pub mod timestr;

#[cfg(feature = "executor")]
pub mod executor;
