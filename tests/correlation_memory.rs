//! The correlation map's memory, measured with a counting allocator (this test binary holds
//! only this test, so nothing else allocates meanwhile): the figure `docs/dps-errors.md` and the
//! `mesh.correlation_max_calls` docs quote, and proof the bound holds under a stream of acks far
//! beyond it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use ads_connector::mesh::Correlator;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// An ack as the acker writes it: a 36-character submission id shared by 100 calls, a
/// 20-character call id, a 36-character bundle id.
fn ack(submission: usize, call: usize) -> Vec<u8> {
    let provider = ["RX6", "RYC", "RRU"][call % 3];
    serde_json::to_vec(&serde_json::json!({
        "schema": "ads.ack.v1",
        "source": {"topic": "cad.calls.v1", "partition": call % 12, "offset": call, "timestamp_ms": 1},
        "call_id": format!("CAD-2026-{call:011}"),
        "provider_ods": provider,
        "outcome": "submitted",
        "api_id": format!("{submission:08}-0000-4000-8000-000000000000"),
        "batch_id": "b",
        "bundle_id": format!("{call:08}-1111-4111-8111-111111111111"),
    }))
    .unwrap()
}

#[test]
fn a_held_call_costs_under_200_bytes_and_the_bound_holds_far_past_it() {
    const MAX: usize = 100_000;
    let correlator = Correlator::new(MAX);
    let before = LIVE.load(Ordering::Relaxed);
    for call in 0..MAX {
        correlator.learn(&ack(call / 100, call));
    }
    let full = LIVE.load(Ordering::Relaxed) - before;
    let per_call = full as f64 / MAX as f64;
    println!("correlation memory: {per_call:.0} bytes per held call ({full} bytes for {MAX} calls in {} submissions)", correlator.len());
    assert_eq!(correlator.calls(), MAX);
    assert!(per_call < 200.0, "{per_call:.0} bytes per call");

    // Three times the bound later, the map holds at most the bound and no more memory.
    for call in MAX..4 * MAX {
        correlator.learn(&ack(call / 100, call));
    }
    let after = LIVE.load(Ordering::Relaxed) - before;
    assert!(correlator.calls() <= MAX);
    assert!(correlator.knows(&format!(
        "{:08}-0000-4000-8000-000000000000",
        (4 * MAX - 1) / 100
    )));
    assert!(!correlator.knows(&format!("{:08}-0000-4000-8000-000000000000", 0)));
    assert!(
        (after as f64) < full as f64 * 1.25,
        "memory grew from {full} to {after} bytes at the same bound"
    );
}
