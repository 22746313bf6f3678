//! Transform: decode each record as `cad.call.v1`, map it to its ADS call Bundle, serialize it.
//!
//! Input: [`Envelope`]s in consume order. Output: a [`MappedCall`] to the batcher for every
//! record that decodes and maps, or a [`DeadLetter`] (stage `decode` or `mapping`, kind from the
//! error's bounded enum, message with the JSON path and rule but never a patient value) for every
//! record that does not, including one whose handling panicked (kind `internal_error`).
//! Exactly one of the two per input record, in input order; nothing is dropped. No failure
//! stops this stage: it ends when its input closes, dropping both senders.
//!
//! Parallelism: the work (79 % of the connector's CPU) runs on [`Transform::workers`] threads,
//! one per core by default ([`default_workers`]). The stage hands out *chunks* of the records
//! already waiting (at most [`CHUNK_RECORDS`], never waiting to fill one) to the workers in
//! turn, and takes their results back in the same turn, so the output is in input order (hence
//! in partition order, which the window coalescer and the submitter's per-call fence rely on)
//! without sequence numbers: worker `i` has chunks `i`, `i + n`, `i + 2n`… and works through
//! them in order. A panic in a record's handling is caught around that record alone
//! ([`transform`]); a worker that dies anyway (a bug outside that guard) ends the stage with its
//! panic, as the single task did, rather than losing records silently.
//!
//! Memory: each worker has one chunk queued, one in hand and one finished waiting to be taken,
//! and the stage one more on its way in and one on its way out, so at most
//! `(3 × workers + 2) × CHUNK_RECORDS` records are inside this stage (512 on 2 cores, 896 on 4:
//! under 8 MB at about 8 kB for a record and its Bundle), besides the bounded channels around it.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::batcher::MappedCall;
use crate::cad;
use crate::dead_letter::{problems_json, DeadLetter, ErrorStage};
use crate::mapping::{self, MappingOptions};
use crate::metrics::{DeadLetterKind, Metrics};
use crate::source::Envelope;

/// What became of one record.
#[derive(Debug)]
pub enum Transformed {
    /// Ready for the batcher.
    Mapped(MappedCall),
    /// Bound for the dead-letter topic.
    Invalid(DeadLetter),
}

/// Decodes and maps one record. A panic while doing so (a bug that this record triggers) costs
/// this record, not the pipeline: it is dead-lettered with kind `internal_error` and the
/// panic's message (our panics name invariants, never input values).
pub fn transform(envelope: Envelope, options: &MappingOptions) -> Transformed {
    if let Some(o) = &envelope.oversize {
        let message = format!(
            "the record is {} bytes, above kafka.max_record_bytes; its value is not in this dead letter (ads-record-sha256 identifies it)",
            o.bytes
        );
        return Transformed::Invalid(DeadLetter {
            envelope,
            stage: ErrorStage::Decode,
            kind: DeadLetterKind::RecordTooLarge,
            message,
            problems: None,
            process: None,
        });
    }
    guarded(envelope, |payload| work(payload, options))
}

/// Runs `work` on the record's value, turning a panic into an `internal_error` dead letter.
fn guarded(
    envelope: Envelope,
    work: impl FnOnce(Option<&[u8]>) -> Result<Work, Refusal>,
) -> Transformed {
    let payload = envelope.payload.as_deref();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(payload)));
    let (stage, kind, message, problems) = match outcome {
        Ok(Ok(w)) => {
            return Transformed::Mapped(MappedCall {
                envelope,
                call_key: w.call_key,
                call_id: w.call_id,
                provider_ods: w.provider_ods,
                bundle_id: w.bundle_id,
                snapshot_at: w.snapshot_at,
                bytes: w.bytes,
                missing_at_close: w.missing_at_close,
            })
        }
        Ok(Err(refusal)) => refusal,
        Err(panic) => (
            ErrorStage::Mapping,
            DeadLetterKind::InternalError,
            format!(
                "the connector failed on this record (a bug; the record may be valid): {}",
                crate::telemetry::panic_message(panic)
            ),
            None,
        ),
    };
    Transformed::Invalid(DeadLetter {
        envelope,
        stage,
        kind,
        message,
        problems,
        process: None,
    })
}

/// What a record that maps becomes, without its envelope.
struct Work {
    call_key: cad::Text,
    call_id: cad::Text,
    provider_ods: cad::Text,
    bundle_id: uuid::Uuid,
    snapshot_at: chrono::DateTime<chrono::Utc>,
    bytes: Vec<u8>,
    missing_at_close: Vec<mapping::AdsItem>,
}

/// Why a record is refused: stage, kind, message, problems (JSON).
type Refusal = (ErrorStage, DeadLetterKind, String, Option<String>);

fn work(payload: Option<&[u8]>, options: &MappingOptions) -> Result<Work, Refusal> {
    let call = match payload.map(cad::decode) {
        Some(Ok(call)) => call,
        Some(Err(e)) => {
            return Err((
                ErrorStage::Decode,
                DeadLetterKind::Decode(e.kind()),
                e.to_string(),
                problems_json(&e.problems()),
            ))
        }
        None => {
            return Err((
                ErrorStage::Decode,
                DeadLetterKind::EmptyValue,
                "the record has no value (tombstone)".to_string(),
                None,
            ))
        }
    };
    let bundle = mapping::encode_validated(&call, options).map_err(|e| {
        (
            ErrorStage::Mapping,
            DeadLetterKind::Mapping(e.kind()),
            e.to_string(),
            problems_json(&e.problems()),
        )
    })?;
    Ok(Work {
        call_key: bundle.call_key,
        call_id: call.call_id,
        provider_ods: call.provider_ods,
        bundle_id: bundle.bundle_id,
        snapshot_at: bundle.snapshot_at,
        bytes: bundle.bytes,
        missing_at_close: bundle.missing_at_close,
    })
}

/// Most records handed to a worker at once. A chunk takes the records already waiting, so a
/// trickle goes through one record at a time; under load one hand-over (a thread wake-up) is
/// shared by up to this many records (about 3 ms of work on one core). It was 16: 64 measured
/// 13,659 against 12,509 records/s and 0.0646 against 0.0709 CPU s per 1k records end to end
/// (medians of 3 rounds of 100k side by side, `benches/end_to_end.rs`).
pub const CHUNK_RECORDS: usize = 64;

/// One transform worker per core the process may use (`std::thread::available_parallelism`:
/// the CPU quota of a container's cgroup when it has one).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The transform stage; see the module header.
pub struct Transform {
    /// How calls are mapped.
    pub options: MappingOptions,
    /// Metrics.
    pub metrics: Metrics,
    /// Threads doing the work (at least one); [`default_workers`] in the pipeline.
    pub workers: usize,
}

/// Where the transform stage sends its records.
pub struct TransformOutput {
    /// Mapped calls, to the batcher.
    pub mapped: mpsc::Sender<MappedCall>,
    /// Invalid records, to the dead-letter stage.
    pub dead_letters: mpsc::Sender<DeadLetter>,
}

impl Transform {
    /// Runs the stage until its input closes; see the module header.
    pub async fn run(self, input: mpsc::Receiver<Envelope>, output: TransformOutput) {
        let options = Arc::new(self.options);
        let work = move |envelope| transform(envelope, &options);
        in_order(self.workers, work, self.metrics, input, output).await;
    }
}

/// Runs `work` on every input record on `workers` threads and sends the results in input order;
/// see the module header.
async fn in_order(
    workers: usize,
    work: impl Fn(Envelope) -> Transformed + Send + Sync + 'static,
    metrics: Metrics,
    mut input: mpsc::Receiver<Envelope>,
    output: TransformOutput,
) {
    let work = Arc::new(work);
    let workers = workers.max(1);
    let mut to_workers = Vec::with_capacity(workers);
    let mut from_workers = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for _ in 0..workers {
        // Capacity one each way: a worker never idles while the stage keeps up, and the records
        // inside the stage stay within the bound of the module header.
        let (chunk_tx, mut chunk_rx) = mpsc::channel::<Vec<Envelope>>(1);
        let (done_tx, done_rx) = mpsc::channel::<Vec<Transformed>>(1);
        let work = work.clone();
        // The thread ends when its input closes (the input ended, or the stage is gone) or when
        // nobody takes its results any more.
        threads.push(tokio::task::spawn_blocking(move || {
            while let Some(chunk) = chunk_rx.blocking_recv() {
                let done = chunk.into_iter().map(|envelope| work(envelope)).collect();
                if done_tx.blocking_send(done).is_err() {
                    return;
                }
            }
        }));
        to_workers.push(chunk_tx);
        from_workers.push(done_rx);
    }

    // Hands the records already waiting to the workers in turn. Returning drops every worker's
    // sender, which ends the workers once their chunks are done.
    let hand_out = async move {
        let mut turn = 0;
        while let Some(first) = input.recv().await {
            let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
            chunk.push(first);
            while chunk.len() < CHUNK_RECORDS {
                match input.try_recv() {
                    Ok(envelope) => chunk.push(envelope),
                    Err(_) => break,
                }
            }
            if to_workers[turn].send(chunk).await.is_err() {
                return; // that worker is gone: the stage is ending
            }
            turn = (turn + 1) % workers;
        }
    };

    // Takes the results back in the same turn. A worker that ends with nothing more is the end of
    // the input, since every later chunk would have been its turn or after it.
    let take_back = async move {
        let mut turn = 0;
        while let Some(done) = from_workers[turn].recv().await {
            for transformed in done {
                let sent = match transformed {
                    Transformed::Mapped(call) => output.mapped.send(call).await.is_ok(),
                    Transformed::Invalid(letter) => {
                        metrics.record_invalid(letter.kind);
                        output.dead_letters.send(letter).await.is_ok()
                    }
                };
                if !sent {
                    return; // the output closed: the pipeline is stopping
                }
            }
            turn = (turn + 1) % workers;
        }
    };

    {
        tokio::pin!(hand_out, take_back);
        let mut handing_out = true;
        loop {
            tokio::select! {
                () = &mut hand_out, if handing_out => handing_out = false,
                () = &mut take_back => break,
            }
        }
        // Dropping both ends here (the senders to the workers and the receivers of their
        // results) ends every worker, whatever it was waiting for.
    }
    for thread in threads {
        if let Err(error) = thread.await {
            if error.is_panic() {
                // A bug outside the per-record guard: the stage fails as the task would have.
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::offsets::RecordPos;

    fn envelope(payload: &[u8]) -> Envelope {
        envelope_at(0, 7, payload)
    }

    fn envelope_at(partition: i32, offset: i64, payload: &[u8]) -> Envelope {
        Envelope {
            pos: RecordPos {
                topic: Arc::from("cad"),
                partition,
                offset,
                generation: 1,
            },
            key: Some(b"call".to_vec()),
            payload: Some(payload.to_vec()),
            headers: Vec::new(),
            timestamp_ms: None,
            traceparent: None,
            oversize: None,
        }
    }

    #[test]
    fn a_panic_while_handling_a_record_dead_letters_that_record_as_internal_error() {
        let out = guarded(envelope(b"{}"), |_| {
            panic!("index out of bounds: the len is 0")
        });
        let Transformed::Invalid(letter) = out else {
            panic!("a panicking record must be dead-lettered");
        };
        assert_eq!(letter.kind, DeadLetterKind::InternalError);
        assert_eq!(letter.kind.as_str(), "internal_error");
        assert!(
            letter.message.contains("index out of bounds"),
            "{}",
            letter.message
        );
        assert_eq!(letter.envelope.pos.offset, 7);
        assert_eq!(letter.envelope.payload.as_deref(), Some(b"{}".as_slice()));
    }

    #[test]
    fn a_record_that_does_not_panic_goes_through_unchanged() {
        let out = transform(envelope(b"not json"), &MappingOptions::default());
        let Transformed::Invalid(letter) = out else {
            panic!("invalid JSON is dead-lettered");
        };
        assert_eq!(letter.kind.as_str(), "invalid_json");
    }

    /// Stands in for decode and map: `panic` panics, `invalid` is refused, anything else maps;
    /// a value ending in `0` takes longer, so workers finish out of turn.
    fn stand_in(envelope: Envelope) -> Transformed {
        guarded(envelope, |payload| {
            let payload = payload.expect("the tests send values");
            match payload {
                b"panic" => panic!("a bug this record triggers"),
                b"invalid" => Err((
                    ErrorStage::Decode,
                    DeadLetterKind::EmptyValue,
                    "refused".to_string(),
                    None,
                )),
                _ => {
                    if payload.ends_with(b"0") {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let key = String::from_utf8_lossy(payload).into_owned();
                    Ok(Work {
                        call_key: key.clone().into(),
                        call_id: key.into(),
                        provider_ods: "RX9".into(),
                        bundle_id: uuid::Uuid::nil(),
                        snapshot_at: chrono::Utc::now(),
                        bytes: payload.to_vec(),
                        missing_at_close: Vec::new(),
                    })
                }
            }
        })
    }

    /// Records of three partitions, interleaved as a consumer hands them over: (partition, offset,
    /// value).
    fn interleaved(records: i64, value: impl Fn(i32, i64) -> String) -> Vec<(i32, i64, String)> {
        (0..records)
            .map(|i| {
                let (partition, offset) = ((i % 3) as i32, i / 3);
                (partition, offset, value(partition, offset))
            })
            .collect()
    }

    /// Runs the stage with `workers` on `records`; returns the mapped calls and the dead letters,
    /// each in the order the stage sent them.
    async fn run_stage(
        workers: usize,
        records: &[(i32, i64, String)],
    ) -> (Vec<MappedCall>, Vec<DeadLetter>) {
        let (input_tx, input) = mpsc::channel(8);
        let (mapped, mut mapped_rx) = mpsc::channel(8);
        let (dead_letters, mut dead_rx) = mpsc::channel(8);
        let stage = tokio::spawn(in_order(
            workers,
            stand_in,
            Metrics::new(),
            input,
            TransformOutput {
                mapped,
                dead_letters,
            },
        ));
        let to_send: Vec<Envelope> = records
            .iter()
            .map(|(p, o, v)| envelope_at(*p, *o, v.as_bytes()))
            .collect();
        let feed = tokio::spawn(async move {
            for envelope in to_send {
                input_tx
                    .send(envelope)
                    .await
                    .expect("the stage takes input");
            }
        });
        let take_mapped = tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some(call) = mapped_rx.recv().await {
                out.push(call);
            }
            out
        });
        let mut letters = Vec::new();
        while let Some(letter) = dead_rx.recv().await {
            letters.push(letter);
        }
        feed.await.expect("feeding");
        stage.await.expect("the stage ends without panicking");
        (take_mapped.await.expect("taking"), letters)
    }

    fn positions<'a>(envelopes: impl Iterator<Item = &'a Envelope>) -> Vec<(i32, i64)> {
        envelopes.map(|e| (e.pos.partition, e.pos.offset)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_workers_hand_on_every_record_in_input_order_so_each_partition_keeps_its_order()
    {
        let records = interleaved(3000, |p, o| {
            if o % 11 == 5 {
                "invalid".to_string()
            } else {
                format!("call-{p}-{o}")
            }
        });
        for workers in [1, 2, 4, 7] {
            let (mapped, letters) = run_stage(workers, &records).await;
            let expected = |invalid: bool| -> Vec<(i32, i64)> {
                records
                    .iter()
                    .filter(|(_, _, v)| (v == "invalid") == invalid)
                    .map(|(p, o, _)| (*p, *o))
                    .collect()
            };
            assert_eq!(
                positions(mapped.iter().map(|c| &c.envelope)),
                expected(false),
                "{workers} workers: mapped calls in input order"
            );
            assert_eq!(
                positions(letters.iter().map(|l| &l.envelope)),
                expected(true),
                "{workers} workers: dead letters in input order"
            );
            for call in &mapped {
                let (p, o) = (call.envelope.pos.partition, call.envelope.pos.offset);
                assert_eq!(
                    call.call_key,
                    format!("call-{p}-{o}"),
                    "each result is its own record's"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_with_several_workers_dead_letters_that_record_alone_and_the_rest_go_on_in_order(
    ) {
        let records = interleaved(600, |p, o| {
            if (p, o) == (1, 40) || (p, o) == (2, 150) {
                "panic".to_string()
            } else {
                format!("call-{p}-{o}")
            }
        });
        let (mapped, letters) = run_stage(4, &records).await;
        assert_eq!(
            positions(letters.iter().map(|l| &l.envelope)),
            vec![(1, 40), (2, 150)],
            "each panicking record, and only it, is dead-lettered"
        );
        for letter in &letters {
            assert_eq!(letter.kind, DeadLetterKind::InternalError);
            assert!(
                letter.message.contains("a bug this record triggers"),
                "{}",
                letter.message
            );
            assert_eq!(
                letter.envelope.payload.as_deref(),
                Some(b"panic".as_slice())
            );
        }
        let expected: Vec<(i32, i64)> = records
            .iter()
            .filter(|(_, _, v)| v != "panic")
            .map(|(p, o, _)| (*p, *o))
            .collect();
        assert_eq!(positions(mapped.iter().map(|c| &c.envelope)), expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_dying_outside_the_per_record_guard_fails_the_stage_instead_of_losing_records()
    {
        let (input_tx, input) = mpsc::channel(8);
        let (mapped, _mapped_rx) = mpsc::channel(8);
        let (dead_letters, _dead_rx) = mpsc::channel(8);
        let unguarded = |envelope: Envelope| -> Transformed {
            if envelope.pos.offset == 3 {
                panic!("a bug outside the guard");
            }
            stand_in(envelope)
        };
        let stage = tokio::spawn(in_order(
            2,
            unguarded,
            Metrics::new(),
            input,
            TransformOutput {
                mapped,
                dead_letters,
            },
        ));
        for offset in 0..6 {
            if input_tx
                .send(envelope_at(0, offset, format!("call-{offset}").as_bytes()))
                .await
                .is_err()
            {
                break;
            }
        }
        drop(input_tx);
        let ended = stage.await.expect_err("the stage fails");
        assert!(ended.is_panic());
        assert_eq!(
            crate::telemetry::panic_message(ended.into_panic()),
            "a bug outside the guard"
        );
    }
}
