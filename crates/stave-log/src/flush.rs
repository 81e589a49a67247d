//! Durability: who has been told their append is on disk, and the flusher that gets it there.
//!
//! Every append gets a [`WritePos`] from a counter that only grows. A caller registers a
//! [`Completion`] for "durable up to P" and is never blocked. Under `flush=always` the flusher
//! thread syncs whenever something was written since the last sync: appends that arrive while
//! a sync runs wait together for the next one (group commit), and completions run in order
//! after each sync. Under `interval` and `never` completions run at once (the write is in the
//! page cache); `interval` syncs in the background.
//!
//! Order: `synced <= written`. A sync captures `written` and the file before it starts, so it
//! covers exactly the writes that completed before the capture.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tracing::error;

use crate::config::FlushPolicy;
use crate::error::{LogError, Result};
use crate::storage::StorageFile;
use crate::types::WritePos;

/// Called once when an append is durable, or with the error that stopped the log.
pub type Completion = Box<dyn FnOnce(Result<()>) + Send + 'static>;

#[derive(Debug)]
pub(crate) struct Durability {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    policy: FlushPolicy,
    path: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
    /// Held for a whole sync, so that a `flush` during the flusher's sync waits for it rather
    /// than return before the files the flusher took are on disk.
    sync_lock: Mutex<()>,
}

struct State {
    written: WritePos,
    synced: WritePos,
    /// The file that writes after the last roll went to.
    file: Arc<dyn StorageFile>,
    waiters: VecDeque<(WritePos, Completion)>,
    /// Completions due to run, in write order, with their outcome.
    ready: VecDeque<(Completion, bool)>,
    /// A thread is running `ready`: others only queue, so completions run one at a time, in
    /// order, whichever thread made them due (the flusher, or the owner rolling or cutting).
    completing: bool,
    stopped: bool,
    shutdown: bool,
    syncs: u64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("written", &self.written)
            .field("synced", &self.synced)
            .field("waiters", &self.waiters.len())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stopped_error(&self) -> LogError {
        LogError::Stopped {
            path: self.path.clone(),
        }
    }

    /// Syncs everything written so far, then runs the completions it covers.
    fn sync_once(&self) -> Result<()> {
        let syncing = self
            .sync_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (target, file) = {
            let state = self.lock();
            if state.stopped {
                return Err(self.stopped_error());
            }
            if state.synced >= state.written {
                return Ok(());
            }
            (state.written, state.file.clone())
        };
        let started = std::time::Instant::now();
        let synced = file.sync_data();
        crate::sync_timing::fsync_histogram().record(started.elapsed());
        // Completions run below may call back into the log (even `flush`): not under the lock.
        drop(syncing);
        match synced {
            Ok(()) => {
                self.mark_synced(target);
                Ok(())
            }
            Err(source) => {
                let err = LogError::Io {
                    op: "sync",
                    path: self.path.clone(),
                    source,
                };
                error!(path = %self.path.display(), error = %err, "sync failed, stopping the log");
                self.stop();
                Err(err)
            }
        }
    }

    fn mark_synced(&self, target: WritePos) {
        let mut state = self.lock();
        state.syncs += 1;
        state.synced = state.synced.max(target);
        let synced = state.synced;
        let count = state
            .waiters
            .iter()
            .take_while(|(pos, _)| *pos <= synced)
            .count();
        let due: Vec<Completion> = state.waiters.drain(..count).map(|(_, done)| done).collect();
        state.ready.extend(due.into_iter().map(|done| (done, true)));
        self.run_ready(state);
    }

    fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        let failed: Vec<Completion> = state.waiters.drain(..).map(|(_, done)| done).collect();
        state
            .ready
            .extend(failed.into_iter().map(|done| (done, false)));
        self.run_ready(state);
    }

    /// Runs the queued completions, outside the lock, unless another thread already is.
    fn run_ready<'a>(&'a self, mut state: MutexGuard<'a, State>) {
        if state.completing {
            return;
        }
        state.completing = true;
        loop {
            let Some((done, ok)) = state.ready.pop_front() else {
                state.completing = false;
                return;
            };
            drop(state);
            let outcome = if ok {
                Ok(())
            } else {
                Err(self.stopped_error())
            };
            // A completion that panics is a bug in its caller; it must not stop the others.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(outcome))).is_err() {
                error!(path = %self.path.display(), "a durability completion panicked");
            }
            state = self.lock();
        }
    }

    fn run_flusher(&self) {
        let interval = match self.policy {
            FlushPolicy::Interval(every) => Some(every),
            _ => None,
        };
        loop {
            {
                let mut state = self.lock();
                loop {
                    if state.shutdown || state.stopped {
                        return;
                    }
                    if interval.is_none() && state.written > state.synced {
                        break;
                    }
                    match interval {
                        Some(every) => {
                            let (guard, _) = self
                                .wake
                                .wait_timeout(state, every)
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                            state = guard;
                            if state.written > state.synced {
                                break;
                            }
                        }
                        None => {
                            state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                }
            }
            // An error stopped the log and failed every waiter; nothing more to do here.
            if self.sync_once().is_err() {
                return;
            }
        }
    }
}

impl Durability {
    pub fn new(
        policy: FlushPolicy,
        background: bool,
        file: Arc<dyn StorageFile>,
        path: PathBuf,
    ) -> Self {
        let shared = Arc::new(Shared {
            policy,
            path,
            state: Mutex::new(State {
                written: WritePos(0),
                synced: WritePos(0),
                file,
                waiters: VecDeque::new(),
                ready: VecDeque::new(),
                completing: false,
                stopped: false,
                shutdown: false,
                syncs: 0,
            }),
            wake: Condvar::new(),
            sync_lock: Mutex::new(()),
        });
        let flusher = (background && policy != FlushPolicy::Never).then(|| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("stave-flush".into())
                .spawn(move || shared.run_flusher())
        });
        let flusher = match flusher {
            Some(Ok(handle)) => Some(handle),
            Some(Err(err)) => {
                // Without a thread, `flush` is still correct; appends just wait for the owner.
                error!(error = %err, "could not start the flusher thread");
                None
            }
            None => None,
        };
        Durability { shared, flusher }
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }

    pub fn stopped_error(&self) -> LogError {
        self.shared.stopped_error()
    }

    /// Records that a write to `file` completed; returns its position.
    pub fn note_written(&self) -> WritePos {
        let mut state = self.shared.lock();
        state.written = WritePos(state.written.0 + 1);
        let pos = state.written;
        drop(state);
        if self.shared.policy == FlushPolicy::Always {
            self.shared.wake.notify_one();
        }
        pos
    }

    /// Switches to a new tail file after everything before was made durable (roll,
    /// truncation, reset).
    pub fn switch_file_all_synced(&self, file: Arc<dyn StorageFile>) {
        let target = {
            let mut state = self.shared.lock();
            state.file = file;
            state.written
        };
        self.shared.mark_synced(target);
    }

    /// Switches to a new tail file at a roll that did not sync the old one (`never`).
    pub fn switch_file_unsynced(&self, file: Arc<dyn StorageFile>) {
        self.shared.lock().file = file;
    }

    /// Runs `done` once `pos` is durable. Completions run one at a time, in write order, on
    /// whichever thread made them due: the flusher, or the caller of `on_durable`,
    /// `append_all`, `truncate_after`, `reset_to` or `flush`. So a completion must not block on
    /// a lock its log's owner holds while calling those (hand the result to a channel).
    pub fn on_durable(&self, pos: WritePos, done: Completion) {
        let mut state = self.shared.lock();
        let immediate = self.shared.policy != FlushPolicy::Always || pos <= state.synced;
        if state.stopped || immediate {
            // Through the queue, so it never overtakes an earlier completion still running.
            let ok = !state.stopped;
            state.ready.push_back((done, ok));
            self.shared.run_ready(state);
            return;
        }
        state.waiters.push_back((pos, done));
    }

    /// Syncs now, from the caller's thread.
    pub fn flush(&self) -> Result<()> {
        self.shared.sync_once()
    }

    /// Fails every waiter and refuses further appends.
    pub fn stop(&self) {
        self.shared.stop();
    }

    pub fn synced(&self) -> WritePos {
        self.shared.lock().synced
    }

    pub fn syncs(&self) -> u64 {
        self.shared.lock().syncs
    }

    fn shutdown(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        self.shutdown();
        if self.shared.policy != FlushPolicy::Never {
            // Best effort: a failure here stops the log and fails the waiters.
            let _ = self.shared.sync_once();
        }
        self.shared.stop();
    }
}
