//! The client assertion JWT as the token endpoint sees it: decoded without verification first
//! (as Apigee's `DecodeJWT` does), then its signature checked against the app's JWKS.
//!
//! Header and claims stay `serde_json::Value`s so the claim checks can tell "missing" from
//! "wrong type" exactly as the platform's JavaScript does. Pure, no I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Leeway on `exp`/`nbf` when verifying, as `VerifyJWT.ClientCredentials` `TimeAllowance`.
const TIME_ALLOWANCE_SECS: f64 = 10.0;

/// A JWT split into its parts, header and claims decoded but nothing verified.
#[derive(Debug)]
pub(crate) struct UnverifiedJwt<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

impl<'a> UnverifiedJwt<'a> {
    /// Splits and decodes `token`; `None` when it is not three base64url parts whose first two
    /// are JSON objects.
    pub(crate) fn decode(token: &'a str) -> Option<Self> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, claims) = signing_input.split_once('.')?;
        Some(Self {
            header: json_object(header)?,
            claims: json_object(claims)?,
            signing_input,
            signature,
        })
    }

    /// Whether the RS512 signature verifies with `key` and the token is within its time window.
    pub(crate) fn verifies_with(&self, key: &DecodingKey, now_secs: f64) -> bool {
        let signed = jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            key,
            Algorithm::RS512,
        );
        let claim = |name: &str| self.claims.get(name).and_then(Value::as_f64);
        let expired = claim("exp").is_some_and(|exp| now_secs > exp + TIME_ALLOWANCE_SECS);
        let not_yet = claim("nbf").is_some_and(|nbf| nbf - TIME_ALLOWANCE_SECS > now_secs);
        matches!(signed, Ok(true)) && !expired && !not_yet
    }
}

fn json_object(part: &str) -> Option<Map<String, Value>> {
    // Tolerate padded base64url too; Apigee's decoder does.
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// JavaScript "falsy" (`!value`), which is how the platform tests for a missing header or claim.
pub(crate) fn is_falsy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => false,
    }
}

/// How a `kid` matched (or not) the app's JWKS.
pub(crate) enum KeyLookup {
    /// No key in the set has that `kid`.
    NoMatch,
    /// A key has that `kid` but is not a usable RSA key (so the signature cannot verify).
    Unusable,
    Found(DecodingKey),
}

/// Finds the key with `kid` in a JWKS document (`{"keys": [...]}`).
pub(crate) fn find_key(jwks: &Value, kid: &str) -> KeyLookup {
    let mut keys = jwks["keys"].as_array().into_iter().flatten();
    let Some(jwk) = keys.find(|k| k["kid"] == kid) else {
        return KeyLookup::NoMatch;
    };
    let (Some(n), Some(e)) = (jwk["n"].as_str(), jwk["e"].as_str()) else {
        return KeyLookup::Unusable;
    };
    match (&jwk["kty"], DecodingKey::from_rsa_components(n, e)) {
        (kty, Ok(key)) if kty == "RSA" => KeyLookup::Found(key),
        _ => KeyLookup::Unusable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    #[test]
    fn decodes_header_and_claims_without_verifying() {
        let token = format!(
            "{}.{}.sig",
            encode(&json!({"alg": "RS512"})),
            encode(&json!({"exp": 1}))
        );
        let jwt = UnverifiedJwt::decode(&token).unwrap();
        assert_eq!(jwt.header["alg"], "RS512");
        assert_eq!(jwt.claims["exp"], 1);
    }

    #[test]
    fn rejects_tokens_that_are_not_three_json_parts() {
        assert!(UnverifiedJwt::decode("abc").is_none());
        assert!(UnverifiedJwt::decode("a.b").is_none());
        assert!(UnverifiedJwt::decode("!!.!!.!!").is_none());
        let array = format!("{}.{}.s", encode(&json!([1])), encode(&json!({})));
        assert!(UnverifiedJwt::decode(&array).is_none());
    }

    #[test]
    fn falsy_follows_javascript() {
        for v in [json!(null), json!(false), json!(0), json!(""), json!(0.0)] {
            assert!(is_falsy(Some(&v)), "{v}");
        }
        for v in [json!(true), json!(1), json!("x"), json!([]), json!({})] {
            assert!(!is_falsy(Some(&v)), "{v}");
        }
        assert!(is_falsy(None));
    }

    #[test]
    fn kid_lookup_distinguishes_missing_from_unusable_keys() {
        let jwks = json!({"keys": [{"kid": "ec", "kty": "EC"}]});
        assert!(matches!(find_key(&jwks, "other"), KeyLookup::NoMatch));
        assert!(matches!(find_key(&jwks, "ec"), KeyLookup::Unusable));
        assert!(matches!(find_key(&json!({}), "x"), KeyLookup::NoMatch));
    }
}
