//! Runs compiled checks against FHIR JSON: profile selection, element constraints,
//! extensions (known url, context, own definition) and code system membership.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::compile::{compile, CSeg, Check, CheckKind, Compiled, DiscTest, Env, SliceMatcher};
use super::constraints::{of_structure_definition, ConstraintInfo};
use super::model::TypedValue;
use super::parse::{parse_resource, Resource};
use super::path::{children, is_choice_key, push_index, values_at, Node};
use super::primitive::{shape_problem, suffix_from_type, type_from_suffix};
use super::tables::{self, ExtValue, KnownExtension};
use super::terminology::Terminology;
use super::ConformanceError;

/// One broken rule. Never carries instance data: the message names the path and the rule
/// (and, where useful, what the profile expects), not the value found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Violation {
    /// Stable rule id, e.g. `UKCore-Patient:Patient.identifier:nhsNumber.value:min`.
    pub rule: String,
    /// FHIR path with indices, e.g. `Bundle.entry[3].resource.identifier[0].value`.
    pub path: String,
    pub message: String,
}

fn v(rule: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        rule: rule.into(),
        path: path.into(),
        message: message.into(),
    }
}

/// Loaded and compiled conformance resources.
#[derive(Debug)]
pub struct Registry {
    pub(super) terminology: Terminology,
    pub(super) profiles: Vec<Compiled>,
    by_url: HashMap<String, usize>,
    /// resource type -> default profile (index into `profiles`).
    defaults: HashMap<String, usize>,
}

/// `fullUrl` (and `Type/id`) -> resource type, for reference target checks.
type Index = HashMap<String, String>;

impl Registry {
    /// Parses and compiles a set of `(file name, XML)` conformance resources.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Self, ConformanceError> {
        let mut terminology = Terminology::default();
        let mut sds = Vec::new();
        for (name, xml) in files {
            match parse_resource(name, xml)? {
                Resource::StructureDefinition(sd) => sds.push(*sd),
                Resource::CodeSystem(cs) => {
                    terminology.code_systems.insert(cs.url.clone(), cs);
                }
                Resource::ValueSet(vs) => {
                    terminology.value_sets.insert(vs.url.clone(), vs);
                }
            }
        }
        let sd_types: HashMap<String, String> = sds
            .iter()
            .map(|s| (s.url.clone(), s.type_.clone()))
            .collect();
        let env = Env {
            terminology: &terminology,
            sd_types: &sd_types,
        };
        let mut profiles = Vec::new();
        let mut by_url = HashMap::new();
        for sd in &sds {
            if by_url.insert(sd.url.clone(), profiles.len()).is_some() {
                return Err(ConformanceError::Duplicate(sd.url.clone()));
            }
            profiles.push(compile(sd, &env));
        }
        let defaults = profiles
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                tables::default_profile(&c.sd.type_).as_deref() == Some(c.sd.url.as_str())
            })
            .map(|(i, c)| (c.sd.type_.clone(), i))
            .collect();
        Ok(Registry {
            terminology,
            profiles,
            by_url,
            defaults,
        })
    }

    pub(super) fn profile(&self, url: &str) -> Option<&Compiled> {
        let bare = url.split('|').next().unwrap_or(url);
        self.by_url.get(bare).map(|i| &self.profiles[*i])
    }

    /// Every differential constraint of the loaded StructureDefinitions.
    pub fn constraints(&self) -> Vec<ConstraintInfo> {
        self.profiles
            .iter()
            .flat_map(|p| of_structure_definition(&p.sd))
            .collect()
    }

    /// Ids of the constraints that compiled to an executable check.
    pub fn checked_ids(&self) -> std::collections::BTreeSet<String> {
        self.profiles
            .iter()
            .flat_map(|p| p.checked.iter().cloned())
            .collect()
    }

    /// Checks a Bundle and every entry resource.
    pub fn check_bundle(&self, bundle: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            out.push(v(
                "input:not-a-bundle",
                "Bundle",
                "the input is not a FHIR Bundle (resourceType)",
            ));
            return out;
        }
        let mut index = Index::new();
        let entries = bundle.get("entry").and_then(Value::as_array);
        for e in entries.into_iter().flatten() {
            let (Some(r), Some(rt)) = (
                e.get("resource"),
                e.pointer("/resource/resourceType").and_then(Value::as_str),
            ) else {
                continue;
            };
            if let Some(fu) = e.get("fullUrl").and_then(Value::as_str) {
                index.insert(fu.to_string(), rt.to_string());
            }
            if let Some(id) = r.get("id").and_then(Value::as_str) {
                index.insert(format!("{rt}/{id}"), rt.to_string());
            }
        }
        self.check_profiles(bundle, "Bundle", &index, &mut out);
        for (i, e) in entries.into_iter().flatten().enumerate() {
            if let Some(r) = e.get("resource").filter(|r| r.is_object()) {
                self.check_profiles(r, &format!("Bundle.entry[{i}].resource"), &index, &mut out);
            }
        }
        if let Some(obj) = bundle.as_object() {
            self.walk(
                obj,
                &mut String::from("Bundle"),
                &mut String::from("Bundle"),
                false,
                &mut out,
            );
        }
        out
    }

    /// Checks one resource on its own (references are not resolved).
    pub fn check_resource(&self, resource: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            out.push(v(
                "input:no-resourceType",
                "",
                "the input has no resourceType",
            ));
            return out;
        };
        self.check_profiles(resource, rt, &Index::new(), &mut out);
        if let Some(obj) = resource.as_object() {
            self.walk(
                obj,
                &mut rt.to_string(),
                &mut rt.to_string(),
                false,
                &mut out,
            );
        }
        out
    }

    /// Chooses the profiles of one resource and runs their checks.
    fn check_profiles(
        &self,
        resource: &Value,
        path: &str,
        index: &Index,
        out: &mut Vec<Violation>,
    ) {
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            out.push(v(
                "input:no-resourceType",
                path,
                "resource has no resourceType",
            ));
            return;
        };
        let mut chosen: Vec<&Compiled> = Vec::new();
        let declared = resource.pointer("/meta/profile").and_then(Value::as_array);
        for (j, p) in declared.into_iter().flatten().enumerate() {
            let Some(url) = p.as_str() else { continue };
            let target = self.profile(url).or_else(|| {
                tables::ADS_PROFILE_BASES
                    .iter()
                    .find(|(ads, _)| *ads == url.split('|').next().unwrap_or(url))
                    .and_then(|(_, base)| self.profile(base))
            });
            match target {
                Some(c) if c.sd.is_extension() || c.sd.type_ != rt => out.push(v(
                    "profile-selection:type-mismatch",
                    format!("{path}.meta.profile[{j}]"),
                    format!("declared profile constrains {} but the resource is a {rt}", c.sd.type_),
                )),
                Some(c) => {
                    if !chosen.iter().any(|x| x.sd.url == c.sd.url) {
                        chosen.push(c);
                    }
                }
                None => out.push(v(
                    "profile-selection:unknown-profile",
                    format!("{path}.meta.profile[{j}]"),
                    "declared profile is neither a bundled UK Core profile nor a known ADS profile; the resource-type default is used instead",
                )),
            }
        }
        if chosen.is_empty() {
            match self.defaults.get(rt).map(|i| &self.profiles[*i]) {
                Some(c) => chosen.push(c),
                None => {
                    out.push(v(
                        "profile-selection:no-profile",
                        path,
                        format!("no UK Core profile is bundled for resource type {rt}"),
                    ));
                    return;
                }
            }
        }
        for c in chosen {
            let root = Node::root(resource, path);
            run_checks(c, &root, index, out);
        }
    }

    /// Walks every object: checks each extension (known url, context, own definition) and
    /// each Coding whose system is a bundled complete CodeSystem. `jpath` (printable path with
    /// indices) and `epath` (element path without indices, for extension contexts) are
    /// buffers extended and truncated in place.
    fn walk(
        &self,
        obj: &Map<String, Value>,
        jpath: &mut String,
        epath: &mut String,
        in_extension: bool,
        out: &mut Vec<Violation>,
    ) {
        // A (contained or entry) resource starts a new element path; restored on exit.
        let mut outer_epath = None;
        if let Some(rt) = obj
            .get("resourceType")
            .and_then(Value::as_str)
            .filter(|_| !in_extension)
        {
            outer_epath = Some(std::mem::replace(epath, rt.to_string()));
        }
        self.check_coding(obj, jpath, out);
        for (k, val) in obj {
            let (name, shadow) = match k.strip_prefix('_') {
                Some(n) => (n, true),
                None => (k.as_str(), false),
            };
            let jl = jpath.len();
            jpath.push('.');
            jpath.push_str(name);
            if !shadow && (name == "extension" || name == "modifierExtension") {
                if let Some(arr) = val.as_array() {
                    let host = epath.clone();
                    for (i, item) in arr.iter().enumerate() {
                        let il = jpath.len();
                        push_index(jpath, i);
                        let url = item.get("url").and_then(Value::as_str);
                        let relative = url.is_some_and(|u| !u.contains(':'));
                        // Inside an extension, relative urls name its own parts (checked by its
                        // definition), not extensions of their own.
                        if !(in_extension && relative) {
                            self.check_extension(item, arr, i, &host, jpath, out);
                        }
                        if let Some(o) = item.as_object() {
                            let mut ext_epath = String::from("Extension");
                            self.walk(o, jpath, &mut ext_epath, true, out);
                        }
                        jpath.truncate(il);
                    }
                }
                jpath.truncate(jl);
                continue;
            }
            let el = epath.len();
            epath.push('.');
            epath.push_str(name);
            match val {
                Value::Object(o) => {
                    let inside = in_extension && !o.contains_key("resourceType");
                    self.walk(o, jpath, epath, inside, out);
                }
                Value::Array(a) => {
                    for (i, item) in a.iter().enumerate() {
                        if let Some(o) = item.as_object() {
                            let il = jpath.len();
                            push_index(jpath, i);
                            let inside = in_extension && !o.contains_key("resourceType");
                            self.walk(o, jpath, epath, inside, out);
                            jpath.truncate(il);
                        }
                    }
                }
                _ => {}
            }
            epath.truncate(el);
            jpath.truncate(jl);
        }
        if let Some(outer) = outer_epath {
            *epath = outer;
        }
    }

    fn check_coding(&self, obj: &Map<String, Value>, path: &str, out: &mut Vec<Violation>) {
        let (Some(system), Some(code)) = (
            obj.get("system").and_then(Value::as_str),
            obj.get("code").and_then(Value::as_str),
        ) else {
            return;
        };
        if self.terminology.code_in_system(system, code) == Some(false) {
            let id = &self.terminology.code_systems[system].id;
            out.push(v(
                format!("CodeSystem/{id}:code-defined"),
                format!("{path}.code"),
                format!("code is not defined in the bundled complete CodeSystem {system}"),
            ));
        }
    }

    fn check_extension(
        &self,
        item: &Value,
        siblings: &[Value],
        pos: usize,
        host: &str,
        path: &str,
        out: &mut Vec<Violation>,
    ) {
        let Some(url) = item.get("url").and_then(Value::as_str) else {
            out.push(v(
                "FHIR-R4:Extension.url:min",
                path,
                "extension has no url (Extension.url is 1..1)",
            ));
            return;
        };
        let url = url.split('|').next().unwrap_or(url);
        if let Some(c) = self.profile(url).filter(|c| c.sd.is_extension()) {
            if let Some(rule) = &c.context_rule {
                let allowed: Vec<&str> =
                    c.sd.contexts
                        .iter()
                        .map(|x| x.expression.as_str())
                        .collect();
                if context_verdict(&allowed, host) == Some(false) {
                    out.push(v(
                        rule.clone(),
                        path,
                        format!(
                            "extension {} is used on {host}, which is not one of its contexts ({})",
                            c.sd.id,
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            if let Some((rule, max)) = &c.root_max {
                let same: Vec<usize> = siblings
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.get("url").and_then(Value::as_str) == Some(url))
                    .map(|(i, _)| i)
                    .collect();
                // Report once, on the first occurrence beyond the limit.
                if same.len() > *max as usize && same.get(*max as usize) == Some(&pos) {
                    out.push(v(
                        rule.clone(),
                        path,
                        format!("extension {} may appear at most {max} time(s) on one element, found {}", c.sd.id, same.len()),
                    ));
                }
            }
            let root = Node::root(item, path);
            run_checks(c, &root, &Index::new(), out);
        } else if let Some(k) = tables::known_extension(url) {
            check_known_extension(k, item, host, path, out);
        } else {
            out.push(v(
                "extension:unknown-url",
                path,
                "extension url is neither a bundled UK Core extension nor in the ADS / FHIR core extension tables, so it cannot be checked",
            ));
        }
    }
}

/// Whether an extension may sit on element `host` (a FHIR path without indices, e.g.
/// `Patient.identifier`). `None` when it cannot be told (datatype contexts).
pub fn context_verdict(contexts: &[&str], host: &str) -> Option<bool> {
    let is_root = !host.contains('.') && host != "Extension";
    let normalized = normalize_choice(host);
    let mut unknown = false;
    for ctx in contexts {
        let matched = match *ctx {
            "Element" => true,
            "Resource" | "DomainResource" => is_root,
            c if c == host || c == normalized => true,
            c => {
                let first = c.split('.').next().unwrap_or_default();
                if super::primitive::is_datatype(first) && first != "Extension" {
                    unknown = true;
                }
                false
            }
        };
        if matched {
            return Some(true);
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// `MedicationAdministration.effectiveDateTime` -> `MedicationAdministration.effective[x]`.
fn normalize_choice(path: &str) -> String {
    path.split('.')
        .enumerate()
        .map(|(i, seg)| {
            if i > 0 {
                for (pos, ch) in seg.char_indices().skip(1) {
                    if ch.is_ascii_uppercase() && type_from_suffix(&seg[pos..]).is_some() {
                        return format!("{}[x]", &seg[..pos]);
                    }
                }
            }
            seg.to_string()
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn check_known_extension(
    k: &KnownExtension,
    item: &Value,
    host: &str,
    path: &str,
    out: &mut Vec<Violation>,
) {
    if context_verdict(k.contexts, host) == Some(false) {
        out.push(v(
            format!("{}:context", k.rule),
            path,
            format!(
                "extension is used on {host}, which is not one of its contexts ({})",
                k.contexts.join(", ")
            ),
        ));
    }
    let Some(obj) = item.as_object() else {
        out.push(v(
            format!("{}:type", k.rule),
            path,
            "extension is not a JSON object",
        ));
        return;
    };
    let value_keys: Vec<&String> = obj
        .keys()
        .filter(|key| is_choice_key(key, "value"))
        .collect();
    match k.value {
        ExtValue::Type(t) => {
            let want = format!("value{}", suffix_from_type(t));
            match value_keys.as_slice() {
                [only] if **only == want => {
                    if let Some(p) = shape_problem(t, &obj[only.as_str()]) {
                        out.push(v(
                            format!("{}:value[x]:type", k.rule),
                            format!("{path}.{want}"),
                            format!("value {p} ({t} expected)"),
                        ));
                    }
                }
                _ => out.push(v(
                    format!("{}:value[x]:type", k.rule),
                    path,
                    format!(
                        "extension must carry exactly one value of type {t} ({want}) [{}]",
                        k.source
                    ),
                )),
            }
        }
        ExtValue::Complex(parts) => {
            if !value_keys.is_empty() {
                out.push(v(
                    format!("{}:value[x]:max", k.rule),
                    path,
                    "complex extension must not have a value[x]",
                ));
            }
            let subs = obj.get("extension").and_then(Value::as_array);
            if subs.is_none_or(|s| s.is_empty()) {
                out.push(v(
                    format!("{}:extension:min", k.rule),
                    path,
                    "complex extension has no sub-extensions",
                ));
            }
            if parts.is_empty() {
                return;
            }
            for (i, s) in subs.into_iter().flatten().enumerate() {
                let sp = format!("{path}.extension[{i}]");
                let su = s.get("url").and_then(Value::as_str).unwrap_or_default();
                match parts.iter().find(|(u, _)| *u == su) {
                    None => out.push(v(
                        format!("{}:extension:url", k.rule),
                        sp,
                        format!(
                            "sub-extension url is not one of {:?}",
                            parts.iter().map(|p| p.0).collect::<Vec<_>>()
                        ),
                    )),
                    Some((_, t)) => {
                        let want = format!("value{}", suffix_from_type(t));
                        match s.get(&want) {
                            Some(val) => {
                                if let Some(p) = shape_problem(t, val) {
                                    out.push(v(
                                        format!("{}:extension:{su}:type", k.rule),
                                        format!("{sp}.{want}"),
                                        format!("value {p} ({t} expected)"),
                                    ));
                                }
                            }
                            None => out.push(v(
                                format!("{}:extension:{su}:type", k.rule),
                                sp,
                                format!("sub-extension {su} must carry a {want}"),
                            )),
                        }
                    }
                }
            }
        }
    }
}

/// Instances of the element at `segs` under `root`.
fn resolve<'a>(root: &Node<'a>, segs: &[CSeg]) -> Vec<Node<'a>> {
    let mut cur = vec![root.clone()];
    for seg in segs {
        let mut next = Vec::new();
        for n in &cur {
            next.extend(step(n, seg));
        }
        cur = next;
        if cur.is_empty() {
            break;
        }
    }
    cur
}

fn step<'a>(n: &Node<'a>, seg: &CSeg) -> Vec<Node<'a>> {
    let mut kids = children(n, &seg.name);
    if let Some(m) = &seg.slice {
        kids.retain(|k| in_slice(m, k));
    }
    kids
}

fn in_slice(m: &SliceMatcher, item: &Node<'_>) -> bool {
    m.tests.iter().all(|t| match t {
        DiscTest::ChoiceKey(k) => item.key == *k,
        DiscTest::ChoiceKeys(ks) => ks.contains(&item.key),
        DiscTest::Exists { path, exists } => {
            item.value.is_some_and(|v| !values_at(v, path).is_empty()) == *exists
        }
        DiscTest::Value {
            path,
            expected,
            pattern,
        } => item.value.is_some_and(|v| {
            values_at(v, path).into_iter().any(|x| {
                if *pattern {
                    pattern_match(expected, x)
                } else {
                    fixed_eq(expected, x)
                }
            })
        }),
    })
}

fn prim_eq(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), Value::Bool(b)) => e == if *b { "true" } else { "false" },
        (Value::String(e), Value::Number(n)) => e.parse::<f64>().ok() == n.as_f64(),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == actual,
    }
}

/// FHIR fixed[x]: exact equality (a single expected value also equals a one-item array,
/// since values built from XML do not know which elements repeat).
pub fn fixed_eq(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, ev)| a.get(k).is_some_and(|av| fixed_eq(ev, av)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| fixed_eq(x, y))
        }
        (e, Value::Array(a)) if !e.is_array() => a.len() == 1 && fixed_eq(e, &a[0]),
        _ => prim_eq(expected, actual),
    }
}

/// FHIR pattern[x]: everything in the pattern is present in the instance.
pub fn pattern_match(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::Object(p), Value::Object(a)) => p
            .iter()
            .all(|(k, pv)| a.get(k).is_some_and(|av| pattern_match(pv, av))),
        (Value::Array(p), Value::Array(a)) => {
            p.iter().all(|pv| a.iter().any(|av| pattern_match(pv, av)))
        }
        (p, Value::Array(a)) => a.iter().any(|av| pattern_match(p, av)),
        (Value::Object(_), _) => false,
        _ => prim_eq(pattern, actual),
    }
}

fn run_checks(c: &Compiled, root: &Node<'_>, index: &Index, out: &mut Vec<Violation>) {
    // Parents are shared by all constraints of one element: cache them by element id.
    let mut cache: HashMap<&str, Vec<Node<'_>>> = HashMap::new();
    for check in &c.checks {
        run_check(c, check, root, index, &mut cache, out);
    }
}

fn run_check<'a, 'c>(
    c: &Compiled,
    check: &'c Check,
    root: &Node<'a>,
    index: &Index,
    cache: &mut HashMap<&'c str, Vec<Node<'a>>>,
    out: &mut Vec<Violation>,
) {
    let profile = &c.sd.id;
    let el = &check.element_id;
    match &check.kind {
        CheckKind::Min(_) | CheckKind::Max(_) | CheckKind::Slicing { .. } => {
            let Some((last, parent_segs)) = check.segs.split_last() else {
                return;
            };
            let parents = cache
                .entry(check.parent_id.as_str())
                .or_insert_with(|| resolve(root, parent_segs));
            for p in parents.iter() {
                let kids = step(p, last);
                let n = kids.len() as u64;
                let at = format!("{}.{}", p.path, last.name);
                match &check.kind {
                    CheckKind::Min(min) if n < u64::from(*min) => out.push(v(
                        check.rule.clone(),
                        at,
                        format!("{el}: at least {min} required by {profile}, found {n}"),
                    )),
                    CheckKind::Max(max) if n > u64::from(*max) => out.push(v(
                        check.rule.clone(),
                        at,
                        if *max == 0 {
                            format!("{el}: prohibited (max 0) by {profile}, found {n}")
                        } else {
                            format!("{el}: at most {max} allowed by {profile}, found {n}")
                        },
                    )),
                    CheckKind::Slicing {
                        closed: true,
                        slices,
                    } => {
                        for k in &kids {
                            if !slices.iter().any(|s| in_slice(s, k)) {
                                out.push(v(
                                    check.rule.clone(),
                                    k.path.clone(),
                                    format!("{el}: item matches none of the slices of this closed slicing ({profile})"),
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        CheckKind::ExtensionProfiles => {}
        kind => {
            let nodes = cache
                .entry(check.element_id.as_str())
                .or_insert_with(|| resolve(root, &check.segs));
            let last_name = check
                .segs
                .last()
                .map(|s| s.name.as_str())
                .unwrap_or_default();
            for n in nodes.iter() {
                let Some(val) = n.value else { continue };
                value_check(kind, check, profile, last_name, n, val, index, out);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn value_check(
    kind: &CheckKind,
    check: &Check,
    profile: &str,
    last_name: &str,
    n: &Node<'_>,
    val: &Value,
    index: &Index,
    out: &mut Vec<Violation>,
) {
    let el = &check.element_id;
    match kind {
        CheckKind::Fixed(TypedValue { type_suffix, value }) if !fixed_eq(value, val) => {
            out.push(v(
                check.rule.clone(),
                n.path.clone(),
                format!(
                    "{el}: value differs from fixed{type_suffix} {} required by {profile}",
                    show(value)
                ),
            ));
        }
        CheckKind::Pattern(TypedValue { type_suffix, value }) if !pattern_match(value, val) => {
            out.push(v(
                check.rule.clone(),
                n.path.clone(),
                format!(
                    "{el}: value does not contain pattern{type_suffix} {} required by {profile}",
                    show(value)
                ),
            ));
        }
        CheckKind::Required { value_set, codes } => {
            let ty = node_type(last_name, n, val);
            let ok = match ty.as_deref() {
                Some("code") | Some("string") | Some("uri") => val
                    .as_str()
                    .is_some_and(|s| codes.iter().any(|(_, c)| c == s)),
                Some("Coding") => coding_in(val, codes),
                Some("CodeableConcept") => val
                    .get("coding")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|cd| coding_in(cd, codes))),
                _ => true, // not a coded type: the binding does not apply
            };
            if !ok {
                out.push(v(
                    check.rule.clone(),
                    n.path.clone(),
                    format!(
                        "{el}: no code here is in the required ValueSet {value_set} ({profile})"
                    ),
                ));
            }
        }
        CheckKind::Types(codes) => {
            if let Some(prefix) = last_name.strip_suffix("[x]") {
                let suffix = &n.key[prefix.len().min(n.key.len())..];
                match type_from_suffix(suffix) {
                    Some(t) if codes.contains(&t) => {
                        if let Some(p) = shape_problem(&t, val) {
                            out.push(v(
                                check.rule.clone(),
                                n.path.clone(),
                                format!("{el}: value {p} ({t} expected by {profile})"),
                            ));
                        }
                    }
                    _ => out.push(v(
                        check.rule.clone(),
                        n.path.clone(),
                        format!(
                            "{el}: type {suffix} is not allowed by {profile} (allowed: {})",
                            codes.join(", ")
                        ),
                    )),
                }
            } else if let [t] = codes.as_slice() {
                if let Some(p) = shape_problem(t, val) {
                    out.push(v(
                        check.rule.clone(),
                        n.path.clone(),
                        format!("{el}: value {p} ({t} expected by {profile})"),
                    ));
                }
            }
        }
        CheckKind::TargetTypes(types) => {
            if let Some(target) = val
                .get("reference")
                .and_then(Value::as_str)
                .and_then(|r| index.get(r))
            {
                if !types.contains(target) {
                    out.push(v(
                        check.rule.clone(),
                        format!("{}.reference", n.path),
                        format!(
                            "{el}: reference resolves to a {target}, {profile} allows {}",
                            types.join(", ")
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The FHIR type of a node: from the JSON key for choice elements, else guessed from shape.
fn node_type(last_name: &str, n: &Node<'_>, val: &Value) -> Option<String> {
    if let Some(prefix) = last_name.strip_suffix("[x]") {
        return type_from_suffix(n.key.get(prefix.len()..)?);
    }
    match val {
        Value::String(_) => Some("code".into()),
        Value::Object(o) if o.contains_key("coding") || o.contains_key("text") => {
            Some("CodeableConcept".into())
        }
        Value::Object(o) if o.contains_key("code") || o.contains_key("system") => {
            Some("Coding".into())
        }
        _ => None,
    }
}

fn coding_in(c: &Value, codes: &super::terminology::CodeSet) -> bool {
    match (
        c.get("system").and_then(Value::as_str),
        c.get("code").and_then(Value::as_str),
    ) {
        (Some(s), Some(k)) => codes.contains(&(s.to_string(), k.to_string())),
        _ => false,
    }
}

/// Things that are not UK Core violations but are worth knowing (see REPORT.md).
pub fn advisories(bundle: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, e) in bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(r) = e.get("resource") {
            if r.pointer("/meta/profile")
                .and_then(Value::as_array)
                .is_none_or(|a| a.is_empty())
            {
                out.push(v(
                    "advisory:meta.profile:absent",
                    format!("Bundle.entry[{i}].resource.meta.profile"),
                    "no meta.profile: the profile was chosen by resource type (UK Core allows this; a receiver may not)",
                ));
            }
        }
    }
    fn numbers(v: &Value, path: &str, out: &mut Vec<Violation>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    numbers(x, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    numbers(x, &format!("{path}[{i}]"), out);
                }
            }
            Value::Number(n) if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0) => out.push(Violation {
                rule: "advisory:decimal:whole-number-with-fraction".into(),
                path: path.to_string(),
                message: "whole number written with a fraction (e.g. 1.0): FHIR decimals keep their precision, so this claims one decimal place; integer-typed elements reject it".into(),
            }),
            _ => {}
        }
    }
    numbers(bundle, "Bundle", &mut out);
    out
}
