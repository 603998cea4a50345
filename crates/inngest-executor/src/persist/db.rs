//! The store itself: `state.redb`, a redb database (transactional, fsynced on commit).
//!
//! Tables: `events` (sequence → event), `runs` (run id → core), and the growing parts of each
//! run keyed by `(run id, …)`: `memo` (hashed step id → value), `stack` (position → hashed
//! step id), `steps` (position → step view) and `history` (position → entry); and `crons`
//! (`<function slug>\0<expression>` → the last tick fired, in ms). A step result is a few
//! small rows; nothing already written is written again. `flow` holds the flow-control record
//! (rate-limit windows, debounce and batch buffers, singleton keys, throttle GCRA state),
//! rewritten when it changes.
//!
//! Three indexes (format version 3) keep lookups and restarts independent of how much the store
//! holds: `event_ids` (an event's internal id and the id it was sent with → its sequence
//! number), `event_runs` (`(internal event id, run id)`, the runs an event started) and
//! `unfinished` (the ids of the runs not ended yet). They are written in the same transaction as
//! the rows they index; a version 2 store gets them built once, on open
//! ([`Db::build_indexes`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::record::{EventLine, FlowRecord, RunCore, RunParts, RunRecord};
use crate::event_log::sent_id;
use crate::state::StoredEvent;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
const MEMO: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("memo");
const STACK: TableDefinition<(&str, u64), &str> = TableDefinition::new("stack");
const STEPS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("steps");
const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
const CRONS: TableDefinition<&str, i64> = TableDefinition::new("crons");
const FLOW: TableDefinition<&str, &[u8]> = TableDefinition::new("flow");
const EVENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("event_ids");
const EVENT_RUNS: TableDefinition<(&str, &str), ()> = TableDefinition::new("event_runs");
const UNFINISHED: TableDefinition<&str, ()> = TableDefinition::new("unfinished");
/// The one key of the `flow` table.
const FLOW_KEY: &str = "flow";

/// The store's page cache: redb's default (1 GiB) would let a long-lived executor's memory grow
/// with the store; reads beyond this come from the OS page cache.
const CACHE_BYTES: usize = 32 << 20;

/// The store's file name in the state directory.
pub(super) const FILE: &str = "state.redb";

/// What one save writes, in one transaction.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) events: Vec<EventRow>,
    pub(super) runs: Vec<RunRows>,
    /// Cron ticks that moved: key and tick (ms).
    pub(super) crons: Vec<(String, i64)>,
    /// The flow-control record, when it changed (and its JSON).
    pub(super) flow: Option<(FlowRecord, Vec<u8>)>,
}

/// One event a save writes: its sequence number, the ids it is found by, its JSON.
pub(super) struct EventRow {
    pub(super) seq: u64,
    pub(super) ids: Vec<String>,
    pub(super) line: Vec<u8>,
}

/// The rows of one run a save writes.
#[derive(Default)]
pub(super) struct RunRows {
    pub(super) id: String,
    /// The internal id of the event that started it.
    pub(super) event_id: String,
    /// Whether it has ended.
    pub(super) terminal: bool,
    pub(super) core: Vec<u8>,
    pub(super) memo: Vec<(String, Vec<u8>)>,
    pub(super) stack: Vec<(u64, String)>,
    pub(super) steps: Vec<(u64, Vec<u8>)>,
    pub(super) history: Vec<(u64, Vec<u8>)>,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.runs.is_empty()
            && self.crons.is_empty()
            && self.flow.is_none()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{FILE}: {what}: {e}")
}

/// The decoded rows of one run in a `(run id, position)` table, in position order.
fn positions<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<(&str, u64), &[u8]>,
    name: &str,
    id: &str,
) -> Result<Vec<T>, String> {
    let table = txn.open_table(table).map_err(|e| err(name, e))?;
    let mut out = Vec::new();
    for row in table
        .range((id, 0)..=(id, u64::MAX))
        .map_err(|e| err(name, e))?
    {
        let (_, v) = row.map_err(|e| err(name, e))?;
        out.push(serde_json::from_slice(v.value()).map_err(|e| err(name, e))?);
    }
    Ok(out)
}

pub(super) struct Db(Database);

impl Db {
    /// Opens (or creates) the database at `path`.
    pub(super) fn open(path: &Path) -> Result<Db, String> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| err("cannot open", e))?;
        // Create every table, so reads of a new store find them.
        let txn = db.begin_write().map_err(|e| err("cannot write", e))?;
        {
            txn.open_table(EVENTS).map_err(|e| err("events", e))?;
            txn.open_table(RUNS).map_err(|e| err("runs", e))?;
            txn.open_table(MEMO).map_err(|e| err("memo", e))?;
            txn.open_table(STACK).map_err(|e| err("stack", e))?;
            txn.open_table(STEPS).map_err(|e| err("steps", e))?;
            txn.open_table(HISTORY).map_err(|e| err("history", e))?;
            txn.open_table(CRONS).map_err(|e| err("crons", e))?;
            txn.open_table(FLOW).map_err(|e| err("flow", e))?;
            txn.open_table(EVENT_IDS).map_err(|e| err("event_ids", e))?;
            txn.open_table(EVENT_RUNS)
                .map_err(|e| err("event_runs", e))?;
            txn.open_table(UNFINISHED)
                .map_err(|e| err("unfinished", e))?;
        }
        txn.commit().map_err(|e| err("cannot commit", e))?;
        Ok(Db(db))
    }

    /// Writes a batch in one transaction, durable when this returns `Ok`.
    pub(super) fn commit(&self, batch: &Batch) -> Result<(), String> {
        let txn = self.0.begin_write().map_err(|e| err("cannot write", e))?;
        {
            let mut events = txn.open_table(EVENTS).map_err(|e| err("events", e))?;
            let mut event_ids = txn.open_table(EVENT_IDS).map_err(|e| err("event_ids", e))?;
            for row in &batch.events {
                events
                    .insert(row.seq, row.line.as_slice())
                    .map_err(|e| err("events", e))?;
                for id in &row.ids {
                    event_ids
                        .insert(id.as_str(), row.seq)
                        .map_err(|e| err("event_ids", e))?;
                }
            }
            let mut crons = txn.open_table(CRONS).map_err(|e| err("crons", e))?;
            for (key, ms) in &batch.crons {
                crons
                    .insert(key.as_str(), *ms)
                    .map_err(|e| err("crons", e))?;
            }
            if let Some((_, bytes)) = &batch.flow {
                let mut flow = txn.open_table(FLOW).map_err(|e| err("flow", e))?;
                flow.insert(FLOW_KEY, bytes.as_slice())
                    .map_err(|e| err("flow", e))?;
            }
            let mut runs = txn.open_table(RUNS).map_err(|e| err("runs", e))?;
            let mut memo = txn.open_table(MEMO).map_err(|e| err("memo", e))?;
            let mut stack = txn.open_table(STACK).map_err(|e| err("stack", e))?;
            let mut steps = txn.open_table(STEPS).map_err(|e| err("steps", e))?;
            let mut history = txn.open_table(HISTORY).map_err(|e| err("history", e))?;
            let mut event_runs = txn
                .open_table(EVENT_RUNS)
                .map_err(|e| err("event_runs", e))?;
            let mut unfinished = txn
                .open_table(UNFINISHED)
                .map_err(|e| err("unfinished", e))?;
            for r in &batch.runs {
                let id = r.id.as_str();
                runs.insert(id, r.core.as_slice())
                    .map_err(|e| err("runs", e))?;
                event_runs
                    .insert((r.event_id.as_str(), id), ())
                    .map_err(|e| err("event_runs", e))?;
                if r.terminal {
                    unfinished.remove(id).map_err(|e| err("unfinished", e))?;
                } else {
                    unfinished
                        .insert(id, ())
                        .map_err(|e| err("unfinished", e))?;
                }
                for (step, value) in &r.memo {
                    memo.insert((id, step.as_str()), value.as_slice())
                        .map_err(|e| err("memo", e))?;
                }
                for (pos, hash) in &r.stack {
                    stack
                        .insert((id, *pos), hash.as_str())
                        .map_err(|e| err("stack", e))?;
                }
                for (pos, view) in &r.steps {
                    steps
                        .insert((id, *pos), view.as_slice())
                        .map_err(|e| err("steps", e))?;
                }
                for (pos, entry) in &r.history {
                    history
                        .insert((id, *pos), entry.as_slice())
                        .map_err(|e| err("history", e))?;
                }
            }
        }
        txn.commit().map_err(|e| err("cannot commit", e))
    }

    /// Reads the last tick of every cron.
    pub(super) fn crons(&self) -> Result<BTreeMap<String, DateTime<Utc>>, String> {
        let txn = self.0.begin_read().map_err(|e| err("cannot read", e))?;
        let table = txn.open_table(CRONS).map_err(|e| err("crons", e))?;
        let mut out = BTreeMap::new();
        for row in table.iter().map_err(|e| err("crons", e))? {
            let (k, v) = row.map_err(|e| err("crons", e))?;
            if let Some(t) = DateTime::from_timestamp_millis(v.value()) {
                out.insert(k.value().to_owned(), t);
            }
        }
        Ok(out)
    }

    /// Reads the flow-control record (empty when none was written).
    pub(super) fn flow(&self) -> Result<FlowRecord, String> {
        let txn = self.0.begin_read().map_err(|e| err("cannot read", e))?;
        let table = txn.open_table(FLOW).map_err(|e| err("flow", e))?;
        let record = match table.get(FLOW_KEY).map_err(|e| err("flow", e))? {
            Some(v) => serde_json::from_slice(v.value()).map_err(|e| err("flow", e))?,
            None => FlowRecord::default(),
        };
        Ok(record)
    }

    /// A read transaction.
    fn read(&self) -> Result<redb::ReadTransaction, String> {
        self.0.begin_read().map_err(|e| err("cannot read", e))
    }

    /// The newest `keep` events (oldest first), and the sequence number the next event gets.
    pub(super) fn recent_events(&self, keep: usize) -> Result<(Vec<StoredEvent>, u64), String> {
        let txn = self.read()?;
        let table = txn.open_table(EVENTS).map_err(|e| err("events", e))?;
        let next = match table.last().map_err(|e| err("events", e))? {
            Some((seq, _)) => seq.value() + 1,
            None => 0,
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| err("events", e))?.rev().take(keep) {
            let (seq, line) = row.map_err(|e| err("events", e))?;
            out.push(event_of(seq.value(), line.value())?);
        }
        out.reverse();
        Ok((out, next))
    }

    /// The event with this internal id or sent id.
    pub(super) fn event(&self, id: &str) -> Result<Option<StoredEvent>, String> {
        let txn = self.read()?;
        let ids = txn.open_table(EVENT_IDS).map_err(|e| err("event_ids", e))?;
        let Some(seq) = ids.get(id).map_err(|e| err("event_ids", e))? else {
            return Ok(None);
        };
        let seq = seq.value();
        let events = txn.open_table(EVENTS).map_err(|e| err("events", e))?;
        let line = events.get(seq).map_err(|e| err("events", e))?;
        line.map(|line| event_of(seq, line.value())).transpose()
    }

    /// The ids of the runs an event (its internal id) started, in id order.
    pub(super) fn runs_of_event(&self, event: &str) -> Result<Vec<String>, String> {
        let txn = self.read()?;
        let table = txn
            .open_table(EVENT_RUNS)
            .map_err(|e| err("event_runs", e))?;
        let mut out = Vec::new();
        for row in table
            .range((event, "")..)
            .map_err(|e| err("event_runs", e))?
        {
            let (k, _) = row.map_err(|e| err("event_runs", e))?;
            let (e, run) = k.value();
            if e != event {
                break;
            }
            out.push(run.to_owned());
        }
        Ok(out)
    }

    /// One run, whole.
    pub(super) fn run(&self, id: &str) -> Result<Option<RunRecord>, String> {
        read_run(&self.read()?, id)
    }

    /// The runs a restart brings back, oldest first: every unfinished run (from the
    /// `unfinished` index) and the newest `keep` finished ones (walking `runs` back from the
    /// newest id, a ULID, so in creation order).
    pub(super) fn restart_runs(&self, keep: usize) -> Result<Vec<RunRecord>, String> {
        let txn = self.read()?;
        let mut ids = Vec::new();
        let unfinished = txn
            .open_table(UNFINISHED)
            .map_err(|e| err("unfinished", e))?;
        for row in unfinished.iter().map_err(|e| err("unfinished", e))? {
            ids.push(row.map_err(|e| err("unfinished", e))?.0.value().to_owned());
        }
        let runs = txn.open_table(RUNS).map_err(|e| err("runs", e))?;
        let mut finished = 0;
        for row in runs.iter().map_err(|e| err("runs", e))?.rev() {
            if finished >= keep {
                break;
            }
            let (k, v) = row.map_err(|e| err("runs", e))?;
            if core_of_row(k.value(), v.value())?.status().is_terminal() {
                ids.push(k.value().to_owned());
                finished += 1;
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(read_run(&txn, &id)?);
        }
        out.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(out)
    }

    /// Builds the indexes of a version 2 store (which had none), in one transaction.
    pub(super) fn build_indexes(&self) -> Result<(), String> {
        let txn = self.0.begin_write().map_err(|e| err("cannot write", e))?;
        {
            let events = txn.open_table(EVENTS).map_err(|e| err("events", e))?;
            let mut ids = txn.open_table(EVENT_IDS).map_err(|e| err("event_ids", e))?;
            for row in events.iter().map_err(|e| err("events", e))? {
                let (seq, line) = row.map_err(|e| err("events", e))?;
                let seq = seq.value();
                for id in event_ids(&event_of(seq, line.value())?) {
                    ids.insert(id.as_str(), seq)
                        .map_err(|e| err("event_ids", e))?;
                }
            }
            let runs = txn.open_table(RUNS).map_err(|e| err("runs", e))?;
            let mut event_runs = txn
                .open_table(EVENT_RUNS)
                .map_err(|e| err("event_runs", e))?;
            let mut unfinished = txn
                .open_table(UNFINISHED)
                .map_err(|e| err("unfinished", e))?;
            for row in runs.iter().map_err(|e| err("runs", e))? {
                let (k, v) = row.map_err(|e| err("runs", e))?;
                let core = core_of_row(k.value(), v.value())?;
                event_runs
                    .insert((core.event_id(), k.value()), ())
                    .map_err(|e| err("event_runs", e))?;
                if !core.status().is_terminal() {
                    unfinished
                        .insert(k.value(), ())
                        .map_err(|e| err("unfinished", e))?;
                }
            }
        }
        txn.commit().map_err(|e| err("cannot commit", e))
    }
}

/// The ids an event is found by: its internal id and the id it was sent with.
pub(super) fn event_ids(ev: &StoredEvent) -> Vec<String> {
    let mut ids = vec![ev.internal_id.clone()];
    if let Some(sent) = sent_id(&ev.event).filter(|s| *s != ev.internal_id) {
        ids.push(sent.to_owned());
    }
    ids
}

fn event_of(seq: u64, line: &[u8]) -> Result<StoredEvent, String> {
    let l: EventLine<String, Value> =
        serde_json::from_slice(line).map_err(|e| err(&format!("event #{seq}"), e))?;
    Ok(StoredEvent {
        internal_id: l.internal_id,
        event: l.event,
        received_at: l.received_at,
    })
}

fn core_of_row(id: &str, bytes: &[u8]) -> Result<RunCore, String> {
    serde_json::from_slice(bytes).map_err(|e| err(&format!("run {id}"), e))
}

/// One run read whole: its core and its rows in the other tables (range reads on its id).
fn read_run(txn: &redb::ReadTransaction, id: &str) -> Result<Option<RunRecord>, String> {
    let runs = txn.open_table(RUNS).map_err(|e| err("runs", e))?;
    let Some(core) = runs.get(id).map_err(|e| err("runs", e))? else {
        return Ok(None);
    };
    let core = core_of_row(id, core.value())?;
    let mut parts = RunParts::default();
    let memo = txn.open_table(MEMO).map_err(|e| err("memo", e))?;
    for row in memo.range((id, "")..).map_err(|e| err("memo", e))? {
        let (k, v) = row.map_err(|e| err("memo", e))?;
        let (run, step) = k.value();
        if run != id {
            break;
        }
        let value: Value = serde_json::from_slice(v.value()).map_err(|e| err("memo", e))?;
        parts.memo.insert(step.to_owned(), value);
    }
    let stack = txn.open_table(STACK).map_err(|e| err("stack", e))?;
    for row in stack
        .range((id, 0)..=(id, u64::MAX))
        .map_err(|e| err("stack", e))?
    {
        parts
            .stack
            .push(row.map_err(|e| err("stack", e))?.1.value().to_owned());
    }
    parts.steps = positions(txn, STEPS, "steps", id)?;
    parts.history = positions(txn, HISTORY, "history", id)?;
    Ok(Some(core.into_record(parts)))
}
