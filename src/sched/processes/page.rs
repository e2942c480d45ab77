//! The attribution page: a few words of memory shared between the scheduler and one worker
//! process, where the worker notes which task it is running (and since when) and the
//! scheduler asks it to stop. Plain atomic stores and loads: no system call per task, and
//! still readable after the worker died, which is how a crash is pinned on a key.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// What the page holds. Lives in a `MAP_SHARED` mapping.
#[repr(C)]
struct Words {
    /// `seq << 32 | (index + 1)`: the run (dispatch number) and the key-table index of the task
    /// running now; `seq << 32` between tasks.
    current: AtomicU64,
    /// When the current task started (CLOCK_MONOTONIC ns), written only when timed.
    started: AtomicU64,
    /// The run the scheduler wants stopped: the worker starts no further task of it.
    stop: AtomicU64,
}

const PAGE: usize = 4096;

/// One worker's page, mapped in this process.
pub(crate) struct Page {
    words: *mut Words,
}

// SAFETY: the mapping is only accessed through atomics, and unmapped once, on drop.
unsafe impl Send for Page {}
unsafe impl Sync for Page {}

impl Page {
    /// A new page and a file descriptor of it (close-on-exec) for a worker that will be
    /// started with exec (a fork inherits the mapping itself).
    pub fn new() -> Result<(Page, OwnedFd)> {
        // SAFETY: plain system calls; every result is checked.
        unsafe {
            let fd = libc::memfd_create(c"daskr-worker".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(os_error("memfd_create"));
            }
            let fd = OwnedFd::from_raw_fd(fd);
            if libc::ftruncate(std::os::fd::AsRawFd::as_raw_fd(&fd), PAGE as libc::off_t) != 0 {
                return Err(os_error("ftruncate"));
            }
            let page = Page::map(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
            page.words().stop.store(u64::MAX, Ordering::Relaxed);
            Ok((page, fd))
        }
    }

    /// Maps the page behind `fd` (in a worker started with exec).
    pub fn map(fd: RawFd) -> Result<Page> {
        // SAFETY: a shared mapping of a file we were given; checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_error("mmap"));
        }
        Ok(Page { words: p.cast() })
    }

    fn words(&self) -> &Words {
        // SAFETY: mapped for the life of `self`; Words is all atomics.
        unsafe { &*self.words }
    }

    /// Worker: task `index` of run `seq` starts (`now`: its start time, 0 when not timed).
    #[inline]
    pub fn enter(&self, seq: u32, index: u32, now: u64) {
        let w = self.words();
        if now != 0 {
            w.started.store(now, Ordering::Relaxed);
        }
        w.current.store(
            u64::from(seq) << 32 | u64::from(index + 1),
            Ordering::Release,
        );
    }

    /// Worker: between tasks of run `seq` (or after it).
    #[inline]
    pub fn leave(&self, seq: u32) {
        self.words()
            .current
            .store(u64::from(seq) << 32, Ordering::Release);
    }

    /// Worker: whether the scheduler asked run `seq` to stop.
    #[inline]
    pub fn stop_requested(&self, seq: u32) -> bool {
        self.words().stop.load(Ordering::Relaxed) == u64::from(seq)
    }

    /// Scheduler: ask run `seq` to start no further task.
    pub fn request_stop(&self, seq: u32) {
        self.words().stop.store(u64::from(seq), Ordering::Relaxed);
    }

    /// Scheduler: the task of run `seq` running now, as (key-table index, start time), if
    /// the worker is inside one of that run's tasks. Start time is 0 when not timed.
    pub fn running(&self, seq: u32) -> Option<(u32, u64)> {
        let w = self.words();
        for _ in 0..4 {
            let a = w.current.load(Ordering::Acquire);
            let started = w.started.load(Ordering::Relaxed);
            let b = w.current.load(Ordering::Acquire);
            if a != b {
                continue; // the worker moved on meanwhile: read again
            }
            if (a >> 32) as u32 != seq || a as u32 == 0 {
                return None;
            }
            return Some(((a as u32) - 1, started));
        }
        None
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: mapped by `map`, unmapped once here.
        unsafe { libc::munmap(self.words.cast(), PAGE) };
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine.
#[inline]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn os_error(what: &str) -> Error {
    Error::new(
        crate::error::ErrorKind::WorkerDied,
        format!(
            "the processes scheduler could not start a worker: {what}: {}",
            io::Error::last_os_error()
        ),
    )
}
