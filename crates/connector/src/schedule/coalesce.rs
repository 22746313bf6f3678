//! The newest snapshot of each call in a backlog, so a window pass POSTs only that one.
//!
//! Contract: a first pass feeds one partition's backlog to [`NewestIndex::observe`] in offset
//! order (call id = the record key, `snapshot_at` in unix microseconds). A second pass, re-reading
//! the same records, asks [`NewestIndex::verdict`] for each: [`Verdict::Submit`] for the newest
//! snapshot of its call (the greatest `snapshot_at`; on a tie the greater offset),
//! [`Verdict::Superseded`] naming the offset of that newest snapshot for every other one (also
//! when the newer snapshot sits *earlier* in the log), and [`Verdict::Unknown`] for anything the
//! index cannot vouch for: offsets outside the indexed range (records that arrived after the first
//! pass, or before it), forgotten offsets, calls never indexed, a call's offsets past the last one
//! observed for it, and a snapshot newer than any the index holds for its call. `Unknown` means
//! "handle normally". `Superseded` is only ever said when the index holds a snapshot of the same
//! call that is strictly newer, by (`snapshot_at`, offset), than the one asked about, and that
//! newer one is the one it says `Submit` for: so no record is acked `superseded` without a newer
//! one being submitted, even one the first pass did not see.
//!
//! Exactness: call ids are kept byte for byte in an arena and compared in full on every lookup;
//! the 32-bit hash stored beside each slot only filters and places. Two distinct calls are never
//! merged, whatever the hash (a test uses a hasher that sends every key to the same slot), so a
//! collision costs time, never a record. The hash is SipHash with a random key per index, so a
//! producer cannot choose keys that collide.
//!
//! Memory (measured by `tests/coalesce_memory.rs`): per distinct call, a 24-byte entry, the key
//! bytes, and 10.7–21.3 bytes of hash slots (8-byte slots, at most ¾ full, doubling); about 66
//! bytes for a 20-byte call id. Entries and keys live in fixed chunks (4096 entries, 64 KiB of
//! keys), so they never over-allocate by more than one chunk nor copy themselves to grow.
//! [`NewestIndex::with_memory_limit`] caps it: past the cap `observe` returns
//! [`ObserveError::Full`] and the index covers only the offsets observed so far. As the second
//! pass goes, [`NewestIndex::forget_through`] drops the calls whose every observed offset is
//! behind it, compacting in place each time another eighth of the range is passed.
//!
//! Limits, each an [`ObserveError`] rather than a silent drop: offsets must increase; one index
//! spans at most 2³² − 1 offsets and 2³² − 2 calls and 4 GiB of keys; a call id longer than
//! 64 KiB is not indexed (its records stay `Unknown`).

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher;
use std::mem::size_of;

/// Bytes per key chunk; keys never straddle two chunks.
const ARENA_CHUNK: usize = 64 * 1024;
/// Entries per entry chunk.
const ENTRY_CHUNK: usize = 4096;
/// The longest call id indexed.
pub const MAX_KEY_LEN: usize = ARENA_CHUNK;
/// Key chunks addressable with a `u32` position.
const MAX_ARENA_CHUNKS: usize = (1usize << 32) / ARENA_CHUNK;
/// Most calls in one index (slot value `idx + 1` must fit 32 bits).
const MAX_CALLS: usize = u32::MAX as usize - 1;
/// The first chunk starts this small and doubles, so that an index of a few calls stays small.
const FIRST_ENTRY_CAP: usize = 16;
const FIRST_ARENA_CAP: usize = 256;
const MIN_SLOTS: usize = 16;
/// `forget_through` compacts each time the forgotten watermark passes another 1/N of the range.
const COMPACT_FRACTION: i64 = 8;

/// What to do with one record of the backlog on the second pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The newest snapshot of its call in the indexed range: submit it.
    Submit,
    /// An older snapshot: ack it `superseded` by the record at `by_offset` (same partition).
    Superseded {
        /// Source offset of the newest snapshot of the same call.
        by_offset: i64,
    },
    /// Not covered by the index: handle the record as outside a window pass.
    Unknown,
}

/// Why [`NewestIndex::observe`] did not index a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    /// The first pass must feed offsets in increasing order.
    #[error("offset {offset} is not after the last observed offset {last}: the first pass must read the partition in order")]
    OutOfOrder {
        /// The offending offset.
        offset: i64,
        /// The last offset observed.
        last: i64,
    },
    /// The memory limit or a 32-bit bound is reached: the index is sealed at the last offset it
    /// observed; the record and every later one are `Unknown` to it.
    #[error("the newest-snapshot index is full; it covers offsets up to the last one observed and no later")]
    Full,
    /// The call id is longer than [`MAX_KEY_LEN`]: this call is not indexed, its records are
    /// `Unknown`; the index goes on.
    #[error("a call id of {len} bytes is longer than the newest-snapshot index keeps")]
    KeyTooLong {
        /// The call id's length.
        len: usize,
    },
}

/// One call: its newest snapshot and where its key is. Offsets are relative to the index base.
#[derive(Debug, Clone, Copy)]
struct Entry {
    snapshot_at: i64,
    /// Offset of the newest snapshot.
    newest: u32,
    /// Greatest offset observed for the call.
    last: u32,
    /// Position in the arena: `chunk * ARENA_CHUNK + offset in chunk`.
    key_at: u32,
    key_len: u32,
}

/// Call id → newest (snapshot_at, offset) over one partition's backlog. See the module docs.
pub struct NewestIndex<S = RandomState> {
    hasher: S,
    /// Open addressing, linear probing: `0` empty, else `hash32 << 32 | (entry index + 1)`.
    slots: Vec<u64>,
    entries: Vec<Vec<Entry>>,
    len: usize,
    arena: Vec<Vec<u8>>,
    /// First observed offset; entry offsets are relative to it.
    base: Option<i64>,
    /// Last observed offset: the end of the indexed range.
    last: Option<i64>,
    /// Offsets up to here are forgotten.
    forgotten: Option<i64>,
    /// The watermark at the last compaction.
    compacted: Option<i64>,
    sealed: bool,
    memory_limit: usize,
}

impl NewestIndex {
    /// An empty index without a memory limit.
    pub fn new() -> Self {
        Self::with_hasher(RandomState::new())
    }

    /// An empty index that refuses to grow past `bytes` of heap ([`NewestIndex::memory_bytes`]).
    pub fn with_memory_limit(bytes: usize) -> Self {
        let mut index = Self::new();
        index.memory_limit = bytes;
        index
    }
}

impl Default for NewestIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> fmt::Debug for NewestIndex<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewestIndex")
            .field("calls", &self.len)
            .field("range", &self.range())
            .field("forgotten_through", &self.forgotten)
            .field("sealed", &self.sealed)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl<S> NewestIndex<S> {
    /// Distinct calls held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no call is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// First and last observed offsets (the range verdicts cover, less what is forgotten).
    pub fn range(&self) -> Option<(i64, i64)> {
        Some((self.base?, self.last?))
    }

    /// Whether `observe` has refused a record for lack of room ([`ObserveError::Full`]).
    pub fn is_full(&self) -> bool {
        self.sealed
    }

    /// Heap bytes held (capacities of every buffer).
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<u64>()
            + self.entries.capacity() * size_of::<Vec<Entry>>()
            + self
                .entries
                .iter()
                .map(|c| c.capacity() * size_of::<Entry>())
                .sum::<usize>()
            + self.arena.capacity() * size_of::<Vec<u8>>()
            + self.arena.iter().map(Vec::capacity).sum::<usize>()
    }
}

impl<S: BuildHasher> NewestIndex<S> {
    /// An empty index hashing with `hasher` (tests use a degenerate one to force collisions).
    pub fn with_hasher(hasher: S) -> Self {
        Self {
            hasher,
            slots: Vec::new(),
            entries: Vec::new(),
            len: 0,
            arena: Vec::new(),
            base: None,
            last: None,
            forgotten: None,
            compacted: None,
            sealed: false,
            memory_limit: usize::MAX,
        }
    }

    /// Records that the record at `offset` holds a snapshot of `call_id` taken at `snapshot_at`
    /// (unix microseconds). Offsets must increase from call to call.
    pub fn observe(
        &mut self,
        call_id: &[u8],
        snapshot_at: i64,
        offset: i64,
    ) -> Result<(), ObserveError> {
        if let Some(last) = self.last {
            if offset <= last {
                return Err(ObserveError::OutOfOrder { offset, last });
            }
        }
        if self.sealed {
            return Err(ObserveError::Full);
        }
        let base = self.base.unwrap_or(offset);
        let Some(rel) = offset
            .checked_sub(base)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|&d| d < u32::MAX)
        else {
            self.sealed = true;
            return Err(ObserveError::Full);
        };
        if call_id.len() > MAX_KEY_LEN {
            self.base = Some(base);
            self.last = Some(offset);
            return Err(ObserveError::KeyTooLong { len: call_id.len() });
        }
        let hash = self.hash(call_id);
        if let Some(idx) = self.find(call_id, hash) {
            let e = self.entry_mut(idx);
            if snapshot_at >= e.snapshot_at {
                e.snapshot_at = snapshot_at;
                e.newest = rel;
            }
            e.last = rel;
        } else {
            if !self.make_room(call_id.len()) {
                self.sealed = true;
                return Err(ObserveError::Full);
            }
            let key_at = self.push_key(call_id);
            self.push_entry(Entry {
                snapshot_at,
                newest: rel,
                last: rel,
                key_at,
                key_len: call_id.len() as u32,
            });
            place(&mut self.slots, hash, self.len - 1);
        }
        self.base = Some(base);
        self.last = Some(offset);
        Ok(())
    }

    /// What the second pass should do with the record at `offset`, a snapshot of `call_id` taken
    /// at `snapshot_at`.
    pub fn verdict(&self, call_id: &[u8], snapshot_at: i64, offset: i64) -> Verdict {
        let (Some(base), Some(last)) = (self.base, self.last) else {
            return Verdict::Unknown;
        };
        if offset < base
            || offset > last
            || self.forgotten.is_some_and(|w| offset <= w)
            || call_id.len() > MAX_KEY_LEN
        {
            return Verdict::Unknown;
        }
        let Some(idx) = self.find(call_id, self.hash(call_id)) else {
            return Verdict::Unknown;
        };
        let e = self.entry(idx);
        // In range, so it fits: offset - base <= last - base < u32::MAX.
        let rel = (offset - base) as u32;
        let newest = base + i64::from(e.newest);
        if rel > e.last {
            Verdict::Unknown
        } else if rel == e.newest {
            Verdict::Submit
        } else if (snapshot_at, offset) < (e.snapshot_at, newest) {
            Verdict::Superseded { by_offset: newest }
        } else {
            // Newer than every snapshot observed for the call: the first pass did not see it.
            Verdict::Unknown
        }
    }

    /// The second pass has dealt with every record up to `offset`: their verdicts are no longer
    /// needed (they become `Unknown`), and calls with no observed offset after it are dropped.
    /// Memory is given back each time another eighth of the range is passed, and all of it once
    /// the end of the range is.
    pub fn forget_through(&mut self, offset: i64) {
        let (Some(base), Some(last)) = (self.base, self.last) else {
            return;
        };
        let watermark = self.forgotten.map_or(offset, |w| w.max(offset));
        self.forgotten = Some(watermark);
        if watermark < base {
            return;
        }
        if watermark >= last {
            self.release();
            return;
        }
        let span = last - base + 1;
        let since = watermark - self.compacted.unwrap_or(base - 1);
        if since * COMPACT_FRACTION >= span {
            self.compact((watermark - base) as u32);
            self.compacted = Some(watermark);
        }
    }

    fn hash(&self, key: &[u8]) -> u32 {
        let h = self.hasher.hash_one(key);
        (h ^ (h >> 32)) as u32
    }

    fn key(&self, idx: usize) -> &[u8] {
        let e = self.entry(idx);
        if e.key_len == 0 {
            // May sit just past the end of a full chunk.
            return &[];
        }
        let (chunk, at) = split(e.key_at);
        &self.arena[chunk][at..at + e.key_len as usize]
    }

    fn entry(&self, idx: usize) -> Entry {
        self.entries[idx / ENTRY_CHUNK][idx % ENTRY_CHUNK]
    }

    fn entry_mut(&mut self, idx: usize) -> &mut Entry {
        &mut self.entries[idx / ENTRY_CHUNK][idx % ENTRY_CHUNK]
    }

    fn find(&self, key: &[u8], hash: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut pos = hash as usize & mask;
        loop {
            let slot = self.slots[pos];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == hash {
                let idx = (slot as u32 - 1) as usize;
                if self.key(idx) == key {
                    return Some(idx);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Grows what one more call of `key_len` bytes needs, unless that would pass a limit.
    fn make_room(&mut self, key_len: usize) -> bool {
        if self.len >= MAX_CALLS {
            return false;
        }
        let new_arena_chunk = self.needs_new_arena_chunk(key_len);
        if new_arena_chunk && self.arena.len() >= MAX_ARENA_CHUNKS {
            return false;
        }
        let grow_slots = (self.len + 1) * 4 > self.slots.len() * 3;
        let slot_cap = (self.slots.len() * 2).max(MIN_SLOTS);
        // Bytes about to be allocated (what the table, entry and key buffers grow by).
        let mut growth = 0;
        if grow_slots {
            growth += slot_cap * size_of::<u64>();
        }
        growth += match self.entries.last() {
            Some(c) if c.len() < ENTRY_CHUNK => {
                (next_cap(c, 1, FIRST_ENTRY_CAP, ENTRY_CHUNK) - c.capacity()) * size_of::<Entry>()
            }
            _ => {
                self.new_entry_chunk_cap() * size_of::<Entry>()
                    + outer_growth(&self.entries) * size_of::<Vec<Entry>>()
            }
        };
        growth += if new_arena_chunk {
            self.new_arena_chunk_cap(key_len) + outer_growth(&self.arena) * size_of::<Vec<u8>>()
        } else {
            let c = self.arena.last().expect("a chunk that fits");
            next_cap(c, key_len, FIRST_ARENA_CAP, ARENA_CHUNK) - c.capacity()
        };
        if growth > 0 && self.memory_bytes().saturating_add(growth) > self.memory_limit {
            return false;
        }
        if grow_slots {
            let mut slots = vec![0u64; slot_cap];
            for &slot in self.slots.iter().filter(|&&s| s != 0) {
                place(&mut slots, (slot >> 32) as u32, (slot as u32 - 1) as usize);
            }
            self.slots = slots;
        }
        true
    }

    /// Keys never straddle chunks: one that does not fit in the last chunk starts a new one.
    fn needs_new_arena_chunk(&self, key_len: usize) -> bool {
        self.arena
            .last()
            .is_none_or(|c| c.len() + key_len > ARENA_CHUNK)
    }

    fn new_entry_chunk_cap(&self) -> usize {
        if self.entries.is_empty() {
            FIRST_ENTRY_CAP
        } else {
            ENTRY_CHUNK
        }
    }

    fn new_arena_chunk_cap(&self, key_len: usize) -> usize {
        if self.arena.is_empty() {
            FIRST_ARENA_CAP.max(key_len)
        } else {
            ARENA_CHUNK
        }
    }

    fn push_entry(&mut self, e: Entry) {
        match self.entries.last_mut() {
            Some(c) if c.len() < ENTRY_CHUNK => {
                let cap = next_cap(c, 1, FIRST_ENTRY_CAP, ENTRY_CHUNK);
                c.reserve_exact(cap - c.len());
                c.push(e);
            }
            _ => {
                let mut c = Vec::with_capacity(self.new_entry_chunk_cap());
                c.push(e);
                self.entries.push(c);
            }
        }
        self.len += 1;
    }

    fn push_key(&mut self, key: &[u8]) -> u32 {
        if self.needs_new_arena_chunk(key.len()) {
            let cap = self.new_arena_chunk_cap(key.len());
            self.arena.push(Vec::with_capacity(cap));
        }
        let chunk_idx = self.arena.len() - 1;
        let chunk = &mut self.arena[chunk_idx];
        let cap = next_cap(chunk, key.len(), FIRST_ARENA_CAP, ARENA_CHUNK);
        chunk.reserve_exact(cap - chunk.len());
        let at = chunk_idx * ARENA_CHUNK + chunk.len();
        chunk.extend_from_slice(key);
        at as u32
    }

    fn release(&mut self) {
        self.slots = Vec::new();
        self.entries = Vec::new();
        self.arena = Vec::new();
        self.len = 0;
    }

    /// Drops the calls whose last observed offset is at most `watermark` (relative), moving the
    /// rest down in place (entries and keys keep their order, so nothing is overwritten before it
    /// is read), then rebuilds the hash slots at the size the remaining calls need.
    fn compact(&mut self, watermark: u32) {
        let mut kept = 0;
        let mut cursor = (0usize, 0usize); // where the next kept key goes: (chunk, offset)
        for read in 0..self.len {
            let mut e = self.entry(read);
            if e.last <= watermark {
                continue;
            }
            let len = e.key_len as usize;
            if cursor.1 + len > ARENA_CHUNK {
                self.arena[cursor.0].truncate(cursor.1);
                cursor = (cursor.0 + 1, 0);
            }
            self.move_key(split(e.key_at), cursor, len);
            e.key_at = (cursor.0 * ARENA_CHUNK + cursor.1) as u32; // wraps only for an empty key
            cursor.1 += len;
            *self.entry_mut(kept) = e;
            kept += 1;
        }
        if kept == 0 {
            self.release();
            return;
        }
        self.arena.truncate(cursor.0 + 1);
        if let Some(c) = self.arena.last_mut() {
            c.truncate(cursor.1);
            c.shrink_to_fit();
        }
        let chunks = kept.div_ceil(ENTRY_CHUNK);
        self.entries.truncate(chunks);
        if let Some(c) = self.entries.last_mut() {
            c.truncate(kept - (chunks - 1) * ENTRY_CHUNK);
            c.shrink_to_fit();
        }
        self.len = kept;
        let mut cap = MIN_SLOTS;
        while kept * 4 > cap * 3 {
            cap *= 2;
        }
        let mut slots = vec![0u64; cap];
        for idx in 0..kept {
            place(&mut slots, self.hash(self.key(idx)), idx);
        }
        self.slots = slots;
    }

    /// Copies a key to a position at or before its own (see [`NewestIndex::compact`]).
    fn move_key(&mut self, from: (usize, usize), to: (usize, usize), len: usize) {
        if from == to || len == 0 {
            return;
        }
        debug_assert!(to < from, "compaction only moves keys down");
        if from.0 == to.0 {
            self.arena[to.0].copy_within(from.1..from.1 + len, to.1);
        } else {
            let (low, high) = self.arena.split_at_mut(from.0);
            let dst = &mut low[to.0];
            if dst.len() < to.1 + len {
                dst.resize(to.1 + len, 0);
            }
            dst[to.1..to.1 + len].copy_from_slice(&high[0][from.1..from.1 + len]);
        }
    }
}

/// Capacity for `extra` more items in `c`: doubling from `first` up to `max`, never less than
/// needed.
fn next_cap<T>(c: &Vec<T>, extra: usize, first: usize, max: usize) -> usize {
    let need = c.len() + extra;
    if need <= c.capacity() {
        c.capacity()
    } else {
        (c.capacity() * 2).max(first).min(max).max(need)
    }
}

/// How many slots pushing one more item onto `v` adds (what `Vec::push` does when full).
fn outer_growth<T>(v: &Vec<T>) -> usize {
    if v.len() < v.capacity() {
        0
    } else {
        (v.capacity() * 2).max(4) - v.capacity()
    }
}

fn split(key_at: u32) -> (usize, usize) {
    let at = key_at as usize;
    (at / ARENA_CHUNK, at % ARENA_CHUNK)
}

fn place(slots: &mut [u64], hash: u32, idx: usize) {
    let mask = slots.len() - 1;
    let mut pos = hash as usize & mask;
    while slots[pos] != 0 {
        pos = (pos + 1) & mask;
    }
    slots[pos] = (u64::from(hash) << 32) | (idx as u64 + 1);
}

/// One [`NewestIndex`] per partition of a backlog pass (Kafka puts every snapshot of a call on
/// the same partition, since the key is the call id).
#[derive(Debug, Default)]
pub struct BacklogIndex {
    partitions: BTreeMap<i32, NewestIndex>,
    memory_limit_per_partition: Option<usize>,
}

impl BacklogIndex {
    /// Empty, without memory limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty; each partition's index is created with [`NewestIndex::with_memory_limit`].
    pub fn with_memory_limit_per_partition(bytes: usize) -> Self {
        Self {
            partitions: BTreeMap::new(),
            memory_limit_per_partition: Some(bytes),
        }
    }

    /// [`NewestIndex::observe`] on `partition`'s index, created on first use.
    pub fn observe(
        &mut self,
        partition: i32,
        call_id: &[u8],
        snapshot_at: i64,
        offset: i64,
    ) -> Result<(), ObserveError> {
        let limit = self.memory_limit_per_partition;
        self.partitions
            .entry(partition)
            .or_insert_with(|| limit.map_or_else(NewestIndex::new, NewestIndex::with_memory_limit))
            .observe(call_id, snapshot_at, offset)
    }

    /// [`NewestIndex::verdict`]; `Unknown` for a partition never observed.
    pub fn verdict(
        &self,
        partition: i32,
        call_id: &[u8],
        snapshot_at: i64,
        offset: i64,
    ) -> Verdict {
        self.partitions
            .get(&partition)
            .map_or(Verdict::Unknown, |p| {
                p.verdict(call_id, snapshot_at, offset)
            })
    }

    /// [`NewestIndex::forget_through`] on `partition`.
    pub fn forget_through(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.forget_through(offset);
        }
    }

    /// Drops a partition's index (revoked in a rebalance; its records are then `Unknown`).
    pub fn remove(&mut self, partition: i32) -> Option<NewestIndex> {
        self.partitions.remove(&partition)
    }

    /// One partition's index.
    pub fn partition(&self, partition: i32) -> Option<&NewestIndex> {
        self.partitions.get(&partition)
    }

    /// Distinct calls over every partition.
    pub fn len(&self) -> usize {
        self.partitions.values().map(NewestIndex::len).sum()
    }

    /// Whether no call is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes over every partition (not counting the map itself).
    pub fn memory_bytes(&self) -> usize {
        self.partitions
            .values()
            .map(NewestIndex::memory_bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};

    /// Every key hashes to 0: every lookup probes every call.
    #[derive(Default)]
    struct Collide;
    impl Hasher for Collide {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, _: &[u8]) {}
    }

    /// A backlog of (call, snapshot_at, offset) records.
    struct Backlog(Vec<(&'static str, i64, i64)>);

    impl Backlog {
        fn index(&self) -> NewestIndex {
            let mut index = NewestIndex::new();
            for &(call, snapshot_at, offset) in &self.0 {
                index.observe(call.as_bytes(), snapshot_at, offset).unwrap();
            }
            index
        }

        /// The verdict for the record at `offset`, as the second pass asks it.
        fn verdict(&self, index: &NewestIndex, offset: i64) -> Verdict {
            let &(call, snapshot_at, _) = self.0.iter().find(|r| r.2 == offset).unwrap();
            index.verdict(call.as_bytes(), snapshot_at, offset)
        }
    }

    fn superseded(by_offset: i64) -> Verdict {
        Verdict::Superseded { by_offset }
    }

    #[test]
    fn the_newest_snapshot_is_submitted_and_older_ones_name_it() {
        let backlog = Backlog(vec![
            ("A", 10, 100),
            ("B", 10, 101),
            ("A", 20, 102),
            ("A", 30, 103),
        ]);
        let index = backlog.index();
        assert_eq!(backlog.verdict(&index, 100), superseded(103));
        assert_eq!(backlog.verdict(&index, 101), Verdict::Submit);
        assert_eq!(backlog.verdict(&index, 102), superseded(103));
        assert_eq!(backlog.verdict(&index, 103), Verdict::Submit);
        assert_eq!(index.len(), 2);
        assert_eq!(index.range(), Some((100, 103)));
    }

    #[test]
    fn the_newest_by_snapshot_time_wins_even_when_an_older_snapshot_comes_later_in_the_log() {
        let backlog = Backlog(vec![("A", 30, 5), ("A", 10, 6), ("A", 20, 9)]);
        let index = backlog.index();
        assert_eq!(backlog.verdict(&index, 5), Verdict::Submit);
        assert_eq!(backlog.verdict(&index, 6), superseded(5));
        assert_eq!(backlog.verdict(&index, 9), superseded(5));
    }

    #[test]
    fn on_equal_snapshot_times_the_higher_offset_wins() {
        let backlog = Backlog(vec![("A", 10, 1), ("A", 10, 2), ("A", 5, 3)]);
        let index = backlog.index();
        assert_eq!(backlog.verdict(&index, 1), superseded(2));
        assert_eq!(backlog.verdict(&index, 2), Verdict::Submit);
        assert_eq!(backlog.verdict(&index, 3), superseded(2));
    }

    #[test]
    fn records_outside_the_indexed_range_or_of_unindexed_calls_are_unknown() {
        let index = Backlog(vec![("A", 10, 100), ("A", 20, 101), ("B", 5, 105)]).index();
        // Arrived after the first pass, even if older.
        assert_eq!(index.verdict(b"A", 1, 106), Verdict::Unknown);
        assert_eq!(index.verdict(b"C", 1, 106), Verdict::Unknown);
        // Before it.
        assert_eq!(index.verdict(b"A", 1, 99), Verdict::Unknown);
        // In range, but a call never observed.
        assert_eq!(index.verdict(b"C", 1, 103), Verdict::Unknown);
        // In range, but past the last offset observed for that call.
        assert_eq!(index.verdict(b"A", 1, 104), Verdict::Unknown);
        assert_eq!(NewestIndex::new().verdict(b"A", 1, 0), Verdict::Unknown);
    }

    #[test]
    fn a_record_the_first_pass_missed_is_superseded_only_by_a_newer_snapshot() {
        // The first pass saw offsets 10 and 14 of call A, not 12.
        let index = Backlog(vec![("A", 10, 10), ("B", 1, 11), ("A", 20, 14)]).index();
        // Older than the newest held (20 @ 14): superseded by it, which is submitted.
        assert_eq!(index.verdict(b"A", 15, 12), superseded(14));
        // Newer than anything held: the index cannot vouch, the record is handled normally.
        assert_eq!(index.verdict(b"A", 25, 12), Verdict::Unknown);
        // Same snapshot time at a lower offset than the newest: the newest wins the tie.
        assert_eq!(index.verdict(b"A", 20, 12), superseded(14));
        // Same snapshot time as the newest held but a higher offset: it would win the tie, so
        // the index cannot vouch.
        let index = Backlog(vec![("A", 20, 10), ("B", 1, 11), ("A", 10, 14)]).index();
        assert_eq!(index.verdict(b"A", 20, 12), Verdict::Unknown);
        assert_eq!(index.verdict(b"A", 20, 10), Verdict::Submit);
    }

    #[test]
    fn offsets_that_do_not_increase_are_refused_and_change_nothing() {
        let mut index = Backlog(vec![("A", 10, 100)]).index();
        assert_eq!(
            index.observe(b"A", 99, 100),
            Err(ObserveError::OutOfOrder {
                offset: 100,
                last: 100
            })
        );
        assert_eq!(
            index.observe(b"A", 99, 50),
            Err(ObserveError::OutOfOrder {
                offset: 50,
                last: 100
            })
        );
        assert_eq!(index.verdict(b"A", 10, 100), Verdict::Submit);
    }

    #[test]
    fn a_call_id_too_long_to_index_leaves_that_call_unknown_and_the_rest_indexed() {
        let long = vec![b'x'; MAX_KEY_LEN + 1];
        let mut index = Backlog(vec![("A", 1, 10)]).index();
        assert_eq!(
            index.observe(&long, 5, 11),
            Err(ObserveError::KeyTooLong { len: long.len() })
        );
        index.observe(b"A", 2, 12).unwrap();
        assert_eq!(index.verdict(&long, 5, 11), Verdict::Unknown);
        assert_eq!(index.verdict(b"A", 1, 10), superseded(12));
        assert_eq!(index.verdict(b"A", 2, 12), Verdict::Submit);
        // A key of exactly the limit is kept, and so is an empty one, around a chunk boundary.
        let max = vec![b'y'; MAX_KEY_LEN];
        index.observe(&max, 1, 13).unwrap();
        index.observe(b"", 1, 14).unwrap();
        index.observe(&max, 2, 15).unwrap();
        index.observe(b"", 2, 16).unwrap();
        assert_eq!(index.verdict(&max, 1, 13), superseded(15));
        assert_eq!(index.verdict(b"", 1, 14), superseded(16));
        assert_eq!(index.verdict(&max, 2, 15), Verdict::Submit);
        assert_eq!(index.verdict(b"", 2, 16), Verdict::Submit);
    }

    #[test]
    fn calls_whose_hashes_all_collide_are_still_told_apart_by_their_bytes() {
        let mut index = NewestIndex::with_hasher(BuildHasherDefault::<Collide>::default());
        for offset in 0..2000i64 {
            let call = format!("CAD-{}", offset % 500);
            index.observe(call.as_bytes(), offset, offset).unwrap();
        }
        assert_eq!(index.len(), 500);
        for offset in 0..2000i64 {
            let call = format!("CAD-{}", offset % 500);
            let expected = if offset >= 1500 {
                Verdict::Submit
            } else {
                superseded(1500 + offset % 500)
            };
            assert_eq!(index.verdict(call.as_bytes(), offset, offset), expected);
        }
        assert_eq!(index.verdict(b"CAD-500", 0, 10), Verdict::Unknown);
        // Past the last offset observed for the call.
        assert_eq!(index.verdict(b"CAD-1", 0, 1999), Verdict::Unknown);
    }

    #[test]
    fn an_index_at_its_memory_limit_seals_at_the_last_offset_it_observed() {
        let limit = 64 * 1024;
        let mut index = NewestIndex::with_memory_limit(limit);
        let mut offset = 0;
        let full_at = loop {
            let call = format!("CAD-2026-{offset:011}");
            match index.observe(call.as_bytes(), 1, offset) {
                Ok(()) => offset += 1,
                Err(ObserveError::Full) => break offset,
                Err(e) => panic!("{e}"),
            }
            assert!(index.memory_bytes() <= limit);
        };
        assert!(index.is_full());
        assert_eq!(index.range(), Some((0, full_at - 1)));
        assert!(full_at > 500, "only {full_at} calls in 64 KiB");
        // A known call's newer snapshot after the seal is not observed either.
        let first = b"CAD-2026-00000000000";
        assert_eq!(
            index.observe(first, 2, full_at + 1),
            Err(ObserveError::Full)
        );
        assert_eq!(index.verdict(first, 1, 0), Verdict::Submit);
        assert_eq!(index.verdict(first, 2, full_at + 1), Verdict::Unknown);
    }

    #[test]
    fn forgetting_keeps_every_verdict_still_ahead_of_the_second_pass_and_frees_memory() {
        // 20_000 calls at offsets 0..20_000, then for the even ones an older snapshot at
        // 20_000..30_000: those calls stay needed until the second pass reaches them.
        let mut index = NewestIndex::new();
        for c in 0..20_000i64 {
            index
                .observe(format!("call-{c}").as_bytes(), 100, c)
                .unwrap();
        }
        for c in (0..20_000i64).step_by(2) {
            index
                .observe(format!("call-{c}").as_bytes(), 50, 20_000 + c / 2)
                .unwrap();
        }
        let full = index.memory_bytes();
        for offset in 0..30_000i64 {
            let (c, snapshot_at, expected) = if offset < 20_000 {
                (offset, 100, Verdict::Submit)
            } else {
                let c = (offset - 20_000) * 2;
                (c, 50, superseded(c))
            };
            let call = format!("call-{c}");
            assert_eq!(
                index.verdict(call.as_bytes(), snapshot_at, offset),
                expected,
                "offset {offset}"
            );
            index.forget_through(offset);
            assert_eq!(
                index.verdict(call.as_bytes(), snapshot_at, offset),
                Verdict::Unknown
            );
            // Compactions run at every eighth of the range (3750 offsets); by the one at 22_499
            // the odd calls are done, and so are the even calls below 5000.
            if offset == 22_499 {
                assert_eq!(index.len(), 7_500);
                assert!(
                    index.memory_bytes() < full / 2,
                    "{} of {full}",
                    index.memory_bytes()
                );
            }
        }
        assert_eq!(index.len(), 0);
        assert_eq!(index.memory_bytes(), 0);
    }

    #[test]
    fn many_partitions_keep_their_calls_apart() {
        let mut backlog = BacklogIndex::new();
        for partition in 0..48 {
            for i in 0..100i64 {
                let call = format!("CAD-{}", i % 10);
                backlog
                    .observe(partition, call.as_bytes(), i + i64::from(partition), i)
                    .unwrap();
            }
        }
        assert_eq!(backlog.len(), 48 * 10);
        for partition in 0..48 {
            let p = i64::from(partition);
            assert_eq!(
                backlog.verdict(partition, b"CAD-3", 93 + p, 93),
                Verdict::Submit
            );
            assert_eq!(
                backlog.verdict(partition, b"CAD-3", 3 + p, 3),
                superseded(93)
            );
        }
        assert_eq!(backlog.verdict(48, b"CAD-3", 93, 93), Verdict::Unknown);
        // A small index stays small: 48 partitions of 10 calls in 2 KiB each.
        assert!(
            backlog.memory_bytes() < 48 * 2048,
            "{}",
            backlog.memory_bytes()
        );
        backlog.forget_through(0, 99);
        assert_eq!(backlog.verdict(0, b"CAD-3", 93, 93), Verdict::Unknown);
        assert_eq!(backlog.partition(0).unwrap().len(), 0);
        assert!(backlog.remove(1).is_some());
        assert_eq!(backlog.verdict(1, b"CAD-3", 94, 93), Verdict::Unknown);
        assert_eq!(backlog.len(), 46 * 10);
        let mut limited = BacklogIndex::with_memory_limit_per_partition(1024);
        let full = (0..1000i64).find(|&i| {
            limited
                .observe(7, format!("c{i}").as_bytes(), 1, i)
                .is_err()
        });
        assert!(full.is_some());
        assert!(limited.partition(7).unwrap().is_full());
        assert!(limited.memory_bytes() <= 1024);
    }

    /// Observes `records` (call, snapshot_at, offset gap), then runs a second pass that checks
    /// every verdict against a plain map and forgets every `forget_every` records.
    fn against_model(
        records: &[(u8, i64, i64)],
        key: impl Fn(u8) -> Vec<u8>,
        forget_every: usize,
    ) -> Result<(), TestCaseError> {
        let mut index = NewestIndex::new();
        let mut offset = 1_000i64;
        let mut log = Vec::new();
        let mut newest: HashMap<u8, (i64, i64)> = HashMap::new();
        for &(c, snapshot_at, gap) in records {
            offset += gap;
            index.observe(&key(c), snapshot_at, offset).unwrap();
            log.push((c, snapshot_at, offset));
            let e = newest.entry(c).or_insert((snapshot_at, offset));
            if (snapshot_at, offset) >= *e {
                *e = (snapshot_at, offset);
            }
        }
        prop_assert_eq!(index.len(), newest.len());
        for (i, &(c, snapshot_at, offset)) in log.iter().enumerate() {
            let winner = newest[&c].1;
            let expected = if winner == offset {
                Verdict::Submit
            } else {
                superseded(winner)
            };
            prop_assert_eq!(index.verdict(&key(c), snapshot_at, offset), expected);
            if i % forget_every == 0 {
                index.forget_through(offset);
                prop_assert_eq!(
                    index.verdict(&key(c), snapshot_at, offset),
                    Verdict::Unknown
                );
            }
        }
        prop_assert_eq!(index.verdict(&key(0), 0, offset + 1), Verdict::Unknown);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Many short keys.
        #[test]
        fn verdicts_match_a_plain_model_while_the_second_pass_forgets(
            records in proptest::collection::vec((0u8..40, 0i64..50, 1i64..4), 1..600),
            key_len in 0usize..70,
            forget_every in 1usize..50,
        ) {
            against_model(&records, |c| {
                let mut k = format!("{c}-").into_bytes();
                k.resize(k.len() + key_len + usize::from(c) * 7 % 13, b'k');
                k
            }, forget_every)?;
        }

        /// Keys of up to 30 KiB, so that keys skip to a new 64 KiB chunk and compaction moves
        /// them across chunks.
        #[test]
        fn verdicts_match_a_plain_model_with_keys_that_fill_chunks(
            records in proptest::collection::vec((0u8..24, 0i64..20, 1i64..3), 1..120),
            lengths in proptest::collection::vec(0usize..30_000, 24),
            forget_every in 1usize..20,
        ) {
            against_model(&records, |c| {
                let mut k = vec![c; lengths[usize::from(c)]];
                k.push(c);
                k
            }, forget_every)?;
        }
    }
}
