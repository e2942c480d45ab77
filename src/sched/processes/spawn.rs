//! Starting, keeping and ending worker processes.
//!
//! Two ways to start one:
//! - **fork** the caller: the child shares the caller's code and holds a copy of the graph
//!   (and the get's plan and partitions), so function-pointer and closure tasks run there. It runs the worker loop on its one thread
//!   and leaves with `_exit`, never returning into the caller's code or running its exit
//!   handlers.
//! - **exec** `daskr worker`: a fresh process that shares nothing with the caller; it runs
//!   plugin tasks, loading plugins by path. The only way from a Go program, which cannot be
//!   forked safely (its runtime's threads do not survive a fork).
//!
//! Workers that end a get healthy wait in a process-wide pool for the next get whose tasks are
//! all plugin tasks (a fork-mode get forks its own: its children must hold its graph).

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::lifeline;
use super::page::{os_error, Page};
use super::protocol::{Conn, HELLO, PROTOCOL_VERSION};
use super::worker::Forked;
use crate::error::{Error, ErrorKind, Result};
use crate::sched::wire::Reader;

/// A worker process, seen from the scheduler.
pub(crate) struct WorkerProc {
    pub pid: libc::pid_t,
    /// The scheduler's end of the socket pair (non-blocking, close-on-exec).
    pub fd: OwnedFd,
    pub page: Page,
    /// Readable once the process has ended (Linux 5.3+; None before): a worker that died is
    /// noticed even if something it started still holds its end of the socket open.
    pub pidfd: Option<OwnedFd>,
    /// The get it was forked for (None: exec'd): that get sends it partitions by number.
    pub forked_for: Option<u64>,
}

/// The scheduler-side descriptors of every live worker: a forked child closes them, so it
/// never holds another worker's connection open.
static OPEN_FDS: Mutex<OpenFds> = Mutex::new(OpenFds {
    pid: 0,
    fds: Vec::new(),
});

/// The descriptors of `OPEN_FDS`, valid in the process `pid`. A worker forked from this
/// process inherits a copy of the list but closed those descriptors (`child`), and may open
/// others under the same numbers: a get inside its task must not close those in turn.
struct OpenFds {
    pid: libc::pid_t,
    fds: Vec<RawFd>,
}

/// This process's list of open worker descriptors (emptied first in a fork).
fn open_fds() -> std::sync::MutexGuard<'static, OpenFds> {
    let mut open = lock(&OPEN_FDS);
    // SAFETY: no arguments.
    let me = unsafe { libc::getpid() };
    if open.pid != me {
        open.pid = me;
        open.fds.clear();
    }
    open
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WorkerProc {
    fn new(pid: libc::pid_t, fd: OwnedFd, page: Page, forked_for: Option<u64>) -> WorkerProc {
        set_nonblocking(fd.as_raw_fd());
        // SAFETY: pidfd_open of our own child; the result is checked.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a fresh descriptor (pidfds are close-on-exec), owned from here.
        let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) });
        let mut open = open_fds();
        open.fds.push(fd.as_raw_fd());
        open.fds.extend(pidfd.as_ref().map(|f| f.as_raw_fd()));
        drop(open);
        WorkerProc {
            pid,
            fd,
            page,
            pidfd,
            forked_for,
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(self) {
        // SAFETY: our own child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        self.reap();
    }

    /// Waits for the process to end (it died, or was killed) and returns its wait status. The
    /// handle stays (its page can still be read).
    pub fn reap(&self) -> libc::c_int {
        let mut status = 0;
        loop {
            // SAFETY: our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        status
    }

    /// Whether the process already ended (reaping it if so).
    fn has_exited(&self) -> bool {
        let mut status = 0;
        // SAFETY: our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        r != 0
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let fd = self.fd.as_raw_fd();
        let pidfd = self.pidfd.as_ref().map(|f| f.as_raw_fd());
        open_fds().fds.retain(|&f| f != fd && Some(f) != pidfd);
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: flag changes on our descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// The socket buffer size asked for, each way.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: writes two descriptors into `fds`.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(os_error("socketpair"));
    }
    // Room for a large result in flight each way, so that moving a MiB takes a few system
    // calls, not dozens of wake-ups (the kernel caps it at its own maximum).
    for &fd in &fds {
        for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
            let size: libc::c_int = SOCKET_BUFFER;
            // SAFETY: an int option on our socket.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
    }
    // SAFETY: fresh descriptors, owned from here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks a worker for the get `forked.get` (the child keeps its graph, plan and partitions),
/// from the spawner thread (see `lifeline`).
pub(crate) fn fork_worker(forked: Forked<'_>) -> Result<WorkerProc> {
    lifeline::on_spawner(|| fork_worker_here(forked))
}

fn fork_worker_here(forked: Forked<'_>) -> Result<WorkerProc> {
    // SAFETY: no arguments.
    let parent = unsafe { libc::getpid() };
    let (ours, theirs) = socket_pair()?;
    let (page, page_fd) = Page::new()?;
    drop(page_fd); // the child inherits the mapping itself
    let siblings: Vec<RawFd> = open_fds().fds.clone();
    // Buffered C output would otherwise be written twice, once by each process.
    // SAFETY: flushes every C stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };
    // SAFETY: the child runs only the worker loop and leaves with _exit (below).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_error("fork"));
    }
    if pid == 0 {
        if !lifeline::end_with_parent(parent) {
            // SAFETY: the parent is gone already: leave without running anything.
            unsafe { libc::_exit(0) };
        }
        child(&ours, &theirs, &siblings, &page, forked);
    }
    drop(theirs);
    Ok(WorkerProc::new(pid, ours, page, Some(forked.get)))
}

/// The forked child: close what is not its own, run the loop, leave with `_exit`.
fn child(
    ours: &OwnedFd,
    theirs: &OwnedFd,
    siblings: &[RawFd],
    page: &Page,
    forked: Forked<'_>,
) -> ! {
    // SAFETY: closing descriptors this process does not use, resetting signal dispositions,
    // and finally _exit: the child never returns into the caller's code.
    unsafe {
        libc::close(ours.as_raw_fd());
        for &fd in siblings {
            libc::close(fd);
        }
        // A crash must end the worker the plain way (and be reported by its signal), not
        // run a handler the caller installed for itself.
        for sig in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGABRT,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let fd = theirs.as_raw_fd();
        let conn = Conn {
            input: fd,
            output: fd,
        };
        let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::worker::serve(&conn, page, Some(forked))
        }))
        .unwrap_or(6);
        libc::_exit(status)
    }
}

/// Starts `daskr worker` (see `worker_executable`) and waits for its greeting.
pub(crate) fn exec_worker() -> Result<WorkerProc> {
    let exe = worker_executable()?;
    let (ours, theirs) = socket_pair()?;
    let (page, page_fd) = Page::new()?;
    // The child gets its socket as fd 3 and the page as fd 4; take numbers above those first
    // so that neither dup2 overwrites the other's source.
    let high = |fd: &OwnedFd| -> Result<OwnedFd> {
        // SAFETY: duplicates our descriptor; checked.
        let d = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
        if d < 0 {
            return Err(os_error("fcntl"));
        }
        // SAFETY: fresh descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(d) })
    };
    let (sock_hi, page_hi) = (high(&theirs)?, high(&page_fd)?);
    drop((theirs, page_fd));
    let path = CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid_argument("the worker executable's path holds a NUL byte"))?;
    // SAFETY: no arguments.
    let parent = unsafe { libc::getpid() }.to_string();
    let args: Vec<CString> = [
        "daskr",
        "worker",
        "--fd",
        "3",
        "--page-fd",
        "4",
        "--parent-pid",
        &parent,
    ]
    .iter()
    .map(|a| CString::new(*a).expect("no NUL"))
    .collect();
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr() as *mut _).collect();
    argv.push(std::ptr::null_mut());
    // From the spawner thread (see `lifeline`): `daskr worker --parent-pid` asks to end with it.
    let (sock, page_raw) = (sock_hi.as_raw_fd(), page_hi.as_raw_fd());
    let argv = SendPtrs(argv);
    let (r, pid) = lifeline::on_spawner(move || {
        let argv = argv;
        spawn_worker(&path, sock, page_raw, &argv.0)
    });
    drop((sock_hi, page_hi));
    if r != 0 {
        return Err(Error::new(
            ErrorKind::WorkerDied,
            format!(
                "the processes scheduler could not start '{} worker': {}",
                exe.display(),
                std::io::Error::from_raw_os_error(r)
            ),
        ));
    }
    let worker = WorkerProc::new(pid, ours, page, None);
    match greeting(&worker) {
        Ok(()) => Ok(worker),
        Err(e) => {
            worker.kill();
            Err(Error::new(
                ErrorKind::WorkerDied,
                format!("'{} worker' did not start: {}", exe.display(), e.message),
            ))
        }
    }
}

/// `argv` for `posix_spawn`: pointers into CStrings the caller keeps alive while it waits.
struct SendPtrs(Vec<*mut libc::c_char>);
// SAFETY: the pointers are only read, on the spawner thread, while their owner waits for it.
unsafe impl Send for SendPtrs {}

/// Starts `path` with `argv`, the socket `sock` as fd 3, the page `page` as fd 4 and
/// /dev/null as stdin; (posix_spawn's result, the child's pid).
fn spawn_worker(
    path: &CStr,
    sock: RawFd,
    page: RawFd,
    argv: &[*mut libc::c_char],
) -> (libc::c_int, libc::pid_t) {
    let mut pid: libc::pid_t = 0;
    // SAFETY: posix_spawn with file actions built and destroyed here; argv and environ stay
    // alive for the call.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut actions);
        libc::posix_spawn_file_actions_adddup2(&mut actions, sock, 3);
        libc::posix_spawn_file_actions_adddup2(&mut actions, page, 4);
        libc::posix_spawn_file_actions_addopen(
            &mut actions,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        );
        extern "C" {
            static environ: *const *mut libc::c_char;
        }
        let r = libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions,
            std::ptr::null(),
            argv.as_ptr(),
            environ,
        );
        libc::posix_spawn_file_actions_destroy(&mut actions);
        (r, pid)
    }
}

/// Reads a new exec'd worker's HELLO (protocol version), waiting at most 30 s.
fn greeting(w: &WorkerProc) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = Vec::new();
    let fd = w.fd.as_raw_fd();
    loop {
        if buf.len() >= 8 {
            let len = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")) as usize;
            if len > 64 {
                return Err(Error::invalid_argument("it answered with something else"));
            }
            if buf.len() >= 8 + len {
                let body = &buf[8..8 + len];
                if body.first() != Some(&HELLO) {
                    return Err(Error::invalid_argument("it answered with something else"));
                }
                let mut r = Reader::new(&body[1..]);
                let version = r.varint()?;
                if version != PROTOCOL_VERSION {
                    return Err(Error::invalid_argument(format!(
                        "it speaks worker protocol {version}, this library {PROTOCOL_VERSION} \
                         (point DASKR_WORKER at the daskr built with this library)"
                    )));
                }
                return Ok(());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::invalid_argument("no greeting within 30 s"));
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as libc::c_int) };
        let mut chunk = [0u8; 64];
        // SAFETY: reads into `chunk`.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n == 0 {
            return Err(Error::invalid_argument(
                "it exited at once (is it the daskr command?)",
            ));
        }
        if n > 0 {
            buf.extend_from_slice(&chunk[..n as usize]);
        }
    }
}

/// The `daskr` executable that `daskr worker` runs: `$DASKR_WORKER`, else `daskr` next to the
/// library holding this code (libdaskr.so, or the program it is linked into) or in the
/// `bin` folder beside that library's folder (an installed prefix: <prefix>/lib/libdaskr.so
/// and <prefix>/bin/daskr), else next to the running program.
pub(crate) fn worker_executable() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DASKR_WORKER") {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(Error::invalid_argument(format!(
                "DASKR_WORKER is '{}', which is not an executable file (it should be the \
                 daskr command, which runs `daskr worker` for the processes scheduler)",
                p.display()
            )))
        };
    }
    let mut looked = Vec::new();
    let mut dirs = Vec::new();
    if let Some(lib) = library_path() {
        if let Some(dir) = lib.parent() {
            dirs.push(dir.to_path_buf());
            dirs.extend(dir.parent().map(|prefix| prefix.join("bin")));
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.parent().map(Path::to_path_buf));
    }
    for dir in dirs {
        let candidate = dir.join("daskr");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
        looked.push(candidate.display().to_string());
    }
    Err(Error::invalid_argument(format!(
        "the processes scheduler starts plugin workers with the daskr command (`daskr worker`) \
         and found none (looked for {}); build it (cargo build --release, next to libdaskr), \
         install it (make install: <prefix>/bin beside <prefix>/lib) \
         or set DASKR_WORKER to its path",
        looked.join(", ")
    )))
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a C string we own.
    p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// The file this code was loaded from (libdaskr.so, or the executable it is linked into).
fn library_path() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr fills `info` for an address of this library's code.
    let found = unsafe { libc::dladdr(library_path as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr's file name is a C string valid while the library is loaded.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    std::fs::canonicalize(path).ok()
}

/// Whether the program is a Go program (or has Go code loaded): cgo exports these symbols,
/// and a Go runtime's threads do not survive a fork.
pub(crate) fn caller_is_go() -> bool {
    static GO: OnceLock<bool> = OnceLock::new();
    *GO.get_or_init(|| {
        [c"crosscall2", c"_cgo_topofstack"].iter().any(|name| {
            // SAFETY: a symbol lookup in the global scope.
            !unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }.is_null()
        })
    })
}

/// How workers may be started in this process: `DASKR_PROCESSES_START` (`fork` or `exec`)
/// overrides the default (fork, except in a Go program). A Go program never forks.
pub(crate) fn may_fork() -> bool {
    if caller_is_go() {
        return false;
    }
    !matches!(
        std::env::var("DASKR_PROCESSES_START").as_deref(),
        Ok("exec")
    )
}

/// Idle workers, kept for the next get.
static POOL: Mutex<Pool> = Mutex::new(Pool {
    pid: 0,
    idle: Vec::new(),
});

/// The idle workers of the process `pid`. A worker forked from this process inherits a copy,
/// but those are its siblings, not its children, and their descriptors are closed in it
/// (`child`): a get inside its task must neither use nor kill them.
struct Pool {
    pid: libc::pid_t,
    idle: Vec<WorkerProc>,
}

/// This process's pool (a fork's inherited copy forgotten first).
fn pool() -> std::sync::MutexGuard<'static, Pool> {
    let mut pool = lock(&POOL);
    // SAFETY: no arguments.
    let me = unsafe { libc::getpid() };
    if pool.pid != me {
        pool.pid = me;
        // Not dropped: dropping would close descriptor numbers this process may reuse.
        std::mem::forget(std::mem::take(&mut pool.idle));
    }
    pool
}

/// Takes up to `n` idle workers that are still alive.
pub(crate) fn take_idle(n: usize) -> Vec<WorkerProc> {
    let mut taken = Vec::new();
    let mut dead = Vec::new();
    {
        let mut pool = pool();
        while taken.len() < n {
            let Some(w) = pool.idle.pop() else { break };
            if w.has_exited() {
                dead.push(w);
            } else {
                taken.push(w);
            }
        }
    }
    // Reaped by has_exited already: dropping closes their descriptors and unmaps the pages.
    drop(dead);
    taken
}

/// Gives workers back to the pool, which keeps at most `keep` (the oldest go first).
pub(crate) fn give_back(workers: Vec<WorkerProc>, keep: usize) {
    let extra: Vec<WorkerProc> = {
        let mut pool = pool();
        pool.idle.extend(workers);
        let over = pool.idle.len().saturating_sub(keep);
        pool.idle.drain(..over).collect()
    };
    for w in extra {
        w.kill();
    }
}

/// Ends the idle worker processes the `processes` scheduler keeps between gets (killed and
/// reaped); the next get starts new ones. Workers of gets still running are not touched.
pub fn shutdown_workers() {
    let idle: Vec<WorkerProc> = std::mem::take(&mut pool().idle);
    for w in idle {
        w.kill();
    }
}

/// How a worker ended, from its wait status: "was killed by SIGSEGV (segmentation fault)",
/// "exited with status 3".
pub(crate) fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let (name, what) = match sig {
            libc::SIGSEGV => ("SIGSEGV", "segmentation fault"),
            libc::SIGABRT => ("SIGABRT", "abort"),
            libc::SIGBUS => ("SIGBUS", "bus error"),
            libc::SIGILL => ("SIGILL", "illegal instruction"),
            libc::SIGFPE => ("SIGFPE", "arithmetic exception"),
            libc::SIGKILL => ("SIGKILL", "killed"),
            libc::SIGTERM => ("SIGTERM", "terminated"),
            libc::SIGINT => ("SIGINT", "interrupted"),
            libc::SIGPIPE => ("SIGPIPE", "broken pipe"),
            libc::SIGHUP => ("SIGHUP", "hangup"),
            libc::SIGTRAP => ("SIGTRAP", "trap"),
            libc::SIGSYS => ("SIGSYS", "bad system call"),
            libc::SIGXCPU => ("SIGXCPU", "CPU time limit"),
            libc::SIGXFSZ => ("SIGXFSZ", "file size limit"),
            _ => ("", ""),
        };
        if name.is_empty() {
            format!("was killed by signal {sig}")
        } else {
            format!("was killed by {name} ({what})")
        }
    } else if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else {
        format!("ended (wait status {status:#x})")
    }
}
