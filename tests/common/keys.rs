//! RSA key pairs, JWKS files and client assertions signed with `jsonwebtoken` directly (never
//! through the connector's own auth code), for the token endpoint's tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ads_connector::keygen::{self, KeyPair, KeygenPaths};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

/// The `client_assertion_type` of a signed-JWT token request.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A 2048-bit key pair for `kid`, generated once per test binary (generating is slow) and
/// shared by every test that asks for the same `kid`.
pub fn shared_key(kid: &str) -> &'static KeyPair {
    static KEYS: Mutex<BTreeMap<String, &'static OnceLock<KeyPair>>> = Mutex::new(BTreeMap::new());
    let cell: &'static OnceLock<KeyPair> = KEYS
        .lock()
        .unwrap()
        .entry(kid.to_owned())
        .or_insert_with(|| Box::leak(Box::default()));
    cell.get_or_init(|| keygen::generate(kid, 2048).unwrap_or_else(|e| panic!("key {kid}: {e}")))
}

/// A fresh 2048-bit key pair for `kid`, written into `dir` as `keygen` writes it (private key,
/// public key, `jwks.json`).
pub fn fresh_key_files(kid: &str, dir: &Path) -> KeygenPaths {
    let pair = keygen::generate(kid, 2048).unwrap();
    keygen::write(&pair, dir).unwrap()
}

/// Writes a JWKS holding `keys` to `path`.
pub fn write_jwks(path: &Path, keys: &[&KeyPair]) {
    std::fs::write(path, keygen::jwks(keys).to_string()).unwrap();
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The JOSE header of a client assertion signed by `kid`.
pub fn jwt_header(kid: &str) -> Value {
    json!({"alg": "RS512", "typ": "JWT", "kid": kid})
}

/// The claims of a valid client assertion for `api_key` at `token_url`, with a fresh `jti`.
pub fn assertion_claims(api_key: &str, token_url: &str) -> Value {
    json!({
        "iss": api_key,
        "sub": api_key,
        "aud": token_url,
        "jti": uuid::Uuid::new_v4().to_string(),
        "exp": now() + 240,
    })
}

/// Signs `header.claims` with RS512, whatever `header` says.
pub fn sign(header: &Value, claims: &Value, key: &KeyPair) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let input = format!("{}.{}", encode(header), encode(claims));
    let key = EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap();
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS512).unwrap();
    format!("{input}.{signature}")
}

/// The form of a signed-JWT token request (client credentials with `assertion`).
pub fn token_form(assertion: &str) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]
}
