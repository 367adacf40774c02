//! The process's allocator: mimalloc, entered through its plain entry points whenever the alignment asked
//! for is one every mimalloc block has anyway.
//!
//! Why not `mimalloc::MiMalloc` as it is: it calls `mi_malloc_aligned` for every allocation, and that entry
//! point sends blocks above mimalloc's small size down a generic aligned path (~165 instructions under
//! callgrind, against a few dozen for `mi_malloc`). A proxied request made 18 allocations, 4.6 of them on
//! that path. Every mimalloc block is at least word-aligned, so requests for up to word alignment (`u8`
//! buffers, pointers, nearly every struct) are exactly what `mi_malloc` gives; larger alignments still go
//! through the aligned entry points.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

pub struct Allocator;

// SAFETY: every method forwards to mimalloc, which returns blocks of at least the size asked for with at
// least word alignment from the plain entry points, and honours `align` in the aligned ones; `dealloc` and
// `realloc` receive only pointers this allocator returned, which mimalloc frees and resizes whichever entry
// point made them.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded to mimalloc as documented above.
        unsafe {
            if layout.align() <= WORD {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if layout.align() <= WORD {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the block keeps its alignment.
        unsafe {
            if layout.align() <= WORD {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment from 1 to 4096 is honoured, by both paths, for sizes that are and are not multiples
    /// of it; contents survive a resize, and zeroed blocks are zero.
    #[test]
    fn blocks_have_the_alignment_and_contents_asked_for() {
        let a = Allocator;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 8, 24, 100, 1024, 1500, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; every pointer is freed with the layout it was made with.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc size {size} align {align}");
                    p.write_bytes(0xAB, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "realloc size {size} align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xAB), "contents lost growing {size}");
                    a.dealloc(grown, Layout::from_size_align(size * 3, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed block of {size} not zero");
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
