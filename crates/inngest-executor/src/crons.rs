//! Cron triggers: one task per cron of each synced function, sleeping on the executor's clock
//! until the next tick, then storing an `inngest/scheduled.timer` event and routing it to the
//! function through flow control. A re-sync that changes the app aborts the old tasks.
//!
//! Each cron's last tick is kept (in the state directory, when there is one). Ticks that fell
//! due while the process was down are fired when the function is synced again, one after
//! another in order and each with its own scheduled time, as the server's durable cron queue
//! does (inngest `pkg/execution/cron/manager.go` `ScheduleNext` schedules the next tick from
//! the previous tick's time, so overdue ticks run back to back; each tick's event id is its
//! scheduled time, so none runs twice). Difference: when the executor's clock jumps ahead while
//! it runs (a virtual clock in tests), the ticks jumped over are skipped and the next one after
//! the new time fires.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::cron::CronSchedule;
use crate::flow_control::{admit, Trigger};
use crate::registry::FunctionDef;
use crate::shared::{new_ulid, Actions, Inner, EVENT_CRON};
use crate::state::StoredEvent;

/// The key of a cron's last tick: `<function slug>\0<expression>`.
pub(crate) fn tick_key(f: &FunctionDef, sched: &CronSchedule) -> String {
    format!("{}\0{}", f.slug, sched.source())
}

impl Inner {
    /// Starts the task of one cron of `f`; its handle aborts it.
    pub(crate) fn spawn_cron(
        self: &Arc<Self>,
        f: Arc<FunctionDef>,
        sched: CronSchedule,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> tokio::task::AbortHandle {
        let weak = Arc::downgrade(self);
        let clock = self.settings.clock.clone();
        // Catch up from the last tick kept (ticks missed while down), else start from now.
        let first = sched.next_after(last.unwrap_or(now).min(now));
        tokio::spawn(async move {
            let mut next = first;
            while let Some(at) = next {
                clock.sleep_until(at).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                inner.fire_cron(&f, &sched, at);
                // Overdue from before the start: the next tick in order; else the next from now.
                next = if at < now {
                    sched.next_after(at)
                } else {
                    sched.next_after(inner.now().max(at))
                };
            }
        })
        .abort_handle()
    }

    /// One tick: the event (its id is the tick's time, so a tick is never run twice), stored
    /// and routed to `f` if it is still the registered version of the function.
    fn fire_cron(self: &Arc<Self>, f: &Arc<FunctionDef>, sched: &CronSchedule, at: DateTime<Utc>) {
        let now = self.now();
        let stamp = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let ev = json!({
            "name": EVENT_CRON,
            "data": {"cron": sched.source(), "scheduledAt": stamp, "fireAt": now.to_rfc3339_opts(SecondsFormat::Secs, true)},
            "id": stamp,
            "ts": at.timestamp_millis(),
            "user": {},
        });
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            if !st.functions.get(&f.slug).is_some_and(|g| Arc::ptr_eq(g, f)) {
                return;
            }
            st.cron_ticks.insert(tick_key(f, sched), at);
            let internal_id = new_ulid(now);
            st.events.push(StoredEvent {
                internal_id: internal_id.clone(),
                event: ev.clone(),
                received_at: now,
            });
            tracing::info!(function = %f.slug, at = %stamp, "cron fired");
            let trigger = Trigger {
                function: f.clone(),
                event: ev,
                event_id: internal_id,
                correlation: None,
                invoked: false,
            };
            admit(&mut st, trigger, now, &mut actions);
        }
        self.perform(actions);
    }

    /// Aborts cron tasks.
    pub(crate) fn shutdown(&self) {
        let mut st = self.lock();
        for app in st.apps.values_mut() {
            for c in app.crons.drain(..) {
                c.abort();
            }
        }
    }
}
