//! The command line as a user runs it: `check-config` (file plus `ADS__` overrides),
//! `keygen`, `generate` piped into `validate`.

mod common;

use std::process::Output;

use common::{connector_command as bin, write_file, INT_CONFIG as CONFIG};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "config.toml", text);
    (dir, path)
}

/// `ads-connector check-config --config path` with the variables `env` set, run to completion.
fn check_config<'a>(
    path: &std::path::Path,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Output {
    bin()
        .arg("check-config")
        .arg("--config")
        .arg(path)
        .envs(env)
        .output()
        .unwrap()
}

#[test]
fn check_config_accepts_a_valid_file_and_names_the_submission_url() {
    let (_dir, path) = write_config(CONFIG);
    let out = check_config(&path, []);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out)
        .contains("https://int.api.service.nhs.uk/ambulance-data-submission/$process-message"));
}

#[test]
fn the_example_configuration_in_deploy_is_valid() {
    let out = bin()
        .args(["check-config", "--config", "deploy/config.example.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn check_config_fails_naming_the_key_and_an_example() {
    let (_dir, path) =
        write_config(&CONFIG.replace("environment = \"int\"", "environment = \"staging\""));
    let out = check_config(&path, []);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("nhs_api.environment") && t.contains("e.g."),
        "{t}"
    );
}

#[test]
fn check_config_refuses_int_and_prod_without_batch_mode_saying_why_and_defaults_it_elsewhere() {
    let check = |file: &str, env: &[(&str, &str)]| {
        let (_dir, path) = write_config(file);
        let out = check_config(&path, env.iter().copied());
        (out.status.success(), text(&out))
    };
    let without = CONFIG.replace("[batch]\nmode = \"batch\"\n", "");
    assert_ne!(without, CONFIG);
    for environment in ["int", "prod"] {
        let (ok, t) = check(&without, &[("ADS__NHS_API__ENVIRONMENT", environment)]);
        assert!(!ok, "{environment}: accepted without batch.mode");
        for part in [
            "`batch.mode` must be set",
            "`batch`",
            "`single`",
            "NHS England does not publish",
            "confirm it with NHS England during onboarding",
        ] {
            assert!(t.contains(part), "{environment}: no {part:?} in {t}");
        }
    }
    // Written, it passes (through the environment as well as the file).
    let (ok, t) = check(&without, &[("ADS__BATCH__MODE", "single")]);
    assert!(ok, "{t}");
    let (ok, t) = check(CONFIG, &[("ADS__NHS_API__ENVIRONMENT", "prod")]);
    assert!(ok, "{t}");
    // The sandbox takes the default, `batch`.
    let sandbox = without
        .replace("environment = \"int\"", "environment = \"sandbox\"")
        .replace("kid = \"int-1\"\n", "");
    let (ok, t) = check(&sandbox, &[]);
    assert!(ok, "{t}");
}

#[test]
fn check_config_prints_the_schedule_prod_defaulting_to_nhs_englands_window_with_its_next_opening() {
    let check = |env: &[(&str, &str)]| {
        let (_dir, path) = write_config(CONFIG);
        let out = check_config(&path, env.iter().copied());
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let int = check(&[]);
    assert!(int.contains("schedule: continuous"), "{int}");
    let prod = check(&[("ADS__NHS_API__ENVIRONMENT", "prod")]);
    assert!(
        prod.contains("schedule: window 03:00-06:00 Europe/London, on_overrun stop ("),
        "{prod}"
    );
    // The next opening (or, run between 03:00 and 06:00 UK time, the closing) is in UTC (03:00
    // GMT or 02:00 UTC in summer time) and the retention the window needs is named.
    if prod.contains("(open now, closes 20") {
        assert!(prod.contains(":00:00Z, 06:00 "), "{prod}");
    } else {
        assert!(prod.contains("(next opening 20"), "{prod}");
        assert!(prod.contains(":00:00Z, 03:00 "), "{prod}");
    }
    assert!(prod.contains("retention.ms at least 48 hours"), "{prod}");
    // A window can be asked for anywhere, and a bad one names the key.
    let custom = check(&[
        ("ADS__SCHEDULE__MODE", "window"),
        ("ADS__SCHEDULE__WINDOW", "22:00-02:00"),
    ]);
    assert!(
        custom.contains("schedule: window 22:00-02:00 Europe/London"),
        "{custom}"
    );
    let (_dir, path) = write_config(CONFIG);
    let out = check_config(&path, [("ADS__SCHEDULE__TIMEZONE", "BST")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("`schedule.mode` must be set when `schedule.timezone` is"),
        "{}",
        text(&out)
    );
}

#[test]
fn environment_variables_override_the_file() {
    let (_dir, path) = write_config(CONFIG);
    let out = check_config(&path, [("ADS__NHS_API__ENVIRONMENT", "prod")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out)
        .contains("https://api.service.nhs.uk/ambulance-data-submission/$process-message"));
}

#[test]
fn unknown_environment_overrides_are_rejected() {
    let (_dir, path) = write_config(CONFIG);
    let out = check_config(&path, [("ADS__BATCH__MAX_CALS", "5")]);
    assert!(!out.status.success());
    assert!(text(&out).contains("max_cals"), "{}", text(&out));
}

#[test]
fn keygen_writes_the_private_key_public_key_and_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["keygen", "--kid", "ads-int-1", "--bits", "2048", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for file in ["ads-int-1.pem", "ads-int-1.pub.pem", "jwks.json"] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
    let jwks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("jwks.json")).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "ads-int-1");
    assert_eq!(jwks["keys"][0]["alg"], "RS512");
}

#[test]
fn generated_calls_validate_and_a_broken_one_fails_validation() {
    let out = bin()
        .args(["generate", "--calls", "200", "--seed", "9"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, &out.stdout).unwrap();
    let checked = bin().arg("validate").arg(&good).output().unwrap();
    assert!(checked.status.success(), "{}", text(&checked));

    let bad = dir.path().join("bad.jsonl");
    let mut lines: Vec<&[u8]> = out.stdout.split(|b| *b == b'\n').collect();
    lines[3] = b"{\"schema\": \"cad.call.v1\"}";
    std::fs::write(&bad, lines.join(&b'\n')).unwrap();
    let checked = bin().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked));
}
