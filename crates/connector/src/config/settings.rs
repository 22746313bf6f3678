//! One configuration key as data ([`Setting`]), the keys of one TOML table ([`Section`]), and the
//! keys a `Deserialize` type accepts ([`accepted_keys`]).
//!
//! Contract: each key's default, valid values, example and meaning are written once, in a
//! `Setting` const next to the struct that reads the section. The serde default functions parse
//! [`Setting::parsed_default`], the validation errors come from [`Setting::invalid`] and
//! [`Setting::error`] (key and example from the table), and `docs/configuration.md` is rendered
//! from the tables by [`super::docs`]. Tests compare the tables with the serde fields
//! ([`accepted_keys`]), with what an absent key deserializes to, and with the docs file.
//!
//! The shape is that of `schedule::config::Setting` (`key`, `default`, `prod_default`,
//! `expected`, `example`) plus `meaning`, and with a `default` that can also say "required" or
//! "none". `schedule` keeps its own type for now: once `[schedule]` is read by `config`, `config`
//! imports `schedule`, so `schedule` cannot import this type back (no import circle,
//! `tests/architecture.rs`); its table joins the docs as one more [`Section`].

use std::fmt::Debug;
use std::str::FromStr;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use super::ConfigError;

/// What a key is when the file and the environment leave it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// The key must be written.
    Required,
    /// The key must be written in the case named (`"with a token URL"`), may be left out otherwise.
    RequiredWhen(&'static str),
    /// This value, as written in the file but without the quotes of a TOML string.
    Value(&'static str),
    /// No value: the text says what happens (`"none"`, `` "from `nhs_api.environment`" ``).
    Unset(&'static str),
}

/// One configuration key: everything the loader, the errors and the docs say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key, as written in the file (`nhs_api.request.timeout_ms`).
    pub key: &'static str,
    /// The key's value when absent (outside `prod`, if `prod_default` is set).
    pub default: Absent,
    /// The value when absent and `nhs_api.environment` is `prod`, where it differs from `default`.
    pub prod_default: Option<&'static str>,
    /// What a valid value is, as an error says it after "must be".
    pub expected: &'static str,
    /// A valid value; `None` means the default value is the example.
    pub example: Option<&'static str>,
    /// What the key does.
    pub meaning: &'static str,
}

/// The `nhs_api.environment` with its own defaults (`prod_default`).
pub const PROD_ENVIRONMENT: &str = "prod";

impl Setting {
    /// Refuses a value of a `*_file` key that is the secret itself rather than its path (a PEM
    /// block, a JWT, a token); the error never repeats the value.
    pub fn secret_path(&self, path: &std::path::Path) -> Result<(), ConfigError> {
        if crate::secret::looks_like_a_secret(&path.display().to_string()) {
            return Err(self.error(
                "must be the path of a file holding the secret, not the secret itself (the value \
                 looks like a PEM block, a JWT or a token; it is not repeated here)",
            ));
        }
        Ok(())
    }

    /// The example the docs and the errors show: `example`, or else the default value.
    pub const fn example(&self) -> &'static str {
        match (self.example, self.default) {
            (Some(example), _) => example,
            (None, Absent::Value(value)) => value,
            (None, _) => "",
        }
    }

    /// The key within its table (`timeout_ms`).
    pub fn name(&self) -> &'static str {
        self.key.rsplit('.').next().unwrap_or(self.key)
    }

    /// The environment variable that overrides the key (`ADS__NHS_API__REQUEST__TIMEOUT_MS`).
    pub fn env_var(&self) -> String {
        format!("ADS__{}", self.key.replace('.', "__").to_ascii_uppercase())
    }

    /// The value taken when the key is absent in `environment`, if there is one.
    pub fn default_for(&self, environment: &str) -> Option<&'static str> {
        match (self.default, self.prod_default) {
            (_, Some(prod)) if environment == PROD_ENVIRONMENT => Some(prod),
            (Absent::Value(value), _) => Some(value),
            _ => None,
        }
    }

    /// The default value parsed as the field's type, for serde's `default = "…"` functions.
    ///
    /// # Panics
    /// When the table has no value default for the key or the value does not parse: a mistake in
    /// the table, which the unit tests of the configuration catch (every load calls these).
    pub fn parsed_default<T: FromStr>(&self) -> T
    where
        T::Err: Debug,
    {
        let Absent::Value(text) = self.default else {
            panic!("config table: `{}` has no default value", self.key)
        };
        text.parse().unwrap_or_else(|e| {
            panic!(
                "config table: the default of `{}`, `{text}`, is not a {}: {e:?}",
                self.key,
                std::any::type_name::<T>()
            )
        })
    }

    /// `` `{key}` {problem}, e.g. `{example}` ``.
    pub fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: self.key,
            problem: problem.into(),
            example: self.example(),
        }
    }

    /// `` `{key}` must be {expected}, e.g. `{example}` ``.
    pub fn invalid(&self) -> ConfigError {
        self.error(format!("must be {}", self.expected))
    }
}

/// The keys of one TOML table, in the order the docs list them.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The table's dotted name (`nhs_api.request`); every key is `{name}.{key}`.
    pub name: &'static str,
    /// What the table is for (one paragraph of the docs).
    pub about: &'static str,
    /// Its keys.
    pub settings: &'static [Setting],
}

/// Every dotted key `T` accepts, in field order: the serde field names (as derived, so renames
/// count), nested structs followed into, an `Option` looked through, and a map or a list one key.
///
/// # Errors
/// A field type this walker cannot drive (an enum, or a type that needs self-description), so a
/// new kind of field fails the comparison with the tables instead of hiding from it.
pub fn accepted_keys<T: DeserializeOwned>() -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    T::deserialize(Keys {
        path: String::new(),
        out: &mut keys,
    })?;
    Ok(keys)
}

/// A deserializer that records the path of every leaf it is asked for and answers with an
/// empty value of the requested kind; a struct is answered with all of its fields.
struct Keys<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl Keys<'_> {
    fn leaf(self) {
        self.out.push(self.path);
    }
}

macro_rules! leaf {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.leaf();
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Keys<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error::custom(format!(
            "`{}`: a field type that needs a self-describing format",
            self.path
        )))
    }

    leaf! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_u64(0),
        deserialize_i16 => visit_u64(0),
        deserialize_i32 => visit_u64(0),
        deserialize_i64 => visit_u64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('x'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_identifier => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_unit => visit_unit(),
        deserialize_ignored_any => visit_unit(),
        deserialize_seq => visit_seq(Empty),
        deserialize_map => visit_map(Empty),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            path: self.path,
            fields,
            next: 0,
            out: self.out,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        Err(Error::custom(format!(
            "`{}`: an enum field (not supported)",
            self.path
        )))
    }
}

/// A struct's fields, each name followed by a [`Keys`] for its value.
struct Fields<'a> {
    path: String,
    fields: &'static [&'static str],
    next: usize,
    out: &'a mut Vec<String>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.fields.get(self.next) {
            Some(name) => seed
                .deserialize(StrDeserializer::<Error>::new(name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let name = self.fields[self.next];
        self.next += 1;
        let path = if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        };
        seed.deserialize(Keys {
            path,
            out: &mut *self.out,
        })
    }
}

/// An empty list or map.
struct Empty;

impl<'de> SeqAccess<'de> for Empty {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _: T,
    ) -> Result<Option<T::Value>, Error> {
        Ok(None)
    }
}

impl<'de> MapAccess<'de> for Empty {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, Error> {
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, Error> {
        Err(Error::custom("a value without a key"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[test]
    fn accepted_keys_follows_nested_structs_options_renames_and_leaves_maps_whole() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            a: u32,
            #[serde(rename = "b_renamed")]
            b: Option<f64>,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            x: String,
            inner: Inner,
            maybe: Option<Inner>,
            list: Vec<String>,
            map: BTreeMap<String, String>,
            path: Option<std::path::PathBuf>,
            flag: bool,
        }
        assert_eq!(
            accepted_keys::<Outer>().unwrap(),
            [
                "x",
                "inner.a",
                "inner.b_renamed",
                "maybe.a",
                "maybe.b_renamed",
                "list",
                "map",
                "path",
                "flag"
            ]
        );
    }

    #[test]
    fn accepted_keys_refuses_a_field_it_cannot_walk() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        enum Choice {
            A,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct WithEnum {
            choice: Choice,
        }
        let err = accepted_keys::<WithEnum>().unwrap_err().to_string();
        assert!(err.contains("`choice`"), "{err}");
    }

    const TIMEOUT: Setting = Setting {
        key: "example.request.timeout_ms",
        default: Absent::Value("7000"),
        prod_default: None,
        expected: "a positive number of milliseconds",
        example: None,
        meaning: "per-request timeout",
    };

    #[test]
    fn a_setting_derives_its_example_env_var_defaults_and_errors() {
        assert_eq!(TIMEOUT.example(), "7000");
        assert_eq!(TIMEOUT.name(), "timeout_ms");
        assert_eq!(TIMEOUT.env_var(), "ADS__EXAMPLE__REQUEST__TIMEOUT_MS");
        assert_eq!(TIMEOUT.parsed_default::<u64>(), 7000);
        assert_eq!(TIMEOUT.default_for("prod"), Some("7000"));
        assert_eq!(
            TIMEOUT.invalid().to_string(),
            "`example.request.timeout_ms` must be a positive number of milliseconds, e.g. `7000`"
        );
        let mode = Setting {
            key: "schedule.mode",
            default: Absent::Value("continuous"),
            prod_default: Some("window"),
            expected: "`continuous` or `window`",
            example: Some("window"),
            meaning: "when submissions run",
        };
        assert_eq!(mode.default_for("int"), Some("continuous"));
        assert_eq!(mode.default_for("prod"), Some("window"));
        assert_eq!(mode.example(), "window");
    }

    #[test]
    #[should_panic(expected = "is not a")]
    fn a_default_that_does_not_parse_is_a_table_mistake() {
        let _: u32 = Setting {
            default: Absent::Value("thirty"),
            ..TIMEOUT
        }
        .parsed_default();
    }
}
