//! The MESH poller's metric families (`crate::mesh`) and the [`Metrics`] methods that record
//! them: DPS error records published, failed polls, the last completed poll and this replica's
//! role in the poller lease. Every label value comes from a fixed list and is created at zero on
//! registration, except the lease role's, whose series exist only once `[mesh]` sets a role.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::{counter, gauge, LeaseRole, Metrics};

impl Metrics {
    /// A DPS error record was written to the errors topic (`crate::mesh`). `severity` is the
    /// worst issue's, folded into `fatal`/`error`/`warning`/`unknown`.
    pub fn dps_error_published(&self, unknown_format: bool, correlated: bool, severity: &str) {
        let severity = match severity {
            "fatal" | "error" | "warning" => severity,
            _ => "unknown",
        };
        let format = if unknown_format { "unknown" } else { "parsed" };
        let correlated = if correlated { "true" } else { "false" };
        self.mesh
            .dps_errors
            .with_label_values(&[format, correlated, severity])
            .inc();
    }

    /// A MESH poll failed; `kind` is a `MeshError`/`PollError` kind (bounded).
    pub fn mesh_poll_failed(&self, kind: &'static str) {
        self.mesh.poll_failures.with_label_values(&[kind]).inc();
    }

    /// This replica's role in the MESH poller lease: the chosen role's series is 1, the other 0.
    /// Without `[mesh]` neither series exists.
    pub fn mesh_lease_role(&self, role: LeaseRole) {
        for r in LeaseRole::ALL {
            self.mesh
                .lease
                .with_label_values(&[r.as_str()])
                .set(i64::from(r == role));
        }
    }

    /// A MESH poll completed (the inbox was read and every message in hand handled).
    pub fn mesh_polled(&self) {
        self.mesh.last_poll.set(chrono::Utc::now().timestamp());
    }
}

/// The MESH poller's families (`crate::mesh`).
#[derive(Clone)]
pub(super) struct MeshMetrics {
    dps_errors: IntCounterVec,
    poll_failures: IntCounterVec,
    last_poll: IntGauge,
    lease: IntGaugeVec,
}

impl MeshMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let dps_errors = counter(
            r,
            "dps_errors_published_total",
            "DPS error records written to the errors topic, by format, correlation and severity.",
            &["format", "correlated", "severity"],
        );
        for format in ["parsed", "unknown"] {
            for correlated in ["true", "false"] {
                for severity in ["fatal", "error", "warning", "unknown"] {
                    dps_errors.with_label_values(&[format, correlated, severity]);
                }
            }
        }
        let poll_failures = counter(
            r,
            "mesh_poll_failures_total",
            "MESH polls that ended in an error, by kind.",
            &["kind"],
        );
        for kind in ["auth", "tls", "transport", "status", "protocol", "produce"] {
            poll_failures.with_label_values(&[kind]);
        }
        let lease = IntGaugeVec::new(
            Opts::new(
                "ads_connector_mesh_poller_lease",
                "1 on the series of this replica's role in the MESH poller lease (holder polls MESH, standby waits); absent without [mesh].",
            ),
            &["role"],
        )
        .expect("valid metric");
        r.register(Box::new(lease.clone())).expect("unique metric");
        Self {
            dps_errors,
            poll_failures,
            lease,
            last_poll: gauge(
                r,
                "mesh_last_poll_success_timestamp_seconds",
                "Time of the last MESH poll that completed, Unix seconds; 0 before the first.",
            ),
        }
    }
}
