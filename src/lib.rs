//! Rust SDK for [Inngest](https://www.inngest.com): durable functions made of steps, served from an
//! axum `Router`, plus a local executor that runs them end to end in tests.

pub mod client;
pub mod config;
#[cfg(feature = "wip-core")]
pub mod error;
pub mod event;
#[cfg(feature = "wip-core")]
pub mod expr;
#[cfg(feature = "wip-core")]
pub mod function;
#[cfg(feature = "wip-core")]
pub mod serve;
pub(crate) mod signature;
#[cfg(feature = "wip-core")]
pub mod step;
pub mod timestr;
#[cfg(feature = "wip-core")]
pub mod wire;

#[cfg(feature = "executor")]
pub mod executor;

#[cfg(feature = "wip-core")]
pub use client::Inngest;
#[cfg(feature = "wip-core")]
pub use error::{Error, ErrorKind, NonRetriable, RetryAfter, StepError};
#[cfg(feature = "wip-core")]
pub use event::Event;
#[cfg(feature = "wip-core")]
pub use function::{Concurrency, Ctx, Function, FunctionFailed, Trigger};
#[cfg(feature = "wip-core")]
pub use step::{Invoke, InvokeTarget, Step, WaitForEvent};
