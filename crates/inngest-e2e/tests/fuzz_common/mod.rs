//! Shared driver of the `tests/fuzz_*.rs` property/fuzz campaigns (stable Rust, `proptest`).
//!
//! Each campaign runs `FUZZ_CASES` cases per batch (default: a CI-sized number chosen by the
//! test) and keeps running new batches, with fresh random seeds, until `FUZZ_SECONDS` have passed
//! (default 0: one batch). A failing case is shrunk, its seed is appended to
//! `tests/fixtures/fuzz-regressions/<campaign>.txt` (replayed first on every later run), and the
//! test fails with the minimal input.
//!
//! ```text
//! FUZZ_CASES=100000 FUZZ_SECONDS=600 cargo test --release --test fuzz_exec -- --nocapture
//! ```
#![allow(dead_code)]

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};

/// `FUZZ_CASES`, or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// `FUZZ_SECONDS` (0 when unset).
pub fn seconds() -> u64 {
    std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `test` on values of `strategy` in batches until the time budget is spent; returns the
/// number of cases run. `name` names the regression file.
pub fn campaign<S>(
    name: &'static str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let per_batch = cases(default_cases);
    let budget = Duration::from_secs(seconds());
    let path: &'static str = Box::leak(
        format!(
            "{}/tests/fixtures/fuzz-regressions/{name}.txt",
            env!("CARGO_MANIFEST_DIR")
        )
        .into_boxed_str(),
    );
    let started = Instant::now();
    let mut total = 0u64;
    let mut batches = 0u64;
    loop {
        let config = Config {
            cases: per_batch,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &test) {
            Ok(()) => {}
            Err(TestError::Fail(reason, value)) => {
                panic!(
                    "fuzz campaign `{name}` failed after {total} earlier cases: {reason}\n\
                     minimal input: {value:#?}\n(seed saved in {path})"
                )
            }
            Err(TestError::Abort(reason)) => panic!("fuzz campaign `{name}` aborted: {reason}"),
        }
        total += u64::from(per_batch);
        batches += 1;
        if started.elapsed() >= budget {
            break;
        }
    }
    println!(
        "fuzz {name}: {total} cases in {batches} batch(es), {:.1?}, no failure",
        started.elapsed()
    );
    total
}

/// A current-thread runtime for driving async code from inside a case.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Fails the case (instead of panicking) when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(proptest::test_runner::TestCaseError::fail(format!($($fmt)+)));
        }
    };
}
