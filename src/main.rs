//! `ads-connector`: the command line. Thin: parse, load, run, report the exit status.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use ads_connector::config::Config;
use ads_connector::metrics::Metrics;
use ads_connector::{app, keygen, shutdown, telemetry};
use ads_devkit::{demo, generate};
use nhs_emulator as sandbox;

/// mimalloc instead of glibc's malloc: the per-call work builds and drops many small JSON values,
/// and allocation was about 30% of its profile. `benches/mapping.rs` (same allocator) measured
/// decode + map + serialize 13–43% faster side by side on this 2-core machine; see README.
///
/// mimalloc 2 (the `v2` feature), not the crate's default 3: side by side on 200k records
/// (`benches/end_to_end.rs`, three alternating rounds) the connector used 0.0992 CPU s per 1k
/// records with 2 and 0.1047 with 3 (lower in every round; 3 spent about 7% of the process in
/// its page allocation path), peak RSS 104 against 92 MiB.
///
/// Its memory bounds (README "Memory"; the Rust heap itself is bounded by the pipeline's
/// channels): built without transparent huge pages (the `no_thp` feature, root `Cargo.toml`),
/// and freed memory goes back to the system after [`PURGE_DELAY_MS`] (set by
/// [`bound_allocators`]).
///
/// Called through [`allocator::MiMalloc`], which skips mimalloc's aligned detour for the
/// alignments it guarantees anyway.
#[global_allocator]
static ALLOCATOR: allocator::MiMalloc = allocator::MiMalloc;

mod allocator;

/// How long mimalloc keeps freed memory before it gives it back to the system (its
/// `purge_delay`; mimalloc 3's default is 1000 ms, mimalloc 2's 10 ms). The pipeline allocates
/// and frees tens of MB a second (FHIR bundles, 1.5 MB request bodies built by doubling): with
/// a second's worth waiting to be purged, the resident set swung between 55 and 165 MiB for a
/// live heap of about 50 MiB. Purging at once (0) kept it at 46–71 MiB but cost half as much CPU
/// again (`madvise` calls); see README "Memory" for the value chosen. Those figures are
/// mimalloc 3's; with mimalloc 2 (whose own default, 10 ms, purges more often, at that CPU
/// cost) 100 ms kept the peak at 104 MiB on 200k records.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// `mi_option_purge_delay` of mimalloc.h's `mi_option_t` (15 in mimalloc 2 and 3; the
/// `libmimalloc-sys` bindings name it only with their `extended` feature). The test below pins it by its default.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    // mimalloc's own functions (mimalloc.h), in the library the `mimalloc` crate links.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// The memory bounds of both allocators of the process, set first thing in `main`, before any
/// thread exists.
///
/// mimalloc (the Rust side): [`PURGE_DELAY_MS`].
///
/// glibc (the C side: librdkafka's buffers are `malloc` memory, not mimalloc's):
/// * `M_ARENA_MAX` 2: glibc gives each new thread an arena of its own, up to 8 per core, and
///   librdkafka runs several threads per client (the source consumer, the producer, the window
///   pass's reader of each partition, metadata clients); each arena kept its own freed fetch
///   buffers resident (6–34 MiB each, 60–80 MiB in all in window-mode runs).
/// * `M_MMAP_THRESHOLD` 128 KiB, fixed: blocks this large (fetch responses, up to
///   `fetch.max.bytes`, see `kafka::PREFETCH_KBYTES`) are mapped and unmapped on their own, so
///   they go back to the system when librdkafka frees them. glibc's default threshold rises to
///   the largest block freed so far, after which such buffers are carved from the arenas and
///   stay resident once freed. librdkafka allocates a few such buffers per fetch and per produce
///   request: the extra `mmap` calls cost nothing measurable.
fn bound_allocators() {
    // SAFETY: mi_option_set only stores an option mimalloc reads when it next purges.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's allocator parameters; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Moves ambulance CAD call events from Kafka to NHS England's Ambulance Data Submission API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the connector service.
    Run {
        /// TOML configuration file (`ADS__SECTION__KEY` variables override it).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file without connecting to anything.
    CheckConfig {
        /// TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a local emulation of the NHS API and its token server.
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// An application: `API_KEY=JWKS_FILE` (repeatable).
        #[arg(long = "app")]
        apps: Vec<String>,
        /// Open access like NHS's public sandbox: no token needed.
        #[arg(long)]
        open: bool,
        /// `$process-message` quota per application per minute.
        #[arg(long, default_value_t = 1800)]
        quota_per_minute: u32,
        /// Base URL clients use (the JWT `aud` is `{public_url}/oauth2/token`).
        #[arg(long)]
        public_url: Option<url::Url>,
        /// Faults to inject: none, flaky, chaos, token-outage, 429-storm, or knobs like
        /// `503=0.05,reset=1%,latency=20..200ms` (docs/sandbox.md).
        #[arg(long, value_name = "SPEC", default_value = "none",
              value_parser = |s: &str| sandbox::FaultProfile::parse(s).map(Box::new))]
        faults: Box<sandbox::FaultProfile>,
        /// A fast sink: count and answer accepted submissions without parsing or recording
        /// their calls (`/_sandbox/calls` stays empty, no DPS reports), for throughput benchmarks.
        #[arg(long)]
        sink: bool,
    },
    /// Write an RSA key pair and its JWKS.
    Keygen {
        /// Key id.
        #[arg(long)]
        kid: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Key size in bits.
        #[arg(long, default_value_t = 4096)]
        bits: usize,
    },
    /// Write synthetic `cad.call.v1` records as JSON lines to stdout.
    Generate {
        /// Number of calls.
        #[arg(long, default_value_t = 10)]
        calls: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Check CAD records or FHIR bundles (JSON documents or JSON lines); exit 1 if any is invalid.
    Validate {
        /// Files of `cad.call.v1` records or ADS FHIR Bundles.
        files: Vec<PathBuf>,
        /// Write each valid call's FHIR Bundle into this directory.
        #[arg(long)]
        emit_fhir: Option<PathBuf>,
    },
    /// Run everything embedded: Kafka, the NHS API sandbox, generated calls, the real pipeline.
    Demo(Box<demo::DemoArgs>),
}

fn main() -> ExitCode {
    bound_allocators();
    match real_main() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    // Dropped last (after the runtime), so buffered spans are exported before exit. The demo
    // draws a progress bar and a summary; its logs would only get in the way.
    let _otel = telemetry::init(match cli.command {
        Command::Demo(_) => "error",
        _ => "info,rdkafka=warn",
    });
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(&config).context("invalid configuration")?;
            runtime.block_on(async {
                let cancel = shutdown::on_signal();
                app::run(config, Metrics::new(), cancel).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let path = config.display().to_string();
            let config = Config::load(&config).context("invalid configuration")?;
            println!(
                "{path}: ok (submitting to {}, {} topic(s))",
                config.api.submit_url,
                config.kafka.topics.len()
            );
            println!("schedule: {}", config.schedule.describe());
            if config.schedule.window().is_some() {
                println!(
                    "schedule: Kafka holds the backlog between windows; keep each source topic's \
                     retention.ms at least {} hours (start-up warns when the broker reports less)",
                    ads_connector::window::MIN_RETENTION.as_secs() / 3600
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sandbox {
            listen,
            apps,
            open,
            quota_per_minute,
            public_url,
            faults,
            sink,
        } => {
            let apps = apps
                .iter()
                .map(|a| {
                    sandbox::SandboxApp::parse(a).map_err(|e| anyhow::anyhow!("--app {a}: {e}"))
                })
                .collect::<Result<Vec<_>>>()?;
            if apps.is_empty() && !open {
                bail!("give at least one --app API_KEY=JWKS_FILE, or --open");
            }
            let cfg = sandbox::SandboxConfig {
                apps,
                open_access: open,
                quota_per_minute,
                public_url,
                faults: *faults,
                record_calls: !sink,
                ..sandbox::SandboxConfig::default()
            };
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                let handle = sandbox::start(listener, cfg).await?;
                println!("sandbox API:   {}", handle.api_base_url());
                println!("sandbox token: {}", handle.token_url());
                shutdown::signal().await;
                handle.shutdown().await;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { kid, out, bits } => {
            let pair = keygen::generate(&kid, bits)?;
            let paths = keygen::write(&pair, &out)?;
            println!("private key: {}", paths.private_key.display());
            println!("public key:  {}", paths.public_key.display());
            println!("JWKS:        {}", paths.jwks.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate { calls, seed } => {
            let mut generator = generate::Generator::new(seed);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for _ in 0..calls {
                writeln!(out, "{}", generate::to_json_line(&generator.next_call()))?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { files, emit_fhir } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let all_valid = ads_connector::validate::run(&files, emit_fhir.as_deref(), &mut out)?;
            out.flush()?;
            Ok(if all_valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Demo(args) => {
            let summary = runtime.block_on(demo::run(*args))?;
            Ok(if summary.lost == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout};

    #[test]
    fn every_block_is_aligned_as_asked_whether_plain_or_aligned_mimalloc_served_it() {
        let a = allocator::MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 3, 8, 15, 16, 24, 40, 100, 1000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes, valid layouts; each block is freed with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} {align}");
                    p.write_bytes(0xAB, size);
                    let grown = a.realloc(p, layout, size * 3 + 1);
                    assert_eq!(grown as usize % align, 0, "realloc {size} {align}");
                    assert!(
                        (0..size).all(|i| *grown.add(i) == 0xAB),
                        "realloc kept the bytes"
                    );
                    a.dealloc(grown, Layout::from_size_align(size * 3 + 1, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed {size} {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    #[test]
    fn the_purge_delay_option_is_the_one_mimalloc_defaults_to_a_second_and_takes_the_bound() {
        // SAFETY: reading and setting a mimalloc option.
        unsafe {
            assert_eq!(
                mi_option_get(MI_OPTION_PURGE_DELAY),
                10,
                "mimalloc 2's default"
            );
            bound_allocators();
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), PURGE_DELAY_MS);
        }
    }
}
