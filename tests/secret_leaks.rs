//! No secret in any log line: the `ads-connector` binary runs representative scenarios at
//! `ADS_LOG=trace`, in the text and in the JSON log format, with every line it writes (standard
//! output and error) kept under `$CARGO_TARGET_TMPDIR/connector-logs/`; then each log is searched
//! for the private key (any 40 characters of its PEM body), the API key and every access token
//! the sandbox issued during the run.
//!
//! Scenarios: the happy path (records submitted and acked, SIGTERM); token refresh and 401
//! retries (short-lived tokens, then every submission refused with 401 for a while); a bad key
//! file (a truncated PEM, and a valid key the application does not know); `check-config` with a
//! PEM block where the key file's path belongs. Each test also checks that its logs are real
//! (trace lines present, the scenario's events logged), so an empty log cannot pass.
//!
//! A failure names the log file, the line and which secret, never the secret itself.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use nhs_emulator::{FaultProfile, SandboxConfig};

/// What must never be logged.
struct Secrets {
    /// Every 40-character window of the private key's PEM body, at a step of 8 (so any 48
    /// consecutive characters of it contain one).
    private_key: Vec<String>,
    api_key: String,
    /// Every access token the sandbox issued.
    tokens: Vec<String>,
}

impl Secrets {
    fn of(sandbox: &AuthSandbox) -> Self {
        let pem = std::fs::read_to_string(&sandbox.private_key).unwrap();
        Self {
            private_key: pem_chunks(&pem),
            api_key: std::fs::read_to_string(&sandbox.api_key_file)
                .unwrap()
                .trim()
                .to_owned(),
            tokens: sandbox.handle.issued_tokens(),
        }
    }
}

/// The 40-character windows of a PEM's base64 body (lines between `-----` markers, joined).
fn pem_chunks(pem: &str) -> Vec<String> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect();
    assert!(body.len() > 1000, "not an RSA private key PEM");
    let chars: Vec<char> = body.chars().collect();
    chars
        .windows(40)
        .step_by(8)
        .map(|w| w.iter().collect())
        .collect()
}

/// `text` without ANSI colour sequences, whitespace, and the `\n`/`\r` escapes of JSON strings,
/// so a secret split over lines or escaped inside a JSON value is still one run of characters.
fn squashed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\\' if matches!(chars.peek(), Some('n' | 'r')) => {
                chars.next();
            }
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Panics naming `log`, the line and the kind of secret if any secret is in it.
fn assert_no_secret_in(log: &Path, secrets: &Secrets) {
    let text = std::fs::read_to_string(log).unwrap();
    let mut found = Vec::new();
    let mut check = |what: String, needle: &str| {
        if let Some(at) = text.find(needle) {
            let line = text[..at].lines().count().max(1);
            found.push(format!("{what} at line {line}"));
        } else if squashed(&text).contains(needle) {
            found.push(format!("{what} (split over lines or escaped)"));
        }
    };
    check("the API key".into(), &secrets.api_key);
    for (i, token) in secrets.tokens.iter().enumerate() {
        check(format!("access token #{i}"), token);
    }
    for (i, chunk) in secrets.private_key.iter().enumerate() {
        check(
            format!("private key characters {}..{}", i * 8, i * 8 + 40),
            chunk,
        );
    }
    assert!(
        found.is_empty(),
        "{} leaks secrets: {}",
        log.display(),
        found.join("; ")
    );
}

/// Checks the log is a real trace-level log of `format` mentioning every one of `events`.
fn assert_real_log(log: &Path, format: LogFormat, events: &[&str]) {
    let text = std::fs::read_to_string(log).unwrap();
    let trace = match format {
        LogFormat::Text => text.lines().any(|l| l.contains("TRACE")),
        LogFormat::Json => text.lines().any(|l| l.contains("\"level\":\"TRACE\"")),
    };
    assert!(trace, "{}: no trace-level line", log.display());
    if format == LogFormat::Json {
        let json = text
            .lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            .count();
        assert!(json > 10, "{}: only {json} JSON lines", log.display());
    }
    for event in events {
        assert!(text.contains(event), "{}: no {event:?}", log.display());
    }
}

fn log_path(scenario: &str, format: LogFormat) -> PathBuf {
    connector_log_dir().join(format!("secret-leaks-{scenario}-{}.log", format.name()))
}

/// A mock cluster, a sandbox configured by `configure`, and the connector's configuration file.
struct Stage {
    _broker: Broker,
    bootstrap: String,
    names: Names,
    sandbox: AuthSandbox,
    config: PathBuf,
}

async fn stage(test: &str, configure: impl FnOnce(&mut SandboxConfig)) -> Stage {
    let names = Names::new(test);
    let broker = Broker::mock(1, &names.topics(2));
    let bootstrap = broker.bootstrap();
    let sandbox = auth_sandbox_with(configure).await;
    let toml = config_toml(
        &bootstrap,
        &names,
        &sandbox,
        "max_calls = 5\nlinger_ms = 20",
        "[nhs_api.request]\ninitial_backoff_ms = 50\nmax_backoff_ms = 500",
    );
    let config = write_file(sandbox.dir.path(), "connector.toml", &toml);
    Stage {
        _broker: broker,
        bootstrap,
        names,
        sandbox,
        config,
    }
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop(child: &mut Running) {
    sigterm(child);
    wait_for_exit(child, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_happy_path_logs_no_secret_in_either_format() {
    for format in LogFormat::ALL {
        let s = stage("leak-happy", |_| {}).await;
        let log = log_path("happy", format);
        let mut child = spawn_run_logged(&s.config, format, &log);
        produce_calls(&s.bootstrap, &s.names.cad, 20, 3, 0).await;
        let (acks, _) =
            read_acks_and_dead_letters(&s.bootstrap, &s.names, 20, 0, Duration::from_secs(60))
                .await;
        assert_eq!(acks.len(), 20, "not every record was acked");
        stop(&mut child).await;

        let secrets = Secrets::of(&s.sandbox);
        assert!(!secrets.tokens.is_empty(), "no token was issued");
        assert_real_log(
            &log,
            format,
            &["Access token obtained.", "Pipeline stopped."],
        );
        assert_no_secret_in(&log, &secrets);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refreshes_and_401_retries_log_no_secret_in_either_format() {
    for format in LogFormat::ALL {
        // Tokens live 4 s, so the connector refreshes them during the run.
        let s = stage("leak-401", |cfg| cfg.token_lifetime_secs = 4).await;
        let log = log_path("refresh-401", format);
        let mut child = spawn_run_logged(&s.config, format, &log);
        produce_calls(&s.bootstrap, &s.names.cad, 10, 5, 0).await;
        wait_until("a submission accepted", Duration::from_secs(60), || {
            s.sandbox.handle.stats().submissions_accepted >= 1
        })
        .await;
        // Every submission refused with 401 for a while: the connector hands its token back,
        // takes a new one and retries.
        s.sandbox
            .handle
            .set_faults(FaultProfile::parse("401=1").unwrap());
        produce_calls(&s.bootstrap, &s.names.cad, 10, 6, 0).await;
        wait_until("two 401s", Duration::from_secs(60), || {
            s.sandbox.handle.stats().faults_injected_4xx >= 2
        })
        .await;
        s.sandbox.handle.set_faults(FaultProfile::default());
        wait_until("a token refresh", Duration::from_secs(60), || {
            s.sandbox.handle.stats().tokens_issued >= 3
        })
        .await;
        stop(&mut child).await;

        let secrets = Secrets::of(&s.sandbox);
        assert!(secrets.tokens.len() >= 3, "{} tokens", secrets.tokens.len());
        assert_real_log(&log, format, &["Access token obtained.", "401"]);
        assert_no_secret_in(&log, &secrets);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_files_log_no_secret_in_either_format() {
    for format in LogFormat::ALL {
        let s = stage("leak-badkey", |_| {}).await;
        let pem = std::fs::read_to_string(&s.sandbox.private_key).unwrap();
        let secrets = Secrets::of(&s.sandbox);

        // A truncated PEM: most of the key is in the file, but it does not parse.
        let lines: Vec<&str> = pem.lines().collect();
        let truncated = lines[..lines.len() - 3].join("\n");
        let truncated_path = write_file(s.sandbox.dir.path(), "truncated.pem", &truncated);
        // A valid key the application's JWKS does not hold: the token endpoint refuses it.
        let unknown_dir = s.sandbox.dir.path().join("unknown");
        std::fs::create_dir_all(&unknown_dir).unwrap();
        let unknown = fresh_key_files(&s.sandbox.kid, &unknown_dir);
        let unknown_secrets = Secrets {
            private_key: pem_chunks(&std::fs::read_to_string(&unknown.private_key).unwrap()),
            api_key: secrets.api_key.clone(),
            tokens: Vec::new(),
        };
        let toml = std::fs::read_to_string(&s.config).unwrap();
        let key_line = format!("private_key_file = \"{}\"", s.sandbox.private_key.display());
        assert!(toml.contains(&key_line));

        for (name, key) in [
            ("truncated-key", &truncated_path),
            ("unknown-key", &unknown.private_key),
        ] {
            let config = write_file(
                s.sandbox.dir.path(),
                &format!("{name}.toml"),
                &toml.replace(
                    &key_line,
                    &format!("private_key_file = \"{}\"", key.display()),
                ),
            );
            let log = log_path(name, format);
            let mut child = spawn_run_logged(&config, format, &log);
            produce_calls(&s.bootstrap, &s.names.cad, 5, 9, 0).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            if child.try_wait().unwrap().is_none() {
                stop(&mut child).await;
            }
            assert_real_log(&log, format, &["Cannot obtain an access token."]);
            assert_no_secret_in(&log, &secrets);
            assert_no_secret_in(&log, &unknown_secrets);
        }

        // check-config with the PEM itself where its path belongs.
        let inline = toml.replace(&key_line, &format!("private_key_file = '''{pem}'''"));
        let config = write_file(s.sandbox.dir.path(), "inline-key.toml", &inline);
        let log = log_path("check-config-inline-key", format);
        let status = run_logged(
            &[
                OsStr::new("check-config"),
                OsStr::new("--config"),
                config.as_os_str(),
            ],
            format,
            &log,
        );
        assert!(!status.success(), "a PEM in place of a path was accepted");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("private_key_file"), "{}", log.display());
        assert_no_secret_in(&log, &secrets);
    }
}
