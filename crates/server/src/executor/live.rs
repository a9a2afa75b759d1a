//! An execution while it is in this process: its record as it runs (for `GET` before it
//! ends), its log entries (for the logs API and followers), and who waits for its end.

use crate::executor::record;
use kestrel_engine::{
    CancelToken, Execution, Listener, LogEntry, Resumer, Resumes, Shown, TaskRun, resume_channel,
};
use kestrel_store::{ExecutionRecord, LogRecord};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{broadcast, mpsc, watch};

/// What a follower of the logs receives.
#[derive(Debug, Clone)]
pub(crate) enum LiveEvent {
    /// A log entry, masked.
    Log(LogRecord),
    /// The execution ended; nothing follows.
    End,
}

/// Log entries a slow follower may fall behind by before it misses some.
const FOLLOW_BUFFER: usize = 1024;

/// How an execution left this process.
#[derive(Clone)]
enum Ending {
    /// It ended here, and this is what was stored.
    Stored(Arc<ExecutionRecord>),
    /// It ended elsewhere (killed through another node, or taken over by another worker):
    /// the store has its end.
    Elsewhere,
}

/// One execution not yet ended, running in this process.
pub(crate) struct Live {
    /// Kills it.
    pub(crate) cancel: CancelToken,
    /// Resumes it when it is PAUSED.
    pub(crate) resumer: Resumer,
    /// The other end of `resumer`, until its run takes it.
    resumes: Mutex<Option<Resumes>>,
    /// Added to the engine's attempt numbers: a resumed execution's task runs are new
    /// attempts (its claim number less one).
    attempt_offset: u32,
    state: Mutex<LiveState>,
    done: watch::Sender<Option<Ending>>,
}

struct LiveState {
    record: ExecutionRecord,
    /// Where each task run sits in `record.task_runs`, by id: an update finds its run at once,
    /// however many there are.
    positions: HashMap<String, usize>,
    logs: Vec<LogRecord>,
    /// Made for the first follower: most executions have none, and the buffer is large.
    events: Option<broadcast::Sender<LiveEvent>>,
    /// Set by [`Live::finish`]: a follower arriving later gets the entries and nothing more.
    ended: bool,
}

impl LiveState {
    fn publish(&self, event: LiveEvent) {
        if let Some(events) = &self.events {
            // No follower left is no error.
            let _ = events.send(event);
        }
    }
}

impl Live {
    /// Where its Pause tasks wait for resumes: given to its run, once.
    pub(crate) fn take_resumes(&self) -> Option<Resumes> {
        self.resumes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The execution `record`, whose task runs' attempts count from `attempt_offset + 1`.
    pub(crate) fn new(record: ExecutionRecord, attempt_offset: u32) -> Self {
        let (resumer, resumes) = resume_channel();
        Self {
            cancel: CancelToken::new(),
            resumer,
            resumes: Mutex::new(Some(resumes)),
            attempt_offset,
            state: Mutex::new(LiveState {
                positions: positions(&record),
                record,
                logs: Vec::new(),
                events: None,
                ended: false,
            }),
            done: watch::Sender::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LiveState> {
        // Every change is one assignment or push: a panic cannot leave the state half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The record as it is now.
    pub(crate) fn record(&self) -> ExecutionRecord {
        self.lock().record.clone()
    }

    /// Changes the record (its state, as the worker moves it on).
    pub(crate) fn update(&self, change: impl FnOnce(&mut ExecutionRecord)) {
        change(&mut self.lock().record);
    }

    /// The record and the log entries so far.
    pub(crate) fn snapshot(&self) -> (ExecutionRecord, Vec<LogRecord>) {
        let state = self.lock();
        (state.record.clone(), state.logs.clone())
    }

    /// The log entries so far and the events after them, with none lost or repeated between
    /// (only the end, once the execution ended).
    pub(crate) fn follow(&self) -> (Vec<LogRecord>, broadcast::Receiver<LiveEvent>) {
        let mut state = self.lock();
        if state.ended {
            let (events, receiver) = broadcast::channel(1);
            // The receiver keeps the event after the sender is gone.
            let _ = events.send(LiveEvent::End);
            return (state.logs.clone(), receiver);
        }
        let receiver = state
            .events
            .get_or_insert_with(|| broadcast::Sender::new(FOLLOW_BUFFER))
            .subscribe();
        (state.logs.clone(), receiver)
    }

    /// What the engine's attempt numbers are shifted by.
    pub(crate) fn attempt_offset(&self) -> u32 {
        self.attempt_offset
    }

    /// Adds an entry of the server's own (at the start of a resumed execution).
    pub(crate) fn log(&self, log: LogRecord) {
        let mut state = self.lock();
        state.publish(LiveEvent::Log(log.clone()));
        state.logs.push(log);
    }

    /// Completes with the ended record, or `None` when it ended elsewhere (the store has it).
    pub(crate) async fn ended(&self) -> Option<Arc<ExecutionRecord>> {
        let mut receiver = self.done.subscribe();
        loop {
            match receiver.borrow_and_update().clone() {
                Some(Ending::Stored(record)) => return Some(record),
                Some(Ending::Elsewhere) => return None,
                None => {}
            }
            if receiver.changed().await.is_err() {
                // The sender lives in `self`: it cannot be dropped while we wait.
                return Some(Arc::new(self.record()));
            }
        }
    }

    /// The execution ended and is stored, with `logs` (masked once more at the end): followers
    /// and waiters are told.
    pub(crate) fn finish(&self, record: ExecutionRecord, logs: Vec<LogRecord>) {
        let record = Arc::new(record);
        {
            let mut state = self.lock();
            state.record = (*record).clone();
            state.positions = positions(&record);
            state.logs = logs;
            state.ended = true;
            // No follower may be left waiting: sent while the state is locked, as entries are.
            state.publish(LiveEvent::End);
        }
        self.done.send_replace(Some(Ending::Stored(record)));
    }

    /// The execution ended elsewhere and this process's result was dropped: followers are
    /// told it ended, waiters to read the store.
    pub(crate) fn abandon(&self) {
        {
            let mut state = self.lock();
            state.ended = true;
            state.publish(LiveEvent::End);
        }
        self.done.send_replace(Some(Ending::Elsewhere));
    }

    /// The listener the engine tells as the execution runs; each RUNNING or PAUSED the
    /// execution enters is also sent to `changes`, as the record then stands.
    pub(crate) fn listener(
        self: &Arc<Self>,
        changes: mpsc::UnboundedSender<ExecutionRecord>,
    ) -> LiveListener {
        LiveListener {
            live: Arc::clone(self),
            changes,
        }
    }
}

/// The position of each task run of `record`, by id.
fn positions(record: &ExecutionRecord) -> HashMap<String, usize> {
    let ids = record.task_runs.iter().map(|run| run.id.clone());
    ids.zip(0..).collect()
}

/// Keeps a [`Live`] up to date from the engine's events (already masked).
pub(crate) struct LiveListener {
    live: Arc<Live>,
    changes: mpsc::UnboundedSender<ExecutionRecord>,
}

impl Listener for LiveListener {
    fn on_log(&self, entry: &Shown<LogEntry>) {
        // Sent under the lock so that `follow` sees each entry once, in the list or as an event.
        self.live.log(record::log(entry, self.live.attempt_offset));
    }

    fn on_task_state(&self, task_run: &Shown<TaskRun>) {
        let run = record::task_run(task_run, self.live.attempt_offset);
        let mut state = self.live.lock();
        let LiveState {
            record, positions, ..
        } = &mut *state;
        match positions
            .get(&run.id)
            .and_then(|&at| record.task_runs.get_mut(at))
        {
            Some(known) => *known = run,
            None => {
                positions.insert(run.id.clone(), record.task_runs.len());
                record.task_runs.push(run);
            }
        }
    }

    fn on_inputs(&self, inputs: &Shown<Map<String, Value>>) {
        let shown = Value::Object((**inputs).clone());
        self.live.update(|r| r.inputs = shown);
    }

    fn on_execution_state(&self, execution: &Shown<Execution>) {
        // CREATED is recorded by the server when it creates the execution, the end once the
        // engine returns (with everything masked once more): only RUNNING and PAUSED (a Pause
        // waiting, then resumed) come from here.
        if matches!(
            execution.state,
            kestrel_engine::State::Running | kestrel_engine::State::Paused
        ) {
            let now = chrono::Utc::now();
            self.live
                .update(|r| record::entered(r, execution.state.as_str(), now));
            // None listens any more once the execution's end is being stored.
            let _ = self.changes.send(self.live.record());
        }
    }

    fn on_warning(&self, message: &str) {
        crate::log::warn(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn record() -> ExecutionRecord {
        ExecutionRecord {
            id: "e".into(),
            tenant: "main".into(),
            namespace: "ns".into(),
            flow_id: "f".into(),
            flow_revision: 1,
            state: "RUNNING".into(),
            histories: Vec::new(),
            inputs: json!({}),
            outputs: json!({}),
            labels: json!([]),
            task_runs: Vec::new(),
            created_at: Utc::now(),
            ended_at: None,
        }
    }

    #[tokio::test]
    async fn a_follower_arriving_after_the_end_gets_the_final_entries_and_the_end() {
        let live = Live::new(record(), 0);
        let remasked = record::server_log("INFO", "masked once more");
        live.finish(record(), vec![remasked.clone()]);
        let (past, mut events) = live.follow();
        assert_eq!(past, [remasked]);
        assert!(matches!(events.recv().await, Ok(LiveEvent::End)));
        assert_eq!(live.ended().await.unwrap().id, "e");
    }

    #[tokio::test]
    async fn an_execution_ended_elsewhere_ends_its_followers_and_sends_waiters_to_the_store() {
        let live = Live::new(record(), 1);
        let (_, mut events) = live.follow();
        live.abandon();
        assert!(matches!(events.recv().await, Ok(LiveEvent::End)));
        assert!(live.ended().await.is_none());
    }
}
