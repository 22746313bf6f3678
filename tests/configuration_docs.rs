//! One source of truth for configuration: `docs/configuration.md` is what the `Setting` tables in
//! `crates/connector/src/config/` render, the tables list exactly the keys the config structs
//! accept, and the README keeps no table of its own.
//!
//! After changing a table, `ADS_UPDATE_DOCS=1 cargo test --test configuration_docs` rewrites the
//! docs file; review the diff and commit it with the code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ads_connector::config::{self, docs};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn docs_path() -> PathBuf {
    root().join(docs::PATH)
}

#[test]
fn the_configuration_docs_are_what_the_tables_render() {
    let expected = docs::markdown();
    if std::env::var_os("ADS_UPDATE_DOCS").is_some_and(|v| v != "0" && !v.is_empty()) {
        std::fs::write(docs_path(), &expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(docs_path()).unwrap_or_default();
    if actual == expected {
        return;
    }
    let (line, file, code) = actual
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(expected.lines().map(Some).chain(std::iter::repeat(None)))
        .enumerate()
        .find(|(_, (a, e))| a != e)
        .map(|(i, (a, e))| (i + 1, a.unwrap_or("<end>"), e.unwrap_or("<end>")))
        .unwrap_or((0, "<same lines>", "<trailing newline differs>"));
    panic!(
        "{} differs from the tables in crates/connector/src/config/ at line {line}:\n  \
         file: {file}\n  code: {code}\n\
         Run `{}` and review the diff.",
        docs::PATH,
        docs::UPDATE_COMMAND
    );
}

#[test]
fn every_key_the_structs_accept_has_a_table_entry_and_the_other_way_round() {
    let accepted: BTreeSet<String> = config::accepted_keys().unwrap().into_iter().collect();
    let tabled: Vec<&str> = config::SECTIONS
        .iter()
        .flat_map(|section| section.settings)
        .map(|setting| setting.key)
        .collect();
    let tabled_set: BTreeSet<String> = tabled.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        tabled.len(),
        tabled_set.len(),
        "a key is in the tables twice"
    );
    let untabled: Vec<_> = accepted.difference(&tabled_set).collect();
    let unaccepted: Vec<_> = tabled_set.difference(&accepted).collect();
    assert!(
        untabled.is_empty() && unaccepted.is_empty(),
        "accepted by the config structs but in no `Setting` table: {untabled:?}; \
         in a `Setting` table but not a serde field: {unaccepted:?}"
    );
}

#[test]
fn the_readme_links_the_generated_docs_and_keeps_no_table_of_its_own() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(docs::PATH),
        "README.md should link {}",
        docs::PATH
    );
    for section in config::SECTIONS {
        for setting in section.settings {
            let row = format!("| `{}` |", setting.key);
            assert!(
                !readme.lines().any(|line| line.starts_with(&row)),
                "README.md has a table row for `{}`; the table is {}",
                setting.key,
                docs::PATH
            );
        }
    }
}
