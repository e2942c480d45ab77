//! The allocator for daskr's own memory: the system allocator, except that large blocks
//! (the per-graph and per-run arrays of a big graph) are mapped directly and marked for
//! transparent huge pages.
//!
//! Why: at a million tasks, building and running touch ~150 bytes per task of fresh memory.
//! With 4 KiB pages that is one page fault (and a page clear) per ~27 tasks, plus a TLB miss
//! on nearly every random access into the key table — measured as the largest single cost of
//! building a graph. 2 MiB pages cut both. Growing such a block uses `mremap`, which moves
//! pages instead of copying bytes. Memory handed to C callers is never allocated here with
//! one allocator and freed with another: every daskr object is freed by daskr.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Blocks at least this large are mapped with huge pages.
const LARGE: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

pub struct DaskrAlloc;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= 4096
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    let len = mapped_len(size);
    let p = libc::mmap(
        ptr::null_mut(),
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    // Advisory: without THP support this fails harmlessly and the block uses small pages.
    libc::madvise(p, len, libc::MADV_HUGEPAGE);
    p.cast()
}

unsafe impl GlobalAlloc for DaskrAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            map(layout.size()) // anonymous mappings are zero-filled
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if is_large(&layout) {
            libc::munmap(p.cast(), mapped_len(layout.size()));
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
                if old_len == new_len {
                    return p;
                }
                let q = libc::mremap(p.cast(), old_len, new_len, libc::MREMAP_MAYMOVE);
                if q == libc::MAP_FAILED {
                    return ptr::null_mut();
                }
                if new_len > old_len {
                    libc::madvise(q, new_len, libc::MADV_HUGEPAGE);
                }
                q.cast()
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
    #[test]
    fn large_blocks_grow_shrink_and_keep_contents() {
        let mut v: Vec<u64> = Vec::with_capacity(16);
        for i in 0..3_000_000u64 {
            v.push(i); // crosses small -> large, then grows by mremap
        }
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
        v.truncate(10);
        v.shrink_to_fit(); // large -> small
        assert_eq!(v, (0..10).collect::<Vec<u64>>());
        let z = vec![0u32; 5_000_000];
        assert!(z.iter().all(|&x| x == 0));
    }
}
