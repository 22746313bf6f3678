//! Gaps in a partition's fetched offsets: offsets that hold nothing readable, told apart from
//! records a broker skipped.
//!
//! Input: a gap the offset tracker found (`Continuity::Gap`: offsets `from..to` never seen, the
//! record at `to` in hand). Output: [`Probed::Empty`] when no readable record lies in the gap
//! (legitimate: transaction markers, aborted transactions under `read_committed`, compaction,
//! retention), or [`Probed::Skipped`] with the first readable offset in the gap and where the
//! source's consumer must seek to read it again.
//!
//! How: a reader of its own (the source's settings, so the same isolation level; it joins no
//! group, stores and commits nothing) reads the partition from just before the gap. A broker can
//! itself skip when a fetch starts inside a producer batch (Tansu 0.6 goes on at the next batch),
//! so a read counts only once it *covers* the gap's start: its first record is at or below
//! `from`, or it started at the partition's first offset. Until then it starts again twice as
//! far back (1, 2, 4, … offsets). Once covering, the first record at or after `from` is the
//! answer. The source seeks its consumer to the same covering start, and skips the records below
//! the answer as seen. Cost: a legitimate gap (one transaction marker) costs a read of a few
//! records; a Tansu skip re-reads at most about two producer batches.
//!
//! Failures: a reader that cannot be created or fetch the watermarks, or no record within
//! [`READ_LIMIT`], is a [`KafkaError`]; the source tries again and then stops (fatal: nothing
//! past the gap is committed).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Longest wait for the first record of one read.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// What a gap holds; see the module header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probed {
    /// No readable record in the gap: the record that revealed it comes next.
    Empty,
    /// Readable records in the gap that the consumer never got, the first at `next`.
    Skipped {
        /// The first readable offset at or after the gap's start.
        next: i64,
        /// Where a fetch covers the gap's start (at or below it, or the partition's first
        /// offset when retention removed the gap's start).
        seek_to: i64,
    },
}

/// Reads gaps; see the module header.
#[derive(Clone)]
pub struct GapProbe {
    /// The source consumer's settings.
    config: ClientConfig,
}

impl GapProbe {
    /// A probe with the source consumer's settings (`crate::kafka::KafkaClients::source_consumer`).
    pub fn new(source_consumer: ClientConfig) -> Self {
        let mut config = source_consumer;
        // Reads by `assign`: joins no group, stores and commits nothing.
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        Self { config }
    }

    /// What `topic`/`partition` holds in `from..to`. Blocks: run it on a blocking thread.
    pub fn probe(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Result<Probed, KafkaError> {
        let reader: BaseConsumer = self.config.create()?;
        let (low, _) = reader.fetch_watermarks(topic, partition, READ_LIMIT)?;
        let mut back = 1;
        loop {
            let start = (from - back).max(low);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
            reader.assign(&tpl)?;
            match first_at_or_after(&reader, from, start > low)? {
                Some(next) if next >= to => return Ok(Probed::Empty),
                Some(next) => {
                    return Ok(Probed::Skipped {
                        next,
                        seek_to: start,
                    })
                }
                // Not covering: the broker started this read past `from`.
                None => back *= 2,
            }
        }
    }
}

/// Reads until the first record at or after `from`; `None` if the first record read is above
/// `from` and `must_cover` (the read did not start at the partition's first offset).
fn first_at_or_after(
    reader: &BaseConsumer,
    from: i64,
    must_cover: bool,
) -> Result<Option<i64>, KafkaError> {
    let deadline = Instant::now() + READ_LIMIT;
    let mut first = true;
    loop {
        let message = match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => m,
            // librdkafka retries transient fetch errors by itself.
            Some(Err(_)) | None if Instant::now() < deadline => continue,
            Some(Err(error)) => return Err(error),
            None => {
                return Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::OperationTimedOut,
                ))
            }
        };
        let offset = message.offset();
        if first && offset > from && must_cover {
            return Ok(None);
        }
        first = false;
        if offset >= from {
            return Ok(Some(offset));
        }
    }
}
