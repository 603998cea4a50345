//! Per-call state: the memo map, step discovery, the stack order, and the outcome of the one step
//! a call may execute.
//!
//! # How a function is suspended
//! A step future looks its hashed id up in the memo. Memoized, it resolves with the decoded value.
//! Not memoized, it registers itself as *found* and stays pending until the serve handler grants
//! it the right to run (immediate execution, or a targeted call naming it); a step that is never
//! granted stays pending forever, so the user's code after it never runs in this call. The handler
//! watches the call at quiescence (a poll that returned `Pending` without waking anything) and
//! decides: report the found steps (`206`), grant the single new `step.run`, or keep waiting for
//! real I/O. Nothing here depends on the user propagating an error or keeping a token alive.
//!
//! # Memo values without copies
//! The request body is checked UTF-8 once and parsed once, borrowing; each memo value is kept as
//! a [`ByteString`] slice of the body (a reference count, not a copy, and no second UTF-8 check)
//! and decoded into the user's type only when its step is reached. The hashed ids (memo keys and
//! the stack) are copied once into one string and indexed by a `hashbrown::HashTable` of
//! positions (foldhash, seeded per process, as the request body chooses the keys): no per-key
//! allocation, one hash per key and per lookup. Run-style memos
//! (`{"data": …}`) are decoded into the user's type in one pass ([`decode_data_only`]).
//!
//! # Stack order
//! A memoized step resolves only after every step before it in `ctx.stack` has resolved, so
//! parallel branches and races replay in the order they originally completed. If the function no
//! longer asks for an earlier step (it changed, or is not deterministic), the handler notices the
//! deadlock at quiescence, logs a warning naming the steps, and releases the ordering.

use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytestring::ByteString;
use hashbrown::hash_table::{Entry, HashTable};
use serde::de::DeserializeOwned;

use crate::error::{Error, RetryAt};
use crate::middleware::{CallHooks, ReplayFlag};
use inngest_protocol::step_id::{HashedId, IdCounter, StepId};
use inngest_protocol::wire::{Op, OpCode, Userland};

/// Whether this call discovers steps or executes one targeted step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallMode {
    /// `stepId=step`: replay, report new steps; may run a lone new step inline when allowed.
    Discovery { immediate: bool },
    /// `stepId=<hash>`: replay and run only that step.
    Targeted(String),
}

/// A memoized value and its place in the stack.
#[derive(Debug, Clone)]
pub(crate) struct MemoEntry {
    /// A slice of the text the memo was read from (UTF-8, checked once with the whole text).
    pub value: ByteString,
    pub pos: Option<usize>,
}

/// A range of [`Memo::ids`].
#[derive(Debug, Clone, Copy)]
struct IdSpan {
    start: usize,
    end: usize,
}

/// The memoized steps of a call and its stack, keyed by hashed id.
///
/// Ids live in one string and the index is a `hashbrown::HashTable` of entry positions, so
/// building the memo allocates no string per key.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// Every memo key, then every stack id, concatenated.
    ids: String,
    /// In body order; a repeated id appears twice, the index points at the last one.
    entries: Vec<(IdSpan, MemoEntry)>,
    /// `ctx.stack`, in completion order.
    stack: Vec<IdSpan>,
    /// Positions in `entries`, by id. Memo keys come from the request body, so the hasher is
    /// seeded per process (and in cloud mode the body is parsed only after its signature
    /// verified).
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Memo {
    /// Builds the memo from `(hashed id, value)` pairs in body order and the stack.
    pub(crate) fn new<'k, 's>(
        steps: impl IntoIterator<Item = (&'k str, ByteString)>,
        stack: impl IntoIterator<Item = &'s str> + Clone,
    ) -> Memo {
        let steps = steps.into_iter();
        let (stack_ids, stack_len) = stack
            .clone()
            .into_iter()
            .fold((0, 0), |(n, len), id| (n + 1, len + id.len()));
        let hint = steps.size_hint().0;
        let mut memo = Memo {
            ids: String::with_capacity(stack_len + hint * 40),
            entries: Vec::with_capacity(hint),
            stack: Vec::with_capacity(stack_ids),
            ..Memo::default()
        };
        for (id, value) in steps {
            let span = memo.push_id(id);
            memo.entries.push((span, MemoEntry { value, pos: None }));
        }
        memo.build_index();
        for (pos, id) in stack.into_iter().enumerate() {
            let span = memo.push_id(id);
            memo.stack.push(span);
            if let Some(i) = memo.find(id.as_bytes()) {
                // A repeated stack id keeps its last position, as before.
                memo.entries[i].1.pos = Some(pos);
            }
        }
        memo
    }

    /// Indexes `entries` by id; for a repeated id the later value wins, as when a JSON object is
    /// read into a map. (Positions fit in `u32`: the body limit allows far fewer entries.)
    fn build_index(&mut self) {
        let Memo {
            ids,
            entries,
            index,
            hasher,
            ..
        } = self;
        let key = |i: u32| {
            let span = entries[i as usize].0;
            &ids.as_bytes()[span.start..span.end]
        };
        *index = HashTable::with_capacity(entries.len());
        for i in 0..entries.len() as u32 {
            let id = key(i);
            let hash = hasher.hash_one(id);
            match index.entry(hash, |&j| key(j) == id, |&j| hasher.hash_one(key(j))) {
                Entry::Occupied(mut slot) => *slot.get_mut() = i,
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }

    fn push_id(&mut self, id: &str) -> IdSpan {
        let start = self.ids.len();
        self.ids.push_str(id);
        IdSpan {
            start,
            end: self.ids.len(),
        }
    }

    fn id(&self, span: IdSpan) -> &str {
        &self.ids[span.start..span.end]
    }

    /// Ids are compared and hashed as bytes: a hashed step id gives its bytes without a UTF-8
    /// check, and no `str` slicing checks char boundaries.
    fn find(&self, id: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        let ids = self.ids.as_bytes();
        self.index
            .find(hash, |&j| {
                let span = self.entries[j as usize].0;
                ids[span.start..span.end] == *id
            })
            .map(|&j| j as usize)
    }

    /// The memoized value of a step, if any.
    pub(crate) fn get(&self, hash: &str) -> Option<&MemoEntry> {
        self.get_bytes(hash.as_bytes())
    }

    /// [`Memo::get`] by the id's bytes.
    pub(crate) fn get_bytes(&self, hash: &[u8]) -> Option<&MemoEntry> {
        self.find(hash).map(|i| &self.entries[i].1)
    }

    /// The bytes of all memoized values (the call's state size, for metrics).
    pub(crate) fn value_bytes(&self) -> usize {
        self.entries.iter().map(|(_, e)| e.value.len()).sum()
    }

    /// Number of distinct memoized steps (at most).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Number of distinct memoized steps.
    pub(crate) fn distinct(&self) -> usize {
        self.index.len()
    }

    /// Length of `ctx.stack`.
    pub(crate) fn stack_len(&self) -> usize {
        self.stack.len()
    }

    /// The `pos`-th id of the stack.
    pub(crate) fn stack_id(&self, pos: usize) -> Option<&str> {
        self.stack.get(pos).map(|s| self.id(*s))
    }
}

/// Decodes a run-style memo `{"data": …}` into `T` in one pass over the memo.
///
/// Returns `None` for anything else — `null`, an `error` key, other or repeated keys, escaped keys,
/// a `data` that does not decode as `T`, trailing bytes — so the caller falls back to the general
/// (two-pass) reading, which then decides exactly as it always has. When this returns `Some`, the
/// general reading would have produced the same value: the memo is an object whose only key is
/// `data`, and `T` was read from that value's tokens.
pub(crate) fn decode_data_only<T: DeserializeOwned>(memo: &str) -> Option<T> {
    struct DataOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for DataOnly<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a memoized step")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Option<T>, A::Error> {
            let mut data = None;
            while let Some(key) = map.next_key::<&str>()? {
                if key != "data" || data.is_some() {
                    return Ok(None);
                }
                data = Some(map.next_value::<T>()?);
            }
            Ok(data)
        }
    }
    struct Seed<T>(std::marker::PhantomData<T>);
    impl<'de, T: DeserializeOwned> serde::de::DeserializeSeed<'de> for Seed<T> {
        type Value = Option<T>;
        fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Option<T>, D::Error> {
            de.deserialize_map(DataOnly(std::marker::PhantomData))
        }
    }
    if !memo.starts_with('{') {
        return None;
    }
    // `&str` input: serde_json checks no string's UTF-8 again.
    let mut de = serde_json::Deserializer::from_str(memo);
    let value =
        serde::de::DeserializeSeed::deserialize(Seed(std::marker::PhantomData), &mut de).ok()??;
    de.end().ok()?;
    Some(value)
}

/// What the one executed step produced.
#[derive(Debug)]
pub(crate) struct Executed {
    pub op: Op,
    pub retry_after: Option<RetryAt>,
}

/// A new, unmemoized step found during this call.
#[derive(Debug)]
struct Found {
    op: Op,
    runnable: bool,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: IdCounter,
    found: Vec<Found>,
    granted: Option<String>,
    executing: Option<String>,
    executed: Option<Executed>,
    resolved: Vec<bool>,
    next_pos: usize,
    order_waiters: Vec<Waker>,
    relaxed: bool,
    /// The waker of the task driving the call (the serve handler), woken when a step polled on
    /// another task changes the state.
    driver: Option<Waker>,
    /// Set when a step tool was called inside another step's body.
    nested: Option<String>,
    /// The hash of the step whose body is being polled right now.
    in_body: Option<String>,
    /// Checkpointing: the executed step whose result Inngest has recorded, with its output,
    /// until the step's own future takes it.
    resumed: Option<(String, bytes::Bytes)>,
    /// The waker of the executed step's future, waiting for [`CallState::resume_executed`].
    resume_waker: Option<Waker>,
    /// Memoized steps not yet resolved: the replay ends when none is left.
    memo_left: usize,
    /// Middleware hooks awaited inside step futures right now (no decision meanwhile).
    hooks_running: usize,
    /// A middleware hook failed inside a step future: the call ends with this error.
    failed: Option<Error>,
}

impl Inner {
    /// Marks the memoized step at stack position `pos` resolved (or given up), moves the
    /// replay cursor past every resolved position and wakes the steps waiting for their turn.
    fn resolve_turn(&mut self, pos: usize) {
        self.resolved[pos] = true;
        while self.next_pos < self.resolved.len() && self.resolved[self.next_pos] {
            self.next_pos += 1;
        }
        for w in self.order_waiters.drain(..) {
            w.wake();
        }
    }
}

/// Shared state of one execution call.
#[derive(Debug)]
pub(crate) struct CallState {
    memo: Memo,
    mode: CallMode,
    pub attempt: u32,
    pub max_attempts: u32,
    /// The run's id (empty when the call has none).
    pub run_id: String,
    inner: Mutex<Inner>,
    replay: ReplayFlag,
    hooks: Option<CallHooks>,
}

/// What the handler should do after a quiescent poll.
#[derive(Debug)]
pub(crate) enum Decision {
    /// A step ran; answer with its op.
    Executed(Box<Executed>),
    /// A middleware hook failed; the call fails with its error.
    Failed(Error),
    /// Report these new steps.
    Report(Vec<Op>),
    /// Something was woken or is running; keep polling.
    Continue,
    /// Nothing can make progress except I/O outside steps (or the targeted step never appears).
    Idle,
}

impl CallState {
    pub(crate) fn new(memo: Memo, mode: CallMode, attempt: u32, max_attempts: u32) -> Self {
        let memo_left = memo.distinct();
        let inner = Inner {
            resolved: vec![false; memo.stack_len()],
            ids: IdCounter::with_capacity(memo.len() + 1),
            memo_left,
            ..Default::default()
        };
        CallState {
            memo,
            mode,
            attempt,
            max_attempts,
            run_id: String::new(),
            inner: Mutex::new(inner),
            replay: ReplayFlag::new(memo_left > 0),
            hooks: None,
        }
    }

    /// The call of run `run_id`.
    pub(crate) fn with_run_id(mut self, run_id: &str) -> Self {
        self.run_id = run_id.to_owned();
        self
    }

    /// The call with middleware hooks.
    pub(crate) fn with_hooks(mut self, hooks: Option<CallHooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// The call's middleware, if it has any.
    pub(crate) fn hooks(&self) -> Option<&CallHooks> {
        self.hooks.as_ref()
    }

    /// Whether the code still replays memoized steps.
    pub(crate) fn replay_flag(&self) -> &ReplayFlag {
        &self.replay
    }

    /// A memoized step resolved; `true` when it was the last one (the replay ends now).
    pub(crate) fn memo_resolved(&self) -> bool {
        let last = {
            let mut inner = self.lock();
            inner.memo_left = inner.memo_left.saturating_sub(1);
            inner.memo_left == 0
        };
        last && self.replay.finish()
    }

    /// The code reached a step with no result; `true` when this ends the replay.
    pub(crate) fn new_step_reached(&self) -> bool {
        self.replay.finish()
    }

    /// A hook awaited inside a step future starts (`true`) or ends (`false`).
    pub(crate) fn hook_running(&self, running: bool) {
        let mut inner = self.lock();
        if running {
            inner.hooks_running += 1;
        } else {
            inner.hooks_running = inner.hooks_running.saturating_sub(1);
        }
    }

    /// A hook failed inside a step future: the call ends with `err` at the next decision.
    pub(crate) fn fail(&self, err: Error) {
        let mut inner = self.lock();
        inner.failed.get_or_insert(err);
        if let Some(driver) = &inner.driver {
            driver.wake_by_ref();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in user code never happens while this lock is held; recover anyway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this is the last attempt of the current step.
    pub(crate) fn is_final_attempt(&self) -> bool {
        self.attempt.saturating_add(1) >= self.max_attempts
    }

    /// The id of the next step named `user`, in code order.
    pub(crate) fn next_id<'u>(&self, user: &'u str) -> StepId<'u> {
        self.lock().ids.next(user)
    }

    /// The memoized value of a step, if any.
    pub(crate) fn memo(&self, hash: &HashedId) -> Option<&MemoEntry> {
        self.memo.get_bytes(hash.as_bytes())
    }

    /// Resolves once every step before `pos` in the stack has resolved (stack-order replay).
    pub(crate) fn wait_turn(&self, pos: Option<usize>) -> WaitTurn<'_> {
        WaitTurn { state: self, pos }
    }

    /// A memoized step whose future was dropped before its turn (the losing branch of a race,
    /// or a step the code gave up on): its place in the stack no longer holds up the steps
    /// after it.
    fn give_up_turn(&self, pos: usize) {
        let mut inner = self.lock();
        if pos < inner.next_pos || inner.resolved.get(pos).copied().unwrap_or(true) {
            return;
        }
        inner.resolve_turn(pos);
    }

    fn try_take_turn(&self, pos: usize, cx: &mut Context<'_>) -> bool {
        let mut inner = self.lock();
        if pos < inner.next_pos || inner.resolved.get(pos).copied().unwrap_or(true) {
            // Already resolved (a repeated poll) or outside the stack.
            return true;
        }
        if pos == inner.next_pos || inner.relaxed {
            inner.resolve_turn(pos);
            return true;
        }
        inner.order_waiters.push(cx.waker().clone());
        false
    }

    /// Registers a new step and resolves when it may run. Never resolves for a step that is not
    /// granted, which suspends the function at that step. Resolves at once with `Err(Nested)`
    /// when called inside another step's body.
    pub(crate) fn discover(&self, op: Op, runnable: bool) -> Discover<'_> {
        Discover {
            state: self,
            op: Some(op),
            runnable,
            hash: String::new(),
            index: None,
        }
    }

    /// Marks the granted step as running.
    pub(crate) fn begin(&self, hash: &str) {
        let mut inner = self.lock();
        inner.executing = Some(hash.to_owned());
    }

    /// Records the result of the running step.
    pub(crate) fn finish(&self, executed: Executed) {
        let mut inner = self.lock();
        inner.executing = None;
        inner.executed = Some(executed);
        if let Some(driver) = &inner.driver {
            driver.wake_by_ref();
        }
    }

    /// Checkpointing: Inngest has recorded the executed step `hash`, so the call goes on. The
    /// step's future resolves with `data` (its output as JSON) and the next step may be found,
    /// granted and executed in the same call.
    pub(crate) fn resume_executed(&self, hash: &str, data: bytes::Bytes) {
        let mut inner = self.lock();
        inner.executing = None;
        inner.granted = None;
        // The executed step was the one runnable step found; the next discovery starts afresh.
        inner.found.clear();
        inner.resumed = Some((hash.to_owned(), data));
        if let Some(w) = inner.resume_waker.take() {
            w.wake();
        }
    }

    /// Resolves with the output of the executed step `hash` once [`CallState::resume_executed`]
    /// is called for it; otherwise never (the call ends with the step's op, classic mode).
    pub(crate) fn wait_resumed<'a>(
        &'a self,
        hash: &'a str,
    ) -> impl Future<Output = bytes::Bytes> + Send + 'a {
        std::future::poll_fn(move |cx| {
            let mut inner = self.lock();
            match inner.resumed.take() {
                Some((h, data)) if h == hash => Poll::Ready(data),
                other => {
                    inner.resumed = other;
                    inner.resume_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }

    /// Marks the start (`Some`) or end (`None`) of polling a step's body.
    pub(crate) fn set_in_body(&self, hash: Option<&str>) {
        self.lock().in_body = hash.map(str::to_owned);
    }

    /// The nesting violation recorded while the current step ran, if any.
    pub(crate) fn take_nested(&self) -> Option<String> {
        self.lock().nested.take()
    }

    /// Remembers the waker of the task driving the call.
    pub(crate) fn set_driver(&self, waker: &Waker) {
        let mut inner = self.lock();
        match &inner.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => inner.driver = Some(waker.clone()),
        }
    }

    /// Found steps, for diagnostics (targeted call that never reached its step).
    pub(crate) fn found_ops(&self) -> Vec<Op> {
        self.lock().found.iter().map(|f| f.op.clone()).collect()
    }

    /// Decides what to do after a poll of the function returned `Pending` without waking itself.
    pub(crate) fn decide(&self) -> Decision {
        let mut inner = self.lock();
        if let Some(err) = inner.failed.take() {
            return Decision::Failed(err);
        }
        if let Some(done) = inner.executed.take() {
            return Decision::Executed(Box::new(done));
        }
        if inner.executing.is_some() || inner.granted.is_some() || inner.hooks_running > 0 {
            return Decision::Continue;
        }
        if let CallMode::Discovery { immediate } = self.mode {
            if !inner.found.is_empty() {
                if immediate && inner.found.len() == 1 && inner.found[0].runnable {
                    let found = &mut inner.found[0];
                    let hash = found.op.id.clone();
                    let waker = found.waker.take();
                    inner.granted = Some(hash);
                    if let Some(w) = waker {
                        w.wake();
                    }
                    return Decision::Continue;
                }
                let ops = inner
                    .found
                    .drain(..)
                    .map(|f| planned(f.op, f.runnable))
                    .collect();
                return Decision::Report(ops);
            }
        }
        if !inner.order_waiters.is_empty() && !inner.relaxed {
            let expected = self.memo.stack_id(inner.next_pos).unwrap_or("?");
            tracing::warn!(
                expected_step = expected,
                waiting_steps = inner.order_waiters.len(),
                "the function no longer requests memoized steps in the order they completed \
                 (changed or non-deterministic code); resolving the remaining memoized steps in \
                 code order"
            );
            inner.relaxed = true;
            for w in inner.order_waiters.drain(..) {
                w.wake();
            }
            return Decision::Continue;
        }
        Decision::Idle
    }
}

/// The op to report for a found step: run steps become `StepPlanned`, async ops stay themselves.
fn planned(mut op: Op, runnable: bool) -> Op {
    if runnable {
        op.op = OpCode::StepPlanned;
        op.data = None;
        op.timing = None;
    }
    op
}

/// Future of [`CallState::wait_turn`].
pub(crate) struct WaitTurn<'a> {
    state: &'a CallState,
    pos: Option<usize>,
}

impl Future for WaitTurn<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.pos {
            None => Poll::Ready(()),
            Some(pos) if self.state.try_take_turn(pos, cx) => {
                self.pos = None;
                Poll::Ready(())
            }
            Some(_) => Poll::Pending,
        }
    }
}

impl Drop for WaitTurn<'_> {
    fn drop(&mut self) {
        if let Some(pos) = self.pos {
            self.state.give_up_turn(pos);
        }
    }
}

/// Future of [`CallState::discover`].
pub(crate) struct Discover<'a> {
    state: &'a CallState,
    op: Option<Op>,
    runnable: bool,
    hash: String,
    index: Option<usize>,
}

/// A step tool was called inside another step's body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Nested;

impl Future for Discover<'_> {
    type Output = Result<(), Nested>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut inner = this.state.lock();
        if let Some(op) = this.op.take() {
            this.hash = op.id.clone();
            if let Some(outer) = inner.in_body.clone() {
                let name = op.name.clone().unwrap_or_default();
                inner.nested = Some(format!(
                    "step `{name}` was called inside the body of another step ({outer}); \
                     steps cannot be nested"
                ));
                return Poll::Ready(Err(Nested));
            }
            if let CallMode::Targeted(target) = &this.state.mode {
                if *target == this.hash && this.runnable {
                    inner.granted = None;
                    return Poll::Ready(Ok(()));
                }
            }
            this.index = Some(inner.found.len());
            inner.found.push(Found {
                op,
                runnable: this.runnable,
                waker: Some(cx.waker().clone()),
            });
            if let Some(driver) = &inner.driver {
                driver.wake_by_ref();
            }
            return Poll::Pending;
        }
        if inner.granted.as_deref() == Some(this.hash.as_str()) {
            inner.granted = None;
            return Poll::Ready(Ok(()));
        }
        if let Some(found) = this.index.and_then(|i| inner.found.get_mut(i)) {
            found.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Builds the op describing a step (its executed/planned form is set by the caller).
pub(crate) fn step_op(id: &StepId<'_>, op: OpCode, display_name: Option<&str>) -> Op {
    Op {
        id: id.hash.as_str().to_owned(),
        op,
        name: Some(id.user.0.to_owned()),
        display_name: Some(display_name.unwrap_or(id.user.0).to_owned()),
        opts: None,
        data: None,
        error: None,
        userland: Some(Userland {
            id: id.user.0.to_owned(),
            index: id.index,
        }),
        timing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memo(steps: &[(&str, &str)], stack: &[&str]) -> Memo {
        Memo::new(
            steps.iter().map(|(k, v)| (*k, ByteString::from(*v))),
            stack.iter().copied(),
        )
    }

    #[test]
    fn memo_finds_sorted_and_unsorted_keys() {
        for steps in [
            vec![("a", "1"), ("b", "2"), ("c", "3")],
            vec![("c", "3"), ("a", "1"), ("b", "2")],
        ] {
            let m = memo(&steps, &["b", "c"]);
            assert_eq!(m.get("a").map(|e| (&e.value[..], e.pos)), Some(("1", None)));
            assert_eq!(
                m.get("b").map(|e| (&e.value[..], e.pos)),
                Some(("2", Some(0)))
            );
            assert_eq!(
                m.get("c").map(|e| (&e.value[..], e.pos)),
                Some(("3", Some(1)))
            );
            assert!(m.get("d").is_none());
            assert_eq!(m.stack_len(), 2);
            assert_eq!(m.stack_id(1), Some("c"));
            assert_eq!(m.stack_id(2), None);
        }
    }

    #[test]
    fn memo_indexes_thousands_of_ids() {
        let ids: Vec<String> = (0..5000)
            .map(|i| crate::step::hash_id(&format!("s{i}")))
            .collect();
        let values: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let m = Memo::new(
            ids.iter()
                .zip(&values)
                .map(|(k, v)| (k.as_str(), ByteString::from(v.clone()))),
            ids.iter().rev().map(String::as_str),
        );
        for (i, id) in ids.iter().enumerate() {
            let e = m.get(id).unwrap();
            assert_eq!(&e.value[..], values[i]);
            assert_eq!(e.pos, Some(4999 - i));
        }
        assert!(m.get(&crate::step::hash_id("s5000")).is_none());
    }

    #[test]
    fn data_only_memos_decode_in_one_pass_and_others_fall_back() {
        use serde_json::{json, Value};
        let some = |m: &str| decode_data_only::<Value>(m);
        assert_eq!(some(r#"{"data":{"a":[1,2]}}"#), Some(json!({"a": [1, 2]})));
        assert_eq!(some(r#"{"data":null}"#), Some(Value::Null));
        assert_eq!(some(r#"{"data":"x"}  "#), Some(json!("x")));
        for other in [
            "null",
            "[1]",
            " {\"data\":1}",
            "{}",
            r#"{"error":{"name":"E","message":"m"}}"#,
            r#"{"data":1,"error":{"name":"E","message":"m"}}"#,
            r#"{"error":{"name":"E","message":"m"},"data":1}"#,
            r#"{"data":1,"extra":2}"#,
            r#"{"data":1,"data":2}"#,
            r#"{"d\u0061ta":1}"#,
            r#"{"data":1} x"#,
            r#"{"data":1"#,
        ] {
            assert_eq!(some(other), None, "{other}");
        }
        assert_eq!(decode_data_only::<u32>(r#"{"data":"x"}"#), None);
        assert_eq!(decode_data_only::<u32>(r#"{"data":7}"#), Some(7));
        assert_eq!(
            decode_data_only::<Option<u32>>(r#"{"data":null}"#),
            Some(None)
        );
    }

    #[test]
    fn memo_repeated_keys_keep_the_last_value_and_stack_position() {
        let m = memo(&[("b", "1"), ("a", "x"), ("b", "2")], &["b", "a", "b"]);
        let b = m.get("b").unwrap();
        assert_eq!((&b.value[..], b.pos), ("2", Some(2)));
        assert_eq!(m.get("a").unwrap().pos, Some(1));
        let empty = memo(&[], &[]);
        assert!(empty.get("a").is_none());
        assert_eq!(empty.stack_len(), 0);
    }
}
