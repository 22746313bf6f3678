//! Telemetry: structured logs with `tracing`, JSON or human text.
//!
//! `ADS_LOG` (or `RUST_LOG`) sets the filter (default `info`); `ADS_LOG_FORMAT=json` switches to
//! one JSON object per line for log shippers. W3C `traceparent` is read from Kafka headers by
//! the source, carried on the HTTP request by the submitter and on the ack record by the acker.
//! Log events carry counts, ids of our own making (batch ids) and Kafka coordinates only: never
//! NHS numbers, names, dates of birth or free text from patient records.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `default` as the filter unless `ADS_LOG` or `RUST_LOG`
/// says otherwise; a second call is a no-op.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env("ADS_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("ADS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
