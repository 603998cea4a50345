//! Rust SDK for [Inngest](https://www.inngest.com): durable functions made of steps, served from an
//! axum `Router`, and tested end to end against a local executor.
//!
//! A handful of nouns: an [`Inngest`] client, [`Function`]s built with triggers and flow control,
//! the [`Step`] tools a handler uses, and [`serve::axum::router`] to expose them at
//! `/api/inngest`. Typed events ([`EventType`], `#[derive(Event)]`) bind an event's name to its
//! data type once, for triggers, sends, waits, cancels and invokes. With the `test-util` feature, [`testing::TestHarness`] runs them against the
//! local executor ([`inngest-executor`](https://docs.rs/inngest-executor)) in your tests.
//!
//! # Features
//! * `axum` (default): [`serve::axum::router`].
//! * `derive` (default): `#[derive(Event)]` and `#[derive(EventSet)]` for typed events.
//! * `test-util`: [`testing::TestHarness`] and the executor it drives.
//! * `encryption`: `middleware::encryption`, end-to-end encryption of step outputs, function
//!   outputs and an event field, compatible with `@inngest/middleware-encryption`.
//! * `otel`: OpenTelemetry traces: call spans parented from the incoming `traceparent`, step
//!   spans, `traceparent` on sent events ([`telemetry`]).
//! * `metrics`: call, step, error and state-size metrics through the `metrics` facade
//!   ([`telemetry`]).

#![warn(missing_docs, unreachable_pub)]
// Some crate docs link to feature-gated items (`testing`, `middleware::encryption`); without those
// features the links cannot resolve. CI documents with `--all-features`, where they must.
#![cfg_attr(
    not(all(feature = "test-util", feature = "encryption")),
    allow(rustdoc::broken_intra_doc_links)
)]
#![warn(clippy::too_many_lines)]

pub mod ai;
pub mod client;
pub mod config;
#[cfg(feature = "connect")]
pub mod connect;
pub mod error;
pub mod event;
pub mod function;
pub mod middleware;
pub mod serve;
pub mod step;
pub mod telemetry;

#[cfg(feature = "test-util")]
pub mod testing;

/// The wire protocol shared with the executor: ops, signatures, time strings, step ids.
pub use inngest_protocol as protocol;
/// Builders of Inngest expressions with correct quoting (`if`, cancellation and key expressions).
pub use inngest_protocol::quote as expr;

pub use client::{Inngest, SendError};
pub use config::{Config, ConfigError, Mode};
pub use error::{Error, ErrorKind, NonRetriable, Result, RetryAfter, StepError};
pub use event::{Event, EventSet, EventType, IntoEvent, IntoEvents};
pub use function::{
    BatchEvents, Cancel, Concurrency, ConcurrencyScope, Ctx, Debounce, Function, FunctionBuilder,
    FunctionFailed, RateLimit, Singleton, SingletonMode, Throttle, Timeouts, Trigger,
    TypedFunction, Untyped,
};
/// `#[derive(Event)] #[event(name = "...")]`: implements [`EventType`] (feature `derive`).
#[cfg(feature = "derive")]
pub use inngest_macros::Event;
/// `#[derive(EventSet)]` on an enum of event types: implements [`EventSet`] and [`IntoEvent`]
/// (feature `derive`).
#[cfg(feature = "derive")]
pub use inngest_macros::EventSet;
pub use middleware::Middleware;
pub use serve::ServeError;
pub use step::{
    FetchRequest, FetchResponse, Invoke, InvokeTarget, Signal, Step, WaitFor, WaitForEvent,
    WaitForSignal, WaitOptions,
};

/// The crate README's examples, compiled as doc tests so the crates.io page cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
