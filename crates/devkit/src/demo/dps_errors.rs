//! The DPS error loop inside `ads-connector demo --dps-errors RATE`.
//!
//! Input: the demo's sandbox, its Kafka bootstrap and a work directory. Output: the sandbox in
//! DPS mode (every ODS code the generator uses is registered; [`UNREGISTERED_ODS`] is not),
//! notifications sent to the sandbox's own MESH emulation (`X26ABC1` → `X26ABC2`), the `[mesh]`
//! section that points the connector's poller at it, and, at the end, the tally read back from
//! the errors topic. Nothing to install; nothing logged but counts.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::generate::{self, Generator};
use ads_connector::cad::CadCall;
use ads_connector::mesh::MeshClientConfig;
use nhs_emulator::{self as sandbox, mesh_box, DpsConfig, SandboxHandle};

/// A well-formed ODS code the sandbox's DPS does not know.
pub const UNREGISTERED_ODS: &str = "RZZ99";
/// The workflow id of the demo's notifications.
pub const WORKFLOW_ID: &str = "ADS_DPS_ERRORS";
/// The trust's mailbox.
pub const TRUST_MAILBOX: &str = "X26ABC2";
/// DPS's mailbox.
pub const DPS_MAILBOX: &str = "X26ABC1";

/// Every ODS code the generator uses (provider and submitter), from its first 500 calls.
pub fn registered_ods(seed: u64) -> HashSet<String> {
    let mut generator = Generator::new(seed);
    (0..500)
        .map(|_| generator.next_call())
        .flat_map(|c| [c.provider_ods.into(), c.submitter_ods.into()])
        .collect()
}

/// The record of `call` with its provider replaced by [`UNREGISTERED_ODS`].
pub fn rejected_payload(call: &CadCall) -> Vec<u8> {
    let mut call = call.clone();
    call.provider_ods = UNREGISTERED_ODS.into();
    generate::to_json_line(&call).into_bytes()
}

/// Puts the sandbox in DPS mode and returns the connector's `[mesh]` section.
pub fn enable(
    sandbox: &SandboxHandle,
    work: &Path,
    errors_topic: &str,
    seed: u64,
) -> anyhow::Result<String> {
    let url = sandbox.mesh_url();
    sandbox.set_dps(Some(DpsConfig {
        registered_ods: registered_ods(seed),
        mesh: MeshClientConfig {
            url: url.clone(),
            mailbox: DPS_MAILBOX.into(),
            password: mesh_box::PASSWORD.into(),
            shared_key: mesh_box::SHARED_KEY.as_bytes().to_vec(),
            identity_pem: None,
            ca_pem: None,
            timeout: Duration::from_secs(10),
        },
        to_mailbox: TRUST_MAILBOX.into(),
        workflow_id: WORKFLOW_ID.into(),
        chunk_size: None,
    }))?;
    let password = work.join("mesh-password");
    let key = work.join("mesh-shared-key");
    std::fs::write(&password, mesh_box::PASSWORD)?;
    std::fs::write(&key, mesh_box::SHARED_KEY)?;
    Ok(format!(
        r#"
        [mesh]
        url = "{url}"
        mailbox = "{TRUST_MAILBOX}"
        password_file = "{password}"
        shared_key_file = "{key}"
        workflow_ids = ["{WORKFLOW_ID}"]
        errors_topic = "{errors_topic}"
        poll_interval_s = 1
        correlation_wait_s = 30
        "#,
        password = password.display(),
        key = key.display(),
    ))
}

/// What reached the errors topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Published {
    /// Calls the sandbox's DPS rejected.
    pub rejected: u64,
    /// Records on the errors topic.
    pub published: u64,
    /// Of which correlated to an ack.
    pub correlated: u64,
}

/// Reads the errors topic until it holds one record per call the sandbox rejected (or until
/// `timeout`). Blocking: call it from `spawn_blocking`.
pub fn await_published(
    bootstrap: &str,
    topic: &str,
    stats: impl Fn() -> sandbox::DpsStats,
    timeout: Duration,
) -> anyhow::Result<Published> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ads-demo-dps-reader")
        .set("enable.auto.commit", "false")
        .set("socket.nagle.disable", "true")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut out = Published::default();
    loop {
        let s = stats();
        out.rejected = s.calls_rejected;
        let sent_all = s.notifications_sent + s.notifications_failed >= s.calls_rejected;
        if (sent_all && out.published >= out.rejected) || Instant::now() >= deadline {
            return Ok(out);
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let value: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default())?;
        out.published += 1;
        if value["correlated"] == true {
            out.correlated += 1;
        }
    }
}
