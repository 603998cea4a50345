//! The executor's time source: everything time-based in the executor (sleeps, wait and invoke
//! timeouts, cron schedules, retry backoff) asks a [`Clock`] for "now" and for a future that
//! completes at a given instant, so tests can replace real time.
//!
//! * [`SystemClock`] is real time.
//! * [`VirtualClock`] is time that only moves when told to: [`VirtualClock::advance`],
//!   [`VirtualClock::set`], [`VirtualClock::skip_to_next`], or automatically in auto-advance mode
//!   ([`VirtualClock::set_auto_advance`]), where every sleep completes as soon as it is polled by
//!   moving the clock to its deadline, so `sleep("1d")` takes milliseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time and of timers.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// A future that completes once [`Clock::now`] has reached `t` (immediately if it already
    /// has). Dropping the future cancels the timer.
    fn sleep_until(&self, t: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// A future that completes once `d` has passed on this clock (measured from the call).
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.sleep_until(add(self.now(), d))
    }
}

/// `t + d`, saturating at the largest representable time.
fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Real time: [`Utc::now`] and `tokio::time` timers.
///
/// [`Clock::sleep_until`] converts the deadline into a duration when called and sleeps on tokio's
/// monotonic timer, so wall-clock adjustments made during the sleep do not shorten or extend it
/// (and it also follows tokio's paused test time). Requires a tokio runtime with the time driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let remaining = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(remaining))
    }
}

/// Simulated time for tests.
///
/// Cloning gives another handle to the same clock, so a test can keep one handle and give the
/// executor another (as `Arc<dyn Clock>`).
///
/// # Design
///
/// One mutex guards the current time, the auto-advance flag and an ordered map of pending
/// sleepers keyed by `(deadline, sequence number)` holding each sleeper's [`Waker`]. A sleep
/// future checks the time when polled: if its deadline has been reached it completes, otherwise
/// it registers (or refreshes) its waker and stays pending. Moving the clock removes every entry
/// whose deadline has been reached, in deadline order (ties in creation order), and wakes them
/// after releasing the lock. A sleeper therefore never completes before `now >= deadline`, is
/// never lost (it is either registered or about to re-check the time), and dropping a pending
/// sleep future removes its entry. The clock never moves by itself unless auto-advance is on.
///
/// ```
/// # use inngest_executor::clock::{Clock, VirtualClock};
/// # use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = VirtualClock::default();
/// clock.set_auto_advance(true);
/// let start = clock.now();
/// clock.sleep(Duration::from_secs(86_400)).await; // returns at once
/// assert_eq!(clock.now() - start, chrono::Duration::days(1));
/// # }
/// ```
#[derive(Clone)]
pub struct VirtualClock {
    inner: Arc<Mutex<State>>,
}

struct State {
    now: DateTime<Utc>,
    auto_advance: bool,
    next_seq: u64,
    sleepers: BTreeMap<(DateTime<Utc>, u64), Waker>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("VirtualClock")
            .field("now", &state.now)
            .field("auto_advance", &state.auto_advance)
            .field("pending_sleepers", &state.sleepers.len())
            .finish()
    }
}

impl Default for VirtualClock {
    /// A virtual clock starting at the current real time, truncated to whole milliseconds.
    fn default() -> Self {
        let now = Utc::now();
        let ms = now.timestamp_millis();
        VirtualClock::new(DateTime::from_timestamp_millis(ms).unwrap_or(now))
    }
}

impl VirtualClock {
    /// A virtual clock starting at `start`, with auto-advance off.
    pub fn new(start: DateTime<Utc>) -> Self {
        VirtualClock {
            inner: Arc::new(Mutex::new(State {
                now: start,
                auto_advance: false,
                next_seq: 0,
                sleepers: BTreeMap::new(),
            })),
        }
    }

    /// A virtual clock starting at `start` with auto-advance on (see
    /// [`VirtualClock::set_auto_advance`]).
    pub fn auto_advancing(start: DateTime<Utc>) -> Self {
        let clock = VirtualClock::new(start);
        clock.set_auto_advance(true);
        clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward by `d` and wakes every sleeper whose deadline is now reached, in
    /// deadline order.
    pub fn advance(&self, d: Duration) {
        let mut state = self.lock();
        let target = add(state.now, d);
        let woken = move_to(&mut state, target);
        drop(state);
        woken.into_iter().for_each(Waker::wake);
    }

    /// Sets the clock to `t`. Moving forward wakes the sleepers whose deadline is reached, in
    /// deadline order; moving backwards is allowed and wakes no one (pending sleepers then wait
    /// for the clock to catch up with their deadline again).
    pub fn set(&self, t: DateTime<Utc>) {
        let mut state = self.lock();
        let woken = if t >= state.now {
            move_to(&mut state, t)
        } else {
            state.now = t;
            Vec::new()
        };
        drop(state);
        woken.into_iter().for_each(Waker::wake);
    }

    /// Jumps to the earliest pending deadline (if it is in the future) and wakes the sleepers
    /// due then. Returns that deadline, or `None` (and leaves the clock alone) if nothing is
    /// sleeping.
    pub fn skip_to_next(&self) -> Option<DateTime<Utc>> {
        let mut state = self.lock();
        let next = state
            .sleepers
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)?;
        let target = next.max(state.now);
        let woken = move_to(&mut state, target);
        drop(state);
        woken.into_iter().for_each(Waker::wake);
        Some(next)
    }

    /// The earliest deadline among pending sleepers.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.lock()
            .sleepers
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    /// How many sleep futures have been polled, are not yet due, and have not been dropped.
    pub fn pending_sleepers(&self) -> usize {
        self.lock().sleepers.len()
    }

    /// Turns auto-advance on or off. While on, a sleep that is polled before its deadline moves
    /// the clock forward to that deadline (waking any other sleepers due by then) and completes
    /// immediately. Sleepers already pending when it is turned on complete the next time they are
    /// polled; use [`VirtualClock::skip_to_next`] to release them without waiting for a poll.
    ///
    /// Concurrent sleeps do not wait for each other: whichever is polled first moves the clock,
    /// so a long sleep polled before a short one leaves the clock at the long one's deadline.
    pub fn set_auto_advance(&self, on: bool) {
        self.lock().auto_advance = on;
    }

    /// Whether auto-advance is on.
    pub fn is_auto_advance(&self) -> bool {
        self.lock().auto_advance
    }
}

/// Moves `state.now` forward to `target` and removes the sleepers now due, returning their wakers
/// in deadline order.
fn move_to(state: &mut State, target: DateTime<Utc>) -> Vec<Waker> {
    if target > state.now {
        state.now = target;
    }
    let mut woken = Vec::new();
    while let Some(entry) = state.sleepers.first_entry() {
        if entry.key().0 > state.now {
            break;
        }
        woken.push(entry.remove());
    }
    woken
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(VirtualSleep {
            clock: self.clone(),
            deadline: t,
            key: None,
        })
    }
}

/// The future returned by [`VirtualClock`]'s `sleep_until`.
struct VirtualSleep {
    clock: VirtualClock,
    deadline: DateTime<Utc>,
    /// The sleeper map key while registered (or possibly just removed by a wake).
    key: Option<(DateTime<Utc>, u64)>,
}

impl Future for VirtualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.clock.lock();
        if state.now >= this.deadline {
            if let Some(key) = this.key.take() {
                state.sleepers.remove(&key);
            }
            return Poll::Ready(());
        }
        if state.auto_advance {
            if let Some(key) = this.key.take() {
                state.sleepers.remove(&key);
            }
            let woken = move_to(&mut state, this.deadline);
            drop(state);
            woken.into_iter().for_each(Waker::wake);
            return Poll::Ready(());
        }
        let key = match this.key {
            Some(key) => key,
            None => {
                let key = (this.deadline, state.next_seq);
                state.next_seq += 1;
                this.key = Some(key);
                key
            }
        };
        match state.sleepers.get_mut(&key) {
            Some(waker) => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
            }
            None => {
                // First poll, or re-polled after being woken by a move that a later `set` into
                // the past undid: (re-)register.
                state.sleepers.insert(key, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.clock.lock().sleepers.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Lets spawned tasks run until they block again.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn system_clock_sleeps() {
        let c = SystemClock;
        let before = c.now();
        let started = std::time::Instant::now();
        c.sleep_until(before + chrono::Duration::milliseconds(30))
            .await;
        assert!(started.elapsed() >= Duration::from_millis(25));
        assert!(c.now() >= before);
        // Past deadlines complete immediately.
        let started = std::time::Instant::now();
        c.sleep_until(before - chrono::Duration::days(1)).await;
        c.sleep(Duration::ZERO).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn system_clock_follows_paused_tokio_time() {
        let c = SystemClock;
        // A day-long sleep under paused tokio time completes via auto-advance.
        c.sleep(Duration::from_secs(86_400)).await;
    }

    #[tokio::test]
    async fn virtual_now_advance_and_set() {
        let c = VirtualClock::new(start());
        assert_eq!(c.now(), start());
        c.advance(secs(90));
        assert_eq!(c.now(), start() + chrono::Duration::seconds(90));
        let later = start() + chrono::Duration::days(3);
        c.set(later);
        assert_eq!(c.now(), later);
        c.set(start());
        assert_eq!(c.now(), start());
        assert_eq!(c.next_deadline(), None);
        assert_eq!(c.skip_to_next(), None);
        assert_eq!(c.now(), start());
        c.advance(Duration::MAX);
        assert_eq!(c.now(), DateTime::<Utc>::MAX_UTC);
        let d = VirtualClock::default();
        assert!((Utc::now() - d.now()).num_seconds().abs() < 5);
        assert!(format!("{d:?}").contains("VirtualClock"));
    }

    #[tokio::test]
    async fn sleeper_does_not_wake_early() {
        let c = VirtualClock::new(start());
        let done = Arc::new(AtomicUsize::new(0));
        let task = {
            let (c, done) = (c.clone(), done.clone());
            tokio::spawn(async move {
                c.sleep(secs(10)).await;
                done.store(1, Ordering::SeqCst);
                c.now()
            })
        };
        settle().await;
        assert_eq!(c.pending_sleepers(), 1);
        assert_eq!(
            c.next_deadline(),
            Some(start() + chrono::Duration::seconds(10))
        );
        c.advance(secs(9));
        settle().await;
        assert_eq!(done.load(Ordering::SeqCst), 0);
        assert_eq!(c.pending_sleepers(), 1);
        c.advance(Duration::from_millis(999));
        settle().await;
        assert_eq!(done.load(Ordering::SeqCst), 0);
        c.advance(Duration::from_millis(1));
        let woke_at = task.await.unwrap();
        assert_eq!(woke_at, start() + chrono::Duration::seconds(10));
        assert_eq!(c.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn already_due_completes_without_registering() {
        let c = VirtualClock::new(start());
        c.sleep_until(start()).await;
        c.sleep_until(start() - chrono::Duration::hours(1)).await;
        c.sleep(Duration::ZERO).await;
        assert_eq!(c.pending_sleepers(), 0);
        assert_eq!(c.now(), start());
    }

    #[tokio::test]
    async fn sleepers_wake_in_deadline_order() {
        let c = VirtualClock::new(start());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Spawned in scrambled order.
        for n in [5u64, 1, 4, 2, 3, 2] {
            let (c, order) = (c.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                c.sleep(secs(n)).await;
                order.lock().unwrap().push((n, c.now()));
            }));
        }
        settle().await;
        assert_eq!(c.pending_sleepers(), 6);
        let mut deadlines = Vec::new();
        while let Some(d) = c.skip_to_next() {
            deadlines.push(d);
            settle().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let ns: Vec<u64> = order.iter().map(|(n, _)| *n).collect();
        assert_eq!(ns, vec![1, 2, 2, 3, 4, 5]);
        for (n, at) in &order {
            assert_eq!(*at, start() + chrono::Duration::seconds(*n as i64));
        }
        let expected: Vec<_> = [1, 2, 3, 4, 5]
            .iter()
            .map(|n| start() + chrono::Duration::seconds(*n))
            .collect();
        assert_eq!(deadlines, expected);
    }

    #[test]
    fn advance_wakes_in_deadline_order() {
        // Record wake order directly with custom wakers.
        struct Recorder(usize, Arc<Mutex<Vec<usize>>>);
        impl std::task::Wake for Recorder {
            fn wake(self: Arc<Self>) {
                self.1.lock().unwrap().push(self.0);
            }
        }
        let c = VirtualClock::new(start());
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut futs = Vec::new();
        for (i, n) in [30u64, 10, 20, 10, 40].into_iter().enumerate() {
            let mut f = c.sleep(secs(n));
            let waker = Waker::from(Arc::new(Recorder(i, log.clone())));
            assert!(f
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
            futs.push(f);
        }
        c.advance(secs(30));
        assert_eq!(*log.lock().unwrap(), vec![1, 3, 2, 0]);
        assert_eq!(c.pending_sleepers(), 1);
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let noop = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&noop);
        for (i, f) in futs.iter_mut().enumerate() {
            assert_eq!(f.as_mut().poll(&mut cx).is_ready(), i != 4, "future {i}");
        }
    }

    #[tokio::test]
    async fn dropping_a_sleep_removes_it() {
        let c = VirtualClock::new(start());
        let task = {
            let c = c.clone();
            tokio::spawn(async move { c.sleep(secs(60)).await })
        };
        settle().await;
        assert_eq!(c.pending_sleepers(), 1);
        task.abort();
        let _ = task.await;
        assert_eq!(c.pending_sleepers(), 0);
        assert_eq!(c.next_deadline(), None);

        // select!: the losing sleep is dropped and unregistered.
        let (a, b) = (c.clone(), c.clone());
        let driver = c.clone();
        let race = tokio::spawn(async move {
            tokio::select! {
                _ = a.sleep(secs(5)) => 5,
                _ = b.sleep(secs(50)) => 50,
            }
        });
        settle().await;
        assert_eq!(driver.pending_sleepers(), 2);
        driver.advance(secs(5));
        assert_eq!(race.await.unwrap(), 5);
        assert_eq!(c.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn auto_advance_mode() {
        let c = VirtualClock::new(start());
        assert!(!c.is_auto_advance());
        c.set_auto_advance(true);
        assert!(c.is_auto_advance());
        let real = std::time::Instant::now();
        c.sleep(secs(86_400)).await;
        assert_eq!(c.now(), start() + chrono::Duration::days(1));
        c.sleep_until(start() + chrono::Duration::days(365)).await;
        assert_eq!(c.now(), start() + chrono::Duration::days(365));
        // A deadline already passed does not move the clock back.
        c.sleep_until(start()).await;
        assert_eq!(c.now(), start() + chrono::Duration::days(365));
        assert!(real.elapsed() < Duration::from_secs(2));
        assert_eq!(c.pending_sleepers(), 0);

        let a = VirtualClock::auto_advancing(start());
        assert!(a.is_auto_advance());
        let t = tokio::time::timeout(Duration::from_secs(5), a.sleep(secs(3600))).await;
        assert!(t.is_ok());
        assert_eq!(a.now(), start() + chrono::Duration::hours(1));
    }

    #[tokio::test]
    async fn auto_advance_wakes_other_due_sleepers() {
        let c = VirtualClock::new(start());
        let short = {
            let c = c.clone();
            tokio::spawn(async move {
                c.sleep(secs(10)).await;
                c.now()
            })
        };
        settle().await;
        assert_eq!(c.pending_sleepers(), 1);
        c.set_auto_advance(true);
        c.sleep(secs(100)).await;
        // The pending 10 s sleeper was woken when the clock jumped past its deadline.
        let woke_at = short.await.unwrap();
        assert_eq!(woke_at, start() + chrono::Duration::seconds(100));
        assert_eq!(c.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn enabling_auto_advance_releases_pending_sleepers() {
        let c = VirtualClock::new(start());
        let task = {
            let c = c.clone();
            tokio::spawn(async move { c.sleep(secs(500)).await })
        };
        settle().await;
        c.set_auto_advance(true);
        assert_eq!(
            c.skip_to_next(),
            Some(start() + chrono::Duration::seconds(500))
        );
        task.await.unwrap();
        assert_eq!(c.now(), start() + chrono::Duration::seconds(500));
    }

    #[tokio::test]
    async fn set_backwards_then_forward() {
        let c = VirtualClock::new(start());
        let task = {
            let c = c.clone();
            tokio::spawn(async move {
                c.sleep_until(start() + chrono::Duration::seconds(10)).await;
                c.now()
            })
        };
        settle().await;
        c.set(start() - chrono::Duration::hours(1));
        settle().await;
        assert_eq!(c.pending_sleepers(), 1);
        assert!(!task.is_finished());
        c.set(start() + chrono::Duration::seconds(10));
        assert_eq!(task.await.unwrap(), start() + chrono::Duration::seconds(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_sleepers() {
        let c = VirtualClock::new(start());
        let woke = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..100u64 {
            let (c, woke) = (c.clone(), woke.clone());
            // Deadlines 1..=50 s, two sleepers each.
            let n = i % 50 + 1;
            tasks.push(tokio::spawn(async move {
                c.sleep(secs(n)).await;
                let now = c.now();
                assert!(now >= start() + chrono::Duration::seconds(n as i64));
                woke.lock().unwrap().push(n);
            }));
        }
        // Wait until every task has registered.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while c.pending_sleepers() < 100 {
            assert!(
                std::time::Instant::now() < deadline,
                "sleepers did not register"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Release them a second at a time; nobody wakes early.
        for s in 1..=50u64 {
            c.advance(secs(1));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while woke.lock().unwrap().len() < (s * 2) as usize {
                assert!(
                    std::time::Instant::now() < deadline,
                    "sleepers at {s}s did not wake"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let w = woke.lock().unwrap();
            assert_eq!(w.len(), (s * 2) as usize);
            assert!(w.iter().all(|n| *n <= s));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(c.pending_sleepers(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_advance_and_drop_loses_nothing() {
        let c = VirtualClock::new(start());
        let mut tasks = Vec::new();
        for i in 0..100u64 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                if i % 3 == 0 {
                    // Dropped before completing.
                    let far = start() + chrono::Duration::seconds(1000);
                    let _ =
                        tokio::time::timeout(Duration::from_millis(1), c.sleep_until(far)).await;
                    false
                } else {
                    c.sleep_until(start() + chrono::Duration::seconds(i as i64))
                        .await;
                    true
                }
            }));
        }
        let driver = {
            let c = c.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    c.advance(secs(1));
                    tokio::task::yield_now().await;
                }
            })
        };
        driver.await.unwrap();
        let mut completed = 0;
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap()
            {
                completed += 1;
            }
        }
        assert_eq!(completed, 66);
        // The clock stopped at 200 s, so the 1000 s sleepers were dropped, not woken.
        assert_eq!(c.now(), start() + chrono::Duration::seconds(200));
        assert_eq!(c.pending_sleepers(), 0);
    }

    #[test]
    fn clock_is_object_safe_and_shareable() {
        let clocks: Vec<Arc<dyn Clock>> =
            vec![Arc::new(SystemClock), Arc::new(VirtualClock::new(start()))];
        for c in clocks {
            let _ = c.now();
            let _ = format!("{c:?}");
        }
    }
}
