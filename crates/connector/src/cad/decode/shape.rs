//! A non-allocating walk over the JSON that rejects arrays outside the schema's list fields:
//! serde's derived structs also accept a JSON array of their fields in order, the schema does
//! not. Run before deserialising; holds nothing.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The fields whose values are JSON arrays in `cad.call.v1`; list items are never arrays.
const LIST_FIELDS: [&str; 10] = [
    "responses",
    "patients",
    "call_signs",
    "observations",
    "diagnoses",
    "injuries",
    "medications",
    "procedures",
    "safeguarding",
    "public_health",
];

pub(super) struct Shape {
    pub(super) array_allowed: bool,
}

impl<'de> DeserializeSeed<'de> for Shape {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shape {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.array_allowed {
            return Err(de::Error::custom(
                "invalid type: array, expected a JSON object or a single value",
            ));
        }
        while seq
            .next_element_seed(Shape {
                array_allowed: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(ListKey(array_allowed)) = map.next_key()? {
            map.next_value_seed(Shape { array_allowed })?;
        }
        Ok(())
    }
}

/// An object key, reduced to "is it a list field?".
struct ListKey(bool);

impl<'de> de::Deserialize<'de> for ListKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ListKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E>(self, key: &str) -> Result<ListKey, E> {
                Ok(ListKey(LIST_FIELDS.contains(&key)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}
