//! Rust SDK for [Inngest](https://www.inngest.com): durable functions made of steps, served from an
//! axum `Router`, plus a local executor that runs them end to end in tests.
//!
//! A handful of nouns: an [`Inngest`] client, [`Function`]s built with triggers and flow control,
//! the [`Step`] tools a handler uses, and [`serve::axum::router`] to expose them at
//! `/api/inngest`. The [`executor`] module runs the other side of the protocol locally.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod error;
pub mod event;
pub mod expr;
pub mod function;
pub mod serve;
pub(crate) mod signature;
pub mod step;
pub mod timestr;
pub mod wire;

#[cfg(feature = "executor")]
pub mod executor;

pub use client::{Inngest, SendError};
pub use config::{Config, ConfigError, Mode};
pub use error::{Error, ErrorKind, NonRetriable, RetryAfter, StepError};
pub use event::Event;
pub use function::{
    BatchEvents, Cancel, Concurrency, ConcurrencyScope, Ctx, Debounce, Function, FunctionFailed,
    RateLimit, Singleton, SingletonMode, Throttle, Timeouts, Trigger,
};
pub use serve::ServeError;
pub use step::{Invoke, InvokeTarget, Step, WaitForEvent};
