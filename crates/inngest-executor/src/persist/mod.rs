//! The executor's optional on-disk state ([`crate::ExecutorBuilder::state_dir`]).
//!
//! Layout of the directory (format version 3):
//! * `state.redb`: the store, a [redb](https://docs.rs/redb) database (see `db`): the events,
//!   each run's core, and each run's memo, stack, step views and history row by row, with
//!   indexes of events by id, of runs by event and of the unfinished runs. A save is
//!   one transaction, fsynced when it commits: after a kill -9 or a power cut the store holds
//!   every save that finished and nothing of one that did not. A step result is a few small
//!   rows, not a rewrite of its run.
//!   The last tick of each cron and the flow-control record (rate-limit windows, debounce and
//!   batch buffers, singleton keys, each throttle key's GCRA state) are kept there too; the
//!   throttle and concurrency queues are not stored but rebuilt from the unfinished runs
//!   ([`crate::flow_control::restore_run_flow`]).
//! * `format.json`: `{"format": "inngest-executor-state", "version": 3}`. Version 2 (the same
//!   store without its indexes) gets the indexes built in one transaction on open, then
//!   `format.json` switched to 3. Version 1 (the earliest layout: `events.jsonl` and one
//!   `runs/<id>.json` snapshot per run, also read when `format.json` is missing) is moved into
//!   the store on open: read whole, written in one transaction, `format.json` switched to 3,
//!   then the old files removed. A crash on the way leaves the old version in place and the step
//!   starts over. A version this executor does not read fails `build()` with
//!   [`crate::ExecutorError::StateVersion`].
//! * `lock`: an empty file holding the directory's exclusive OS lock (`flock` / `LockFileEx`,
//!   through `fs4`) while an executor has it open, so a second executor, in this process or
//!   another, fails at `build()` with [`crate::ExecutorError::StateDirInUse`]. The lock goes
//!   when the executor (its last clone) is dropped, or with its process. An executor dropped on
//!   another thread a moment ago is given two seconds to let go.
//!
//! Saves happen after every state change, before the follow-up requests are sent, and write
//! only what changed: new events, and for each run whose fingerprint moved its core plus the
//! memo entries, stack positions, history lines and step views not written yet (a step view is
//! rewritten when its status, attempts or result change). Runs and the events that started
//! them commit together.
//!
//! Memory stays bounded however much the store holds ([`Window`]): once saved, the oldest
//! finished runs beyond [`crate::ExecutorBuilder::max_finished_runs_in_memory`] and the oldest
//! events beyond [`crate::ExecutorBuilder::max_events_in_memory`] leave memory ([`Store::trim_runs`]);
//! the store keeps them, and lookups by id read them back through [`Archive`] (one indexed
//! read, whatever the store's size).
//!
//! On start, the newest events of the window are loaded (not routed again; an id seen before,
//! in memory or in the store, keeps deduplicating), and so are every unfinished run and the
//! newest finished ones of the window. Runs are held until their function is registered again;
//! then they join the history and every unfinished one is driven again ([`crate::restore`]).

mod db;
mod legacy;
mod record;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) use record::{FlowRecord, HeldRecord, PendingRecord, RunRecord};

use crate::event_log::EventLog;
use crate::state::{Run, StoredEvent};
use crate::ExecutorError;
use db::{Batch, Db, EventRow, RunRows};
use record::{core_of, EventLine, Fingerprint, RunWritten, StepMark};

const LOCK_FILE: &str = "lock";
const FORMAT_FILE: &str = "format.json";
/// The `format` name in `format.json`.
const FORMAT_NAME: &str = "inngest-executor-state";
/// The layout this executor writes.
const FORMAT_VERSION: u64 = 3;
/// The layouts this executor reads (1 is moved into the store on open, 2 gets its indexes).
const SUPPORTED_VERSIONS: &[u64] = &[1, 2, 3];
/// How long [`Store::open`] waits for a directory's lock before reporting it in use.
const LOCK_GRACE: Duration = Duration::from_secs(2);

fn io_error(what: &str, p: &Path, e: std::io::Error) -> ExecutorError {
    ExecutorError::State(format!("{what} {}: {e}", p.display()))
}

/// Takes the directory's exclusive lock (an OS file lock on `lock`, held as long as the returned
/// file is open; the OS drops it when the process dies). A holder that is going away (an executor
/// dropped on another thread a moment ago) is given [`LOCK_GRACE`] to let go.
fn lock_dir(dir: &Path) -> Result<fs::File, ExecutorError> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("cannot open", &path, e))?;
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(file),
            Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(ExecutorError::StateDirInUse {
                    dir: dir.display().to_string(),
                })
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io_error("cannot lock", &path, e)),
        }
    }
}

/// `format.json`: what layout the directory holds.
#[derive(Serialize, Deserialize)]
struct Format {
    format: String,
    version: u64,
}

/// The directory's layout version: from `format.json`, else 1 when version 1 files are
/// there, else `None` (a new directory).
fn read_format(dir: &Path) -> Result<Option<u64>, ExecutorError> {
    let path = dir.join(FORMAT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(legacy::present(dir).then_some(1));
        }
        Err(e) => return Err(io_error("cannot read", &path, e)),
    };
    let format: Format = serde_json::from_slice(&bytes)
        .ok()
        .filter(|f: &Format| f.format == FORMAT_NAME)
        .ok_or_else(|| {
            ExecutorError::State(format!(
                "{}: not an executor state format file (expected {{\"format\": \"{FORMAT_NAME}\", \"version\": <n>}})",
                path.display()
            ))
        })?;
    if SUPPORTED_VERSIONS.contains(&format.version) {
        return Ok(Some(format.version));
    }
    Err(ExecutorError::StateVersion {
        dir: dir.display().to_string(),
        found: format.version,
        supported: SUPPORTED_VERSIONS
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Writes `format.json` for the current version (atomically: temporary file, rename, sync).
fn write_format(dir: &Path) -> Result<(), ExecutorError> {
    let path = dir.join(FORMAT_FILE);
    let format = Format {
        format: FORMAT_NAME.to_owned(),
        version: FORMAT_VERSION,
    };
    let mut bytes = serde_json::to_vec(&format).unwrap_or_default();
    bytes.push(b'\n');
    let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
    write_synced(&tmp, &bytes)
        .and_then(|()| fs::rename(&tmp, &path))
        .and_then(|()| sync_dir(dir))
        .map_err(|e| io_error("cannot write", &path, e))
}

/// How much of the store stays in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Finished runs kept in memory (the newest ones).
    pub(crate) finished_runs: usize,
    /// Events kept in memory (the newest ones).
    pub(crate) events: usize,
}

impl Window {
    /// Memory is trimmed once it holds this many more than the window, so a trim (a pass over
    /// the runs in memory) happens once per that many finished runs, not after every save.
    fn slack(keep: usize) -> usize {
        (keep / 8).max(16)
    }
}

/// What was on disk when the executor started.
pub(crate) struct Loaded {
    /// The newest events (see [`Window`]).
    pub(crate) events: EventLog,
    /// Every unfinished run and the newest finished ones.
    pub(crate) runs: Vec<RunRecord>,
    /// The last tick of each cron.
    pub(crate) crons: BTreeMap<String, DateTime<Utc>>,
    /// Flow-control state.
    pub(crate) flow: FlowRecord,
}

/// Bookkeeping of what has been written.
#[derive(Default)]
struct Written {
    /// The sequence number of the first event not in the store yet.
    events: u64,
    /// What of each unfinished run is in the store.
    runs: HashMap<String, RunWritten>,
    /// Runs in memory whose final (terminal) state is written: never looked at again.
    done: HashSet<String>,
    /// The cron ticks in the store.
    crons: BTreeMap<String, DateTime<Utc>>,
    /// The flow-control record in the store.
    flow: FlowRecord,
    /// How many runs were in memory, all of them in the store, at the last full look.
    in_memory: usize,
}

/// The state directory. One save at a time (`written` is held across a whole save, so two saves
/// never commit out of order).
pub(crate) struct Store {
    db: Arc<Db>,
    window: Window,
    written: Mutex<Written>,
    /// The open `lock` file whose OS lock keeps other executors out; released on drop.
    _lock: fs::File,
}

/// Work collected under the state lock by [`Store::collect`], written by [`Pass::write`].
pub(crate) struct Pass<'a> {
    written: MutexGuard<'a, Written>,
    store: &'a Store,
    batch: Batch,
    /// The marks each run in the batch will have once it commits, and whether it ended.
    marks: Vec<(String, RunWritten, bool)>,
    events_total: u64,
    /// After a full look: the runs in memory that are in the store once this commits.
    in_memory: Option<usize>,
}

/// Serializes `value`, logging (and skipping) what cannot be.
fn json_bytes(value: &impl Serialize, what: &str) -> Option<Vec<u8>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize {what}");
            None
        }
    }
}

/// The rows of `run` not in the store yet (per `written`), and the marks after them.
fn rows_of(run: &Run, written: &RunWritten) -> Option<(RunRows, RunWritten)> {
    let mut next = written.clone();
    let mut rows = RunRows {
        id: run.id.clone(),
        event_id: run.event_id.clone(),
        terminal: run.status.is_terminal(),
        core: json_bytes(&core_of(run), "a run")?,
        ..RunRows::default()
    };
    for (hash, value) in &run.memo {
        if !next.memo.contains(hash) {
            rows.memo.push((hash.clone(), json_bytes(value, "a memo")?));
            next.memo.insert(hash.clone());
        }
    }
    for (pos, hash) in run.stack.iter().enumerate().skip(written.stack) {
        rows.stack.push((pos as u64, hash.clone()));
    }
    next.stack = run.stack.len();
    for (pos, entry) in run.history.iter().enumerate().skip(written.history) {
        rows.history
            .push((pos as u64, json_bytes(entry, "a history line")?));
    }
    next.history = run.history.len();
    next.steps = Vec::with_capacity(run.steps.len());
    for (pos, view) in run.steps.iter().enumerate() {
        let mark = StepMark::of(view);
        if written.steps.get(pos) != Some(&mark) {
            rows.steps.push((pos as u64, json_bytes(view, "a step")?));
        }
        next.steps.push(mark);
    }
    next.fingerprint = Some(Fingerprint::of(run));
    Some((rows, next))
}

/// The rows of a whole run read from a version 1 directory.
fn rows_of_record(r: &RunRecord) -> Option<RunRows> {
    let mut rows = RunRows {
        id: r.id.clone(),
        event_id: r.event_id.clone(),
        terminal: r.status.is_terminal(),
        core: json_bytes(&r.core(), "a run")?,
        ..RunRows::default()
    };
    for (hash, value) in &r.memo {
        rows.memo.push((hash.clone(), json_bytes(value, "a memo")?));
    }
    rows.stack = (0u64..).zip(r.stack.iter().cloned()).collect();
    for (pos, view) in (0u64..).zip(&r.steps) {
        rows.steps.push((pos, json_bytes(view, "a step")?));
    }
    for (pos, entry) in (0u64..).zip(&r.history) {
        rows.history
            .push((pos, json_bytes(entry, "a history line")?));
    }
    Some(rows)
}

fn event_rows<'a>(events: impl Iterator<Item = (u64, &'a StoredEvent)>) -> Vec<EventRow> {
    events
        .filter_map(|(seq, e)| {
            let line = EventLine {
                internal_id: e.internal_id.as_str(),
                received_at: e.received_at,
                event: &e.event,
            };
            json_bytes(&line, "an event").map(|line| EventRow {
                seq,
                ids: db::event_ids(e),
                line,
            })
        })
        .collect()
}

/// Moves a version 1 directory into a new store (see the module docs).
fn migrate(dir: &Path, store_path: &Path) -> Result<Db, ExecutorError> {
    let events = legacy::read_events(dir).map_err(ExecutorError::State)?;
    let runs = legacy::read_runs(dir).map_err(ExecutorError::State)?;
    // A store left by an interrupted move holds part of it at most: start over.
    match fs::remove_file(store_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("cannot remove", store_path, e))
        }
        _ => {}
    }
    let db = Db::open(store_path).map_err(ExecutorError::State)?;
    let batch = Batch {
        crons: Vec::new(),
        flow: None,
        events: event_rows((0u64..).zip(events.iter())),
        runs: runs
            .iter()
            .map(|r| {
                rows_of_record(r)
                    .ok_or_else(|| ExecutorError::State(format!("run {}: cannot be stored", r.id)))
            })
            .collect::<Result<_, _>>()?,
    };
    db.commit(&batch).map_err(ExecutorError::State)?;
    write_format(dir)?;
    legacy::remove(dir).map_err(|e| io_error("cannot remove the version 1 files of", dir, e))?;
    tracing::info!(
        dir = %dir.display(),
        events = events.len(),
        runs = runs.len(),
        "executor state moved from format version 1 to the store"
    );
    Ok(db)
}

impl Store {
    /// Opens (creating it if needed) a state directory, takes its lock and reads what it holds.
    pub(crate) fn open(dir: &Path, window: Window) -> Result<(Store, Loaded), ExecutorError> {
        fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        let lock = lock_dir(dir)?;
        let store_path = dir.join(db::FILE);
        let db = match read_format(dir)? {
            Some(1) => migrate(dir, &store_path)?,
            Some(2) => {
                let db = Db::open(&store_path).map_err(ExecutorError::State)?;
                db.build_indexes().map_err(ExecutorError::State)?;
                write_format(dir)?;
                tracing::info!(dir = %dir.display(), "executor state indexed (format version 2 to 3)");
                db
            }
            Some(_) => Db::open(&store_path).map_err(ExecutorError::State)?,
            None => {
                let db = Db::open(&store_path).map_err(ExecutorError::State)?;
                write_format(dir)?;
                db
            }
        };
        let (recent, next_seq) = db
            .recent_events(window.events)
            .map_err(ExecutorError::State)?;
        let mut events = EventLog::starting_at(next_seq - recent.len() as u64);
        for ev in recent {
            events.push(ev);
        }
        let runs = db
            .restart_runs(window.finished_runs)
            .map_err(ExecutorError::State)?;
        let crons = db.crons().map_err(ExecutorError::State)?;
        let flow = db.flow().map_err(ExecutorError::State)?;
        let mut written = Written {
            events: next_seq,
            crons: crons.clone(),
            flow: flow.clone(),
            ..Written::default()
        };
        for r in &runs {
            if r.status.is_terminal() {
                written.done.insert(r.id.clone());
            } else {
                written.runs.insert(r.id.clone(), RunWritten::of_record(r));
            }
        }
        tracing::info!(
            dir = %dir.display(),
            events = next_seq,
            runs_loaded = runs.len(),
            "executor state loaded"
        );
        let store = Store {
            db: Arc::new(db),
            window,
            written: Mutex::new(written),
            _lock: lock,
        };
        Ok((
            store,
            Loaded {
                events,
                runs,
                crons,
                flow,
            },
        ))
    }

    /// Starts a save: call under the state lock, then release the lock and [`Pass::write`].
    pub(crate) fn collect<'a>(
        &'a self,
        runs: &HashMap<String, Run>,
        events: &EventLog,
        crons: &BTreeMap<String, DateTime<Utc>>,
        flow: FlowRecord,
    ) -> Pass<'a> {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = Batch::default();
        let mut marks = Vec::new();
        let empty = RunWritten::default();
        // Runs leave memory only once they are in the store ([`Store::trim_runs`], which counts
        // them out), so while their number is the one the last full look counted, every run is
        // in the store and only the unfinished ones can have changed: a save looks at those
        // alone, not at every run in memory. New runs (or restored ones joining the history)
        // make the next save look at all of them again.
        let full = runs.len() != written.in_memory;
        let unfinished: Vec<&Run>;
        let candidates: Box<dyn Iterator<Item = &Run>> = if full {
            Box::new(runs.values())
        } else {
            unfinished = written.runs.keys().filter_map(|id| runs.get(id)).collect();
            Box::new(unfinished.into_iter())
        };
        let mut unsaved = 0;
        for run in candidates {
            if written.done.contains(&run.id) {
                continue;
            }
            let before = written.runs.get(&run.id).unwrap_or(&empty);
            if before.fingerprint == Some(Fingerprint::of(run)) {
                continue;
            }
            match rows_of(run, before) {
                Some((rows, next)) => {
                    batch.runs.push(rows);
                    marks.push((run.id.clone(), next, run.status.is_terminal()));
                }
                None => unsaved += 1,
            }
        }
        let in_memory = full.then(|| runs.len() - unsaved);
        batch.events = event_rows(events.since(written.events));
        batch.crons = crons
            .iter()
            .filter(|(k, t)| written.crons.get(*k) != Some(*t))
            .map(|(k, t)| (k.clone(), t.timestamp_millis()))
            .collect();
        if flow != written.flow {
            batch.flow = json_bytes(&flow, "the flow-control state").map(|b| (flow, b));
        }
        Pass {
            written,
            store: self,
            batch,
            marks,
            events_total: events.next_seq(),
            in_memory,
        }
    }
}

impl Store {
    /// How much of the store stays in memory.
    pub(crate) fn window(&self) -> Window {
        self.window
    }

    /// Read access to the store for lookups of what left memory.
    pub(crate) fn archive(&self) -> Archive {
        Archive(Arc::clone(&self.db))
    }

    /// Call under the state lock after a save, with the ids of the runs in memory in creation
    /// order: the finished runs, all in the store, that leave memory now (the oldest beyond
    /// [`Window::finished_runs`]; nothing until the window is overrun by its slack).
    pub(crate) fn trim_runs(&self, order: &[String]) -> HashSet<String> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let keep = self.window.finished_runs;
        let mut out = HashSet::new();
        if written.done.len() <= keep + Window::slack(keep) {
            return out;
        }
        let mut excess = written.done.len() - keep;
        for id in order {
            if excess == 0 {
                break;
            }
            if written.done.remove(id) {
                out.insert(id.clone());
                excess -= 1;
            }
        }
        written.in_memory = written.in_memory.saturating_sub(out.len());
        out
    }

    /// Call under the state lock after a save: drops the oldest events, all in the store,
    /// beyond [`Window::events`] from memory. Returns how many left.
    pub(crate) fn trim_events(&self, events: &mut EventLog) -> usize {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let keep = self.window.events;
        if events.len() <= keep + Window::slack(keep) {
            return 0;
        }
        events.trim(keep, written.events)
    }
}

/// Lookups in the store of the runs and events that left memory (each an indexed read). A
/// read that fails is logged and answers "not found".
#[derive(Clone)]
pub(crate) struct Archive(Arc<Db>);

impl Archive {
    fn logged<T: Default>(result: Result<T, String>) -> T {
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the executor state");
            T::default()
        })
    }

    /// The event with this internal id or sent id.
    pub(crate) fn event(&self, id: &str) -> Option<StoredEvent> {
        Self::logged(self.0.event(id))
    }

    /// A run, whole.
    pub(crate) fn run(&self, id: &str) -> Option<RunRecord> {
        Self::logged(self.0.run(id))
    }

    /// The ids of the runs an event (its internal id) started.
    pub(crate) fn runs_of_event(&self, event: &str) -> Vec<String> {
        Self::logged(self.0.runs_of_event(event))
    }
}

impl Pass<'_> {
    /// Commits the collected rows in one transaction. Errors are logged: the executor keeps
    /// running in memory, and the next save writes the same rows again.
    pub(crate) fn write(mut self) {
        if self.batch.is_empty() {
            if let Some(n) = self.in_memory {
                self.written.in_memory = n;
            }
            return;
        }
        if let Err(e) = self.store.db.commit(&self.batch) {
            tracing::error!(error = %e, "cannot save the executor state");
            return;
        }
        self.written.events = self.events_total;
        if let Some(n) = self.in_memory {
            self.written.in_memory = n;
        }
        if let Some((flow, _)) = self.batch.flow.take() {
            self.written.flow = flow;
        }
        for (key, ms) in std::mem::take(&mut self.batch.crons) {
            if let Some(t) = DateTime::from_timestamp_millis(ms) {
                self.written.crons.insert(key, t);
            }
        }
        for (id, next, terminal) in std::mem::take(&mut self.marks) {
            if terminal {
                self.written.runs.remove(&id);
                self.written.done.insert(id);
            } else {
                self.written.runs.insert(id, next);
            }
        }
    }
}

/// Writes `bytes` to a new file at `path` and flushes it to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Flushes a directory's entries (renames, new files) to the disk. Windows has no such call
/// (its renames are journaled by NTFS): a no-op there.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;
    use crate::state::RunStatus;
    use crate::Executor;

    #[test]
    fn a_signal_wait_record_round_trips() {
        let until: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let rec = PendingRecord::Signal {
            step: "s".into(),
            until,
            signal: "approve/o1".into(),
            replace: true,
            active: false,
        };
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"signal","step":"s","until":"2030-01-01T00:00:00Z","signal":"approve/o1","replace":true,"active":false}"#
        );
        let back: PendingRecord = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            back,
            PendingRecord::Signal {
                replace: true,
                active: false,
                ..
            }
        ));
    }

    const WINDOW: Window = Window {
        finished_runs: 1_000,
        events: 10_000,
    };

    /// Set in a child process (see [`a_directory_held_by_another_process_is_refused`]): the
    /// directory [`lock_holder`] opens.
    const HOLDER_ENV: &str = "INNGEST_EXECUTOR_TEST_LOCK_HOLDER_DIR";

    /// A fresh directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "inngest-executor-persist-{name}-{}-{}",
                std::process::id(),
                ulid::Ulid::new()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn in_use(dir: &Path) -> ExecutorError {
        ExecutorError::StateDirInUse {
            dir: dir.display().to_string(),
        }
    }

    #[test]
    fn a_second_executor_on_a_directory_in_use_fails_until_the_first_is_dropped() {
        let dir = TempDir::new("lock");
        let first = Executor::builder().state_dir(&dir.0).build().unwrap();
        let clone = first.clone();
        let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
        assert_eq!(err, in_use(&dir.0));
        assert_eq!(
            err.to_string(),
            format!(
                "executor state directory {}: held by another executor (in this or another \
                 process); only one executor at a time may use a state directory",
                dir.0.display()
            )
        );
        // Every clone shares one hold: dropping one clone keeps the directory held.
        drop(first);
        assert_eq!(
            Executor::builder().state_dir(&dir.0).build().unwrap_err(),
            in_use(&dir.0)
        );
        drop(clone);
        let again = Executor::builder().state_dir(&dir.0).build().unwrap();
        drop(again);
    }

    /// The child side of [`a_directory_held_by_another_process_is_refused`]: a no-op unless
    /// [`HOLDER_ENV`] is set; then it opens that directory, says so on stdout and holds it
    /// until stdin closes.
    #[test]
    fn lock_holder() {
        let Some(dir) = std::env::var_os(HOLDER_ENV) else {
            return;
        };
        let executor = Executor::builder().state_dir(dir).build().unwrap();
        println!("holding the state directory");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        drop(executor);
    }

    #[test]
    fn a_directory_held_by_another_process_is_refused() {
        let dir = TempDir::new("lock-child");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "persist::tests::lock_holder",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HOLDER_ENV, &dir.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let held = stdout
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("holding the state directory"));
        assert!(held, "the child process did not open the directory");

        let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
        assert_eq!(err, in_use(&dir.0));

        // The child dies without letting go itself: the OS releases its lock.
        child.kill().unwrap();
        child.wait().unwrap();
        drop(child.stdin.take());
        Executor::builder().state_dir(&dir.0).build().unwrap();
    }

    fn format_file(dir: &Path) -> Value {
        serde_json::from_slice(&fs::read(dir.join(FORMAT_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn a_version_1_directory_is_moved_into_the_store_and_its_files_removed() {
        let dir = TempDir::new("format-v1");
        let runs = dir.0.join(legacy::RUNS_DIR);
        fs::create_dir_all(&runs).unwrap();
        let line = serde_json::json!({
            "internal_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
            "received_at": "2026-03-01T12:00:00Z",
            "event": {"name": "shop/ordered", "id": "ord-1", "data": {}, "ts": 1}
        });
        // A torn last line (a crash while appending) is dropped.
        fs::write(
            dir.0.join(legacy::EVENTS_FILE),
            format!("{line}\n{{\"internal_id\":\"01JB"),
        )
        .unwrap();
        let run = serde_json::json!({
            "id": "01JRUN", "function": "app-f", "event_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
            "events": [], "status": "Completed", "output": {"ok": true}, "error": null,
            "started_at": "2026-03-01T12:00:00Z", "ended_at": "2026-03-01T12:00:01Z",
            "max_attempts": 4, "memo": {"h1": {"data": 1}, "h2": {"data": 2}},
            "stack": ["h1", "h2"], "mocked": {}, "version": 2, "force_step_plan": false,
            "planned": [], "pending": [], "discovery_busy": false, "steps": [], "history": [],
            "correlation_id": null, "requests": 3
        });
        fs::write(runs.join("01JRUN.json"), run.to_string()).unwrap();
        let (_, loaded) = Store::open(&dir.0, WINDOW).unwrap();
        assert_eq!(loaded.events.len(), 1);
        assert_eq!(loaded.events.find("ord-1").unwrap().event["id"], "ord-1");
        assert_eq!(loaded.runs.len(), 1);
        let r = &loaded.runs[0];
        assert_eq!(
            (r.id.as_str(), r.requests, r.max_attempts),
            ("01JRUN", 3, 4)
        );
        assert_eq!(r.stack, ["h1", "h2"]);
        assert_eq!(r.memo["h2"], serde_json::json!({"data": 2}));
        assert_eq!(r.output, Some(serde_json::json!({"ok": true})));
        assert_eq!(
            format_file(&dir.0),
            serde_json::json!({"format": "inngest-executor-state", "version": 3})
        );
        assert!(!dir.0.join(legacy::EVENTS_FILE).exists());
        assert!(!runs.exists());
        assert!(!dir.0.join("format.json.tmp").exists());
        // Opened again, it reads the store.
        let executor = Executor::builder().state_dir(&dir.0).build().unwrap();
        assert_eq!(executor.events().len(), 1);
    }

    #[test]
    fn a_new_directory_gets_a_version_3_format_file_and_a_store() {
        let dir = TempDir::new("format-new");
        let state = dir.0.join("state");
        Executor::builder().state_dir(&state).build().unwrap();
        assert_eq!(
            format_file(&state),
            serde_json::json!({"format": "inngest-executor-state", "version": 3})
        );
        assert!(state.join(db::FILE).exists());
    }

    #[test]
    fn a_newer_format_version_fails_with_the_version_found_and_the_versions_read() {
        let dir = TempDir::new("format-v4");
        let original = r#"{"format":"inngest-executor-state","version":4}"#;
        fs::write(dir.0.join(FORMAT_FILE), original).unwrap();
        let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
        assert_eq!(
            err,
            ExecutorError::StateVersion {
                dir: dir.0.display().to_string(),
                found: 4,
                supported: "1, 2, 3".to_owned(),
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "executor state directory {}: format version 4 is not supported (this executor \
                 reads versions 1, 2, 3)",
                dir.0.display()
            )
        );
        // Nothing was changed, and the refused directory is not left locked.
        assert_eq!(
            fs::read_to_string(dir.0.join(FORMAT_FILE)).unwrap(),
            original
        );
        fs::write(
            dir.0.join(FORMAT_FILE),
            r#"{"format":"something-else","version":1}"#,
        )
        .unwrap();
        let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
        assert!(
            matches!(&err, ExecutorError::State(m) if m.contains("not an executor state format file")),
            "{err:?}"
        );
    }

    /// A version 2 store: the tables of version 3 without the three indexes.
    fn write_version_2_store(dir: &Path) {
        let db = Db::open(&dir.join(db::FILE)).unwrap();
        let event = |seq: u64, internal: &str, sent: &str| EventRow {
            seq,
            ids: Vec::new(),
            line: serde_json::to_vec(&serde_json::json!({
                "internal_id": internal, "received_at": "2026-03-01T12:00:00Z",
                "event": {"name": "shop/ordered", "id": sent, "data": {}, "ts": 1}
            }))
            .unwrap(),
        };
        let core = |id: &str, event: &str, status: &str| {
            serde_json::to_vec(&serde_json::json!({
                "id": id, "function": "shop-f", "event_id": event, "events": [],
                "status": status, "output": null, "error": null,
                "started_at": "2026-03-01T12:00:00Z", "ended_at": null, "max_attempts": 4,
                "mocked": {}, "version": 2, "force_step_plan": false, "planned": [],
                "pending": [], "discovery_busy": false, "correlation_id": null, "requests": 1
            }))
            .unwrap()
        };
        let run = |id: &str, event: &str, status: &str| RunRows {
            id: id.to_owned(),
            core: core(id, event, status),
            ..RunRows::default()
        };
        let batch = Batch {
            events: vec![event(0, "01JE0", "ord-0"), event(1, "01JE1", "ord-1")],
            runs: vec![
                run("01JR0", "01JE0", "Completed"),
                run("01JR1", "01JE1", "Running"),
            ],
            ..Batch::default()
        };
        db.commit(&batch).unwrap();
        drop(db);
        // What version 2 did not have.
        let raw = redb::Database::open(dir.join(db::FILE)).unwrap();
        let txn = raw.begin_write().unwrap();
        let ids = redb::TableDefinition::<&str, u64>::new("event_ids");
        let runs = redb::TableDefinition::<(&str, &str), ()>::new("event_runs");
        let unfinished = redb::TableDefinition::<&str, ()>::new("unfinished");
        assert!(txn.delete_table(ids).unwrap());
        assert!(txn.delete_table(runs).unwrap());
        assert!(txn.delete_table(unfinished).unwrap());
        txn.commit().unwrap();
        fs::write(
            dir.join(FORMAT_FILE),
            r#"{"format":"inngest-executor-state","version":2}"#,
        )
        .unwrap();
    }

    #[test]
    fn a_version_2_store_gets_its_indexes_built_once_and_its_format_switched_to_3() {
        let dir = TempDir::new("format-v2");
        write_version_2_store(&dir.0);
        // A window of no finished run and one event: what is not in memory is found by id.
        let window = Window {
            finished_runs: 0,
            events: 1,
        };
        let (store, loaded) = Store::open(&dir.0, window).unwrap();
        assert_eq!(
            format_file(&dir.0),
            serde_json::json!({"format": "inngest-executor-state", "version": 3})
        );
        // The unfinished run (from the new `unfinished` index) and no finished one.
        let ids: Vec<&str> = loaded.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["01JR1"]);
        assert_eq!(loaded.events.len(), 1);
        assert_eq!(loaded.events.next_seq(), 2);
        assert_eq!(loaded.events.find("ord-1").unwrap().internal_id, "01JE1");
        let archive = store.archive();
        assert_eq!(archive.event("ord-0").unwrap().internal_id, "01JE0");
        assert_eq!(archive.event("01JE0").unwrap().event["id"], "ord-0");
        assert!(archive.event("ord-9").is_none());
        assert_eq!(archive.runs_of_event("01JE0"), ["01JR0"]);
        assert_eq!(archive.runs_of_event("01JE1"), ["01JR1"]);
        assert!(archive.runs_of_event("01JE").is_empty());
        let old = archive.run("01JR0").unwrap();
        assert_eq!((old.status, old.requests), (RunStatus::Completed, 1));
        drop((store, archive));
        // Opened again as version 3: the same, without another build.
        let (_, again) = Store::open(&dir.0, window).unwrap();
        assert_eq!(again.runs.len(), 1);
    }
}
