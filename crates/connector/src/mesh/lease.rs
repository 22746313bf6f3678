//! The poller lease: however many replicas run with `[mesh]`, one polls MESH at a time.
//!
//! Input: the pipeline's Kafka client properties, a group id and the errors topic. Output: a
//! [`Lease`] the poller asks before each MESH message ([`Lease::work`]). Every replica joins the
//! consumer group `<kafka.group_id>.mesh-poller` on the errors topic with the eager `range`
//! assignor and reads nothing (its partitions are paused); the member that is assigned
//! partition 0 holds the lease. Eager rebalancing revokes every partition from every member
//! before it assigns any, and the revoke callback here returns only once the poller has finished
//! the MESH message in hand (published and acknowledged) or [`HANDOVER_TIMEOUT`] passed, so the
//! next holder starts after the previous one stopped: two replicas never publish the same
//! message. The one exception is a replica that stalls past the group's session timeout while
//! holding a message (its membership ends without a callback): it can overlap the next holder by
//! that message. The records carry `mesh.message_id`, so a consumer can drop such a duplicate,
//! as it must anyway for the republish after a crash.
//!
//! Standby replicas keep reading the ack topic, so a handover needs no warm-up. The gauge
//! `ads_connector_mesh_poller_lease{role}` says which role this replica has. Failures: the
//! keeper logs and keeps polling the group; without the errors topic nobody gets partition 0, so
//! nobody polls, which the `AdsConnectorMeshPollerLeaseVacant` alert reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::{watch, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

use crate::metrics::{LeaseRole, Metrics};

/// How long a revocation waits for the message in hand. It must stay below the group's
/// rebalance timeout (`max.poll.interval.ms`, 300 s by default) or the group would evict us.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(120);

/// The right to poll MESH; cheap to clone.
#[derive(Clone)]
pub struct Lease {
    state: Arc<State>,
}

struct State {
    held: watch::Sender<bool>,
    work: Mutex<()>,
}

impl Lease {
    fn new(held: bool) -> Self {
        Self {
            state: Arc::new(State {
                held: watch::Sender::new(held),
                work: Mutex::new(()),
            }),
        }
    }

    /// A lease that is always held: one poller with no group (tests, the demo).
    pub fn exclusive() -> Self {
        Self::new(true)
    }

    /// A lease nobody holds yet; [`LeaseKeeper`] grants and revokes it.
    pub fn vacant() -> Self {
        Self::new(false)
    }

    /// Whether this replica holds the lease now.
    pub fn is_held(&self) -> bool {
        *self.state.held.borrow()
    }

    /// Waits until the lease is held; `false` if `stop` came first.
    pub async fn acquired(&self, stop: &CancellationToken) -> bool {
        let mut held = self.state.held.subscribe();
        tokio::select! {
            _ = stop.cancelled() => false,
            result = held.wait_for(|h| *h) => result.is_ok(),
        }
    }

    /// Permission to handle one MESH message, or `None` when the lease is not held. A revocation
    /// waits for the returned guard to drop.
    pub async fn work(&self) -> Option<MutexGuard<'_, ()>> {
        let guard = self.state.work.lock().await;
        self.is_held().then_some(guard)
    }

    fn grant(&self) {
        self.state.held.send_replace(true);
    }

    /// Revokes, then waits (blocking: a Kafka callback thread) for work in hand, at most
    /// `timeout`. Returns whether the work finished in time.
    fn revoke_blocking(&self, timeout: Duration) -> bool {
        self.state.held.send_replace(false);
        let deadline = Instant::now() + timeout;
        loop {
            if self.state.work.try_lock().is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Keeps this replica's membership of the lease group; see the module header.
pub struct LeaseKeeper {
    /// Client properties (bootstrap servers, security), as the pipeline's.
    pub client: ClientConfig,
    /// The lease group, `<kafka.group_id>.mesh-poller`.
    pub group_id: String,
    /// The topic whose partition 0 is the lease (the errors topic).
    pub topic: String,
    /// The lease it grants and revokes.
    pub lease: Lease,
    /// Where the role is shown.
    pub metrics: Metrics,
}

struct LeaseContext {
    topic: String,
    lease: Lease,
    metrics: Metrics,
}

impl LeaseContext {
    fn holds_partition_zero(&self, tpl: &rdkafka::TopicPartitionList) -> bool {
        tpl.elements()
            .iter()
            .any(|e| e.topic() == self.topic && e.partition() == 0)
    }

    fn revoke(&self) {
        if !self.lease.is_held() {
            return;
        }
        let finished = self.lease.revoke_blocking(HANDOVER_TIMEOUT);
        self.metrics.mesh_lease_role(LeaseRole::Standby);
        if finished {
            tracing::info!(message = "MESH poller lease handed over.");
        } else {
            tracing::warn!(
                message = "MESH poller lease handed over while a message was still in hand.",
                waited_s = HANDOVER_TIMEOUT.as_secs()
            );
        }
    }
}

impl ClientContext for LeaseContext {}

impl ConsumerContext for LeaseContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) if self.holds_partition_zero(tpl) => self.revoke(),
            _ => {}
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Err(error) = consumer.pause(tpl) {
                tracing::warn!(message = "Cannot pause the lease group's partitions.", %error);
            }
            if self.holds_partition_zero(tpl) {
                self.lease.grant();
                self.metrics.mesh_lease_role(LeaseRole::Holder);
                tracing::info!(message = "MESH poller lease taken; this replica polls MESH.");
            }
        }
    }
}

impl LeaseKeeper {
    /// Runs on a blocking thread until `stop`, then leaves the group (handing the lease over).
    pub async fn run(self, stop: CancellationToken) {
        let result = tokio::task::spawn_blocking(move || self.keep(&stop)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(message = "MESH poller lease group failed; this replica will not poll MESH.", %error)
            }
            Err(error) => tracing::error!(message = "MESH poller lease keeper panicked.", %error),
        }
    }

    fn keep(self, stop: &CancellationToken) -> Result<(), rdkafka::error::KafkaError> {
        let mut client = self.client;
        client
            .set("group.id", &self.group_id)
            .set("partition.assignment.strategy", "range")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .set("max.poll.interval.ms", "300000")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        self.metrics.mesh_lease_role(LeaseRole::Standby);
        let context = LeaseContext {
            topic: self.topic.clone(),
            lease: self.lease.clone(),
            metrics: self.metrics.clone(),
        };
        let consumer: BaseConsumer<LeaseContext> = client.create_with_context(context)?;
        consumer.subscribe(&[&self.topic])?;
        let started = Instant::now();
        let mut warned = false;
        while !stop.is_cancelled() {
            // Nothing is read (partitions are paused); polling runs the rebalance callbacks.
            if let Some(Err(error)) = consumer.poll(Duration::from_millis(100)) {
                tracing::warn!(message = "MESH poller lease group error.", %error);
            }
            if !warned && !self.lease.is_held() && started.elapsed() > Duration::from_secs(60) {
                warned = true;
                tracing::info!(
                    message = "This replica is on standby for MESH polling (another holds the lease, or the errors topic does not exist).",
                    topic = %self.topic
                );
            }
        }
        // Leaving the group revokes (waiting for the message in hand) and lets another take over.
        consumer.unsubscribe();
        if self.lease.is_held() {
            consumer.context().revoke();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revocation_waits_for_the_message_in_hand_and_no_work_starts_after_it() {
        let lease = Lease::exclusive();
        let guard = lease.work().await.expect("held");
        let revoker = {
            let lease = lease.clone();
            std::thread::spawn(move || lease.revoke_blocking(Duration::from_secs(30)))
        };
        while lease.is_held() {
            tokio::task::yield_now().await;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(!revoker.is_finished(), "the revocation waits for the guard");
        drop(guard);
        assert!(
            revoker.join().unwrap(),
            "the revocation saw the work finish"
        );
        assert!(lease.work().await.is_none());
    }

    #[tokio::test]
    async fn a_revocation_gives_up_waiting_after_its_timeout() {
        let lease = Lease::exclusive();
        let _guard = lease.work().await.expect("held");
        let lease2 = lease.clone();
        let finished =
            std::thread::spawn(move || lease2.revoke_blocking(Duration::from_millis(50)))
                .join()
                .unwrap();
        assert!(!finished);
        assert!(!lease.is_held());
    }

    #[tokio::test]
    async fn a_vacant_lease_is_acquired_when_granted() {
        let lease = Lease::vacant();
        assert!(lease.work().await.is_none());
        let stop = CancellationToken::new();
        let waiter = {
            let (lease, stop) = (lease.clone(), stop.clone());
            tokio::spawn(async move { lease.acquired(&stop).await })
        };
        lease.grant();
        assert!(waiter.await.unwrap());
        assert!(lease.work().await.is_some());
    }
}
