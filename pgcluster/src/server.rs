//! The running `postgres` process, owned by a guardian thread.
//!
//! The server must die with its owner, even when the owner is SIGKILLed and no
//! destructor runs. `pg_ctl start` daemonises the server, so nothing ties it
//! to the owner; instead `postgres` itself is started as a direct child under
//! `setpriv --pdeathsig KILL` (which, as root, also switches to the
//! unprivileged user and clears its groups). `setpriv` applies the death
//! signal after its credential changes, which would otherwise reset it, and
//! then execs `postgres` in place, so the child *is* the postmaster. The
//! workspace forbids `unsafe`, which rules out setting it in a `pre_exec` hook.
//!
//! The caveat: Linux sends the death signal when the *thread* that forked the
//! child exits, not the process. A tokio worker, and above all a blocking-pool
//! thread (gone after 10 s idle), may exit while the owner lives on, killing a
//! healthy server. So a dedicated guardian thread spawns the server and lives
//! exactly as long as it does: it reaps the child and, past a deadline set by
//! a stop or a drop, kills it and its children. Signals are sent under the
//! same lock as the reaping, so a pid is never signalled after it was reaped
//! (and possibly reused).
//!
//! The server gets its own process group, so a Ctrl-C at the terminal reaches
//! the owner only; the owner then stops the server when it is ready to
//! (after its replicas, which still use it).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use crate::procs;

/// How often the guardian looks at its child; also the reaction time to a
/// kill deadline. Cheap: one `waitpid(WNOHANG)`.
const POLL: Duration = Duration::from_millis(50);

/// What a drop leaves a server to shut down by itself before it is killed.
const DROP_GRACE: Duration = Duration::from_secs(10);

struct State {
    /// `None` once reaped: from then on no signal may be sent to its pid.
    child: Option<Child>,
    /// When set and passed, the guardian kills the server and its children.
    kill_at: Option<Instant>,
}

/// A running server process.
pub(crate) struct Server {
    pid: u32,
    state: Arc<Mutex<State>>,
    exited: watch::Receiver<Option<ExitStatus>>,
}

impl Server {
    /// Starts `command` (already wrapped in `setpriv`) from a new guardian thread.
    pub(crate) async fn spawn(mut command: Command) -> std::io::Result<Server> {
        command.process_group(0);
        let state = Arc::new(Mutex::new(State {
            child: None,
            kill_at: None,
        }));
        let (exit_tx, exited) = watch::channel(None);
        let (pid_tx, pid_rx) = oneshot::channel();
        let guarded = Arc::clone(&state);
        std::thread::Builder::new()
            .name("pgcluster-guardian".into())
            .spawn(move || guard(command, &guarded, pid_tx, &exit_tx))?;
        let pid = pid_rx
            .await
            .map_err(|_| std::io::Error::other("the guardian thread died"))??;
        Ok(Server { pid, state, exited })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the process has exited and been reaped.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exited.borrow()
    }

    /// Sends `signal` to the server unless it has already been reaped.
    pub(crate) fn signal(&self, signal: Signal) {
        let state = self.state.lock();
        if state.child.is_some() {
            let _ = kill(Pid::from_raw(self.pid as i32), signal);
        }
    }

    /// Has the guardian kill the server and its children `after` from now.
    pub(crate) fn kill_after(&self, after: Duration) {
        self.state.lock().kill_at = Some(Instant::now() + after);
    }

    /// Waits up to `bound` for the server to exit.
    pub(crate) async fn wait(&self, bound: Duration) -> Option<ExitStatus> {
        let mut exited = self.exited.clone();
        let done = tokio::time::timeout(bound, exited.wait_for(Option::is_some)).await;
        match done {
            Ok(Ok(status)) => *status,
            _ => self.exit_status(),
        }
    }
}

impl Drop for Server {
    /// The fallback when nobody called `stop`: a fast shutdown, killed by the
    /// guardian after a grace period. It does not block: a destructor in async
    /// code must not sleep, and the guardian outlives this handle.
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            self.signal(Signal::SIGINT);
            let mut state = self.state.lock();
            let deadline = Instant::now() + DROP_GRACE;
            state.kill_at = Some(state.kill_at.map_or(deadline, |t| t.min(deadline)));
        }
    }
}

/// The guardian thread's body: spawn, then reap or kill.
fn guard(
    mut command: Command,
    state: &Mutex<State>,
    pid_tx: oneshot::Sender<std::io::Result<u32>>,
    exit_tx: &watch::Sender<Option<ExitStatus>>,
) {
    match command.spawn() {
        Ok(child) => {
            let pid = child.id();
            state.lock().child = Some(child);
            let _ = pid_tx.send(Ok(pid));
        }
        Err(e) => {
            let _ = pid_tx.send(Err(e));
            return;
        }
    }
    loop {
        let mut guard = state.lock();
        // Through a plain `&mut State`, so its two fields borrow apart.
        let st = &mut *guard;
        let Some(child) = st.child.as_mut() else {
            return;
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                st.child = None;
                drop(guard);
                tracing::debug!(%status, "PostgreSQL exited");
                let _ = exit_tx.send(Some(status));
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "waiting for PostgreSQL"),
        }
        if st.kill_at.is_some_and(|t| Instant::now() >= t) {
            st.kill_at = None;
            kill_all(child);
        }
        drop(guard);
        std::thread::sleep(POLL);
    }
}

/// SIGKILLs the postmaster, then the children it had: killed first, it
/// cannot restart them, and they notice its death in any case.
fn kill_all(child: &mut Child) {
    let children = procs::children_of(child.id()).unwrap_or_default();
    tracing::warn!(
        pid = child.id(),
        ?children,
        "PostgreSQL did not stop in time: killing it"
    );
    let _ = child.kill();
    for pid in children {
        if procs::is_live_postgres(pid) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}
