//! Local terminology: the bundled CodeSystems and ValueSets, expanded from `compose` only
//! (a ValueSet is "enumerable" when every include lists its concepts or names a bundled
//! CodeSystem with `content = complete`, without filters).

use std::collections::{BTreeSet, HashMap};

use super::model::{CodeSystemDef, ValueSetDef, VsComponent};

/// (system, code) pairs of an enumerated ValueSet.
pub type CodeSet = BTreeSet<(String, String)>;

#[derive(Debug, Default)]
pub struct Terminology {
    pub code_systems: HashMap<String, CodeSystemDef>,
    pub value_sets: HashMap<String, ValueSetDef>,
}

impl Terminology {
    /// Enumerates a ValueSet, or says why it cannot be enumerated locally.
    pub fn expand(&self, url: &str) -> Result<CodeSet, String> {
        self.expand_depth(url, 0)
    }

    fn expand_depth(&self, url: &str, depth: usize) -> Result<CodeSet, String> {
        if depth > 8 {
            return Err(format!("ValueSet {url}: include depth exceeded"));
        }
        // Canonical references may carry a version (`url|version`): the bundled one is used.
        let bare = url.split('|').next().unwrap_or(url);
        let vs = self
            .value_sets
            .get(bare)
            .ok_or_else(|| format!("ValueSet {bare} is not bundled"))?;
        if vs.includes.is_empty() {
            return Err(format!("ValueSet {bare} has no compose.include"));
        }
        let mut out = CodeSet::new();
        for inc in &vs.includes {
            out.extend(self.component(bare, inc, depth)?);
        }
        for exc in &vs.excludes {
            for pair in self.component(bare, exc, depth)? {
                out.remove(&pair);
            }
        }
        Ok(out)
    }

    fn component(&self, vs: &str, c: &VsComponent, depth: usize) -> Result<CodeSet, String> {
        if c.filter_count > 0 {
            return Err(format!("ValueSet {vs}: compose uses filters"));
        }
        let from_system = match &c.system {
            Some(system) if !c.concepts.is_empty() => Some(
                c.concepts
                    .iter()
                    .map(|code| (system.clone(), code.clone()))
                    .collect::<CodeSet>(),
            ),
            Some(system) => {
                let cs = self.code_systems.get(system).ok_or_else(|| {
                    format!(
                        "ValueSet {vs} includes all of CodeSystem {system}, which is not bundled"
                    )
                })?;
                if cs.content != "complete" {
                    return Err(format!(
                        "CodeSystem {system} content is {}, not complete",
                        cs.content
                    ));
                }
                Some(
                    cs.codes
                        .iter()
                        .map(|code| (system.clone(), code.clone()))
                        .collect(),
                )
            }
            None => None,
        };
        let mut from_vs: Option<CodeSet> = None;
        for inner in &c.value_sets {
            let e = self.expand_depth(inner, depth + 1)?;
            from_vs = Some(match from_vs {
                None => e,
                Some(acc) => acc.intersection(&e).cloned().collect(),
            });
        }
        match (from_system, from_vs) {
            (Some(a), Some(b)) => Ok(a.intersection(&b).cloned().collect()),
            (Some(a), None) => Ok(a),
            (None, Some(b)) => Ok(b),
            (None, None) => Err(format!(
                "ValueSet {vs}: include names neither system nor valueSet"
            )),
        }
    }

    /// For a bundled complete CodeSystem: whether `code` is defined in it. `None` when the
    /// system is not bundled or not complete (nothing can be said).
    pub fn code_in_system(&self, system: &str, code: &str) -> Option<bool> {
        let cs = self.code_systems.get(system)?;
        if cs.content != "complete" {
            return None;
        }
        Some(if cs.case_sensitive {
            cs.codes.iter().any(|c| c == code)
        } else {
            cs.codes.iter().any(|c| c.eq_ignore_ascii_case(code))
        })
    }
}
