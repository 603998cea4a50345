//! The events the executor has received, in arrival order, each with a sequence number (its
//! row in the state directory's store). With a state directory only the newest ones stay in
//! memory ([`crate::ExecutorBuilder::max_events_in_memory`]); the older ones are read back
//! from the store by id ([`crate::persist::Archive::event`]).

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::state::StoredEvent;

/// The events in memory: a window `base..base + len` of the sequence, indexed by id.
#[derive(Default)]
pub(crate) struct EventLog {
    /// Sequence number of the oldest event in memory.
    base: u64,
    items: VecDeque<StoredEvent>,
    /// The id each event was sent with (or was given) and its internal id → sequence number.
    index: HashMap<String, u64>,
}

/// The id an event was sent with, when it has one.
pub(crate) fn sent_id(event: &Value) -> Option<&str> {
    event.get("id").and_then(Value::as_str)
}

impl EventLog {
    /// An empty log whose first event gets sequence number `next`.
    pub(crate) fn starting_at(next: u64) -> EventLog {
        EventLog {
            base: next,
            ..EventLog::default()
        }
    }

    /// The sequence number the next event gets (the number of events ever received).
    pub(crate) fn next_seq(&self) -> u64 {
        self.base + self.items.len() as u64
    }

    /// Appends an event; returns its sequence number.
    pub(crate) fn push(&mut self, ev: StoredEvent) -> u64 {
        let seq = self.next_seq();
        if let Some(uid) = sent_id(&ev.event) {
            self.index.insert(uid.to_owned(), seq);
        }
        self.index.insert(ev.internal_id.clone(), seq);
        self.items.push_back(ev);
        seq
    }

    /// The event with this sequence number, if it is in memory.
    pub(crate) fn get(&self, seq: u64) -> Option<&StoredEvent> {
        let pos = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.items.get(pos)
    }

    /// The event in memory with this internal id or sent id.
    pub(crate) fn find(&self, id: &str) -> Option<&StoredEvent> {
        self.index.get(id).and_then(|&seq| self.get(seq))
    }

    /// The events in memory, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &StoredEvent> + ExactSizeIterator {
        self.items.iter()
    }

    /// The events from sequence number `seq` on, with their numbers.
    pub(crate) fn since(&self, seq: u64) -> impl Iterator<Item = (u64, &StoredEvent)> {
        let skip = usize::try_from(seq.saturating_sub(self.base)).unwrap_or(usize::MAX);
        (self.base..).zip(self.items.iter()).skip(skip)
    }

    /// Whether every event ever received is in memory (none left for the store alone).
    pub(crate) fn holds_all(&self) -> bool {
        self.base == 0
    }

    /// Number of events in memory.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Drops the oldest events while more than `keep` are in memory, but none numbered
    /// `stored` or later (not in the store yet). Returns how many were dropped.
    pub(crate) fn trim(&mut self, keep: usize, stored: u64) -> usize {
        let mut dropped = 0;
        while self.items.len() > keep && self.base < stored {
            let Some(ev) = self.items.pop_front() else {
                break;
            };
            let seq = self.base;
            self.base += 1;
            dropped += 1;
            for id in [Some(ev.internal_id.as_str()), sent_id(&ev.event)]
                .into_iter()
                .flatten()
            {
                if self.index.get(id) == Some(&seq) {
                    self.index.remove(id);
                }
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(internal: &str, sent: &str) -> StoredEvent {
        StoredEvent {
            internal_id: internal.to_owned(),
            event: json!({"name": "e", "id": sent}),
            received_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn trimming_keeps_the_newest_stored_events_and_their_ids() {
        let mut log = EventLog::starting_at(10);
        for i in 0..5 {
            assert_eq!(log.push(event(&format!("I{i}"), &format!("s{i}"))), 10 + i);
        }
        // Events 13 and 14 are not in the store yet: never dropped.
        assert_eq!(log.trim(1, 13), 3);
        assert_eq!(log.len(), 2);
        assert!(log.find("I2").is_none() && log.find("s2").is_none());
        assert_eq!(log.find("s3").unwrap().internal_id, "I3");
        assert_eq!(log.get(14).unwrap().internal_id, "I4");
        assert!(log.get(12).is_none());
        let since: Vec<u64> = log.since(14).map(|(seq, _)| seq).collect();
        assert_eq!(since, [14]);
        assert_eq!(log.next_seq(), 15);
    }

    #[test]
    fn a_sent_id_used_again_by_a_later_event_stays_indexed_when_the_first_is_dropped() {
        let mut log = EventLog::default();
        log.push(event("I0", "dup"));
        log.push(event("I1", "dup"));
        assert_eq!(log.trim(1, 2), 1);
        assert_eq!(log.find("dup").unwrap().internal_id, "I1");
    }
}
