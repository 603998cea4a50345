//! Reading a version 1 state directory (`events.jsonl` and `runs/<run id>.json`), to move it
//! into the store once ([`super::Store::open`]).

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::record::{EventLine, RunRecord};
use crate::state::StoredEvent;

/// Version 1's event log.
pub(super) const EVENTS_FILE: &str = "events.jsonl";
/// Version 1's run snapshots.
pub(super) const RUNS_DIR: &str = "runs";

fn io_text(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", p.display())
}

/// Whether `dir` holds a version 1 layout.
pub(super) fn present(dir: &Path) -> bool {
    dir.join(EVENTS_FILE).exists() || dir.join(RUNS_DIR).exists()
}

/// Removes the version 1 files once their content is in the store.
pub(super) fn remove(dir: &Path) -> std::io::Result<()> {
    match fs::remove_file(dir.join(EVENTS_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match fs::remove_dir_all(dir.join(RUNS_DIR)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Reads `events.jsonl`, cutting off a torn last line.
pub(super) fn read_events(dir: &Path) -> Result<Vec<StoredEvent>, String> {
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
pub(super) fn read_runs(dir: &Path) -> Result<Vec<RunRecord>, String> {
    let runs_dir = &dir.join(RUNS_DIR);
    if !runs_dir.exists() {
        return Ok(Vec::new());
    }
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
