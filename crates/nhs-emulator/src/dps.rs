//! Sandbox DPS mode: the checks NHS England's Data Processing Service makes after the API has
//! accepted a submission, which local validation cannot know, and the notification it then
//! sends over MESH.
//!
//! Input: every accepted `$process-message` body with the submission id the sandbox answered,
//! while a [`DpsConfig`] is set ([`super::SandboxHandle::set_dps`]). Rule: a call Bundle naming
//! an Organization whose ODS code (`https://fhir.nhs.uk/Id/ods-organization-code`) is not in
//! `registered_ods` is rejected (code `provider-not-registered`; the code is well-formed, the
//! connector's own validation passes it). Output: one MESH message per rejected call, an
//! `ads.dps-notification.v1` JSON document (`docs/dps-errors.md`), sent from `from_mailbox` to
//! `to_mailbox` with the configured workflow id, by a background task (with retries) so the API
//! answer is never delayed. The MESH can be the sandbox's own emulation ([`super::mesh_box`]) or
//! NHS England's `mesh-sandbox`. Bodies are never logged.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use ads_connector::mapping::codes::ODS_ORGANIZATION_SYSTEM;
use ads_connector::mesh::notification::{CallIssues, Issue, Notification, NOTIFICATION_SCHEMA};
use ads_connector::mesh::{MeshClient, MeshClientConfig};

use crate::mesh_send::{MeshSend, SendOptions};

/// DPS mode settings.
#[derive(Debug, Clone)]
pub struct DpsConfig {
    /// ODS codes DPS knows; a call naming any other is rejected.
    pub registered_ods: HashSet<String>,
    /// The DPS side's mailbox (sender) and where to reach MESH.
    pub mesh: MeshClientConfig,
    /// The trust's mailbox (recipient).
    pub to_mailbox: String,
    /// `Mex-WorkflowID` of the notifications.
    pub workflow_id: String,
    /// Split notifications into MESH chunks of this many bytes (tests of chunking).
    pub chunk_size: Option<usize>,
}

/// What DPS mode did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DpsStats {
    /// Call bundles checked.
    pub calls_checked: u64,
    /// Call bundles rejected.
    pub calls_rejected: u64,
    /// Notifications delivered to MESH.
    pub notifications_sent: u64,
    /// Notifications MESH refused after every retry.
    pub notifications_failed: u64,
}

#[derive(Default)]
struct Counters {
    checked: AtomicU64,
    rejected: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
}

struct Dps {
    config: DpsConfig,
    client: MeshClient,
}

/// The DPS mode in force (none by default), shared by the API handler and the handle.
#[derive(Default)]
pub(crate) struct DpsSlot {
    dps: Mutex<Option<Arc<Dps>>>,
    counters: Arc<Counters>,
}

impl DpsSlot {
    /// Puts `config` in force (or switches DPS mode off).
    pub(crate) fn set(
        &self,
        config: Option<DpsConfig>,
    ) -> Result<(), ads_connector::mesh::MeshError> {
        let dps = match config {
            Some(config) => Some(Arc::new(Dps {
                client: MeshClient::new(&config.mesh)?,
                config,
            })),
            None => None,
        };
        *self.dps.lock().expect("dps lock") = dps;
        Ok(())
    }

    pub(crate) fn stats(&self) -> DpsStats {
        let c = &self.counters;
        DpsStats {
            calls_checked: c.checked.load(Ordering::Relaxed),
            calls_rejected: c.rejected.load(Ordering::Relaxed),
            notifications_sent: c.sent.load(Ordering::Relaxed),
            notifications_failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Checks an accepted body; sends a notification per rejected call in the background.
    pub(crate) fn submitted(&self, body: &[u8], submission_id: &str) {
        let Some(dps) = self.dps.lock().expect("dps lock").clone() else {
            return;
        };
        let Some(calls) = call_bundles(body) else {
            return;
        };
        for call in calls {
            self.counters.checked.fetch_add(1, Ordering::Relaxed);
            let Some(issues) = check(&dps.config.registered_ods, &call) else {
                continue;
            };
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            let notification = Notification {
                schema: NOTIFICATION_SCHEMA.into(),
                submission_id: submission_id.to_owned(),
                processed_at: Some(chrono::Utc::now().to_rfc3339()),
                calls: vec![issues],
            };
            let (dps, counters) = (dps.clone(), self.counters.clone());
            tokio::spawn(async move { send(&dps, &counters, &notification).await });
        }
    }
}

async fn send(dps: &Dps, counters: &Counters, notification: &Notification) {
    let body = serde_json::to_vec(notification).expect("notification serializes");
    let options = SendOptions {
        workflow_id: dps.config.workflow_id.clone(),
        local_id: notification.calls[0].bundle_id.clone(),
        subject: Some("ADS DPS error notification".into()),
        content_type: Some("application/json".into()),
        chunk_size: dps.config.chunk_size,
    };
    for attempt in 1..=5u32 {
        match dps
            .client
            .send_message(&dps.config.to_mailbox, &body, &options)
            .await
        {
            Ok(_) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                tracing::warn!(message = "Sandbox DPS could not send a notification.", attempt, %error);
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    counters.failed.fetch_add(1, Ordering::Relaxed);
}

/// The call bundles of a body (one call Bundle, or a `batch` of them), as JSON values.
fn call_bundles(body: &[u8]) -> Option<Vec<Value>> {
    let mut root: Value = serde_json::from_slice(body).ok()?;
    if root["resourceType"] != "Bundle" {
        return None;
    }
    if root["type"] != "batch" {
        return Some(vec![root]);
    }
    let entries = root["entry"].as_array_mut()?;
    Some(
        entries
            .iter_mut()
            .map(|e| e["resource"].take())
            .filter(|r| r["resourceType"] == "Bundle")
            .collect(),
    )
}

/// The issues of one call bundle, or `None` when DPS accepts it.
fn check(registered: &HashSet<String>, bundle: &Value) -> Option<CallIssues> {
    let entries = bundle["entry"].as_array()?;
    let mut issues = Vec::new();
    let mut call_id = None;
    for (i, entry) in entries.iter().enumerate() {
        let resource = &entry["resource"];
        match resource["resourceType"].as_str() {
            Some("Communication") if call_id.is_none() => {
                call_id = resource["identifier"][0]["value"]
                    .as_str()
                    .map(str::to_owned);
            }
            Some("Organization") => {
                for (j, id) in resource["identifier"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let Some(code) = id["value"].as_str() else {
                        continue;
                    };
                    if id["system"] == ODS_ORGANIZATION_SYSTEM && !registered.contains(code) {
                        issues.push(Issue {
                            severity: "error".into(),
                            code: "provider-not-registered".into(),
                            location: Some(format!(
                                "Bundle.entry[{i}].resource.identifier[{j}].value"
                            )),
                            diagnostics: Some(format!(
                                "Organisation {code} is not registered to submit ambulance data"
                            )),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    (!issues.is_empty()).then(|| CallIssues {
        bundle_id: bundle["id"].as_str().map(str::to_owned),
        call_id,
        provider_ods: None,
        issues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(ods: &str) -> Value {
        serde_json::json!({"resourceType": "Bundle", "id": "b1", "type": "collection", "entry": [
            {"resource": {"resourceType": "Communication", "identifier": [{"value": "c1"}]}},
            {"resource": {"resourceType": "Organization",
                          "identifier": [{"system": ODS_ORGANIZATION_SYSTEM, "value": ods}]}},
        ]})
    }

    #[test]
    fn rejects_unregistered_organisations_only() {
        let registered: HashSet<String> = ["RX6".to_owned()].into();
        assert!(check(&registered, &bundle("RX6")).is_none());
        let issues = check(&registered, &bundle("RZZ99")).unwrap();
        assert_eq!(issues.bundle_id.as_deref(), Some("b1"));
        assert_eq!(issues.call_id.as_deref(), Some("c1"));
        assert_eq!(issues.issues[0].code, "provider-not-registered");
        assert_eq!(
            issues.issues[0].location.as_deref(),
            Some("Bundle.entry[1].resource.identifier[0].value")
        );
    }

    #[test]
    fn finds_call_bundles_in_a_batch() {
        let batch = serde_json::json!({"resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": bundle("RX6")}, {"resource": bundle("RZZ99")}]});
        let calls = call_bundles(&serde_json::to_vec(&batch).unwrap()).unwrap();
        assert_eq!(calls.len(), 2);
    }
}
