//! End-to-end tests of the workspace, in `tests/`: apps built with `inngest-sdk` served on
//! loopback and driven over HTTP by `inngest-executor`, the protocol goldens replayed from real
//! captures of the Inngest dev server, fuzz campaigns, faults and load.
//!
//! They live in their own package so that the SDK does not depend on the executor, not even for
//! its tests, and the executor does not depend on the SDK: only this package sees both.

#![warn(missing_docs, unreachable_pub)]
