//! Element ids (`Patient.identifier:nhsNumber.value`) and navigation of FHIR JSON by element
//! name, including choice elements (`value[x]`) and primitive extensions (`_birthDate`).

use serde_json::{Map, Value};

/// One step of an element id: the element name and an optional slice name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    pub name: String,
    pub slice: Option<String>,
}

/// Splits an element id into steps. Slice names never contain `.` (R4 sliceName is a token),
/// so splitting on `.` first is safe.
pub fn parse_id(id: &str) -> Vec<Seg> {
    id.split('.')
        .map(|s| match s.split_once(':') {
            Some((n, sl)) => Seg {
                name: n.to_string(),
                slice: Some(sl.to_string()),
            },
            None => Seg {
                name: s.to_string(),
                slice: None,
            },
        })
        .collect()
}

pub fn join_id(segs: &[Seg]) -> String {
    segs.iter()
        .map(|s| match &s.slice {
            Some(sl) => format!("{}:{}", s.name, sl),
            None => s.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A place in an instance: the JSON value (absent for a primitive that only has `_x`
/// extensions), its `_x` companion, the JSON key it was found under and its printable path.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: Option<&'a Value>,
    pub shadow: Option<&'a Value>,
    pub key: String,
    pub path: String,
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value, path: &str) -> Self {
        Node {
            value: Some(value),
            shadow: None,
            key: String::new(),
            path: path.to_string(),
        }
    }

    /// The object holding this node's children: the value when it is an object, else the
    /// `_x` companion (a primitive's `id`/`extension`).
    pub fn container(&self) -> Option<&'a Map<String, Value>> {
        match self.value {
            Some(Value::Object(m)) => Some(m),
            _ => self.shadow.and_then(Value::as_object),
        }
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// All instances of child element `name` under `node` (a choice name `value[x]` matches every
/// `valueXxx` key).
pub fn children<'a>(node: &Node<'a>, name: &str) -> Vec<Node<'a>> {
    let Some(obj) = node.container() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(prefix) = name.strip_suffix("[x]") {
        let mut keys: Vec<&str> = Vec::new();
        for k in obj.keys() {
            let bare = k.strip_prefix('_').unwrap_or(k);
            if is_choice_key(bare, prefix) && !keys.contains(&bare) {
                keys.push(bare);
            }
        }
        for k in keys {
            items(obj, k, &node.path, &mut out);
        }
    } else {
        items(obj, name, &node.path, &mut out);
    }
    out
}

/// Is `key` an instance key of choice element `prefix[x]` (`valueQuantity` for `value`)?
pub fn is_choice_key(key: &str, prefix: &str) -> bool {
    key.len() > prefix.len()
        && key.starts_with(prefix)
        && key[prefix.len()..].starts_with(|c: char| c.is_ascii_uppercase())
}

/// `parent.key` or `parent.key[i]`, without the formatting machinery (hot path).
pub fn child_path(parent: &str, key: &str, index: Option<usize>) -> String {
    let mut s = String::with_capacity(parent.len() + key.len() + 8);
    s.push_str(parent);
    s.push('.');
    s.push_str(key);
    if let Some(i) = index {
        push_index(&mut s, i);
    }
    s
}

/// Appends `[i]`.
pub fn push_index(s: &mut String, i: usize) {
    s.push('[');
    let mut digits = [0u8; 20];
    let mut n = i;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits[..len].iter().rev() {
        s.push(char::from(*d));
    }
    s.push(']');
}

/// `obj["_" + key]` without a heap allocation for ordinary key lengths.
pub fn shadow_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let mut buf = [0u8; 64];
    if key.len() < buf.len() {
        buf[0] = b'_';
        buf[1..=key.len()].copy_from_slice(key.as_bytes());
        // Safe: '_' followed by a valid UTF-8 string is valid UTF-8.
        let k = std::str::from_utf8(&buf[..=key.len()]).ok()?;
        obj.get(k)
    } else {
        obj.get(&format!("_{key}"))
    }
}

/// Instances under one JSON key, with their `_key` companions.
pub fn items<'a>(obj: &'a Map<String, Value>, key: &str, parent: &str, out: &mut Vec<Node<'a>>) {
    let value = non_null(obj.get(key));
    let shadow = non_null(shadow_of(obj, key));
    match (value, shadow) {
        (None, None) => {}
        (Some(Value::Array(vs)), sh) => {
            let sh = sh.and_then(Value::as_array);
            for (i, v) in vs.iter().enumerate() {
                let s = sh.and_then(|a| non_null(a.get(i)));
                let v = non_null(Some(v));
                if v.is_none() && s.is_none() {
                    continue;
                }
                out.push(Node {
                    value: v,
                    shadow: s,
                    key: key.to_string(),
                    path: child_path(parent, key, Some(i)),
                });
            }
        }
        (None, Some(Value::Array(ss))) => {
            for (i, s) in ss.iter().enumerate() {
                if s.is_null() {
                    continue;
                }
                out.push(Node {
                    value: None,
                    shadow: Some(s),
                    key: key.to_string(),
                    path: child_path(parent, key, Some(i)),
                });
            }
        }
        (v, s) => out.push(Node {
            value: v,
            shadow: s,
            key: key.to_string(),
            path: child_path(parent, key, None),
        }),
    }
}

/// Values reached from `v` by a dotted path (`coding.code`), through arrays; `$this` is `v`.
pub fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    if path == "$this" || path.is_empty() {
        return cur;
    }
    for step in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            let c = match c {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                other => vec![other],
            };
            for c in c {
                match c.get(step) {
                    Some(Value::Array(a)) => next.extend(a.iter()),
                    Some(Value::Null) | None => {}
                    Some(x) => next.push(x),
                }
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_split_into_names_and_slices() {
        let segs = parse_id("Patient.identifier:nhsNumber.value");
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[1].slice.as_deref(), Some("nhsNumber"));
        assert_eq!(join_id(&segs), "Patient.identifier:nhsNumber.value");
    }

    #[test]
    fn children_follow_arrays_choices_and_primitive_companions() {
        let r = json!({"identifier": [{"system": "a"}, {"system": "b"}],
                       "effectiveDateTime": "2025", "_birthDate": {"extension": [{"url": "x"}]}});
        let root = Node::root(&r, "R");
        let ids = children(&root, "identifier");
        assert_eq!(ids[1].path, "R.identifier[1]");
        assert_eq!(child_path("R", "x", Some(1207)), "R.x[1207]");
        let eff = children(&root, "effective[x]");
        assert_eq!(eff[0].key, "effectiveDateTime");
        let bd = children(&root, "birthDate");
        assert!(bd[0].value.is_none());
        assert_eq!(children(&bd[0], "extension").len(), 1);
    }
}
