//! Workers end when the process that started them ends.
//!
//! An idle worker notices on its own: its read of the scheduler's socket returns end-of-file
//! once the scheduler's end is closed (the worker loop). A worker blocked in a task reads
//! nothing, though — a task that never returns would keep its process running forever, with
//! parent 1. What stops it is a signal: each worker asks the kernel for SIGKILL when its
//! parent dies (`PR_SET_PDEATHSIG`; SIGKILL because a handler the task's code installed must
//! not be able to ignore it), then checks that the parent has not died already, in the moment
//! before it asked.
//!
//! The kernel's "parent" here is the *thread* that started the worker: a worker started by a
//! thread that later exits would be killed with it, though the pool may hand that worker to
//! another thread's get meanwhile. So every worker is started from one thread that lives as
//! long as the process (`on_spawner`), and dies only with it.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::{Mutex, OnceLock};

/// Asks for SIGKILL when the parent dies; false if `parent` is no longer this process's
/// parent (it died before the request, and this process was handed to another).
pub fn end_with_parent(parent: libc::pid_t) -> bool {
    // SAFETY: plain system calls on this process.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::getppid() == parent
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The spawner thread's queue (None if the thread could not be started, or if this process
/// is a fork of the one that started it: a fork has none of its parent's other threads).
fn spawner() -> Option<&'static Mutex<Sender<Job>>> {
    static SPAWNER: OnceLock<Option<(libc::pid_t, Mutex<Sender<Job>>)>> = OnceLock::new();
    // SAFETY: no arguments.
    let me = unsafe { libc::getpid() };
    SPAWNER
        .get_or_init(|| {
            let (jobs, queue) = channel::<Job>();
            std::thread::Builder::new()
                .name("daskr-spawner".into())
                // A forked worker runs its tasks on this thread's stack: give them what a
                // main thread (and the threads scheduler's threads) has.
                .stack_size(8 << 20)
                .spawn(move || {
                    for job in queue {
                        job();
                    }
                })
                .ok()
                .map(|_| (me, Mutex::new(jobs)))
        })
        .as_ref()
        .filter(|(pid, _)| *pid == me)
        .map(|(_, jobs)| jobs)
}

/// Runs `start` (which starts a worker process) on the spawner thread and returns what it
/// returned, so that the worker's parent thread is one that never exits before the process.
/// If that thread cannot be had, `start` runs here (the worker then ends with this thread) —
/// as in a worker process forked from this one (a get inside its task), whose one thread
/// lives as long as it does.
pub(crate) fn on_spawner<R: Send>(start: impl FnOnce() -> R + Send) -> R {
    let Some(jobs) = spawner() else {
        return start();
    };
    let (done, result) = sync_channel(1);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let _ = done.send(catch_unwind(AssertUnwindSafe(start)));
    });
    // SAFETY: the job borrows from this frame, which does not return before the job ran to
    // its end — it consumes `start` before it sends, and this waits for that send — or was
    // dropped unrun (the receive fails only once the job, and so its borrows, are gone).
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    let sent = jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job);
    if let Err(unsent) = sent {
        // The thread is gone (it cannot be, short of the process ending): run it here.
        (unsent.0)();
    }
    match result.recv() {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => unreachable!("the spawner thread drops no job unrun"),
    }
}
