//! App: wires the stages into the pipeline and runs it until shutdown.
//!
//! Stages are tasks joined by bounded channels, so a slow API fills the channels and pauses the
//! consumer instead of growing memory. Memory in the pipeline, by design: [`CHANNEL_RECORDS`]
//! records (each at most `kafka.max_record_bytes`, larger ones dropped to a reference at the
//! source) before the transform, [`CHANNEL_MAPPED`] mapped calls after it, [`CHANNEL_BATCHES`]
//! waiting submissions plus those in flight (at most `nhs_api.request.max_in_flight`, each at
//! most `batch.max_bytes`), and accepted submissions on their way to the acker without their
//! bodies or record values (released once accepted). Only the source watches the cancellation token; every
//! later stage ends when its input closes, flushing what it holds on the way out. After the
//! drain, the offsets stored so far (records with an ack or a dead letter) are committed
//! synchronously. `shutdown.drain_timeout_s` is one deadline, from the signal, for the drain and
//! every partition revocation meanwhile, the one when the consumer leaves the group included
//! (measured by `tests/shutdown.rs`). In transactional mode (`kafka.transactional_id`)
//! there is no such commit: offsets are committed only inside the transactions of the acker and
//! the dead-letter stage, and a transaction a cut-off stage left open is aborted. A stage that
//! fails fatally (the producer cannot deliver, a transaction fails) cancels the pipeline; the
//! process then exits non-zero without committing past it. At start-up the ack and dead-letter
//! topics must exist (the broker's metadata is asked; one still missing after
//! `topic.metadata.propagation.max.ms` stops the start, naming it); while running, an output
//! topic that disappears is such a fatal failure ([`crate::kafka::OutputTopics`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::acker::{AckInputs, AckPublisher};
use crate::auth::TokenProvider;
use crate::batcher::Batcher;
use crate::config::Config;
use crate::dead_letter::DeadLetterProducer;
use crate::health::{self, ApiHealth, Health};
use crate::kafka::{KafkaClientError, KafkaClients, OutputTopics, ProduceError};
use crate::metrics::{Metrics, Outcome, ScheduleLabel, Task};
use crate::offsets::Offsets;
use crate::rate_limit::RateLimiter;
use crate::schedule::{Clock, SystemClock};
use crate::source::{self, CadConsumer, Source, SourceError};
use crate::submitter::{Submitter, SubmitterError, SubmitterOutput};
use crate::telemetry;
use crate::transactions::{DurableWriter, Transactions};
use crate::transform::{self, Transform, TransformOutput};
use crate::window::{self, Coalescer, CoalescerOutput, Indexes, Scanner, WindowPass};

/// Records buffered between two stages: enough to keep the API busy, small enough that a stalled
/// API pauses consumption within a few thousand records.
const CHANNEL_RECORDS: usize = 1024;

/// Mapped calls buffered after the transform (and after the window coalescer): each holds its
/// serialized Bundle (about 15 kB for a generated call, 4× its record), so fewer than records.
/// The transform's workers keep up to (3N+2) × [`transform::CHUNK_RECORDS`] more inside the stage.
const CHANNEL_MAPPED: usize = 256;

/// Submissions waiting for the submitter beyond the one it holds: the submitter takes the next
/// as soon as a request may start, so more would only hold bodies (up to
/// `batch.max_bytes` each) in memory. It was `max_in_flight` (64): 64 × 1.5 MB of waiting
/// bodies at the generated calls' size.
const CHANNEL_BATCHES: usize = 2;

/// How long the start-up security check waits for a broker to answer before starting anyway
/// (`KafkaClients::check_security`).
const SECURITY_CHECK_WAIT: Duration = Duration::from_secs(10);

/// Why the pipeline could not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The consumer could not start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A Kafka client could not be configured (a secret file), or the brokers refused its
    /// credentials or TLS at start-up.
    #[error(transparent)]
    KafkaClient(#[from] KafkaClientError),
    /// Transactional mode is configured but the broker did not complete a probe transaction.
    #[error(
        "kafka.transactional_id is set but the broker did not complete a probe transaction ({0}); \
         transactional mode needs a broker with transactions (Tansu 0.6 has none): leave \
         kafka.transactional_id out, or use such a broker"
    )]
    TransactionsUnsupported(KafkaError),
    /// The producer could not be created.
    #[error("cannot create the Kafka producer: {0}")]
    Producer(KafkaError),
    /// Acks or dead letters could not be delivered.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// The operations port could not be bound.
    #[error("cannot serve http.listen: {0}")]
    Listen(std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    /// A task panicked (a bug).
    #[error("the pipeline task `{task}` panicked: {message}")]
    Panic {
        /// Which task.
        task: Task,
        /// The panic's message.
        message: String,
    },
    /// The submitter failed (a submission task panicked).
    #[error(transparent)]
    Submitter(#[from] SubmitterError),
    /// The MESH poller could not start (`[mesh]`: a secret file or a PEM).
    #[error(transparent)]
    Mesh(#[from] crate::mesh::MeshStartError),
}

/// A running pipeline.
pub struct Pipeline {
    stages: Stages,
    /// `None` once [`Self::finish`] has closed it.
    consumer: Option<Arc<CadConsumer>>,
    transactions: Option<Transactions>,
    cancel: CancellationToken,
    background: CancellationToken,
    drain_timeout: Duration,
    metrics: Metrics,
    health: Health,
    /// Where `/metrics`, `/livez`, `/readyz` are served.
    pub health_addr: SocketAddr,
}

impl Pipeline {
    /// Starts every stage; `cancel` starts the drain.
    pub async fn start(
        config: Config,
        metrics: Metrics,
        cancel: CancellationToken,
    ) -> Result<Self, AppError> {
        Self::start_with_clock(config, metrics, cancel, Arc::new(SystemClock)).await
    }

    /// [`Self::start`], with the submission window timed by `clock` (tests and the demo move a
    /// [`crate::schedule::ManualClock`] instead of waiting for 03:00).
    pub async fn start_with_clock(
        config: Config,
        metrics: Metrics,
        cancel: CancellationToken,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        let background = CancellationToken::new();

        // Shared services: one HTTP client (redirects never followed), one token, one rate
        // limiter, one offset tracker, one verdict on the API's configuration.
        let client = crate::submitter::http_client(config.api.timeout).map_err(AppError::Client)?;
        let tokens = Arc::new(
            TokenProvider::new(&config.api.auth, client.clone(), metrics.clone())
                .with_pacing(config.pacing),
        );
        // Window mode: no token request until the window pass opens the first window.
        tokens.set_active(config.schedule.window().is_none());
        let limiter = Arc::new(
            RateLimiter::new(config.rate_limit, metrics.clone())
                .with_max_retry_after(config.pacing.max_retry_after),
        );
        // Window mode: no request until the window pass opens the first window.
        limiter.set_open(config.schedule.window().is_none());
        let offsets = Offsets::new();
        let api = ApiHealth::new(&config.api.submit_url, metrics.clone());

        // Operations port and the liveness heartbeat.
        let health = Health {
            metrics: metrics.clone(),
            offsets: offsets.clone(),
            tokens: tokens.clone(),
            heartbeat: Arc::new(AtomicI64::new(chrono::Utc::now().timestamp())),
            api: api.clone(),
        };
        let health_addr = health::serve(config.http_listen, health.clone(), background.clone())
            .await
            .map_err(AppError::Listen)?;
        tokio::spawn(heartbeat(health.clone(), background.clone()));
        tokio::spawn(tokens.clone().run_refresher(background.clone()));

        // Kafka: the consumer group and the producer of acks and dead letters.
        let kafka = KafkaClients::new(&config.kafka)?;
        // Refused SASL credentials or TLS are a fault of the configuration: stop here, before
        // anything is consumed, rather than let librdkafka retry them for ever.
        let probe = kafka.clone();
        tokio::task::spawn_blocking(move || probe.check_security(SECURITY_CHECK_WAIT))
            .await
            .map_err(|e| AppError::Panic {
                task: Task::Source,
                message: e.to_string(),
            })??;
        // The output topics must exist: the producer never creates them, and a write to a
        // topic that does not exist may be acknowledged and dropped (Tansu 0.6). Refused
        // here, before anything is consumed, naming the topic, once one the metadata does not
        // list has had `topic.metadata.propagation.max.ms` to appear (librdkafka's own wait
        // before it marks a topic non-existent).
        let outputs = vec![
            ("kafka.ack_topic", config.kafka.ack_topic.clone()),
            (
                "kafka.dead_letter_topic",
                config.kafka.dead_letter_topic.clone(),
            ),
        ];
        let topics = OutputTopics::new(kafka.source_consumer(&config.kafka), outputs)
            .map_err(AppError::Producer)?;
        match topics
            .check_at_start(config.kafka.topic_propagation, &cancel)
            .await
        {
            Ok(()) => {}
            Err(error @ ProduceError::TopicMissing { .. }) => return Err(error.into()),
            // Brokers that do not answer are not a fault of the configuration: every write is
            // checked again before its offsets are stored.
            Err(error) => tracing::warn!(
                message = "Cannot check that the output topics exist; starting anyway.",
                %error
            ),
        }
        let share = limiter.clone();
        let on_share: source::ShareListener =
            Arc::new(move |owned, total| share.set_share(owned, total));
        // `[schedule]` in window mode: the window pass drives the source's flow.
        let windowed = config.schedule.window().is_some();
        let (rebalances_tx, rebalances_rx) = mpsc::unbounded_channel();
        let consumer = source::subscribe(
            &kafka,
            &config.kafka,
            &offsets,
            &metrics,
            on_share,
            windowed.then_some(rebalances_tx),
        )?;
        let consumer_in = consumer.clone();
        let producer: FutureProducer = kafka
            .producer(config.kafka.transactional_id.as_deref())
            .create()
            .map_err(AppError::Producer)?;
        // Transactional mode: one transaction at a time carries acks, dead letters and offsets.
        // The probe proves the broker completes transactions before anything reaches the API.
        let transactions = match config.kafka.transactional_id {
            Some(_) => {
                let transactions = Transactions::init(
                    producer.clone(),
                    &consumer,
                    offsets.clone(),
                    metrics.clone(),
                )
                .await
                .map_err(AppError::Producer)?;
                transactions
                    .probe(&config.kafka.ack_topic)
                    .await
                    .map_err(AppError::TransactionsUnsupported)?;
                Some(transactions)
            }
            None => None,
        };

        // The pipeline, in the order records flow:
        //
        //  consumer ─► source ─► transform ─► batcher ─► submitter ─► acker ─► offsets
        //                            │ invalid                │ refused
        //                            └───────► dead letters ◄─┘
        let (records_tx, records_rx) = mpsc::channel(CHANNEL_RECORDS);
        let (mapped_tx, mapped_rx) = mpsc::channel(CHANNEL_MAPPED);
        let (batches_tx, batches_rx) = mpsc::channel(CHANNEL_BATCHES);
        let (acks_tx, acks_rx) = mpsc::channel(config.api.max_in_flight * 2);
        let (dead_tx, dead_rx) = mpsc::channel(CHANNEL_RECORDS);
        let writer = DurableWriter {
            producer,
            transactions: transactions.clone(),
            offsets,
            topics,
        };
        let mut stages = Stages::new(metrics.clone());

        // 1. Source: consume CAD records, register their offsets; the only stage that watches
        //    `cancel`.
        let source = Source {
            offsets: writer.offsets.clone(),
            max_record_bytes: config.kafka.max_record_bytes,
            pause_after: source::pause_after(&config.kafka.properties),
            metrics: metrics.clone(),
            gaps: source::gaps::GapProbe::new(kafka.source_consumer(&config.kafka)),
            cancel: cancel.clone(),
        };
        stages.spawn(Task::Source, async move {
            Ok(source.run(consumer_in, records_tx).await?)
        });

        // 2. Transform: decode, map, serialize; invalid records to the dead-letter stage.
        //    On one thread per core, in input order.
        let transform = Transform {
            options: config.mapping.clone(),
            metrics: metrics.clone(),
            workers: transform::default_workers(),
        };
        let transformed = TransformOutput {
            mapped: mapped_tx,
            dead_letters: dead_tx.clone(),
        };
        stages.spawn(Task::Transform, async move {
            transform.run(records_rx, transformed).await;
            Ok(())
        });

        // 2b. Window mode: the coalescer acks older snapshots of a call `superseded` (to the
        //     acker) and hands the newest on; the window pass opens and closes the source.
        let (mapped_rx, superseded_rx) = if windowed {
            let (coalesced_tx, coalesced_rx) = mpsc::channel(CHANNEL_MAPPED);
            let (superseded_tx, superseded_rx) = mpsc::channel(CHANNEL_RECORDS);
            let indexes = Indexes::default();
            let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
            let coalescer = Coalescer {
                indexes: indexes.clone(),
                gate: gate_rx,
                offsets: writer.offsets.clone(),
                cancel: cancel.clone(),
            };
            let coalesced = CoalescerOutput {
                mapped: coalesced_tx,
                superseded: superseded_tx,
            };
            stages.spawn(Task::Coalescer, async move {
                coalescer.run(mapped_rx, coalesced).await;
                Ok(())
            });
            let pass = WindowPass {
                schedule: config.schedule,
                clock,
                scanner: Scanner {
                    consumer: kafka.source_consumer(&config.kafka),
                    options: config.mapping.clone(),
                    max_record_bytes: config.kafka.max_record_bytes,
                    memory_limit: window::INDEX_MEMORY_PER_PARTITION,
                },
                indexes,
                offsets: writer.offsets.clone(),
                gate: gate_tx,
                tokens: tokens.clone(),
                limiter: limiter.clone(),
                metrics: metrics.clone(),
                cancel: cancel.clone(),
            };
            tokio::spawn(window::warn_on_short_retention(
                kafka.base(),
                config.kafka.topics.clone(),
            ));
            let driven = consumer.clone();
            stages.spawn(Task::WindowPass, async move {
                pass.run(rebalances_rx, driven).await;
                Ok(())
            });
            (coalesced_rx, Some(superseded_rx))
        } else {
            drop(rebalances_rx);
            metrics.schedule_state(ScheduleLabel::Continuous, None);
            (mapped_rx, None)
        };

        // 3. Batcher: group calls into submissions by count, bytes and linger.
        let batcher = Batcher {
            config: config.batch,
            metrics: metrics.clone(),
        };
        stages.spawn(Task::Batcher, async move {
            batcher.run(mapped_rx, batches_tx).await;
            Ok(())
        });

        // 4. Submitter: POST through the limiter with the shared token; retry or refuse.
        let submitter = Submitter {
            client,
            config: config.api.clone(),
            mode: config.batch.mode,
            tokens,
            limiter,
            metrics: metrics.clone(),
            group: telemetry::ConsumerGroup {
                name: config.kafka.group_id.clone(),
                client_id: config.kafka.properties.get("client.id").cloned(),
            },
            api,
        };
        let submitted = SubmitterOutput {
            acks: acks_tx,
            dead_letters: dead_tx,
        };
        stages.spawn(Task::Submitter, async move {
            Ok(submitter.run(batches_rx, submitted).await?)
        });

        // 5. Acker: one ack per record, then mark the offsets done.
        let acker = AckPublisher {
            topic: config.kafka.ack_topic.clone(),
            metrics: metrics.clone(),
        };
        let acked = writer.clone();
        let ack_inputs = AckInputs {
            submissions: acks_rx,
            superseded: superseded_rx,
        };
        stages.spawn(Task::Acker, async move {
            Ok(acker.run(ack_inputs, acked).await?)
        });

        // 6. Dead letters: the original record plus reason headers, then mark the offsets done.
        let dead_letters = DeadLetterProducer {
            topic: config.kafka.dead_letter_topic.clone(),
            metrics: metrics.clone(),
        };
        stages.spawn(Task::DeadLetters, async move {
            Ok(dead_letters.run(dead_rx, writer).await?)
        });

        // 7. MESH poller (when `[mesh]` is set): DPS error notifications to the errors topic,
        //    correlated through the ack topic; its own non-transactional producer.
        if let Some(mesh) = &config.mesh {
            let producer = kafka.producer(None).create().map_err(AppError::Producer)?;
            let (group, ack_topic) = (&config.kafka.group_id, &config.kafka.ack_topic);
            let (m, stop) = (metrics.clone(), cancel.clone());
            let poller = crate::mesh::start(
                mesh,
                kafka.base(),
                group,
                ack_topic,
                producer,
                m,
                stop.clone(),
            )?;
            stages.spawn(Task::MeshPoller, async move {
                poller.run(stop).await;
                Ok(())
            });
        }

        tracing::info!(message = "Pipeline started.", metrics = %health_addr);
        Ok(Self {
            stages,
            consumer: Some(consumer),
            transactions,
            cancel,
            background,
            drain_timeout: config.drain_timeout,
            metrics,
            health,
            health_addr,
        })
    }

    /// Waits until the pipeline is ready (what `/readyz` says), at most `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.health.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Waits for the cancellation (or a fatal stage failure), drains, commits, stops.
    pub async fn finish(mut self) -> Result<(), AppError> {
        let mut failure = None;
        while failure.is_none() {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                joined = self.stages.join_next() => match joined {
                    Some(result) => failure = result.err(),
                    None => break,
                },
            }
        }
        if let Some(error) = &failure {
            tracing::error!(message = "Pipeline stage failed; stopping.", %error);
        }
        self.cancel.cancel();

        // One deadline for everything from here: the drain, any revocation while it runs (the
        // source may be waiting in one) and the revocation when the consumer leaves the group
        // below. Each revocation would otherwise wait `kafka.revoke_drain_timeout_ms` of its own
        // for records the cut-off drain will never finish (13 s for 8 s + 5 s before).
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        self.health.offsets.shut_down_by(deadline.into_std());

        // Drain: later stages finish as their inputs close, within the deadline.
        let drain = async {
            while let Some(result) = self.stages.join_next().await {
                if let Err(error) = result {
                    tracing::error!(message = "Pipeline stage failed while draining.", %error);
                    failure.get_or_insert(error);
                }
            }
        };
        if tokio::time::timeout_at(deadline, drain).await.is_err() {
            tracing::warn!(
                message = "Drain deadline passed; unfinished records will be redelivered."
            );
            self.stages.abort_all();
        }

        // Transactional mode: abort what a cut-off stage left open. Its offsets were committed
        // by its transactions, so nothing is committed below.
        let transactional = self.transactions.is_some();
        if let Some(transactions) = self.transactions.take() {
            transactions.close().await;
        }

        // Commit every offset stored so far; records without an ack or dead letter stay behind.
        let consumer = self.consumer.take().expect("finish runs once");
        let metrics = self.metrics.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let result = (!transactional).then(|| consumer.commit_consumer_state(CommitMode::Sync));
            // Dropping the last handle leaves the group (rd_kafka_consumer_close).
            drop(consumer);
            result
        })
        .await
        .map_err(|e| AppError::Panic {
            task: Task::Source,
            message: e.to_string(),
        })?;
        match committed {
            None | Some(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => {}
            Some(Ok(())) => metrics.offsets_committed(Outcome::Success),
            Some(Err(error)) => {
                metrics.offsets_committed(Outcome::Failure);
                tracing::warn!(message = "Final offset commit failed.", %error);
            }
        }
        self.background.cancel();
        tracing::info!(message = "Pipeline stopped.");
        failure.map_or(Ok(()), Err)
    }
}

/// A pipeline dropped without [`Pipeline::finish`] (a caller's error or panic) stops at once:
/// every task is cancelled and the consumer leaves its group without waiting for records in
/// flight or committing their offsets (they are redelivered, as after a crash). Without this a
/// revocation during the consumer's close would wait for stages that no longer run and commit
/// from inside the close, which librdkafka never completes.
impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Some(consumer) = &self.consumer {
            consumer.context().abandon();
        }
        self.cancel.cancel();
        self.background.cancel();
    }
}

/// Runs the pipeline until `cancel` fires, then drains and commits.
pub async fn run(
    config: Config,
    metrics: Metrics,
    cancel: CancellationToken,
) -> Result<(), AppError> {
    Pipeline::start(config, metrics, cancel)
        .await?
        .finish()
        .await
}

/// The pipeline's tasks, each named by its [`Task`]: a task that panics (a bug) ends as
/// [`AppError::Panic`] naming it, with an error line and `ads_connector_task_panics_total`.
struct Stages {
    set: JoinSet<Result<(), AppError>>,
    names: HashMap<tokio::task::Id, Task>,
    metrics: Metrics,
}

impl Stages {
    fn new(metrics: Metrics) -> Self {
        Self {
            set: JoinSet::new(),
            names: HashMap::new(),
            metrics,
        }
    }

    fn spawn(
        &mut self,
        task: Task,
        future: impl std::future::Future<Output = Result<(), AppError>> + Send + 'static,
    ) {
        let handle = self.set.spawn(future);
        self.names.insert(handle.id(), task);
    }

    /// The next task to end, `None` when none is left.
    async fn join_next(&mut self) -> Option<Result<(), AppError>> {
        let joined = self.set.join_next_with_id().await?;
        Some(match joined {
            Ok((_, result)) => result,
            Err(error) => {
                if !error.is_panic() {
                    // Aborted by the drain deadline: not a failure of its own.
                    return Some(Ok(()));
                }
                // `spawn` names a task before anything can join it (both take `&mut self`).
                let task = self.names[&error.id()];
                let message = crate::telemetry::panic_message(error.into_panic());
                self.metrics.task_panicked(task);
                tracing::error!(message = "Pipeline task panicked.", %task, panic = %message);
                Err(AppError::Panic { task, message })
            }
        })
    }

    fn abort_all(&mut self) {
        self.set.abort_all();
    }
}

async fn heartbeat(health: Health, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => health.beat(),
        }
    }
}
