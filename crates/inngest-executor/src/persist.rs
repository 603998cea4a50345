//! The executor's optional on-disk state ([`crate::ExecutorBuilder::state_dir`]).
//!
//! Layout of the directory:
//! * `events.jsonl`: every event the executor accepted, one JSON object per line, appended (and
//!   fsynced) once per save.
//! * `runs/<run id>.json`: the latest snapshot of each run (memo, stack, steps, history, pending
//!   sleeps/waits/invokes with their deadlines), replaced atomically: written to
//!   `<run id>.json.tmp`, fsynced, renamed over the old one, then the directory is fsynced.
//! * `format.json`: `{"format": "inngest-executor-state", "version": 1}`, the layout's name and
//!   version. A directory without it (written before it existed) is read as version 1 and gets
//!   it; a version this executor does not read fails `build()` with
//!   [`crate::ExecutorError::StateVersion`].
//! * `lock`: an empty file holding the directory's exclusive OS lock (`flock` / `LockFileEx`,
//!   through `fs4`) while an executor has it open, so a second executor, in this process or
//!   another, fails at `build()` with [`crate::ExecutorError::StateDirInUse`]. The lock goes
//!   when the executor (its last clone) is dropped, or with its process. An executor dropped on
//!   another thread a moment ago is given two seconds to let go.
//!
//! Snapshots are taken after every state change, before the follow-up requests are sent, and
//! only for runs whose serialized form changed; runs are written before the events that started
//! them, so a crash between the two can at worst let a re-delivered event start a second run
//! (which the app's idempotency keys absorb), never lose a run. Every save is flushed to the disk
//! before it counts as written, so neither a kill -9 nor a power cut loses a save that finished
//! (a cut in the middle of one loses that save only: a run keeps its previous snapshot, a torn
//! last event line is dropped on the next start).
//!
//! On start, events are loaded (not routed again: they keep deduplicating by id) and runs are
//! held until their function is registered again; then they join the history and every
//! unfinished one is driven again ([`crate::restore`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::{HistoryEntry, PendingKind, Run, RunStatus, StepView, StoredEvent};
use crate::ExecutorError;

const EVENTS_FILE: &str = "events.jsonl";
const RUNS_DIR: &str = "runs";
const LOCK_FILE: &str = "lock";
const FORMAT_FILE: &str = "format.json";
/// The `format` name in `format.json`.
const FORMAT_NAME: &str = "inngest-executor-state";
/// The layout this executor writes.
const FORMAT_VERSION: u64 = 1;
/// The layouts this executor reads.
const SUPPORTED_VERSIONS: &[u64] = &[1];
/// How long [`Store::open`] waits for a directory's lock before reporting it in use.
const LOCK_GRACE: Duration = Duration::from_secs(2);

/// An event line of `events.jsonl`.
#[derive(Serialize, Deserialize)]
struct EventLine<S, E> {
    internal_id: S,
    received_at: DateTime<Utc>,
    event: E,
}

/// A pending sleep, wait or invoke, with its deadline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum PendingRecord {
    Sleep {
        step: String,
        until: DateTime<Utc>,
    },
    Wait {
        step: String,
        until: DateTime<Utc>,
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expr: Option<String>,
    },
    Signal {
        step: String,
        until: DateTime<Utc>,
        signal: String,
        replace: bool,
        active: bool,
    },
    Invoke {
        step: String,
        until: DateTime<Utc>,
        correlation_id: String,
    },
}

/// A run as written to disk (borrowed from the live [`Run`]).
#[derive(Serialize)]
struct RunRecordRef<'a> {
    id: &'a str,
    function: &'a str,
    event_id: &'a str,
    events: &'a [Value],
    status: RunStatus,
    output: &'a Option<Value>,
    error: &'a Option<Value>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    max_attempts: u32,
    memo: &'a BTreeMap<String, Value>,
    stack: &'a [String],
    mocked: &'a BTreeMap<String, Value>,
    version: i64,
    force_step_plan: bool,
    planned: Vec<&'a str>,
    pending: Vec<PendingRecord>,
    discovery_busy: bool,
    steps: &'a [StepView],
    history: &'a [HistoryEntry],
    correlation_id: &'a Option<String>,
    requests: u32,
}

/// A run as read back from disk.
#[derive(Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) id: String,
    /// The function's composite id (slug).
    pub(crate) function: String,
    pub(crate) event_id: String,
    pub(crate) events: Vec<Value>,
    pub(crate) status: RunStatus,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<Value>,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
    pub(crate) max_attempts: u32,
    pub(crate) memo: BTreeMap<String, Value>,
    pub(crate) stack: Vec<String>,
    pub(crate) mocked: BTreeMap<String, Value>,
    pub(crate) version: i64,
    pub(crate) force_step_plan: bool,
    pub(crate) planned: Vec<String>,
    pub(crate) pending: Vec<PendingRecord>,
    pub(crate) discovery_busy: bool,
    pub(crate) steps: Vec<StepView>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) requests: u32,
}

fn record_of(run: &Run) -> RunRecordRef<'_> {
    let mut planned: Vec<&str> = run.planned.iter().map(String::as_str).collect();
    planned.sort_unstable();
    let mut pending: Vec<PendingRecord> = run
        .pending
        .iter()
        .map(|(step, p)| {
            let step = step.clone();
            let until = p.until;
            match &p.kind {
                PendingKind::Sleep => PendingRecord::Sleep { step, until },
                PendingKind::Wait { event, expr } => PendingRecord::Wait {
                    step,
                    until,
                    event: event.clone(),
                    expr: expr.as_ref().map(|e| e.source().to_owned()),
                },
                PendingKind::Signal {
                    signal,
                    replace,
                    active,
                } => PendingRecord::Signal {
                    step,
                    until,
                    signal: signal.clone(),
                    replace: *replace,
                    active: *active,
                },
                PendingKind::Invoke { correlation_id } => PendingRecord::Invoke {
                    step,
                    until,
                    correlation_id: correlation_id.clone(),
                },
            }
        })
        .collect();
    pending.sort_by(|a, b| a.step().cmp(b.step()));
    RunRecordRef {
        id: &run.id,
        function: &run.function.slug,
        event_id: &run.event_id,
        events: &run.events,
        status: run.status,
        output: &run.output,
        error: &run.error,
        started_at: run.started_at,
        ended_at: run.ended_at,
        max_attempts: run.max_attempts,
        memo: &run.memo,
        stack: &run.stack,
        mocked: &run.mocked,
        version: run.version,
        force_step_plan: run.force_step_plan,
        planned,
        pending,
        discovery_busy: run.discovery_busy,
        steps: &run.steps,
        history: &run.history,
        correlation_id: &run.correlation_id,
        requests: run.requests,
    }
}

fn io_error(what: &str, p: &Path, e: std::io::Error) -> ExecutorError {
    ExecutorError::State(format!("{what} {}: {e}", p.display()))
}

fn io_text(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", p.display())
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

/// Checks the directory's `format.json`. A directory without one (written before the file
/// existed, or new) holds version 1 and gets the file.
fn check_format(dir: &Path) -> Result<(), ExecutorError> {
    let path = dir.join(FORMAT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let format = Format {
                format: FORMAT_NAME.to_owned(),
                version: FORMAT_VERSION,
            };
            let mut bytes = serde_json::to_vec(&format).unwrap_or_default();
            bytes.push(b'\n');
            let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
            return write_synced(&tmp, &bytes)
                .and_then(|()| fs::rename(&tmp, &path))
                .and_then(|()| sync_dir(dir))
                .map_err(|e| io_error("cannot write", &path, e));
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
        return Ok(());
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

/// Reads `events.jsonl`, cutting off a torn last line.
fn read_events(dir: &Path) -> Result<Vec<StoredEvent>, String> {
    let mut events = Vec::new();
    let events_path = dir.join(EVENTS_FILE);
    let bytes = match fs::read(&events_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(events),
        Err(e) => return Err(io_text("cannot read", &events_path, e)),
    };
    let mut valid_len = 0;
    for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let complete = line.ends_with(b"\n");
        match serde_json::from_slice::<EventLine<String, Value>>(line) {
            Ok(l) if complete => {
                valid_len += line.len();
                events.push(StoredEvent {
                    internal_id: l.internal_id,
                    event: l.event,
                    received_at: l.received_at,
                });
            }
            // A torn last line (the process died while appending it): dropped, and cut off so
            // the next append starts on a fresh line.
            _ if !complete => {
                tracing::warn!(line = n + 1, "dropping a torn last line of events.jsonl");
            }
            _ => {
                return Err(format!(
                    "{} line {}: not an event record",
                    events_path.display(),
                    n + 1
                ))
            }
        }
    }
    if valid_len < bytes.len() {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&events_path)
            .map_err(|e| io_text("cannot open", &events_path, e))?;
        f.set_len(valid_len as u64)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_text("cannot truncate", &events_path, e))?;
    }
    Ok(events)
}

/// Reads every run snapshot, oldest first, removing leftover temporary files.
fn read_runs(runs_dir: &Path) -> Result<Vec<RunRecord>, String> {
    let mut runs = Vec::new();
    let entries = fs::read_dir(runs_dir).map_err(|e| io_text("cannot read", runs_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_text("cannot read", runs_dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            // Leftover temporary files of an interrupted write: the previous snapshot (if any)
            // is intact under its real name.
            let _ = fs::remove_file(&path);
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| io_text("cannot read", &path, e))?;
        let record: RunRecord = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a run record: {e}", path.display()))?;
        runs.push(record);
    }
    runs.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    Ok(runs)
}

impl PendingRecord {
    pub(crate) fn step(&self) -> &str {
        match self {
            PendingRecord::Sleep { step, .. }
            | PendingRecord::Wait { step, .. }
            | PendingRecord::Invoke { step, .. }
            | PendingRecord::Signal { step, .. } => step,
        }
    }
}

/// What was on disk when the executor started.
pub(crate) struct Loaded {
    pub(crate) events: Vec<StoredEvent>,
    pub(crate) runs: Vec<RunRecord>,
}

/// What tells a changed run from an unchanged one without serializing it: every change the
/// engine makes to a run logs a history line or moves one of these counters.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    history: usize,
    status: RunStatus,
    requests: u32,
    memo: usize,
    pending: usize,
    planned: usize,
    discovery_busy: bool,
    version: i64,
}

impl Fingerprint {
    fn of(run: &Run) -> Fingerprint {
        Fingerprint {
            history: run.history.len(),
            status: run.status,
            requests: run.requests,
            memo: run.memo.len(),
            pending: run.pending.len(),
            planned: run.planned.len(),
            discovery_busy: run.discovery_busy,
            version: run.version,
        }
    }
}

/// Bookkeeping of what has been written.
#[derive(Default)]
struct Written {
    /// Number of `State::events` already in `events.jsonl`.
    events: usize,
    /// Fingerprint of each run's last snapshot.
    runs: HashMap<String, Fingerprint>,
    /// Runs whose final (terminal) snapshot is written: never looked at again.
    done: HashSet<String>,
}

/// The state directory. One save at a time (`written` is held across a whole save, so two saves
/// never write one file out of order).
pub(crate) struct Store {
    dir: PathBuf,
    written: Mutex<Written>,
    /// The open `lock` file whose OS lock keeps other executors out; released on drop.
    _lock: fs::File,
}

/// Work collected under the state lock by [`Store::collect`], written by [`Pass::write`].
pub(crate) struct Pass<'a> {
    store: &'a Store,
    written: MutexGuard<'a, Written>,
    runs: Vec<(String, Vec<u8>, Fingerprint, bool)>,
    events: Vec<u8>,
    events_total: usize,
}

impl Store {
    /// Opens (creating it if needed) a state directory, takes its lock and reads what it holds.
    pub(crate) fn open(dir: &Path) -> Result<(Store, Loaded), ExecutorError> {
        let runs_dir = dir.join(RUNS_DIR);
        fs::create_dir_all(&runs_dir).map_err(|e| io_error("cannot create", &runs_dir, e))?;
        let lock = lock_dir(dir)?;
        check_format(dir)?;
        let events = read_events(dir).map_err(ExecutorError::State)?;
        let runs = read_runs(&runs_dir).map_err(ExecutorError::State)?;

        let mut written = Written {
            events: events.len(),
            ..Written::default()
        };
        for r in &runs {
            if r.status.is_terminal() {
                written.done.insert(r.id.clone());
            }
        }
        tracing::info!(
            dir = %dir.display(),
            events = events.len(),
            runs = runs.len(),
            "executor state loaded"
        );
        Ok((
            Store {
                dir: dir.to_owned(),
                written: Mutex::new(written),
                _lock: lock,
            },
            Loaded { events, runs },
        ))
    }

    /// Starts a save: call under the state lock, then release the lock and [`Pass::write`].
    pub(crate) fn collect<'a>(
        &'a self,
        runs: &HashMap<String, Run>,
        events: &[StoredEvent],
    ) -> Pass<'a> {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = Vec::new();
        for run in runs.values() {
            if written.done.contains(&run.id) {
                continue;
            }
            let fingerprint = Fingerprint::of(run);
            if written.runs.get(&run.id) == Some(&fingerprint) {
                continue;
            }
            match serde_json::to_vec(&record_of(run)) {
                Ok(bytes) => {
                    changed.push((run.id.clone(), bytes, fingerprint, run.status.is_terminal()))
                }
                Err(e) => tracing::error!(run_id = %run.id, error = %e, "cannot serialize a run"),
            }
        }
        let mut lines = Vec::new();
        for e in events.iter().skip(written.events) {
            let line = EventLine {
                internal_id: e.internal_id.as_str(),
                received_at: e.received_at,
                event: &e.event,
            };
            if serde_json::to_writer(&mut lines, &line).is_ok() {
                lines.push(b'\n');
            }
        }
        Pass {
            store: self,
            written,
            runs: changed,
            events: lines,
            events_total: events.len(),
        }
    }
}

impl Pass<'_> {
    /// Writes the collected snapshots (runs first, then events). Errors are logged: the executor
    /// keeps running in memory.
    pub(crate) fn write(mut self) {
        let runs_dir = self.store.dir.join(RUNS_DIR);
        let mut renamed = false;
        for (id, bytes, hash, terminal) in std::mem::take(&mut self.runs) {
            let path = runs_dir.join(format!("{id}.json"));
            let tmp = runs_dir.join(format!("{id}.json.tmp"));
            match write_synced(&tmp, &bytes).and_then(|()| fs::rename(&tmp, &path)) {
                Ok(()) => {
                    renamed = true;
                    if terminal {
                        self.written.runs.remove(&id);
                        self.written.done.insert(id);
                    } else {
                        self.written.runs.insert(id, hash);
                    }
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    tracing::error!(run_id = %id, path = %path.display(), error = %e, "cannot save a run")
                }
            }
        }
        // The renames are durable before the events that started those runs are.
        if renamed {
            if let Err(e) = sync_dir(&runs_dir) {
                tracing::error!(path = %runs_dir.display(), error = %e, "cannot sync the runs directory");
            }
        }
        if !self.events.is_empty() {
            let path = self.store.dir.join(EVENTS_FILE);
            match append_synced(&path, &self.events) {
                Ok(()) => self.written.events = self.events_total,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot save events")
                }
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

/// Appends `bytes` to `path` (created if missing) and flushes it to the disk. A new file's
/// directory entry is flushed too.
fn append_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let existed = path.exists();
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    match path.parent() {
        Some(dir) if !existed => sync_dir(dir),
        _ => Ok(()),
    }
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

    use super::*;
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
    fn a_directory_of_the_layout_before_format_json_is_read_as_version_1_and_gets_the_file() {
        let dir = TempDir::new("format-v1");
        fs::create_dir_all(dir.0.join(RUNS_DIR)).unwrap();
        let line = serde_json::json!({
            "internal_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
            "received_at": "2026-03-01T12:00:00Z",
            "event": {"name": "shop/ordered", "id": "ord-1", "data": {}, "ts": 1}
        });
        fs::write(dir.0.join(EVENTS_FILE), format!("{line}\n")).unwrap();
        let executor = Executor::builder().state_dir(&dir.0).build().unwrap();
        assert_eq!(executor.events().len(), 1);
        drop(executor);
        assert_eq!(
            format_file(&dir.0),
            serde_json::json!({"format": "inngest-executor-state", "version": 1})
        );
        assert!(!dir.0.join("format.json.tmp").exists());
        // With the file, it opens as before.
        let executor = Executor::builder().state_dir(&dir.0).build().unwrap();
        assert_eq!(executor.events().len(), 1);
    }

    #[test]
    fn a_new_directory_gets_a_version_1_format_file() {
        let dir = TempDir::new("format-new");
        let state = dir.0.join("state");
        Executor::builder().state_dir(&state).build().unwrap();
        assert_eq!(
            format_file(&state),
            serde_json::json!({"format": "inngest-executor-state", "version": 1})
        );
    }

    #[test]
    fn a_newer_format_version_fails_with_the_version_found_and_the_versions_read() {
        let dir = TempDir::new("format-v2");
        let original = r#"{"format":"inngest-executor-state","version":2}"#;
        fs::write(dir.0.join(FORMAT_FILE), original).unwrap();
        let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
        assert_eq!(
            err,
            ExecutorError::StateVersion {
                dir: dir.0.display().to_string(),
                found: 2,
                supported: "1".to_owned(),
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "executor state directory {}: format version 2 is not supported (this executor \
                 reads version 1)",
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
}
