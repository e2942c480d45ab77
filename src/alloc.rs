//! The allocator for daskr's own memory: the system allocator, except that large blocks
//! (the per-graph and per-run arrays of a big graph) are mapped directly, aligned to and
//! marked for transparent huge pages, and kept mapped for reuse when freed.
//!
//! Why: at a million tasks, building and running touch ~150 bytes per task of fresh memory.
//! With 4 KiB pages that is one page fault (and a page clear) per ~27 tasks, plus a TLB miss
//! on nearly every random access into the key table — measured as the largest single cost of
//! building a graph. 2 MiB pages cut both. What is left is the kernel zeroing every fresh
//! page (`clear_page_erms`: 22-30% of all samples building and running a 1M-task graph), so
//! freed large blocks are retained (up to `RETAIN_BYTES`) and handed out again: a program that
//! builds and runs graphs repeatedly stops paying for fresh pages after the first. Growing a
//! block uses `mremap`, which moves pages instead of copying bytes, and fills the grown tail
//! with retained pages moved in the same way. Memory handed to C callers is never allocated
//! here with one allocator and freed with another: every daskr object is freed by daskr.
//!
//! Huge pages are asked for except on a VM that hands free memory back to its host in
//! huge-page-sized blocks (`huge_pages`): there a fresh huge page costs more than it saves.
//!
//! It is the `#[global_allocator]` only with the `huge-page-alloc` feature (on by default);
//! without it nothing is ever retained and `release` returns 0.

// Without the feature only `release` is used.
#![cfg_attr(not(feature = "huge-page-alloc"), allow(dead_code))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// Blocks at least this large are mapped with huge pages.
const LARGE: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;
/// At most this much freed memory stays mapped for reuse (enough for the arrays of a
/// ~2M-task graph and its run); beyond it, freed blocks go back to the system.
const RETAIN_BYTES: usize = 512 << 20;
const RETAIN_SLOTS: usize = 256;

pub struct DaskrAlloc;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= 4096
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
}

/// Freed blocks: huge-page aligned, lengths in whole huge pages, populated (no fault or
/// clear on reuse), contents left over from their last use.
struct Pool {
    blocks: [(usize, usize); RETAIN_SLOTS],
    count: usize,
    bytes: usize,
}

impl Pool {
    /// The smallest block of at least `len` bytes, split if longer (the rest stays).
    fn take_exact(&mut self, len: usize) -> Option<usize> {
        let i = (0..self.count)
            .filter(|&i| self.blocks[i].1 >= len)
            .min_by_key(|&i| self.blocks[i].1)?;
        Some(self.take_from(i, len))
    }

    /// Any block, up to `max` bytes of it: (address, length).
    fn take_upto(&mut self, max: usize) -> Option<(usize, usize)> {
        let i = (0..self.count).max_by_key(|&i| self.blocks[i].1)?;
        let len = self.blocks[i].1.min(max);
        Some((self.take_from(i, len), len))
    }

    fn take_from(&mut self, i: usize, len: usize) -> usize {
        let (addr, have) = self.blocks[i];
        if have > len {
            self.blocks[i] = (addr + len, have - len);
        } else {
            self.count -= 1;
            self.blocks[i] = self.blocks[self.count];
        }
        self.bytes -= len;
        addr
    }

    /// Keeps the block if there is room; false: the caller unmaps it.
    fn give(&mut self, addr: usize, len: usize) -> bool {
        if self.count == RETAIN_SLOTS || self.bytes + len > RETAIN_BYTES {
            return false;
        }
        self.blocks[self.count] = (addr, len);
        self.count += 1;
        self.bytes += len;
        true
    }
}

/// A spin lock rather than a `Mutex`: its critical sections are a few dozen instructions,
/// and it must be held across `fork` (see `pool`) so a child never inherits it locked.
static LOCKED: AtomicBool = AtomicBool::new(false);
static mut POOL: Pool = Pool {
    blocks: [(0, 0); RETAIN_SLOTS],
    count: 0,
    bytes: 0,
};
static AT_FORK: Once = Once::new();

fn lock() {
    let mut spins = 0u32;
    while LOCKED
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        if spins % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn unlock() {
    LOCKED.store(false, Ordering::Release);
}

extern "C" fn at_fork_prepare() {
    lock();
}

extern "C" fn at_fork_after() {
    unlock();
}

/// Runs `f` on the pool under the lock.
fn pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    // A fork while another thread holds the lock would leave the child's copy locked for
    // ever: the fork waits for the lock instead, as glibc's malloc does for its arenas.
    AT_FORK.call_once(|| unsafe {
        libc::pthread_atfork(
            Some(at_fork_prepare),
            Some(at_fork_after),
            Some(at_fork_after),
        );
    });
    lock();
    // SAFETY: the lock gives this thread the only access to POOL until `unlock`.
    let r = f(unsafe { &mut *ptr::addr_of_mut!(POOL) });
    unlock();
    r
}

/// Returns every retained block to the system; the bytes returned.
pub fn release() -> usize {
    let mut blocks = [(0usize, 0usize); RETAIN_SLOTS];
    let n = pool(|p| {
        let n = p.count;
        blocks[..n].copy_from_slice(&p.blocks[..n]);
        p.count = 0;
        p.bytes = 0;
        n
    });
    for &(addr, len) in &blocks[..n] {
        // SAFETY: taken out of the pool, so no one else holds this block.
        unsafe { libc::munmap(addr as *mut libc::c_void, len) };
    }
    blocks[..n].iter().map(|b| b.1).sum()
}

/// Whether fresh large blocks ask for transparent huge pages: yes, unless `DASKR_HUGE_PAGES`
/// is `0` (or `1`: yes whatever the machine), or the machine is a VM that hands free memory
/// back to its host in huge-page-sized blocks (virtio-balloon free page reporting at order 9).
/// There a fresh huge page is often one the host took back, and its first touch waits while
/// the host backs it again: measured on such a VM, cold 10^6-task gets took 1.3–4× longer on
/// huge pages in about half the runs (`clear_page_erms` ~90% of their samples), and their
/// median went from ~165 to ~400 ns a task; small pages do not come from those blocks.
/// Decided once, without allocating (this runs inside the allocator).
fn huge_pages() -> bool {
    use std::sync::atomic::AtomicU8;
    // 0: not decided yet, 1: yes, 2: no.
    static DECIDED: AtomicU8 = AtomicU8::new(0);
    match DECIDED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let yes = match env_flag(c"DASKR_HUGE_PAGES") {
                Some(yes) => yes,
                None => !free_memory_reported_in_huge_pages(),
            };
            DECIDED.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
    }
}

/// `name` set to `0` (false) or `1` (true); None if unset or anything else.
fn env_flag(name: &std::ffi::CStr) -> Option<bool> {
    // SAFETY: getenv reads the environment; the pointer it gives is read at once.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return None;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    match unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes() {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

/// Whether a virtio balloon device reports free pages to the host (feature bit 5,
/// VIRTIO_BALLOON_F_REPORTING, negotiated) at an order no larger than a huge page's (9, the
/// kernel's default `page_reporting_order`).
fn free_memory_reported_in_huge_pages() -> bool {
    let mut buf = [0u8; 256];
    let order = read_file(
        c"/sys/module/page_reporting/parameters/page_reporting_order",
        &mut buf,
    )
    .and_then(|text| std::str::from_utf8(text).ok()?.trim().parse::<u32>().ok())
    .unwrap_or(9);
    if order > 9 {
        return false;
    }
    (0..64u32).any(|i| {
        let mut path = [0u8; 64];
        let is_balloon = read_file(virtio_path(&mut path, i, b"device"), &mut buf)
            .is_some_and(|id| id.starts_with(b"0x0005"));
        is_balloon
            && read_file(virtio_path(&mut path, i, b"features"), &mut buf)
                .is_some_and(|bits| bits.get(5) == Some(&b'1'))
    })
}

/// `/sys/bus/virtio/devices/virtio{i}/{file}` as a C string in `buf`.
fn virtio_path<'b>(buf: &'b mut [u8; 64], i: u32, file: &[u8]) -> &'b std::ffi::CStr {
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(b"/sys/bus/virtio/devices/virtio");
    if i >= 10 {
        put(&[b'0' + (i / 10) as u8]);
    }
    put(&[b'0' + (i % 10) as u8, b'/']);
    put(file);
    put(b"\0");
    std::ffi::CStr::from_bytes_with_nul(&buf[..n]).expect("one NUL, at the end")
}

/// The start of the file at `path` (what fits in `buf`), None if it cannot be read.
fn read_file<'b>(path: &std::ffi::CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    // SAFETY: plain system calls on a path and a buffer this function owns for the call.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        usize::try_from(n).ok().map(|n| &buf[..n])
    }
}

/// A fresh mapping of `len` bytes (a multiple of HUGE_PAGE), aligned to HUGE_PAGE so that
/// every page of it can be huge, and moved whole by `mremap`.
unsafe fn map_fresh(len: usize) -> *mut u8 {
    let span = len + HUGE_PAGE;
    let p = libc::mmap(
        ptr::null_mut(),
        span,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = p as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    if aligned > start {
        libc::munmap(p, aligned - start);
    }
    let end = start + span;
    if end > aligned + len {
        libc::munmap((aligned + len) as *mut libc::c_void, end - aligned - len);
    }
    if huge_pages() {
        // Advisory: without THP support this fails harmlessly and the block uses small pages.
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    aligned as *mut u8
}

/// `len` bytes: one retained block if one is long enough, else a fresh range filled with
/// as many retained pages as there are. `zero`: cleared — the retained pages here (fresh
/// ones come zeroed), which costs what the kernel's clearing of fresh pages would, without
/// the faults (and, in a VM, the host's).
unsafe fn map(len: usize, zero: bool) -> *mut u8 {
    if let Some(addr) = pool(|p| p.take_exact(len)) {
        if zero {
            ptr::write_bytes(addr as *mut u8, 0, len);
        }
        return addr as *mut u8;
    }
    let q = map_fresh(len);
    if !q.is_null() {
        let reused = fill(q as usize, 0, len);
        if zero {
            ptr::write_bytes(q, 0, reused);
        }
    }
    q
}

unsafe fn unmap(addr: usize, len: usize) {
    if !pool(|p| p.give(addr, len)) {
        libc::munmap(addr as *mut libc::c_void, len);
    }
}

/// Moves the pages of `[from, from + len)` to `to`, replacing what was mapped there.
unsafe fn move_pages(from: usize, len: usize, to: usize) -> bool {
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    libc::mremap(
        from as *mut libc::c_void,
        len,
        len,
        flags,
        to as *mut libc::c_void,
    ) != libc::MAP_FAILED
}

/// Replaces the fresh pages of `[q + from, q + to)` with retained ones, as far as they go.
/// Returns where the retained pages end (the rest is fresh).
unsafe fn fill(q: usize, from: usize, to: usize) -> usize {
    let mut filled = from;
    while filled < to {
        let Some((addr, len)) = pool(|pool| pool.take_upto(to - filled)) else {
            break;
        };
        if !move_pages(addr, len, q + filled) {
            libc::munmap(addr as *mut libc::c_void, len);
            break;
        }
        filled += len;
    }
    filled
}

/// Grows the mapping at `p` from `old_len` to `new_len` bytes, keeping its contents: its
/// pages move to a new aligned range whose tail is filled with retained pages where there
/// are any (the rest faults in fresh on first touch).
unsafe fn grow(p: *mut u8, old_len: usize, new_len: usize) -> *mut u8 {
    let q = map_fresh(new_len);
    if q.is_null() {
        return q;
    }
    if !move_pages(p as usize, old_len, q as usize) {
        // Kernels before 6.17 move only within one mapping, and a block pieced together
        // from retained pages spans several: copy it instead.
        ptr::copy_nonoverlapping(p, q, old_len);
        unmap(p as usize, old_len);
    }
    fill(q as usize, old_len, new_len);
    q
}

unsafe impl GlobalAlloc for DaskrAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(mapped_len(layout.size()), false)
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(mapped_len(layout.size()), true)
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if is_large(&layout) {
            unmap(p as usize, mapped_len(layout.size()));
        } else {
            System.dealloc(p, layout)
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_large(&layout), is_large(&new_layout)) {
            (false, false) => System.realloc(p, layout, new_size),
            (true, true) => {
                let (old_len, new_len) = (mapped_len(layout.size()), mapped_len(new_size));
                if new_len < old_len {
                    unmap(p as usize + new_len, old_len - new_len);
                }
                if new_len <= old_len {
                    return p;
                }
                grow(p, old_len, new_len)
            }
            _ => {
                let q = self.alloc(new_layout);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_paths_and_small_reads() {
        let mut path = [0u8; 64];
        assert_eq!(
            virtio_path(&mut path, 7, b"device").to_bytes(),
            b"/sys/bus/virtio/devices/virtio7/device"
        );
        assert_eq!(
            virtio_path(&mut path, 42, b"features").to_bytes(),
            b"/sys/bus/virtio/devices/virtio42/features"
        );
        let mut buf = [0u8; 8];
        assert!(read_file(c"/nonexistent/daskr", &mut buf).is_none());
        // Only what fits is read.
        assert_eq!(
            read_file(c"/proc/self/status", &mut buf).map(<[u8]>::len),
            Some(8)
        );
        // Whatever the machine, the answer is the same every time it is asked.
        assert_eq!(huge_pages(), huge_pages());
    }

    /// A Rust program's own allocator frees large blocks itself: daskr keeps nothing.
    #[cfg(not(feature = "huge-page-alloc"))]
    #[test]
    fn release_returns_nothing() {
        drop(vec![1u8; 6 << 20]);
        assert_eq!(release(), 0);
    }

    // The tests below allocate through the global allocator and watch the pool, so they need
    // it to be ours.

    #[cfg(feature = "huge-page-alloc")]
    #[test]
    fn large_blocks_grow_shrink_and_keep_contents() {
        let mut v: Vec<u64> = Vec::with_capacity(16);
        for i in 0..3_000_000u64 {
            v.push(i); // crosses small -> large, then grows by moving pages
        }
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
        v.truncate(10);
        v.shrink_to_fit(); // large -> small
        assert_eq!(v, (0..10).collect::<Vec<u64>>());
        let z = vec![0u32; 5_000_000];
        assert!(z.iter().all(|&x| x == 0));
    }

    #[cfg(feature = "huge-page-alloc")]
    #[test]
    fn retained_blocks_are_reused_and_zeroed_allocations_stay_zero() {
        // Dirty a block, free it (retained), then ask for zeroed memory of the same size.
        let dirty = vec![0xabu8; 8 << 20];
        drop(dirty);
        let z = vec![0u8; 8 << 20];
        assert!(z.iter().all(|&x| x == 0));
        // Zeroed memory pieced together from several retained blocks and fresh pages.
        let (a, b) = (vec![0xcdu8; 4 << 20], vec![0xcdu8; 6 << 20]);
        drop((a, b));
        let z = vec![0u8; 14 << 20];
        assert!(z.iter().all(|&x| x == 0));
        // Grow a vector while retained blocks exist: its tail is filled with their pages.
        let freed: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8; 6 << 20]).collect();
        drop(freed);
        let mut v: Vec<u32> = Vec::new();
        for i in 0..10_000_000u32 {
            v.push(i.wrapping_mul(2654435761));
        }
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i as u32).wrapping_mul(2654435761)));
        // Shrinking in place gives the tail back; the head keeps its contents.
        v.shrink_to(3_000_000);
        assert!(v
            .iter()
            .take(3_000_000)
            .enumerate()
            .all(|(i, &x)| x == (i as u32).wrapping_mul(2654435761)));
    }

    #[cfg(feature = "huge-page-alloc")]
    #[test]
    fn the_pool_splits_and_caps() {
        let mut p = Pool {
            blocks: [(0, 0); RETAIN_SLOTS],
            count: 0,
            bytes: 0,
        };
        assert!(p.give(10 * HUGE_PAGE, 4 * HUGE_PAGE));
        assert!(p.give(40 * HUGE_PAGE, 2 * HUGE_PAGE));
        assert_eq!(p.take_exact(2 * HUGE_PAGE), Some(40 * HUGE_PAGE)); // best fit
        assert_eq!(p.take_exact(HUGE_PAGE), Some(10 * HUGE_PAGE)); // split: the rest stays
        assert_eq!(
            p.take_upto(8 * HUGE_PAGE),
            Some((11 * HUGE_PAGE, 3 * HUGE_PAGE))
        );
        assert_eq!((p.count, p.bytes), (0, 0));
        assert!(!p.give(0, RETAIN_BYTES + HUGE_PAGE));
    }

    #[cfg(feature = "huge-page-alloc")]
    #[test]
    fn release_unmaps_what_the_pool_holds() {
        drop(vec![1u8; 6 << 20]);
        assert!(release() >= 6 << 20 || pool(|p| p.bytes) == 0); // another test may take it first
        assert_eq!(pool(|p| (p.count, p.bytes)), (0, 0));
    }
}
