//! Offsets: the per-partition contiguous watermark of records that are done.
//!
//! Input: the source registers every consumed record, in consume order, under the partition's
//! current *generation* (a fresh one on every assignment). The acker and the dead-letter stage
//! mark records done, in any order, after their ack or dead-letter record is durably written.
//! Output: for each partition, the next offset that may be committed: the lowest offset still
//! pending, or one past the highest registered offset when nothing is pending. In at-least-once
//! mode it is handed to an [`OffsetStore`] (librdkafka's offset store, committed by its
//! auto-commit and by the final synchronous commit at shutdown). In transactional mode no store is
//! plugged in: [`crate::transactions`] asks [`Offsets::watermarks_after`] which watermarks a set
//! of records moves, sends those inside the transaction that writes their acks or dead letters,
//! and marks the records done only once that transaction is committed.
//!
//! Gaps: each partition also knows the next offset it expects from the broker (where its
//! generation started, the committed offset the source reads at assignment, then one past each
//! record registered). [`Offsets::continuity`] tells the source whether a fetched record follows
//! on, was seen already, or leaves a gap of offsets never seen; the source registers a gap's
//! record only once the gap is known to hold nothing readable (`crate::source`'s gap check), so
//! the watermark never moves over an offset the connector has not seen.
//!
//! Guarantee: the stored (or transactionally sent) offset never passes a record that has neither
//! an ack nor a dead letter, and never moves backwards within a generation, so a crash can only
//! resend, never lose. A completion from an older generation (the partition was revoked, and maybe
//! reassigned, since) is ignored: that work is redelivered from the committed offset. Failure
//! behaviour: a store that fails (the partition was revoked under us) is logged and skipped; the
//! record will be redelivered to whoever owns the partition now.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// Where one consumed record sits, and under which assignment it was consumed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordPos {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The partition's generation when the record was consumed.
    pub generation: u64,
}

/// Receives the committable offset (the next offset to consume) of a partition.
pub trait OffsetStore: Send + Sync {
    /// Stores `next_offset` for the partition; an error means the partition is not ours any more.
    fn store(&self, topic: &str, partition: i32, next_offset: i64) -> Result<(), String>;
}

/// How a fetched record's offset follows the records seen before it in its partition; see
/// [`OffsetTracker::continuity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// The next offset expected (or the first record of a generation with no known start):
    /// register it.
    Next,
    /// Below the next offset expected: already registered in this generation, or below where
    /// the generation started (committed by the partition's previous owner), or in a gap found
    /// to hold nothing readable; a refetch after a seek. Skip it.
    Seen,
    /// Offsets `from..to` were never seen: the record at `to` must not be registered (the
    /// watermark would pass them) until the gap is found to hold nothing readable.
    Gap {
        /// The first offset not seen.
        from: i64,
        /// The record that revealed the gap.
        to: i64,
    },
    /// Below where the generation started although nothing was registered and the consumer
    /// was not sought back: the partition's log is shorter than the committed offset (the
    /// topic was re-created, or the log truncated) and the consumer was reset to its start.
    /// Register it (those records were never acked under this log), and warn.
    BelowStart {
        /// The committed offset the generation expected to start at.
        start: i64,
    },
    /// The partition is not assigned.
    Unassigned,
}

#[derive(Debug, Default)]
struct PartitionState {
    generation: u64,
    pending: BTreeSet<i64>,
    highest_registered: Option<i64>,
    stored: Option<i64>,
    /// The next offset expected from the broker: where the generation started (the committed
    /// offset), then one past the last record registered or skipped over.
    next: Option<i64>,
    /// The consumer was sought back over offsets already passed ([`OffsetTracker::skip_to`]).
    sought: bool,
}

impl PartitionState {
    fn watermark(&self) -> Option<i64> {
        self.watermark_without(&HashSet::new())
    }

    /// The watermark once the pending offsets in `done` are done: the lowest offset still
    /// pending, or one past the highest registered when nothing is.
    fn watermark_without(&self, done: &HashSet<i64>) -> Option<i64> {
        match self.pending.iter().find(|o| !done.contains(o)) {
            Some(lowest) => Some(*lowest),
            None => self.highest_registered.map(|h| h + 1),
        }
    }
}

/// The pure bookkeeping; see the module header.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    topics: HashMap<Arc<str>, HashMap<i32, PartitionState>>,
    next_generation: u64,
}

impl OffsetTracker {
    /// Starts a fresh generation for a newly assigned partition.
    pub fn assign(&mut self, topic: &str, partition: i32) -> u64 {
        self.next_generation += 1;
        let generation = self.next_generation;
        let state = PartitionState {
            generation,
            ..PartitionState::default()
        };
        match self.topics.get_mut(topic) {
            Some(partitions) => {
                partitions.insert(partition, state);
            }
            None => {
                self.topics
                    .insert(Arc::from(topic), HashMap::from([(partition, state)]));
            }
        }
        generation
    }

    /// Forgets a revoked partition; its outstanding completions will be ignored.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.topics.get_mut(topic) {
            partitions.remove(&partition);
        }
    }

    /// Where the partition's current generation starts reading (its committed offset): a first
    /// record above it is a [`Continuity::Gap`]. Ignored once a record was registered, or if
    /// the partition is not assigned.
    pub fn start_at(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(state) = self.state_mut(topic, partition) {
            if state.highest_registered.is_none() {
                state.next = Some(offset);
            }
        }
    }

    /// How a fetched record at `offset` follows what the partition has seen; see
    /// [`Continuity`]. Callers register only [`Continuity::Next`] records, and a gap's record
    /// once the gap is known to hold nothing readable: then the watermark never passes an
    /// offset the connector has not seen.
    pub fn continuity(&self, topic: &str, partition: i32, offset: i64) -> Continuity {
        let Some(state) = self.state(topic, partition) else {
            return Continuity::Unassigned;
        };
        match state.next {
            None => Continuity::Next,
            Some(next) if offset == next => Continuity::Next,
            Some(next) if offset < next => {
                if state.highest_registered.is_none() && !state.sought {
                    Continuity::BelowStart { start: next }
                } else {
                    Continuity::Seen
                }
            }
            Some(next) => Continuity::Gap {
                from: next,
                to: offset,
            },
        }
    }

    /// The offsets of the partition below `next` hold nothing more to read (a gap's start
    /// found empty up to `next`): records below it are [`Continuity::Seen`] from now on.
    pub fn skip_to(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some(state) = self.state_mut(topic, partition) {
            state.next = Some(state.next.map_or(next, |n| n.max(next)));
            state.sought = true;
        }
    }

    /// Registers a consumed record; returns its position, or `None` if the partition is not
    /// assigned (a message fetched just before its revocation: it must not be processed). The
    /// caller vouches that every offset between the last one registered and this one was
    /// seen or holds nothing readable (see [`OffsetTracker::continuity`]).
    pub fn register(&mut self, topic: &str, partition: i32, offset: i64) -> Option<RecordPos> {
        let key = self.topics.get_key_value(topic)?.0.clone();
        let state = self.topics.get_mut(topic)?.get_mut(&partition)?;
        state.next = Some(offset + 1);
        state.pending.insert(offset);
        state.highest_registered = Some(state.highest_registered.map_or(offset, |h| h.max(offset)));
        Some(RecordPos {
            topic: key,
            partition,
            offset,
            generation: state.generation,
        })
    }

    /// Whether `pos` belongs to its partition's current generation (the partition is still
    /// assigned, and was not revoked and assigned again since the record was consumed).
    pub fn is_current(&self, pos: &RecordPos) -> bool {
        self.state(&pos.topic, pos.partition)
            .is_some_and(|s| s.generation == pos.generation)
    }

    /// Marks a record done. Returns the partition's new watermark if it moved forward.
    pub fn complete(&mut self, pos: &RecordPos) -> Option<i64> {
        let state = self.topics.get_mut(&*pos.topic)?.get_mut(&pos.partition)?;
        if state.generation != pos.generation || !state.pending.remove(&pos.offset) {
            return None;
        }
        let watermark = state.watermark()?;
        if state.stored.is_some_and(|s| s >= watermark) {
            return None;
        }
        state.stored = Some(watermark);
        Some(watermark)
    }

    /// The watermarks that completing `positions` would move, without completing them:
    /// `(topic, partition, next offset)` for each partition whose watermark would pass the last
    /// one handed out. Positions of another generation, or not pending, move nothing; so
    /// [`OffsetTracker::complete`] on the same positions, with nothing completed in between,
    /// moves the same partitions to the same or (if records were registered meanwhile) no
    /// lower offsets.
    pub fn watermarks_after<'a>(
        &self,
        positions: impl IntoIterator<Item = &'a RecordPos>,
    ) -> Vec<(Arc<str>, i32, i64)> {
        let mut done: HashMap<(Arc<str>, i32), HashSet<i64>> = HashMap::new();
        for pos in positions {
            let Some(state) = self.state(&pos.topic, pos.partition) else {
                continue;
            };
            if state.generation == pos.generation && state.pending.contains(&pos.offset) {
                done.entry((pos.topic.clone(), pos.partition))
                    .or_default()
                    .insert(pos.offset);
            }
        }
        let mut moved = Vec::new();
        for ((topic, partition), offsets) in done {
            let Some(state) = self.state(&topic, partition) else {
                continue;
            };
            let Some(watermark) = state.watermark_without(&offsets) else {
                continue;
            };
            if state.stored.is_some_and(|s| s >= watermark) {
                continue;
            }
            moved.push((topic, partition, watermark));
        }
        moved.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        moved
    }

    /// Records consumed and not yet done, over all partitions.
    pub fn outstanding(&self) -> usize {
        self.topics
            .values()
            .flat_map(|p| p.values())
            .map(|p| p.pending.len())
            .sum()
    }

    /// Partitions currently assigned.
    pub fn assigned(&self) -> usize {
        self.topics.values().map(HashMap::len).sum()
    }

    /// Records of one partition consumed and not yet done.
    pub fn pending(&self, topic: &str, partition: i32) -> usize {
        self.state(topic, partition).map_or(0, |s| s.pending.len())
    }

    /// The offset that may be committed for one partition, if any record was registered.
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition)?.watermark()
    }

    fn state(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics.get(topic)?.get(&partition)
    }

    fn state_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionState> {
        self.topics.get_mut(topic)?.get_mut(&partition)
    }
}

/// The tracker shared by the source, the acker, the dead-letter stage and the rebalance hooks,
/// with the store it feeds.
#[derive(Clone, Default)]
pub struct Offsets {
    tracker: Arc<Mutex<OffsetTracker>>,
    /// Signalled whenever records are completed, and when the shutdown deadline is set (see
    /// [`Offsets::drain`]).
    completed: Arc<Condvar>,
    store: Arc<OnceLock<Arc<dyn OffsetStore>>>,
    /// The shutdown deadline ([`Offsets::shut_down_by`]): no revocation drain waits past it.
    shutdown: Arc<OnceLock<Instant>>,
}

impl Offsets {
    /// A tracker with no store yet (the consumer that owns the store needs the tracker first).
    pub fn new() -> Self {
        Self::default()
    }

    /// Plugs in the store; a second call is ignored.
    pub fn set_store(&self, store: Arc<dyn OffsetStore>) {
        let _ = self.store.set(store);
    }

    /// See [`OffsetTracker::assign`].
    pub fn assign(&self, topic: &str, partition: i32) -> u64 {
        self.lock().assign(topic, partition)
    }

    /// See [`OffsetTracker::revoke`].
    pub fn revoke(&self, topic: &str, partition: i32) {
        self.lock().revoke(topic, partition)
    }

    /// See [`OffsetTracker::register`].
    pub fn register(&self, topic: &str, partition: i32, offset: i64) -> Option<RecordPos> {
        self.lock().register(topic, partition, offset)
    }

    /// See [`OffsetTracker::start_at`].
    pub fn start_at(&self, topic: &str, partition: i32, offset: i64) {
        self.lock().start_at(topic, partition, offset)
    }

    /// See [`OffsetTracker::continuity`].
    pub fn continuity(&self, topic: &str, partition: i32, offset: i64) -> Continuity {
        self.lock().continuity(topic, partition, offset)
    }

    /// See [`OffsetTracker::skip_to`].
    pub fn skip_to(&self, topic: &str, partition: i32, next: i64) {
        self.lock().skip_to(topic, partition, next)
    }

    /// Marks records done and stores the watermarks that moved.
    pub fn complete<'a>(&self, positions: impl IntoIterator<Item = &'a RecordPos>) {
        let mut moved: HashMap<(Arc<str>, i32), i64> = HashMap::new();
        {
            let mut tracker = self.lock();
            for pos in positions {
                if let Some(w) = tracker.complete(pos) {
                    moved.insert((pos.topic.clone(), pos.partition), w);
                }
            }
        }
        self.completed.notify_all();
        let Some(store) = self.store.get() else {
            return;
        };
        for ((topic, partition), next) in moved {
            if let Err(error) = store.store(&topic, partition, next) {
                tracing::warn!(
                    message = "Offset not stored; the partition is no longer assigned.",
                    topic = %topic,
                    partition,
                    %error
                );
            }
        }
    }

    /// See [`OffsetTracker::watermarks_after`].
    pub fn watermarks_after<'a>(
        &self,
        positions: impl IntoIterator<Item = &'a RecordPos>,
    ) -> Vec<(Arc<str>, i32, i64)> {
        self.lock().watermarks_after(positions)
    }

    /// Records consumed and not yet done.
    pub fn outstanding(&self) -> usize {
        self.lock().outstanding()
    }

    /// See [`OffsetTracker::watermark`].
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock().watermark(topic, partition)
    }

    /// See [`OffsetTracker::is_current`].
    pub fn is_current(&self, pos: &RecordPos) -> bool {
        self.lock().is_current(pos)
    }

    /// From now on no revocation drain ([`Offsets::drain`]) waits past `deadline`, one already
    /// waiting included: shutdown has one deadline (`shutdown.drain_timeout_s`) for the
    /// pipeline's drain, the revocations while it runs and the one when the consumer leaves the
    /// group. Without it, leaving the group after a drain cut off at its deadline would wait
    /// `kafka.revoke_drain_timeout_ms` more for records that can no longer finish. A second call
    /// is ignored.
    pub fn shut_down_by(&self, deadline: Instant) {
        let _ = self.shutdown.set(deadline);
        // Taking the lock orders this after a drain's check of the deadline and before its wait,
        // so the wake-up cannot be lost.
        drop(self.lock());
        self.completed.notify_all();
    }

    /// Blocks (this is for the rebalance callback, which is synchronous) until no record of
    /// `partitions` is pending or `deadline` (or the shutdown deadline, [`Offsets::shut_down_by`],
    /// if earlier) passes; returns each partition's committable offset. Records still pending at
    /// the deadline are abandoned to the next owner.
    pub fn drain(
        &self,
        partitions: &[(String, i32)],
        deadline: Instant,
    ) -> Vec<(String, i32, i64)> {
        let mut tracker = self.lock();
        loop {
            let pending: usize = partitions.iter().map(|(t, p)| tracker.pending(t, *p)).sum();
            let deadline = self.shutdown.get().map_or(deadline, |s| deadline.min(*s));
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                if pending > 0 {
                    tracing::warn!(
                        message = "Revocation drain deadline passed; in-flight records go to the next owner.",
                        pending
                    );
                }
                break;
            }
            tracker = self
                .completed
                .wait_timeout(tracker, deadline - now)
                .expect("offset tracker lock poisoned")
                .0;
        }
        partitions
            .iter()
            .filter_map(|(t, p)| Some((t.clone(), *p, tracker.watermark(t, *p)?)))
            .collect()
    }

    /// Partitions assigned.
    pub fn assigned(&self) -> usize {
        self.lock().assigned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        // A panic while holding this lock is a bug in this file; poisoning is not recoverable.
        self.tracker.lock().expect("offset tracker lock poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(t: &mut OffsetTracker, pos: &RecordPos) -> Option<i64> {
        t.complete(pos)
    }

    #[test]
    fn never_commits_offset_past_an_unfinished_record() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        let a = t.register("cad", 0, 10).unwrap();
        let b = t.register("cad", 0, 11).unwrap();
        let c = t.register("cad", 0, 12).unwrap();
        assert_eq!(done(&mut t, &c), Some(10), "10 and 11 still pending");
        assert_eq!(done(&mut t, &a), Some(11));
        assert_eq!(done(&mut t, &b), Some(13));
    }

    #[test]
    fn a_gap_found_to_hold_nothing_readable_does_not_block_the_watermark() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        let a = t.register("cad", 0, 5).unwrap();
        assert_eq!(
            t.continuity("cad", 0, 9),
            Continuity::Gap { from: 6, to: 9 }
        );
        // The source registers 9 only once 6..9 proved empty (transaction markers, compaction).
        let b = t.register("cad", 0, 9).unwrap();
        assert_eq!(done(&mut t, &a), Some(9));
        assert_eq!(done(&mut t, &b), Some(10));
    }

    #[test]
    fn a_first_record_above_the_committed_offset_is_a_gap_until_proven_empty() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        t.start_at("cad", 0, 100);
        assert_eq!(
            t.continuity("cad", 0, 602),
            Continuity::Gap { from: 100, to: 602 },
            "a rejoin that resumed inside a producer batch (Tansu) is caught"
        );
        assert_eq!(t.continuity("cad", 0, 100), Continuity::Next);
        assert_eq!(
            t.continuity("cad", 0, 99),
            Continuity::BelowStart { start: 100 },
            "a log shorter than the committed offset: read from where the consumer was reset"
        );
        assert_eq!(t.continuity("cad", 1, 0), Continuity::Unassigned);
        // Found empty up to 150: the broker is read again from before 100, and everything
        // below 150 is skipped as seen.
        t.skip_to("cad", 0, 150);
        assert_eq!(t.continuity("cad", 0, 120), Continuity::Seen);
        assert_eq!(t.continuity("cad", 0, 150), Continuity::Next);
        let a = t.register("cad", 0, 150).unwrap();
        assert_eq!(t.continuity("cad", 0, 150), Continuity::Seen, "a refetch");
        assert_eq!(done(&mut t, &a), Some(151));
    }

    #[test]
    fn a_new_generation_forgets_where_the_last_one_was() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        t.register("cad", 0, 7).unwrap();
        t.revoke("cad", 0);
        t.assign("cad", 0);
        assert_eq!(
            t.continuity("cad", 0, 3),
            Continuity::Next,
            "no start known"
        );
        t.start_at("cad", 0, 5);
        assert_eq!(t.continuity("cad", 0, 5), Continuity::Next);
        t.register("cad", 0, 5).unwrap();
        assert_eq!(t.continuity("cad", 0, 3), Continuity::Seen);
    }

    #[test]
    fn a_record_below_the_committed_offset_restarts_the_expected_sequence_there() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        t.start_at("cad", 0, 500);
        assert_eq!(
            t.continuity("cad", 0, 0),
            Continuity::BelowStart { start: 500 }
        );
        let a = t.register("cad", 0, 0).unwrap();
        assert_eq!(t.continuity("cad", 0, 1), Continuity::Next);
        assert_eq!(done(&mut t, &a), Some(1));
    }

    #[test]
    fn completions_from_a_revoked_generation_are_ignored() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 1);
        let old = t.register("cad", 1, 40).unwrap();
        t.revoke("cad", 1);
        t.assign("cad", 1);
        let new = t.register("cad", 1, 38).unwrap();
        assert_eq!(done(&mut t, &old), None);
        assert_eq!(done(&mut t, &new), Some(39));
    }

    #[test]
    fn records_of_unassigned_partitions_are_not_registered() {
        let mut t = OffsetTracker::default();
        assert!(t.register("cad", 3, 1).is_none());
    }

    #[test]
    fn completing_twice_moves_nothing() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        let a = t.register("cad", 0, 0).unwrap();
        assert_eq!(done(&mut t, &a), Some(1));
        assert_eq!(done(&mut t, &a), None);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_drain_returns_once_the_partition_has_nothing_pending() {
        let offsets = Offsets::new();
        offsets.assign("cad", 0);
        let a = offsets.register("cad", 0, 7).unwrap();
        let finisher = {
            let offsets = offsets.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                offsets.complete([&a]);
            })
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let marks = offsets.drain(&[("cad".into(), 0)], deadline);
        finisher.join().unwrap();
        assert_eq!(marks, vec![("cad".to_string(), 0, 8)]);
    }

    #[test]
    fn a_drain_gives_up_at_its_deadline_and_reports_the_safe_watermark() {
        let offsets = Offsets::new();
        offsets.assign("cad", 0);
        offsets.register("cad", 0, 3).unwrap();
        let marks = offsets.drain(&[("cad".into(), 0)], Instant::now());
        assert_eq!(marks, vec![("cad".to_string(), 0, 3)]);
    }

    #[test]
    fn the_shutdown_deadline_cuts_short_a_drain_already_waiting_and_every_later_one() {
        let offsets = Offsets::new();
        offsets.assign("cad", 0);
        offsets.register("cad", 0, 3).unwrap();
        let far = Instant::now() + std::time::Duration::from_secs(30);
        let waiting = {
            let offsets = offsets.clone();
            std::thread::spawn(move || offsets.drain(&[("cad".into(), 0)], far))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let started = Instant::now();
        offsets.shut_down_by(Instant::now());
        assert_eq!(waiting.join().unwrap(), vec![("cad".to_string(), 0, 3)]);
        assert_eq!(offsets.drain(&[("cad".into(), 0)], far).len(), 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn watermarks_after_tells_what_completing_would_move_without_completing() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        t.assign("cad", 1);
        let a = t.register("cad", 0, 10).unwrap();
        let b = t.register("cad", 0, 11).unwrap();
        let c = t.register("cad", 0, 12).unwrap();
        let d = t.register("cad", 1, 4).unwrap();
        assert_eq!(
            t.watermarks_after([&b]),
            vec![(Arc::from("cad"), 0, 10)],
            "10 still pending: the watermark stays at 10, as `complete` would first report it"
        );
        let both = t.watermarks_after([&a, &b, &d]);
        assert_eq!(
            both,
            vec![(Arc::from("cad"), 0, 12), (Arc::from("cad"), 1, 5)]
        );
        assert_eq!(t.outstanding(), 4, "nothing was completed");
        assert_eq!(done(&mut t, &a), Some(11));
        assert_eq!(done(&mut t, &b), Some(12));
        assert_eq!(done(&mut t, &d), Some(5));
        assert_eq!(t.watermarks_after([&a, &d]), vec![], "already done");
        assert_eq!(t.watermarks_after([&c]), vec![(Arc::from("cad"), 0, 13)]);
    }

    #[test]
    fn watermarks_after_ignores_revoked_generations() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        let old = t.register("cad", 0, 1).unwrap();
        t.revoke("cad", 0);
        assert_eq!(t.watermarks_after([&old]), vec![]);
        t.assign("cad", 0);
        t.register("cad", 0, 1).unwrap();
        assert_eq!(t.watermarks_after([&old]), vec![]);
    }

    #[test]
    fn partitions_are_tracked_independently() {
        let mut t = OffsetTracker::default();
        t.assign("cad", 0);
        t.assign("cad", 1);
        let a = t.register("cad", 0, 0).unwrap();
        let b = t.register("cad", 1, 0).unwrap();
        assert_eq!(done(&mut t, &b), Some(1));
        assert_eq!(t.outstanding(), 1);
        assert_eq!(done(&mut t, &a), Some(1));
    }
}
