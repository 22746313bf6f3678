//! Turns each differential constraint into an executable check, or into the reason why it
//! cannot be checked from the bundled files. The constraint ids produced here are the same
//! as those of [`super::constraints()`].

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::constraints::{constraint_id, context_id};
use super::model::{ElementDef, Max, StructureDef, TypedValue};
use super::path::{join_id, parse_id, values_at, Seg};
use super::primitive::is_datatype;
use super::tables::known_extension;
use super::terminology::{CodeSet, Terminology};

/// One test that an item must pass to belong to a slice.
#[derive(Debug, Clone)]
pub enum DiscTest {
    /// The value(s) at `path` equal (fixed) or contain (pattern) `expected`.
    Value {
        path: String,
        expected: Value,
        pattern: bool,
    },
    /// Something is (or is not) present at `path`.
    Exists { path: String, exists: bool },
    /// A type slice of a choice element (`value[x]:valueQuantity`): the JSON key.
    ChoiceKey(String),
    /// `type` discriminator on `$this` of a choice element: allowed JSON keys.
    ChoiceKeys(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct SliceMatcher {
    pub tests: Vec<DiscTest>,
}

/// A compiled step of an element id.
#[derive(Debug, Clone)]
pub struct CSeg {
    pub name: String,
    pub slice: Option<Arc<SliceMatcher>>,
}

#[derive(Debug, Clone)]
pub enum CheckKind {
    Min(u32),
    Max(u32),
    Fixed(TypedValue),
    Pattern(TypedValue),
    Required {
        value_set: String,
        codes: CodeSet,
    },
    Types(Vec<String>),
    /// Extension profiles: every instance is checked against its own definition by the
    /// extension walker, so nothing is run for the element itself.
    ExtensionProfiles,
    TargetTypes(Vec<String>),
    Slicing {
        closed: bool,
        slices: Vec<Arc<SliceMatcher>>,
    },
}

#[derive(Debug, Clone)]
pub struct Check {
    pub rule: String,
    pub element_id: String,
    /// Element id of the parent (the id without its last step).
    pub parent_id: String,
    /// Steps after the root (the root is the resource or extension itself).
    pub segs: Vec<CSeg>,
    pub kind: CheckKind,
}

/// A StructureDefinition ready to run.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub sd: StructureDef,
    pub checks: Vec<Check>,
    /// `max` of the root `Extension` element (how often the extension may repeat on one
    /// element); run by the extension walker.
    pub root_max: Option<(String, u32)>,
    /// Context constraint id, when the contexts can be evaluated.
    pub context_rule: Option<String>,
    /// Constraint ids that compiled to something executable.
    pub checked: Vec<String>,
    /// Constraint ids that did not, with the reason.
    pub unchecked: Vec<(String, String)>,
}

/// Other definitions a compile step may look at.
pub struct Env<'a> {
    pub terminology: &'a Terminology,
    /// url -> (type) of every bundled StructureDefinition.
    pub sd_types: &'a HashMap<String, String>,
}

pub fn compile(sd: &StructureDef, env: &Env<'_>) -> Compiled {
    let mut c = Compiled {
        sd: sd.clone(),
        checks: Vec::new(),
        root_max: None,
        context_rule: None,
        checked: Vec::new(),
        unchecked: Vec::new(),
    };
    if !sd.contexts.is_empty() {
        let id = context_id(sd);
        match contexts_evaluable(sd) {
            Ok(()) => {
                c.context_rule = Some(id.clone());
                c.checked.push(id);
            }
            Err(reason) => c.unchecked.push((id, reason)),
        }
    }
    for el in &sd.elements {
        compile_element(sd, el, env, &mut c);
    }
    c
}

fn contexts_evaluable(sd: &StructureDef) -> Result<(), String> {
    for ctx in &sd.contexts {
        if ctx.kind != "element" {
            return Err(format!("context type {} is not evaluated", ctx.kind));
        }
        let first = ctx.expression.split('.').next().unwrap_or_default();
        let generic = matches!(
            ctx.expression.as_str(),
            "Element" | "Resource" | "DomainResource"
        );
        if !generic && is_datatype(first) {
            return Err(format!(
                "context {} is a datatype path; the host element's datatype is not known without the base definitions",
                ctx.expression
            ));
        }
    }
    Ok(())
}

fn compile_element(sd: &StructureDef, el: &ElementDef, env: &Env<'_>, c: &mut Compiled) {
    let segs = parse_id(&el.id);
    let is_root = segs.len() == 1;
    let resolved = if is_root {
        Ok(Vec::new())
    } else {
        resolve_segs(sd, &segs)
    };
    let mut pending: Vec<(&str, Result<CheckKind, String>)> = Vec::new();
    let mut add = |kind_name: &'static str, result: Result<CheckKind, String>| {
        pending.push((kind_name, result))
    };
    if let Some(min) = el.min {
        if is_root {
            add(
                "min",
                Err("min of the root element has no instance meaning here".into()),
            );
        } else {
            add("min", Ok(CheckKind::Min(min)));
        }
    }
    if let Some(max) = el.max {
        let n = match max {
            Max::N(n) => n,
            Max::Unbounded => u32::MAX,
        };
        if is_root {
            let rule = constraint_id(sd, &el.id, "max");
            if sd.is_extension() {
                c.root_max = Some((rule.clone(), n));
                c.checked.push(rule);
            } else {
                c.unchecked.push((
                    rule,
                    "max of a resource root has no instance meaning".into(),
                ));
            }
        } else {
            add("max", Ok(CheckKind::Max(n)));
        }
    }
    if let Some(f) = &el.fixed {
        add("fixed", Ok(CheckKind::Fixed(f.clone())));
    }
    if let Some(p) = &el.pattern {
        add("pattern", Ok(CheckKind::Pattern(p.clone())));
    }
    if let Some(b) = &el.binding {
        let r = if b.strength != "required" {
            Err(format!(
                "{} binding: codes outside the ValueSet are allowed, nothing to enforce",
                b.strength
            ))
        } else {
            match &b.value_set {
                None => Err("required binding without a ValueSet".into()),
                Some(vs) => env
                    .terminology
                    .expand(vs)
                    .map(|codes| CheckKind::Required {
                        value_set: vs.clone(),
                        codes,
                    })
                    .map_err(|e| format!("required ValueSet is not enumerable locally: {e}")),
            }
        };
        add("binding", r);
    }
    if !el.types.is_empty() {
        let codes: Vec<String> = el.types.iter().map(|t| t.code.clone()).collect();
        add("type", Ok(CheckKind::Types(codes)));
        let profiles: Vec<&String> = el.types.iter().flat_map(|t| &t.profiles).collect();
        if !profiles.is_empty() {
            let r = if el.types.iter().all(|t| t.code == "Extension") {
                match profiles.iter().find(|p| {
                    let bare = p.split('|').next().unwrap_or(p);
                    !env.sd_types.contains_key(bare) && known_extension(bare).is_none()
                }) {
                    Some(p) => Err(format!(
                        "extension definition {p} is not bundled (an instance would be reported as extension:unknown-url)"
                    )),
                    None => Ok(CheckKind::ExtensionProfiles),
                }
            } else {
                Err("type profiles of non-extension elements are not evaluated".into())
            };
            add("profile", r);
        }
        let targets: Vec<&String> = el.types.iter().flat_map(|t| &t.target_profiles).collect();
        if !targets.is_empty() {
            let mut types = Vec::new();
            let mut err = None;
            for t in targets {
                let bare = t.split('|').next().unwrap_or(t);
                if let Some(ty) = env.sd_types.get(bare) {
                    types.push(ty.clone());
                } else if let Some(ty) =
                    bare.strip_prefix("http://hl7.org/fhir/StructureDefinition/")
                {
                    types.push(ty.to_string());
                } else {
                    err = Some(format!("target profile {t} is not bundled"));
                }
            }
            add(
                "targetProfile",
                match err {
                    Some(e) => Err(e),
                    None => Ok(CheckKind::TargetTypes(types)),
                },
            );
        }
    }
    if let Some(s) = &el.slicing {
        let r = if s.ordered == Some(true) {
            Err("ordered slicing is not evaluated".into())
        } else if !matches!(s.rules.as_str(), "open" | "closed" | "openAtEnd") {
            Err(format!("slicing rules {} unknown", s.rules))
        } else {
            // Every slice of this element must be identifiable.
            let prefix = format!("{}:", el.id);
            let mut slices = Vec::new();
            let mut err = None;
            for other in &sd.elements {
                if let Some(rest) = other.id.strip_prefix(&prefix) {
                    if !rest.contains('.') && !rest.contains(':') {
                        let segs = parse_id(&other.id);
                        match slice_matcher(sd, &segs) {
                            Ok(m) => slices.push(Arc::new(m)),
                            Err(e) => err = Some(e),
                        }
                    }
                }
            }
            match err {
                Some(e) => Err(e),
                None => Ok(CheckKind::Slicing {
                    closed: s.rules == "closed",
                    slices,
                }),
            }
        };
        add("slicing", r);
    }
    for (kind_name, result) in pending {
        let rule = constraint_id(sd, &el.id, kind_name);
        match result.and_then(|k| resolved.clone().map(|s| (k, s))) {
            Ok((kind, segs)) => {
                c.checked.push(rule.clone());
                c.checks.push(Check {
                    rule,
                    element_id: el.id.clone(),
                    parent_id: el
                        .id
                        .rsplit_once('.')
                        .map(|(p, _)| p.to_string())
                        .unwrap_or_default(),
                    segs,
                    kind,
                });
            }
            Err(reason) => c.unchecked.push((rule, reason)),
        }
    }
    for inv in &el.invariants {
        let rule = constraint_id(sd, &el.id, &format!("constraint:{}", inv.key));
        c.unchecked
            .push((rule, "FHIRPath invariant: no FHIRPath engine".into()));
    }
    if el.must_support.is_some() {
        c.unchecked.push((
            constraint_id(sd, &el.id, "mustSupport"),
            "mustSupport is a system obligation, not an instance rule".into(),
        ));
    }
    if el.is_modifier.is_some() {
        c.unchecked.push((
            constraint_id(sd, &el.id, "isModifier"),
            "isModifier is a declaration, not an instance rule".into(),
        ));
    }
}

/// Compiles the steps after the root, with a slice matcher for every sliced step.
fn resolve_segs(sd: &StructureDef, segs: &[Seg]) -> Result<Vec<CSeg>, String> {
    let mut out = Vec::new();
    for i in 1..segs.len() {
        let slice = match &segs[i].slice {
            Some(_) => Some(Arc::new(slice_matcher(sd, &segs[..=i])?)),
            None => None,
        };
        out.push(CSeg {
            name: segs[i].name.clone(),
            slice,
        });
    }
    Ok(out)
}

/// How to recognise members of the slice named by the last step of `segs`.
fn slice_matcher(sd: &StructureDef, segs: &[Seg]) -> Result<SliceMatcher, String> {
    let last = segs.last().ok_or("empty element id")?;
    let slice_name = last.slice.clone().ok_or("not a slice")?;
    let slice_id = join_id(segs);
    let mut base = segs.to_vec();
    if let Some(b) = base.last_mut() {
        b.slice = None;
    }
    let base_id = join_id(&base);
    let slicing = sd.element(&base_id).and_then(|e| e.slicing.clone());
    let slice_el = sd.element(&slice_id);
    let is_ext = last.name == "extension" || last.name == "modifierExtension";

    let discriminators: Vec<(String, String)> = match &slicing {
        Some(s) => s
            .discriminators
            .iter()
            .map(|d| (d.kind.clone(), d.path.clone()))
            .collect(),
        None if is_ext => vec![("value".into(), "url".into())],
        None if last.name.ends_with("[x]") => {
            let prefix = last.name.trim_end_matches("[x]");
            if super::path::is_choice_key(&slice_name, prefix) {
                return Ok(SliceMatcher {
                    tests: vec![DiscTest::ChoiceKey(slice_name)],
                });
            }
            return Err(format!("type slice {slice_id} is not named after a type"));
        }
        None => {
            return Err(format!(
                "{base_id} is sliced but its slicing is not in this differential"
            ))
        }
    };

    let mut tests = Vec::new();
    for (kind, path) in discriminators {
        match kind.as_str() {
            "value" | "pattern" => {
                if is_ext && path == "url" {
                    // Extension slices: the url is the extension's canonical (type profile),
                    // else a fixed url in the differential, else (inline complex extension
                    // parts) the slice name itself.
                    let from_profile = slice_el
                        .and_then(|e| e.types.iter().flat_map(|t| &t.profiles).next())
                        .map(|p| p.split('|').next().unwrap_or(p).to_string());
                    let from_fixed = sd
                        .element(&format!("{slice_id}.url"))
                        .and_then(|e| e.fixed.as_ref())
                        .map(|f| f.value.clone());
                    let expected = from_profile
                        .map(Value::String)
                        .or(from_fixed)
                        .unwrap_or_else(|| Value::String(slice_name.clone()));
                    tests.push(DiscTest::Value {
                        path,
                        expected,
                        pattern: false,
                    });
                } else {
                    let (expected, pattern) = discriminator_value(sd, &slice_id, &path)
                        .ok_or_else(|| format!("slice {slice_id}: no fixed/pattern value at discriminator path {path}"))?;
                    tests.push(DiscTest::Value {
                        path,
                        expected,
                        pattern,
                    });
                }
            }
            "exists" => {
                let el = sd.element(&format!("{slice_id}.{path}")).ok_or_else(|| {
                    format!("slice {slice_id}: exists discriminator {path} not constrained")
                })?;
                let exists = match (el.min, el.max) {
                    (Some(m), _) if m >= 1 => true,
                    (_, Some(Max::N(0))) => false,
                    _ => return Err(format!("slice {slice_id}: exists discriminator {path} is neither required nor prohibited")),
                };
                tests.push(DiscTest::Exists { path, exists });
            }
            "type" if path == "$this" && last.name.ends_with("[x]") => {
                let prefix = last.name.trim_end_matches("[x]");
                let el = slice_el.ok_or_else(|| format!("slice {slice_id} not in differential"))?;
                tests.push(DiscTest::ChoiceKeys(
                    el.types
                        .iter()
                        .map(|t| format!("{prefix}{}", super::primitive::suffix_from_type(&t.code)))
                        .collect(),
                ));
            }
            other => {
                return Err(format!(
                    "slice {slice_id}: discriminator {other} on {path} is not evaluated"
                ))
            }
        }
    }
    Ok(SliceMatcher { tests })
}

/// The fixed or pattern value that identifies a slice at discriminator `path`: on the element
/// at that path, or inside a fixed/pattern of an element on the way there.
fn discriminator_value(sd: &StructureDef, slice_id: &str, path: &str) -> Option<(Value, bool)> {
    let steps: Vec<&str> = if path == "$this" {
        Vec::new()
    } else {
        path.split('.').collect()
    };
    for cut in (0..=steps.len()).rev() {
        let el_id = if cut == 0 {
            slice_id.to_string()
        } else {
            format!("{slice_id}.{}", steps[..cut].join("."))
        };
        let Some(el) = sd.element(&el_id) else {
            continue;
        };
        let (tv, pattern) = match (&el.fixed, &el.pattern) {
            (Some(f), _) => (f, false),
            (None, Some(p)) => (p, true),
            _ => continue,
        };
        let rest = steps[cut..].join(".");
        if rest.is_empty() {
            return Some((tv.value.clone(), pattern));
        }
        return values_at(&tv.value, &rest)
            .first()
            .map(|v| ((*v).clone(), pattern));
    }
    None
}
