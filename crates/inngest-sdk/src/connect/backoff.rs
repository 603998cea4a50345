//! Reconnect delays: doubling from the initial delay up to the maximum, each with jitter (a
//! random point between half and all of it) so that workers dropped together do not come back
//! together.

use std::time::Duration;

/// The delay schedule.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    pub(super) initial: Duration,
    pub(super) max: Duration,
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (1-based: the first retry is 1).
    pub(super) fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .checked_mul(1u32 << attempt.saturating_sub(1).min(20))
            .unwrap_or(self.max)
            .min(self.max);
        jitter(base)
    }

    /// The short delay after a gateway asked the worker to move (`GATEWAY_CLOSING`): around the
    /// initial delay, between half of it and one and a half times it.
    pub(super) fn after_drain(&self) -> Duration {
        self.initial / 2 + jitter(self.initial)
    }
}

/// A random duration in `[d/2, d]`.
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    let spread = d.saturating_sub(half).as_millis() as u64;
    half + Duration::from_millis(if spread == 0 {
        0
    } else {
        rand::random::<u64>() % (spread + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_max_with_jitter_inside_the_bounds() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_millis() as u64;
                assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d}ms");
            }
        }
        for _ in 0..50 {
            let d = b.after_drain().as_millis() as u64;
            assert!((50..=150).contains(&d), "{d}ms");
        }
    }
}
