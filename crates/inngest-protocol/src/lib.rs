//! The Inngest serve protocol as data: what an Inngest server and an SDK's serve endpoint say to
//! each other, shared by [`inngest-sdk`](https://docs.rs/inngest-sdk) (the app side) and
//! [`inngest-executor`](https://docs.rs/inngest-executor) (the local server side).
//!
//! Nothing here is async and nothing does I/O:
//!
//! * [`wire`]: execution requests, ops, the error object, header and query names.
//! * [`register`]: the register (sync) payload and each function's configuration, the
//!   introspection and in-band sync bodies.
//! * [`signature`]: signing keys, `X-Inngest-Signature` signing and verification, the API bearer.
//! * [`timestr`]: the protocol's duration strings (`"1h30m"`) and instants.
//! * [`step_id`]: hashed step ids (`hex(SHA-1(id))`, `id:n` for repeats).
//! * [`connect`] (feature `connect`): the protobuf messages of the connect transport, where a
//!   worker dials out to the gateway over a WebSocket.
//! * [`expr`]: parsing (and so validation) of Inngest's CEL expressions; [`quote`] builds them
//!   with correct quoting.
//!
//! ```
//! use inngest_protocol::{step_id, timestr};
//! assert_eq!(step_id::hash_id("my-step-id"), "e7d8a2f140845095749d60246ff1110c9d01d76a");
//! assert_eq!(timestr::format(std::time::Duration::from_secs(5400)), "1h30m");
//! ```

#![warn(missing_docs, unreachable_pub, clippy::too_many_lines)]

#[cfg(feature = "connect")]
pub mod connect;
pub mod cron;
pub mod expr;
pub mod quote;
pub mod register;
pub mod signature;
pub mod step_id;
pub mod timestr;
pub mod wire;

/// The crate README's examples, compiled as doc tests so the crates.io page cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
