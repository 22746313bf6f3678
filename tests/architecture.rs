//! The connector library's imports run one way: domain ← base ← stages ← wiring, with no circle.
//!
//! Reads every source file of `crates/connector/src`, strips comments (doc links do not count),
//! collects the `crate::module` and `super::` paths each top-level module uses, and checks the
//! graph: no import circle between top-level modules, and no module importing from a layer above
//! its own. (That the library depends on neither the emulator nor the dev kit is checked with
//! `cargo tree` by `scripts/check-architecture.sh`.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of its own layer or of lower ones.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "domain",
        &["cad", "mapping", "conformance", "validate", "keygen"],
    ),
    (
        "base",
        &[
            "metrics",
            "offsets",
            "shutdown",
            "telemetry",
            "config",
            "kafka",
            "lag",
            "schedule",
            "secret",
        ],
    ),
    ("services", &["auth", "rate_limit", "health"]),
    (
        "stages",
        &[
            "source",
            "transactions",
            "transform",
            "batcher",
            "submitter",
            "acker",
            "dead_letter",
            "window",
        ],
    ),
    ("mesh", &["mesh"]),
    ("wiring", &["app"]),
    // The fuzz harnesses drive every boundary; nothing in the library uses them.
    ("harness", &["fuzz"]),
];

fn library_root() -> PathBuf {
    common::repo_path("crates/connector/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`mesh/poller.rs` → `mesh`, `lib.rs` → none).
fn top_module(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib").then_some(name)
}

/// The text without `//` comments and without the body of string literals.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut prev = '\0';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_string && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// The top-level modules `code` names through `crate::`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            refs.insert(name);
        } else if after.starts_with('{') {
            // `use crate::{a, b::c}`: every first segment inside the braces.
            let inner = &after[1..after.find('}').unwrap_or(after.len())];
            for part in inner.split(',') {
                let first = part.trim().split("::").next().unwrap_or("").trim();
                if !first.is_empty() && first != "self" {
                    refs.insert(first.to_owned());
                }
            }
        }
        rest = after;
    }
    refs
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = library_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = top_module(&root, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may use anything; only the library's own code counts.
        let code = code_only(text.split("#[cfg(test)]").next().unwrap());
        let refs = crate_refs(&code);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

#[test]
fn every_top_level_module_of_the_library_has_a_layer() {
    let unplaced: Vec<String> = graph()
        .keys()
        .filter(|m| layer_of(m).is_none())
        .cloned()
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer in tests/architecture.rs: {unplaced:?}"
    );
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let mut upward = Vec::new();
    for (module, refs) in graph() {
        let Some(own) = layer_of(&module) else {
            continue;
        };
        for r in refs {
            if let Some(theirs) = layer_of(&r) {
                if theirs > own {
                    upward.push(format!(
                        "{module} ({}) uses {r} ({})",
                        LAYERS[own].0, LAYERS[theirs].0
                    ));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layers: {upward:#?}");
}

#[test]
fn the_library_has_no_import_circle() {
    let graph = graph();
    // Depth-first search for a back edge; reports the first circle found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut circle = path[i..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let circle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "import circle: {}",
            circle.unwrap().join(" → ")
        );
    }
}

#[test]
fn the_checker_sees_imports_and_ignores_comments() {
    let code = code_only(
        "use crate::{acker::Ack, kafka};\n// crate::app\nlet s = \"crate::mesh\";\nuse crate::config::X;",
    );
    let refs = crate_refs(&code);
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["acker", "config", "kafka"]
    );
}
