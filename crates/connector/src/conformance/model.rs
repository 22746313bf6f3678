//! Data read from the UK Core conformance resources (StructureDefinition differentials,
//! CodeSystems, ValueSets). Only the elements the checker uses are kept; everything is
//! copied verbatim from the XML (no defaults filled in from the FHIR base).

use serde_json::Value;

/// `StructureDefinition.differential.element.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    /// `*`
    Unbounded,
    /// a whole number
    N(u32),
}

impl std::fmt::Display for Max {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Max::Unbounded => f.write_str("*"),
            Max::N(n) => write!(f, "{n}"),
        }
    }
}

/// A `fixed[x]` or `pattern[x]` value: the `[x]` suffix as written (`Uri`, `Code`, `Coding`,
/// ...) and the value, as a JSON value (primitives as JSON strings/bools/numbers, complex
/// values as objects built from the XML children).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedValue {
    pub type_suffix: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub strength: String,
    pub value_set: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    pub code: String,
    pub profiles: Vec<String>,
    pub target_profiles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discriminator {
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slicing {
    pub discriminators: Vec<Discriminator>,
    pub rules: String,
    pub ordered: Option<bool>,
}

/// `ElementDefinition.constraint` (a FHIRPath invariant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invariant {
    pub key: String,
    pub severity: String,
    pub human: String,
    pub expression: String,
}

/// One `differential/element`.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementDef {
    pub id: String,
    pub path: String,
    pub slice_name: Option<String>,
    pub min: Option<u32>,
    pub max: Option<Max>,
    pub fixed: Option<TypedValue>,
    pub pattern: Option<TypedValue>,
    pub binding: Option<Binding>,
    pub types: Vec<TypeRef>,
    pub slicing: Option<Slicing>,
    pub invariants: Vec<Invariant>,
    pub must_support: Option<bool>,
    pub is_modifier: Option<bool>,
}

/// `StructureDefinition.context` (extensions only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtContext {
    pub kind: String,
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructureDef {
    /// File the definition was read from (for messages and SOURCES).
    pub file: String,
    pub id: String,
    pub url: String,
    pub version: String,
    pub name: String,
    pub kind: String,
    /// `StructureDefinition.type`: the resource type, or `Extension`.
    pub type_: String,
    pub base_definition: String,
    pub derivation: String,
    pub contexts: Vec<ExtContext>,
    pub elements: Vec<ElementDef>,
}

impl StructureDef {
    pub fn is_extension(&self) -> bool {
        self.type_ == "Extension"
    }

    pub fn element(&self, id: &str) -> Option<&ElementDef> {
        self.elements.iter().find(|e| e.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSystemDef {
    pub file: String,
    pub id: String,
    pub url: String,
    pub version: String,
    /// `CodeSystem.content` (`complete`, `fragment`, ...).
    pub content: String,
    pub case_sensitive: bool,
    /// Every `concept.code`, nested concepts included.
    pub codes: Vec<String>,
}

/// One `ValueSet.compose.include` or `exclude`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VsComponent {
    pub system: Option<String>,
    pub concepts: Vec<String>,
    pub filter_count: usize,
    pub value_sets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSetDef {
    pub file: String,
    pub id: String,
    pub url: String,
    pub version: String,
    pub includes: Vec<VsComponent>,
    pub excludes: Vec<VsComponent>,
}
