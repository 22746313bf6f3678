//! The newest-snapshot index's memory, measured with a counting allocator: the bytes per call
//! that `schedule/coalesce.rs` states, and proof that the index's own account (`memory_bytes`)
//! is what the allocator saw. The count is per thread, so the tests of this binary may run side
//! by side.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ads_connector::schedule::coalesce::{NewestIndex, Verdict};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down may still free memory.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A call id as the connector's tests write them: 20 bytes.
fn call_id(call: usize) -> String {
    format!("CAD-2026-{call:011}")
}

/// Builds an index of `calls` calls with `snapshots` snapshots each, interleaved as a busy night
/// logs them (every call once, then every call again, …); returns it with the bytes the allocator
/// saw it keep.
fn build(calls: usize, snapshots: usize, key: fn(usize) -> String) -> (NewestIndex, usize) {
    let before = live();
    let mut index = NewestIndex::new();
    let mut offset = 0i64;
    for round in 0..snapshots {
        for call in 0..calls {
            index
                .observe(key(call).as_bytes(), round as i64 * 1_000_000, offset)
                .unwrap();
            offset += 1;
        }
    }
    let bytes = (live() - before) as usize;
    (index, bytes)
}

fn report(label: &str, calls: usize, index: &NewestIndex, bytes: usize) -> f64 {
    let per_call = bytes as f64 / calls as f64;
    println!("{label}: {per_call:.1} bytes per call ({bytes} bytes for {calls} calls)");
    assert_eq!(index.len(), calls);
    assert_eq!(
        index.memory_bytes(),
        bytes,
        "the index's own account differs from the allocator's"
    );
    per_call
}

#[test]
fn a_hundred_thousand_calls_of_ten_snapshots_cost_under_100_bytes_a_call() {
    let (index, bytes) = build(100_000, 10, call_id);
    let per_call = report(
        "100k calls x 10 snapshots, 20-byte ids",
        100_000,
        &index,
        bytes,
    );
    assert!(per_call < 100.0, "{per_call:.1} bytes per call");
    assert_eq!(
        index.verdict(call_id(7).as_bytes(), 9_000_000, 900_007),
        Verdict::Submit
    );
    assert_eq!(
        index.verdict(call_id(7).as_bytes(), 0, 7),
        Verdict::Superseded { by_offset: 900_007 }
    );
}

#[test]
fn a_million_calls_cost_under_100_bytes_a_call() {
    let (index, bytes) = build(1_000_000, 1, call_id);
    let per_call = report(
        "1M calls x 1 snapshot, 20-byte ids",
        1_000_000,
        &index,
        bytes,
    );
    assert!(per_call < 100.0, "{per_call:.1} bytes per call");
}

#[test]
fn the_longest_provider_and_call_id_costs_the_key_bytes_more() {
    // `{provider_ods}/{call_id}` at its longest: a 5-character ODS code and a 64-character id.
    fn long_key(call: usize) -> String {
        format!("RX6AB/{call:064}")
    }
    let (index, bytes) = build(100_000, 2, long_key);
    let per_call = report(
        "100k calls x 2 snapshots, 70-byte ids",
        100_000,
        &index,
        bytes,
    );
    assert!(
        per_call < 24.0 + 70.0 + 22.0,
        "{per_call:.1} bytes per call"
    );
}

#[test]
fn forgetting_as_the_second_pass_goes_gives_the_memory_back() {
    let (mut index, bytes) = build(100_000, 2, call_id);
    let before = live();
    // Half-way through the second round, calls 0..50_000 have no record ahead: they go.
    index.forget_through(149_999);
    assert_eq!(index.len(), 50_000);
    assert!(
        index.memory_bytes() < bytes * 6 / 10,
        "{} of {bytes} bytes left",
        index.memory_bytes()
    );
    assert_eq!(
        index.memory_bytes() as isize,
        bytes as isize - (before - live())
    );
    // Past the end: everything goes.
    index.forget_through(199_999);
    assert_eq!(index.len(), 0);
    let freed = before - live();
    println!("forget_through the end freed {freed} of {bytes} bytes");
    assert_eq!(freed as usize, bytes);
}
