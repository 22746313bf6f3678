//! Whether JSON text already is its own canonical form: byte for byte what `serde_json::to_vec`
//! writes for it parsed as a `serde_json::Value` (no whitespace, object keys in strictly
//! increasing byte order, serde_json's string escapes, numbers as serde_json prints them).
//!
//! Input: the text of one JSON value that serde_json has already parsed. Output: `true` only
//! when re-serializing it would give the same bytes, so hashing the text is hashing the canonical
//! form; `false` whenever in doubt (an escaped key, a number serde_json would print otherwise),
//! and the caller then re-serializes. One pass, no allocation except for unusual numbers.

/// serde_json's limit on nesting; deeper text is never canonical here (it never parsed).
const MAX_DEPTH: usize = 128;

/// Whether `json` is exactly `serde_json::to_vec(&serde_json::from_slice::<Value>(json)?)`.
pub(super) fn is_canonical(json: &[u8]) -> bool {
    let mut scanner = Scanner { json, at: 0 };
    scanner.value(0) && scanner.at == json.len()
}

struct Scanner<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.json.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            // `Value`'s map is a `BTreeMap<String, _>`: keys in byte order, no duplicates.
            // Escaped keys would need unescaping to compare; they do not occur in FHIR.
            let Some((key, false)) = self.string() else {
                return false;
            };
            if previous.is_some_and(|previous| previous >= key) {
                return false;
            }
            previous = Some(key);
            if !self.eat(b':') || !self.value(depth + 1) {
                return false;
            }
            if !self.eat(b',') {
                return self.eat(b'}');
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            if !self.eat(b',') {
                return self.eat(b']');
            }
        }
    }

    /// A string as serde_json writes it: its contents between the quotes and whether it has
    /// escapes, or `None`.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let mut escaped = false;
        loop {
            let rest = self.json.get(self.at..)?;
            let stop = string_end(rest)?;
            self.at += stop + 1;
            match rest[stop] {
                b'"' => return Some((&self.json[start..self.at - 1], escaped)),
                b'\\' if self.escape() => escaped = true,
                _ => return None,
            }
        }
    }

    /// The escape after a `\`: serde_json writes `\"`, `\\`, the five short control escapes,
    /// and `\u00xx` (lower-case hex) for the other control characters, nothing else (`/`,
    /// DEL and non-ASCII are written as they are).
    fn escape(&mut self) -> bool {
        let Some(byte) = self.peek() else {
            return false;
        };
        self.at += 1;
        match byte {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => true,
            b'u' => {
                let Some(&[b'0', b'0', high @ (b'0' | b'1'), low]) =
                    self.json.get(self.at..self.at + 4)
                else {
                    return false;
                };
                self.at += 4;
                let Some(low) = char::from(low)
                    .to_digit(16)
                    .filter(|_| !low.is_ascii_uppercase())
                else {
                    return false;
                };
                let code = (u32::from(high - b'0') << 4) | low;
                !matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)
            }
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.json[self.at..].starts_with(word);
        self.at += if found { word.len() } else { 0 };
        found
    }

    fn number(&mut self) -> bool {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.at += 1;
        }
        let text = &self.json[start..self.at];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        // A plain integer that fits an `i64` prints as itself, unless it is `-0` or has a
        // leading zero.
        if !digits.is_empty()
            && digits.len() <= 18
            && digits.iter().all(u8::is_ascii_digit)
            && (digits == b"0" || digits[0] != b'0')
            && text != b"-0"
        {
            return true;
        }
        // Anything else (fractions, exponents, large integers): ask serde_json how it prints it.
        serde_json::from_slice::<serde_json::Number>(text)
            .ok()
            .and_then(|number| serde_json::to_vec(&number).ok())
            .is_some_and(|printed| printed == text)
    }
}

/// The first `"`, `\\` or control character in `bytes`: eight bytes at a time (most of a FHIR
/// bundle is string contents), as serde_json's own reader does.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // High bit set in the first byte of `word` that is zero (later bytes may be false hits).
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        let hits = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    let at = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(offset + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::{json, Value};

    /// What the canonical form of `text` is, by serde_json itself.
    fn canonical(text: &[u8]) -> Vec<u8> {
        let value: Value = serde_json::from_slice(text).unwrap();
        serde_json::to_vec(&value).unwrap()
    }

    fn random_string(rng: &mut StdRng) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{8}", "\u{c}", "\u{0}",
            "\u{1f}", "\u{7f}", "é", "€", "😀", "<div>", "}", "]", ",", ":",
        ];
        (0..rng.gen_range(0..8))
            .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
            .collect()
    }

    fn random_value(rng: &mut StdRng, depth: u32) -> Value {
        match rng.gen_range(0..if depth > 3 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.gen()),
            2 => json!(rng.gen::<i64>() >> rng.gen_range(0..64)),
            3 => json!(rng.gen::<u64>()),
            4 => json!(rng.gen::<f64>() * 10f64.powi(rng.gen_range(-30..30))),
            5 => Value::String(random_string(rng)),
            6 => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.gen_range(0..5))
                    .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    fn has_escaped_key(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.iter().any(|(key, value)| {
                key.chars().any(|c| c == '"' || c == '\\' || c < ' ') || has_escaped_key(value)
            }),
            Value::Array(items) => items.iter().any(has_escaped_key),
            _ => false,
        }
    }

    #[test]
    fn serde_json_output_is_canonical_unless_a_key_is_escaped() {
        let mut rng = StdRng::seed_from_u64(16);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let text = serde_json::to_vec(&random_value(&mut rng, 0)).unwrap();
            if is_canonical(&text) {
                accepted += 1;
                assert_eq!(canonical(&text), text);
            } else {
                // Only a key with an escape may be refused, or a float serde_json does not read
                // back exactly (without its `float_roundtrip` feature).
                let value: Value = serde_json::from_slice(&text).unwrap();
                assert!(
                    has_escaped_key(&value) || canonical(&text) != text,
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        assert!(accepted > 15_000, "{accepted}");
    }

    #[test]
    fn accepted_text_is_always_its_canonical_form() {
        // Every other way of writing the same values: pretty, escaped, reordered, renumbered.
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..5_000 {
            let value = random_value(&mut rng, 0);
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            if is_canonical(&pretty) {
                assert_eq!(canonical(&pretty), pretty);
            }
        }
        for text in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#"["\/"]"#,
            r#"["\u00e9"]"#,
            r#"["\u001F"]"#,
            r#"["\u000a"]"#,
            r#"["\u0041"]"#,
            "[1.50]",
            "[1e2]",
            "[1E2]",
            "[-0]",
            "[1.0e0]",
            "[100000000000000000000]",
            "[0.1]",
            "[-0.0]",
            "[1.0]",
            "[12345678901234567890]",
            "[-9223372036854775808]",
            "[18446744073709551615]",
        ] {
            let text = text.as_bytes();
            assert_eq!(
                is_canonical(text),
                canonical(text) == text,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn string_end_finds_the_first_quote_backslash_or_control_character() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.gen_range(0..40))
                .map(|_| match rng.gen_range(0..10) {
                    0 => b'"',
                    1 => b'\\',
                    2 => rng.gen_range(0..0x20),
                    _ => rng.gen_range(0x20..=0xff),
                })
                .collect();
            let expected = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            assert_eq!(string_end(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn control_characters_use_serde_json_escapes() {
        for byte in 0u8..0x80 {
            let text = serde_json::to_vec(&Value::String(char::from(byte).to_string())).unwrap();
            assert!(is_canonical(&text), "{}", String::from_utf8_lossy(&text));
        }
    }
}
