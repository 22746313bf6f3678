//! The process's global allocator: mimalloc, called the way its own aligned entry points would
//! resolve the request, minus their detour.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every request through `mi_malloc_aligned`, which
//! checks the alignment and then, for the alignments Rust asks for almost always (8 or less),
//! calls the same small-block path `mi_malloc` does, three calls deep. mimalloc's own rule
//! (`alloc-aligned.c`, `mi_malloc_is_naturally_aligned`): a block whose size is at least its
//! alignment, with an alignment of at most `MI_MAX_ALIGN_SIZE` (16), is naturally aligned by
//! plain `mi_malloc`. [`MiMalloc`] calls `mi_malloc`, `mi_zalloc` and `mi_realloc` for those and
//! the aligned functions for the rest, as the standard library's `System` allocator does with
//! `malloc`. Measured (callgrind, `benches/mapping.rs`, instructions per record of the
//! transform) and end to end in the README's performance notes.
//!
//! Shared by `src/main.rs` (whose tests check the alignment of every kind of block) and
//! `benches/mapping.rs` (`#[path]`), so the benchmark measures the
//! allocator the binary uses.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// `MI_MAX_ALIGN_SIZE` of mimalloc's `types.h`: the alignment every block of at least this size
/// has.
const MI_MAX_ALIGN_SIZE: usize = 16;

/// True when plain `mi_malloc(size)` already returns a block aligned to `align`.
#[inline]
fn naturally_aligned(size: usize, align: usize) -> bool {
    align <= MI_MAX_ALIGN_SIZE && align <= size
}

/// mimalloc as the global allocator (see the module header).
pub struct MiMalloc;

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks of any
// alignment); a block is aligned to `layout.align()` either by mimalloc's natural alignment rule
// ([`naturally_aligned`]) or by its aligned functions; a null return reports failure, as
// `GlobalAlloc` requires.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if naturally_aligned(layout.size(), layout.align()) {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if naturally_aligned(layout.size(), layout.align()) {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // In place or moved, the block keeps the alignment of a fresh one of `new_size`.
        if naturally_aligned(new_size, layout.align()) {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}
