//! [`Node`]: the Bundle as the mapping builds it, written once into the request body.
//!
//! **In:** what the mapping knows: static codes and URIs, strings borrowed from the call,
//! resource ids, times and dates as values. **Out:** compact JSON bytes identical to
//! `serde_json::to_vec` of the same Bundle as a `serde_json::Value` (keys in byte order, as
//! serde_json's map without `preserve_order` keeps them; the same escaping and number forms),
//! and the [`Json`] view local validation reads, shared with `serde_json::Value` so the checks
//! are one code for our Bundles and for anyone's.
//!
//! Why not `Value`: a `Value` allocates every key and every string, formats every time only for
//! the checks to parse it back, and keeps its maps as B-trees. A `Node` object is one sorted
//! `Vec` with static keys, strings are borrowed where they can be, ids live inline and times
//! are formatted straight into the output. Pure; never fails.
//!
//! Constant parts (a CodeableConcept of fixed codes, the type half of a typed date-time) are
//! [`Frozen`]: built and written once per process, then shared by every Bundle. A frozen node
//! reads like the tree it was made from; writing it is one copy.

use std::borrow::Cow;
use std::ops::Index;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::check::{coding_is_clean, system_codes};
use crate::cad::{format_utc, utc_text};

/// A member key as [`Node`] holds it, `"key":` (a `&'static str`, so it can be written as it
/// is): from the literal key.
macro_rules! key {
    ($k:literal) => {
        concat!("\"", $k, "\":")
    };
}
pub(crate) use key;

/// One JSON value of a Bundle under construction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// `null` (only what [`Index`] returns for an absent member).
    Null,
    /// A string borrowed from the call, the options or a constant.
    Str(&'a str),
    /// A string made for this Bundle.
    String(String),
    /// A whole number.
    Int(i64),
    /// Any other number (a non-finite one is written `null`, as `serde_json::Value` has it).
    Float(f64),
    /// A resource id, or its `urn:uuid:` URL, kept inline.
    Uid(Uid),
    /// An RFC 3339 UTC instant, written as [`format_utc`] writes it.
    Time(DateTime<Utc>),
    /// A calendar date, `YYYY-MM-DD`.
    Date(NaiveDate),
    /// An array.
    Array(Vec<Node<'a>>),
    /// An object, its members sorted by key; each key held as it is written, `"key":`
    /// ([`key!`]), so writing a member's key is one copy.
    Object(Vec<(&'static str, Node<'a>)>),
    /// A constant subtree, written once ([`Frozen`]).
    Frozen(&'static Frozen),
}

/// A constant subtree and its JSON, made once (in a `static`) and shared by every Bundle that
/// holds it: reading it reads the tree, writing it copies the JSON, and the write's walk takes
/// its coding verdict as found when it was made. It holds no `reference` (a reference names an
/// entry of one Bundle).
#[derive(Debug, PartialEq)]
pub(crate) struct Frozen {
    node: Node<'static>,
    json: Box<[u8]>,
    codings_clean: bool,
}

impl Frozen {
    /// Freezes `node`. Panics (a bug in the mapping) when it holds a `reference`.
    pub(crate) fn new(node: Node<'static>) -> Self {
        let (json, walked) = node.to_bytes_walked(0, &[]);
        assert!(
            walked.references_resolve,
            "a frozen node holds no reference"
        );
        Frozen {
            node,
            json: json.into_boxed_slice(),
            codings_clean: walked.codings_clean,
        }
    }
}

/// A `static` [`Frozen`] of `$node` (an expression of constants), as a [`Node`]: made the
/// first time it is used.
macro_rules! frozen {
    ($node:expr) => {{
        static FROZEN: std::sync::LazyLock<$crate::mapping::node::Frozen> =
            std::sync::LazyLock::new(|| $crate::mapping::node::Frozen::new($node));
        $crate::mapping::node::Node::Frozen(&FROZEN)
    }};
}
pub(crate) use frozen;

/// Constant subtrees chosen by a small index (an enum's discriminant, a code system style), each
/// frozen the first time its index is used: for the constants that depend on one of a few
/// values. Every use of an index must make the same tree (a debug build checks it by its JSON);
/// an index beyond the set is built unfrozen, so the set's size never decides the output.
pub(crate) struct FrozenSet<const N: usize>([OnceLock<Frozen>; N]);

impl<const N: usize> FrozenSet<N> {
    pub(crate) const fn new() -> Self {
        FrozenSet([const { OnceLock::new() }; N])
    }

    /// The frozen tree at `index`, which `make` builds on first use.
    pub(crate) fn get(
        &'static self,
        index: usize,
        make: impl Fn() -> Node<'static>,
    ) -> Node<'static> {
        let Some(cell) = self.0.get(index) else {
            return make();
        };
        let frozen = cell.get_or_init(|| Frozen::new(make()));
        debug_assert!(
            *make().to_bytes_walked(0, &[]).0 == *frozen.json,
            "index {index} of a FrozenSet made two trees"
        );
        Node::Frozen(frozen)
    }
}

static NULL: Node<'static> = Node::Null;

/// What [`Node::to_bytes_walked`]'s walk found. Either `false` only means the detailed check
/// (which names the path) must run: the walk is a filter, local validation the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walked {
    /// Every `reference` member resolves to an entry's `fullUrl`.
    pub(crate) references_resolve: bool,
    /// Local validation has nothing to say about any coding ([`coding_is_clean`]).
    pub(crate) codings_clean: bool,
}

/// Members an object built by [`Node::object`] has room for besides its own.
const OBJECT_SPARE: usize = 3;

/// `urn:uuid:` and a hyphenated UUID, on the stack: the URL, or only the id.
#[derive(Clone, Copy, Eq)]
pub(crate) struct Uid {
    text: [u8; 45],
    url: bool,
}

impl PartialEq for Uid {
    /// Equal text and form. The write compares every reference with the Bundle's full URLs,
    /// which share the prefix and mostly differ in their first eight hex digits: those decide
    /// first, as one word.
    fn eq(&self, other: &Self) -> bool {
        let head = |u: &Uid| u64::from_ne_bytes(u.text[9..17].try_into().expect("eight bytes"));
        self.url == other.url && head(self) == head(other) && self.text == other.text
    }
}

impl std::fmt::Debug for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Uid {
    const PREFIX: &'static [u8; 9] = b"urn:uuid:";

    /// The resource id (`8-4-4-4-12` hex).
    pub(crate) fn id(uuid: Uuid) -> Self {
        Self::new(uuid, false)
    }

    /// The entry's full URL, `urn:uuid:<id>`.
    pub(crate) fn url(uuid: Uuid) -> Self {
        Self::new(uuid, true)
    }

    /// The same UUID as a resource id.
    pub(crate) fn id_only(self) -> Self {
        Uid { url: false, ..self }
    }

    fn new(uuid: Uuid, url: bool) -> Self {
        let mut text = [0u8; 45];
        text[..9].copy_from_slice(Self::PREFIX);
        uuid.hyphenated().encode_lower(&mut text[9..]);
        Uid { text, url }
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("a UUID is ASCII")
    }

    /// [`Uid::as_str`]'s bytes, without the UTF-8 check (written as they are).
    fn as_bytes(&self) -> &[u8] {
        if self.url {
            &self.text[..]
        } else {
            &self.text[9..]
        }
    }
}

impl<'a> Node<'a> {
    /// An object of these members, in any order (sorted here; keys are unique).
    pub(crate) fn object<const N: usize>(given: [(&'static str, Node<'a>); N]) -> Self {
        // Room for members the mapping [`Node::set`]s afterwards (at most a few), so adding
        // them moves nothing.
        let mut members = Vec::with_capacity(N + OBJECT_SPARE);
        members.extend(given);
        debug_assert!(
            members.iter().all(|m| is_written_key(m.0)),
            "keys come from key!"
        );
        members.sort_unstable_by(|a, b| written_key_cmp(a.0, b.0));
        debug_assert!(members.windows(2).all(|w| w[0].0 != w[1].0));
        Node::Object(members)
    }

    /// Sets member `key` (written form, [`key!`]) of an object (replacing one already there).
    /// A no-op on a non-object.
    pub(crate) fn set(&mut self, key: &'static str, value: impl Into<Node<'a>>) {
        debug_assert!(is_written_key(key), "keys come from key!");
        debug_assert!(
            !matches!(self, Node::Frozen(_)),
            "a frozen node is not changed"
        );
        if let Node::Object(members) = self {
            let value = value.into();
            match members.binary_search_by(|m| written_key_cmp(m.0, key)) {
                Ok(at) => members[at].1 = value,
                Err(at) => members.insert(at, (key, value)),
            }
        }
    }

    /// Member `key` of an object, to change it (`None` when absent or not an object).
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Node<'a>> {
        match self {
            Node::Object(members) => members
                .binary_search_by(|m| key_cmp(bare(m.0), key))
                .ok()
                .map(|at| &mut members[at].1),
            _ => None,
        }
    }

    /// Compact JSON, as `serde_json::to_vec` of the equivalent `Value` writes it.
    #[cfg(test)]
    pub(crate) fn to_bytes(&self, capacity: usize) -> Vec<u8> {
        self.to_bytes_walked(capacity, &[]).0
    }

    /// [`Node::to_bytes`], and what the write's own walk (which visits every member anyway)
    /// found of two Bundle-wide checks ([`Walked`]): whether every `reference` member resolves
    /// to one of `full_urls` (an id compared as an id; a reference held as text compared as
    /// text), and whether every coding is one local validation has nothing to say about.
    pub(crate) fn to_bytes_walked(&self, capacity: usize, full_urls: &[Uid]) -> (Vec<u8>, Walked) {
        let mut out = Vec::with_capacity(capacity);
        let mut walked = Walked {
            references_resolve: true,
            codings_clean: true,
        };
        self.write(&mut out, full_urls, &mut walked);
        (out, walked)
    }

    fn write(&self, out: &mut Vec<u8>, full_urls: &[Uid], walked: &mut Walked) {
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Str(v) => write_str(out, v),
            Node::String(v) => write_str(out, v),
            Node::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Node::Frozen(f) => {
                out.extend_from_slice(&f.json);
                walked.codings_clean &= f.codings_clean;
            }
            Node::Float(_) | Node::Date(_) => {
                // Rare: serde_json's own number form, chrono's date form.
                serde_json::to_writer(&mut *out, self).expect("a Vec takes any JSON")
            }
            Node::Uid(u) => write_raw(out, u.as_bytes()),
            Node::Time(t) => match utc_text(t) {
                Some(text) => write_raw(out, text.as_str().as_bytes()),
                None => write_str(out, &format_utc(t)),
            },
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out, full_urls, walked);
                }
                out.push(b']');
            }
            Node::Object(members) => {
                out.push(b'{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    // Keys are the mapping's own literals, already quoted: never escaped.
                    out.extend_from_slice(k.as_bytes());
                    if same_written_key(k, key!("reference")) {
                        walked.references_resolve &= match v {
                            Node::Uid(u) => full_urls.contains(u),
                            // Not a string: not a reference (the write goes into it).
                            other => other
                                .as_str()
                                .is_none_or(|s| full_urls.iter().any(|u| u.as_str() == s)),
                        };
                    } else if same_written_key(k, key!("coding")) {
                        walked.codings_clean &=
                            system_codes(v).all(|(_, system, code)| coding_is_clean(system, code));
                    }
                    v.write(out, full_urls, walked);
                }
                out.push(b'}');
            }
        }
    }
}

/// A string that needs no escaping (keys, ids, times), in quotes.
fn write_raw(out: &mut Vec<u8>, s: &[u8]) {
    debug_assert!(!needs_escape(std::str::from_utf8(s).expect("UTF-8")));
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// A JSON string, escaped as serde_json escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        serde_json::to_writer(&mut *out, s).expect("a Vec takes any JSON");
    } else {
        write_raw(out, s.as_bytes());
    }
}

/// Byte order of two keys (as `str::cmp`); most keys of an object differ in their first byte,
/// which decides without comparing the rest.
#[inline]
fn key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// [`key_cmp`] of two written keys (`"key":`), which is the order of their keys (a key's
/// characters all sort after the quote that ends a shorter one); their first bytes are the
/// same quote, so the keys' own first bytes decide first.
#[inline]
fn written_key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().get(1), b.as_bytes().get(1)) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// True when `a` and `b` are the same written key (`"key":`): the same literal (one
/// pointer), or the same bytes. Written keys of one length mostly differ in their second byte
/// (the first is the same quote), which decides without a `memcmp`.
#[inline]
fn same_written_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr())
            || (a.as_bytes().get(1) == b.as_bytes().get(1) && a.as_bytes() == b.as_bytes()))
}

/// Member `key` of an object's members. Objects hold a few members (at most about a dozen):
/// a scan that compares lengths first touches no bytes for most members, where a binary
/// search compares bytes at every step.
#[inline]
fn member<'n, 'a>(members: &'n [(&'static str, Node<'a>)], key: &str) -> Option<&'n Node<'a>> {
    let key = key.as_bytes();
    members
        .iter()
        .find(|m| {
            let written = m.0.as_bytes();
            written.len() == key.len() + 3
                && written.get(1) == key.first()
                && &written[1..=key.len()] == key
        })
        .map(|m| &m.1)
}

/// The key of a written key (`"key":` → `key`).
#[inline]
fn bare(written: &str) -> &str {
    // The quotes and the colon are one byte each: the slice is on character boundaries.
    written
        .get(1..written.len() - 2)
        .expect("a written key is quoted")
}

/// True for a key in its written form.
fn is_written_key(k: &str) -> bool {
    k.len() >= 3 && k.starts_with('"') && k.ends_with("\":") && !needs_escape(bare(k))
}

/// True when serde_json would escape a character of `s` (a control character, `"` or `\`).
/// Eight bytes at a time: each test below is exact about whether *any* byte matches.
fn needs_escape(s: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let mut chunks = s.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0;
        if below_space
            || has_zero(v ^ (ONES * u64::from(b'"')))
            || has_zero(v ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

impl<'a> Index<&str> for Node<'a> {
    type Output = Node<'a>;

    fn index(&self, key: &str) -> &Node<'a> {
        match self.thawed() {
            Node::Object(members) => member(members, key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl<'a> Index<usize> for Node<'a> {
    type Output = Node<'a>;

    fn index(&self, i: usize) -> &Node<'a> {
        match self.thawed() {
            Node::Array(items) => items.get(i).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl<'a> From<&'a str> for Node<'a> {
    fn from(s: &'a str) -> Self {
        Node::Str(s)
    }
}

impl<'a> From<&'a String> for Node<'a> {
    fn from(s: &'a String) -> Self {
        Node::Str(s)
    }
}

impl<'a> From<&'a crate::cad::Text> for Node<'a> {
    fn from(s: &'a crate::cad::Text) -> Self {
        Node::Str(s)
    }
}

impl From<String> for Node<'_> {
    fn from(s: String) -> Self {
        Node::String(s)
    }
}

impl<'a> From<Cow<'a, str>> for Node<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        match s {
            Cow::Borrowed(s) => Node::Str(s),
            Cow::Owned(s) => Node::String(s),
        }
    }
}

impl From<i64> for Node<'_> {
    fn from(n: i64) -> Self {
        Node::Int(n)
    }
}

impl From<Uid> for Node<'_> {
    fn from(u: Uid) -> Self {
        Node::Uid(u)
    }
}

impl From<DateTime<Utc>> for Node<'_> {
    fn from(t: DateTime<Utc>) -> Self {
        Node::Time(t)
    }
}

impl From<NaiveDate> for Node<'_> {
    fn from(d: NaiveDate) -> Self {
        Node::Date(d)
    }
}

impl<'a> From<Vec<Node<'a>>> for Node<'a> {
    fn from(items: Vec<Node<'a>>) -> Self {
        Node::Array(items)
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Frozen(f) => f.node.serialize(s),
            Node::Null => s.serialize_unit(),
            Node::Str(v) => s.serialize_str(v),
            Node::String(v) => s.serialize_str(v),
            Node::Int(n) => s.serialize_i64(*n),
            Node::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Node::Float(_) => s.serialize_unit(),
            Node::Uid(u) => s.serialize_str(u.as_str()),
            Node::Time(t) => match utc_text(t) {
                Some(text) => s.serialize_str(text.as_str()),
                None => s.serialize_str(&format_utc(t)),
            },
            Node::Date(d) => {
                use chrono::Datelike;
                // A year outside 0..=9999 is written as chrono writes it.
                if (0..=9999).contains(&d.year()) {
                    let mut b = *b"0000-00-00";
                    for (at, value, width) in
                        [(0, d.year() as u32, 4), (5, d.month(), 2), (8, d.day(), 2)]
                    {
                        let mut v = value;
                        for i in (at..at + width).rev() {
                            b[i] = b'0' + (v % 10) as u8;
                            v /= 10;
                        }
                    }
                    s.serialize_str(std::str::from_utf8(&b).expect("ASCII"))
                } else {
                    s.serialize_str(&d.format("%Y-%m-%d").to_string())
                }
            }
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(bare(k), v)?;
                }
                map.end()
            }
        }
    }
}

/// What local validation reads of a JSON value: `serde_json::Value` (anyone's Bundle) or a
/// [`Node`] (ours, before it is written). Indexing an absent member or item gives `null`.
pub(crate) trait Json:
    Sized + for<'k> Index<&'k str, Output = Self> + Index<usize, Output = Self>
{
    /// The string, when this is one held as text.
    fn as_str(&self) -> Option<&str>;
    /// True for any string (text, id, time or date).
    fn is_string(&self) -> bool;
    /// The instant, when this is a time or an RFC 3339 string.
    fn as_time(&self) -> Option<DateTime<Utc>>;
    /// The number.
    fn as_f64(&self) -> Option<f64>;
    /// The items, when this is an array.
    fn as_array(&self) -> Option<&[Self]>;
    /// The members, in key order (none when this is not an object).
    fn members(&self) -> impl Iterator<Item = (&str, &Self)>;
    /// True when this is an object with member `key` (of any value).
    fn has(&self, key: &str) -> bool;

    /// True when this is an array.
    fn is_array(&self) -> bool {
        self.as_array().is_some()
    }

    /// True when this is the string `s`.
    fn is(&self, s: &str) -> bool {
        self.as_str() == Some(s)
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Json for serde_json::Value {
    fn as_str(&self) -> Option<&str> {
        serde_json::Value::as_str(self)
    }

    fn is_string(&self) -> bool {
        serde_json::Value::is_string(self)
    }

    fn as_time(&self) -> Option<DateTime<Utc>> {
        serde_json::Value::as_str(self).and_then(parse_time)
    }

    fn as_f64(&self) -> Option<f64> {
        serde_json::Value::as_f64(self)
    }

    fn as_array(&self) -> Option<&[Self]> {
        serde_json::Value::as_array(self).map(Vec::as_slice)
    }

    fn members(&self) -> impl Iterator<Item = (&str, &Self)> {
        serde_json::Value::as_object(self)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<'a> Node<'a> {
    /// The node a [`Frozen`] holds, or this one.
    #[inline]
    fn thawed(&self) -> &Node<'a> {
        match self {
            Node::Frozen(f) => &f.node,
            other => other,
        }
    }
}

impl Json for Node<'_> {
    fn as_str(&self) -> Option<&str> {
        match self.thawed() {
            Node::Str(s) => Some(s),
            Node::String(s) => Some(s),
            Node::Uid(u) => Some(u.as_str()),
            _ => None,
        }
    }

    fn is_string(&self) -> bool {
        matches!(
            self.thawed(),
            Node::Str(_) | Node::String(_) | Node::Uid(_) | Node::Time(_) | Node::Date(_)
        )
    }

    fn as_time(&self) -> Option<DateTime<Utc>> {
        match self.thawed() {
            Node::Time(t) => Some(*t),
            other => other.as_str().and_then(parse_time),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self.thawed() {
            Node::Int(n) => Some(*n as f64),
            Node::Float(f) if f.is_finite() => Some(*f),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[Self]> {
        match self.thawed() {
            Node::Array(items) => Some(items),
            _ => None,
        }
    }

    fn members(&self) -> impl Iterator<Item = (&str, &Self)> {
        let members: &[(&'static str, Node<'_>)] = match self.thawed() {
            Node::Object(members) => members,
            _ => &[],
        };
        members.iter().map(|(k, v)| (bare(k), v))
    }

    fn has(&self, key: &str) -> bool {
        matches!(self.thawed(), Node::Object(members) if member(members, key).is_some())
    }
}

/// A [`Node`] written like `serde_json::json!`: `{ "key": value, … }` objects (keys are
/// string literals, sorted by [`Node::object`]), `[ … ]` arrays, and any `Into<Node>`
/// expression as a value.
macro_rules! node {
    (@object [$($out:tt)*]) => {
        $crate::mapping::node::Node::object([$($out)*])
    };
    (@object [$($out:tt)*] $k:literal : { $($inner:tt)* } $(, $($rest:tt)*)?) => {
        node!(@object [$($out)* ($crate::mapping::node::key!($k), node!({ $($inner)* })),] $($($rest)*)?)
    };
    (@object [$($out:tt)*] $k:literal : [ $($inner:tt)* ] $(, $($rest:tt)*)?) => {
        node!(@object [$($out)* ($crate::mapping::node::key!($k), node!([ $($inner)* ])),] $($($rest)*)?)
    };
    (@object [$($out:tt)*] $k:literal : $v:expr $(, $($rest:tt)*)?) => {
        node!(@object [$($out)* ($crate::mapping::node::key!($k), $crate::mapping::node::Node::from($v)),] $($($rest)*)?)
    };
    (@array [$($out:tt)*]) => {
        $crate::mapping::node::Node::Array(vec![$($out)*])
    };
    (@array [$($out:tt)*] { $($inner:tt)* } $(, $($rest:tt)*)?) => {
        node!(@array [$($out)* node!({ $($inner)* }),] $($($rest)*)?)
    };
    (@array [$($out:tt)*] [ $($inner:tt)* ] $(, $($rest:tt)*)?) => {
        node!(@array [$($out)* node!([ $($inner)* ]),] $($($rest)*)?)
    };
    (@array [$($out:tt)*] $v:expr $(, $($rest:tt)*)?) => {
        node!(@array [$($out)* $crate::mapping::node::Node::from($v),] $($($rest)*)?)
    };
    ({ $($t:tt)* }) => {
        node!(@object [] $($t)*)
    };
    ([ $($t:tt)* ]) => {
        node!(@array [] $($t)*)
    };
    ($v:expr) => {
        $crate::mapping::node::Node::from($v)
    };
}
pub(crate) use node;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_written_as_serde_json_writes_the_same_value() {
        let at = DateTime::parse_from_rfc3339("2025-03-01T12:00:05.120Z")
            .unwrap()
            .with_timezone(&Utc);
        let uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let n = node!({
            "z": "quote \" and \u{1} and é",
            "w": "back\\slash",
            "a": [ 1i64, { "y": Node::Float(1.5), "b": Node::Float(f64::NAN) } ],
            "id": Uid::id(uuid),
            "url": Uid::url(uuid),
            "at": at,
            "day": NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        });
        let v = serde_json::json!({
            "z": "quote \" and \u{1} and é",
            "w": "back\\slash",
            "a": [ 1, { "y": 1.5, "b": null } ],
            "id": uuid.to_string(),
            "url": format!("urn:uuid:{uuid}"),
            "at": "2025-03-01T12:00:05.120Z",
            "day": "2025-03-01",
        });
        assert_eq!(n.to_bytes(0), serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn needs_escape_finds_every_character_serde_json_escapes_at_any_position() {
        for len in 0..20 {
            for at in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    let s = String::from_utf8(bytes).unwrap();
                    assert!(needs_escape(&s), "{len} {at} {special}");
                }
            }
            let plain: String = (0..len)
                .map(|i| ['a', 'é', ' ', '~', '\u{7f}'][i % 5])
                .collect();
            assert!(!needs_escape(&plain), "{len}");
        }
        assert!(!needs_escape(
            "urn:uuid:0123 !#$%&'()*+,-./:;<=>?@[]^_`{|}~é€"
        ));
    }

    #[test]
    fn written_keys_sort_as_their_keys_sort() {
        let keys = [
            "id",
            "identifier",
            "value",
            "valueQuantity",
            "valueCode",
            "_effectiveDateTime",
            "effectiveDateTime",
            "a",
            "ab",
            "a_b",
            "a1",
            "Z",
            "reference",
            "resource",
        ];
        let written: Vec<String> = keys.iter().map(|k| format!("\"{k}\":")).collect();
        let mut by_written: Vec<&String> = written.iter().collect();
        by_written.sort_by(|a, b| written_key_cmp(a, b));
        let mut plain = keys.to_vec();
        plain.sort();
        let bares: Vec<&str> = by_written.iter().map(|w| bare(w)).collect();
        assert_eq!(bares, plain);
        assert_eq!(key!("id"), "\"id\":");
    }

    #[test]
    fn a_frozen_node_writes_reads_and_checks_as_the_tree_it_was_made_from() {
        let tree =
            || node!({ "coding": [ { "system": "http://snomed.info/sct", "code": "22298006" } ] });
        // A frozen node lives in a `static`: leaked here, as long.
        let frozen: &'static Frozen = Box::leak(Box::new(Frozen::new(tree())));
        let (plain, plain_walk) = node!({ "a": tree(), "b": [tree()] }).to_bytes_walked(0, &[]);
        let held = node!({ "a": Node::Frozen(frozen), "b": [Node::Frozen(frozen)] });
        let (bytes, walk) = held.to_bytes_walked(0, &[]);
        assert_eq!(bytes, plain);
        assert_eq!(walk, plain_walk);
        assert_eq!(serde_json::to_vec(&held).unwrap(), plain);
        let read = &held["b"][0]["coding"][0];
        assert!(read["code"].is("22298006") && read.has("system"));
        assert_eq!(held["a"]["coding"].as_array().map(<[_]>::len), Some(1));
        assert_eq!(held["a"].members().count(), 1);
        // A coding local validation refuses is remembered as refused.
        let refused = Frozen::new(node!({ "coding": [ {
            "system": "http://snomed.info/sct", "code": "22298007" } ] }));
        let refused: &'static Frozen = Box::leak(Box::new(refused));
        let (_, walk) = node!({ "a": Node::Frozen(refused) }).to_bytes_walked(0, &[]);
        assert!(!walk.codings_clean);
    }

    #[test]
    #[should_panic(expected = "a frozen node holds no reference")]
    fn a_frozen_node_cannot_hold_a_reference() {
        Frozen::new(node!({ "subject": { "reference": "urn:uuid:x" } }));
    }

    #[test]
    fn a_frozen_set_shares_one_frozen_tree_per_index_and_builds_beyond_its_size_unfrozen() {
        static SET: FrozenSet<2> = FrozenSet::new();
        let make = |i: usize| move || node!({ "code": ["a", "b", "c"][i] });
        let (Node::Frozen(first), Node::Frozen(again)) = (SET.get(1, make(1)), SET.get(1, make(1)))
        else {
            panic!("index 1 of 2 is frozen");
        };
        assert!(std::ptr::eq(first, again), "made once, then shared");
        assert_eq!(
            Node::Frozen(first).to_bytes_walked(0, &[]).0,
            br#"{"code":"b"}"#
        );
        let beyond = SET.get(2, make(2));
        assert!(!matches!(beyond, Node::Frozen(_)));
        assert_eq!(beyond.to_bytes_walked(0, &[]).0, br#"{"code":"c"}"#);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "made two trees")]
    fn a_frozen_set_index_that_makes_a_different_tree_is_a_bug_a_debug_build_catches() {
        static SET: FrozenSet<1> = FrozenSet::new();
        SET.get(0, || node!({ "code": "a" }));
        SET.get(0, || node!({ "code": "b" }));
    }

    #[test]
    fn uids_are_equal_only_with_the_same_uuid_and_form_even_when_their_first_digits_agree() {
        let a = Uuid::parse_str("0a1b2c3d-0000-4000-8000-000000000001").unwrap();
        let b = Uuid::parse_str("0a1b2c3d-0000-4000-8000-000000000002").unwrap();
        assert_eq!(Uid::url(a), Uid::url(a));
        assert_eq!(Uid::id(a), Uid::url(a).id_only());
        assert_ne!(Uid::url(a), Uid::url(b));
        assert_ne!(Uid::id(a), Uid::url(a));
    }

    #[test]
    fn set_keeps_members_in_key_order_and_replaces_a_member_already_there() {
        let mut n = node!({ "b": "1", "d": "2" });
        n.set(key!("c"), "3");
        n.set(key!("a"), "0");
        n.set(key!("d"), "4");
        assert_eq!(
            n.to_bytes(0),
            br#"{"a":"0","b":"1","c":"3","d":"4"}"#.to_vec()
        );
        assert!(n["c"].is("3"));
        assert!(n.has("c") && !n.has("x"));
    }
}
