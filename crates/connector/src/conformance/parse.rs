//! roxmltree readers for the FHIR XML conformance resources.

use roxmltree::{Document, Node};
use serde_json::{Map, Value};

use super::model::{
    Binding, CodeSystemDef, Discriminator, ElementDef, ExtContext, Invariant, Max, Slicing,
    StructureDef, TypeRef, TypedValue, ValueSetDef, VsComponent,
};
use super::ConformanceError;

const FHIR_NS: &str = "http://hl7.org/fhir";

/// A conformance resource read from one file.
#[derive(Debug, Clone)]
pub enum Resource {
    StructureDefinition(Box<StructureDef>),
    CodeSystem(CodeSystemDef),
    ValueSet(ValueSetDef),
}

fn err(file: &str, message: impl Into<String>) -> ConformanceError {
    ConformanceError::Parse {
        file: file.to_string(),
        message: message.into(),
    }
}

fn is(node: &Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == Some(FHIR_NS)
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(c, name))
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(c, name))
}

fn value_of<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.attribute("value"))
}

fn string_of(node: Node<'_, '_>, name: &str) -> String {
    value_of(node, name).unwrap_or_default().to_string()
}

/// Parses one XML conformance resource (StructureDefinition, CodeSystem or ValueSet).
pub fn parse_resource(file: &str, xml: &str) -> Result<Resource, ConformanceError> {
    let doc = Document::parse(xml).map_err(|e| err(file, format!("XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(FHIR_NS) {
        return Err(err(file, "root element is not in the FHIR namespace"));
    }
    match root.tag_name().name() {
        "StructureDefinition" => Ok(Resource::StructureDefinition(Box::new(parse_sd(
            file, root,
        )?))),
        "CodeSystem" => Ok(Resource::CodeSystem(parse_cs(file, root))),
        "ValueSet" => Ok(Resource::ValueSet(parse_vs(file, root))),
        other => Err(err(file, format!("unsupported resource type {other}"))),
    }
}

fn parse_sd(file: &str, root: Node<'_, '_>) -> Result<StructureDef, ConformanceError> {
    let contexts = children(root, "context")
        .map(|c| ExtContext {
            kind: string_of(c, "type"),
            expression: string_of(c, "expression"),
        })
        .collect();
    let differential = child(root, "differential")
        .ok_or_else(|| err(file, "StructureDefinition has no differential"))?;
    let mut elements = Vec::new();
    for el in children(differential, "element") {
        elements.push(parse_element(file, el)?);
    }
    let sd = StructureDef {
        file: file.to_string(),
        id: string_of(root, "id"),
        url: string_of(root, "url"),
        version: string_of(root, "version"),
        name: string_of(root, "name"),
        kind: string_of(root, "kind"),
        type_: string_of(root, "type"),
        base_definition: string_of(root, "baseDefinition"),
        derivation: string_of(root, "derivation"),
        contexts,
        elements,
    };
    if sd.id.is_empty() || sd.url.is_empty() || sd.type_.is_empty() {
        return Err(err(file, "StructureDefinition lacks id, url or type"));
    }
    Ok(sd)
}

fn parse_element(file: &str, el: Node<'_, '_>) -> Result<ElementDef, ConformanceError> {
    let id = el
        .attribute("id")
        .ok_or_else(|| err(file, "differential element without @id"))?
        .to_string();
    let min = match value_of(el, "min") {
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| err(file, format!("{id}: min is not a whole number")))?,
        ),
        None => None,
    };
    let max = match value_of(el, "max") {
        Some("*") => Some(Max::Unbounded),
        Some(v) => Some(Max::N(v.parse::<u32>().map_err(|_| {
            err(file, format!("{id}: max is neither * nor a whole number"))
        })?)),
        None => None,
    };
    let mut fixed = None;
    let mut pattern = None;
    for c in el.children().filter(|c| c.is_element()) {
        let name = c.tag_name().name();
        if let Some(suffix) = name.strip_prefix("fixed") {
            fixed = Some(typed_value(suffix, c));
        } else if let Some(suffix) = name.strip_prefix("pattern") {
            pattern = Some(typed_value(suffix, c));
        }
    }
    let binding = child(el, "binding").map(|b| Binding {
        strength: string_of(b, "strength"),
        value_set: value_of(b, "valueSet").map(str::to_string),
    });
    let types = children(el, "type")
        .map(|t| TypeRef {
            code: string_of(t, "code"),
            profiles: children(t, "profile")
                .filter_map(|p| p.attribute("value"))
                .map(str::to_string)
                .collect(),
            target_profiles: children(t, "targetProfile")
                .filter_map(|p| p.attribute("value"))
                .map(str::to_string)
                .collect(),
        })
        .collect();
    let slicing = child(el, "slicing").map(|s| Slicing {
        discriminators: children(s, "discriminator")
            .map(|d| Discriminator {
                kind: string_of(d, "type"),
                path: string_of(d, "path"),
            })
            .collect(),
        rules: string_of(s, "rules"),
        ordered: value_of(s, "ordered").map(|v| v == "true"),
    });
    let invariants = children(el, "constraint")
        .map(|c| Invariant {
            key: string_of(c, "key"),
            severity: string_of(c, "severity"),
            human: string_of(c, "human"),
            expression: string_of(c, "expression"),
        })
        .collect();
    Ok(ElementDef {
        path: string_of(el, "path"),
        slice_name: value_of(el, "sliceName").map(str::to_string),
        min,
        max,
        fixed,
        pattern,
        binding,
        types,
        slicing,
        invariants,
        must_support: value_of(el, "mustSupport").map(|v| v == "true"),
        is_modifier: value_of(el, "isModifier").map(|v| v == "true"),
        id,
    })
}

/// `fixedUri value="x"` -> "x"; `fixedBoolean value="true"` -> true; a complex
/// `patternCodeableConcept` -> an object built from its children.
fn typed_value(suffix: &str, node: Node<'_, '_>) -> TypedValue {
    let value = match node.attribute("value") {
        Some(v) => primitive_json(suffix, v),
        None => xml_to_json(node),
    };
    TypedValue {
        type_suffix: suffix.to_string(),
        value,
    }
}

fn primitive_json(suffix: &str, v: &str) -> Value {
    match suffix {
        "Boolean" => match v {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(v.to_string()),
        },
        "Integer" | "UnsignedInt" | "PositiveInt" => v
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(v.to_string())),
        "Decimal" => v
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.to_string())),
        _ => Value::String(v.to_string()),
    }
}

/// Complex XML value to JSON: leaves become strings, repeated children become arrays.
fn xml_to_json(node: Node<'_, '_>) -> Value {
    let mut map = Map::new();
    for c in node.children().filter(|c| c.is_element()) {
        let name = c.tag_name().name().to_string();
        let v = match c.attribute("value") {
            Some(s) if c.children().all(|g| !g.is_element()) => Value::String(s.to_string()),
            _ => xml_to_json(c),
        };
        match map.get_mut(&name) {
            Some(Value::Array(a)) => a.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
            None => {
                map.insert(name, v);
            }
        }
    }
    Value::Object(map)
}

fn parse_cs(file: &str, root: Node<'_, '_>) -> CodeSystemDef {
    fn collect(node: Node<'_, '_>, out: &mut Vec<String>) {
        for c in children(node, "concept") {
            if let Some(code) = value_of(c, "code") {
                out.push(code.to_string());
            }
            collect(c, out);
        }
    }
    let mut codes = Vec::new();
    collect(root, &mut codes);
    CodeSystemDef {
        file: file.to_string(),
        id: string_of(root, "id"),
        url: string_of(root, "url"),
        version: string_of(root, "version"),
        content: string_of(root, "content"),
        // FHIR: caseSensitive absent means unknown; treat as case sensitive (stricter).
        case_sensitive: value_of(root, "caseSensitive") != Some("false"),
        codes,
    }
}

fn parse_vs(file: &str, root: Node<'_, '_>) -> ValueSetDef {
    let component = |c: Node<'_, '_>| VsComponent {
        system: value_of(c, "system").map(str::to_string),
        concepts: children(c, "concept")
            .filter_map(|k| value_of(k, "code"))
            .map(str::to_string)
            .collect(),
        filter_count: children(c, "filter").count(),
        value_sets: children(c, "valueSet")
            .filter_map(|v| v.attribute("value"))
            .map(str::to_string)
            .collect(),
    };
    let (includes, excludes) = match child(root, "compose") {
        Some(compose) => (
            children(compose, "include").map(component).collect(),
            children(compose, "exclude").map(component).collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    ValueSetDef {
        file: file.to_string(),
        id: string_of(root, "id"),
        url: string_of(root, "url"),
        version: string_of(root, "version"),
        includes,
        excludes,
    }
}
