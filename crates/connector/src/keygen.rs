//! `ads-connector keygen --kid KID --out DIR`: the RSA key pair for the NHS signed-JWT
//! (RS512) client assertion, and the JWKS to register with NHS England (or give the sandbox).
//!
//! Output, in `DIR` (created if missing):
//! * `KID.pem`: the private key, PKCS#8 PEM, file mode 0600, never overwritten;
//! * `KID.pub.pem`: the public key, SPKI PEM, never overwritten;
//! * `jwks.json`: `{"keys":[{"kty":"RSA","n","e","alg":"RS512","use":"sig","kid"}]}` with `n`/`e`
//!   base64url without padding; replaced atomically (write then rename) so a reader never sees
//!   half a file.
//!
//! NHS suggests 4096-bit keys ([`DEFAULT_BITS`]); fewer than 2048 bits are refused.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};

/// Key size NHS England suggests (`ssh-keygen -t rsa -b 4096`).
pub const DEFAULT_BITS: usize = 4096;
const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 16384;

/// A generated key pair and its public JWK.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// Key id: the JWT `kid` header and the file name stem.
    pub kid: String,
    /// PKCS#8 PEM of the private key. A secret: never log it.
    pub private_pem: String,
    /// SPKI PEM of the public key.
    pub public_pem: String,
    /// The public key as a JWK (`kty`, `n`, `e`, `alg`, `use`, `kid`).
    pub jwk: Value,
}

/// Where [`write`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeygenPaths {
    /// `DIR/KID.pem` (mode 0600).
    pub private_key: PathBuf,
    /// `DIR/KID.pub.pem`.
    pub public_key: PathBuf,
    /// `DIR/jwks.json`.
    pub jwks: PathBuf,
}

/// Why keys could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The kid is also a file name, so it is kept to a safe alphabet.
    #[error("key id `{0}` must be 1-64 characters of A-Z, a-z, 0-9, `.`, `_` or `-`, not starting with `.`, e.g. `ads-2025-01`")]
    InvalidKid(String),
    /// Too small to be safe, or too large to generate in reasonable time.
    #[error(
        "RSA key size must be between {MIN_BITS} and {MAX_BITS} bits, e.g. {DEFAULT_BITS}; got {0}"
    )]
    KeySize(usize),
    /// The RSA library failed to generate a key.
    #[error("could not generate the RSA key")]
    Generate(#[source] rsa::Error),
    /// PKCS#8 encoding of the private key failed.
    #[error("could not encode the private key as PKCS#8 PEM")]
    EncodePrivate(#[source] rsa::pkcs8::Error),
    /// SPKI encoding of the public key failed.
    #[error("could not encode the public key as SPKI PEM")]
    EncodePublic(#[source] rsa::pkcs8::spki::Error),
    /// A key file for this kid is already there; keys are never overwritten.
    #[error("refusing to overwrite existing key file {}", .0.display())]
    AlreadyExists(PathBuf),
    /// Creating the directory or writing a file failed.
    #[error("could not write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Generates an RSA key pair of `bits` bits with key id `kid`.
pub fn generate(kid: &str, bits: usize) -> Result<KeyPair, KeygenError> {
    if !is_safe_kid(kid) {
        return Err(KeygenError::InvalidKid(kid.to_owned()));
    }
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(KeygenError::KeySize(bits));
    }
    let private =
        RsaPrivateKey::new(&mut rand::thread_rng(), bits).map_err(KeygenError::Generate)?;
    let public = RsaPublicKey::from(&private);
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(KeygenError::EncodePrivate)?
        .to_string();
    let public_pem = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(KeygenError::EncodePublic)?;
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        "alg": "RS512",
        "use": "sig",
        "kid": kid,
    });
    Ok(KeyPair {
        kid: kid.to_owned(),
        private_pem,
        public_pem,
        jwk,
    })
}

/// A JWKS document holding the public keys of `keys`, in order.
pub fn jwks(keys: &[&KeyPair]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

/// Writes `KID.pem` (0600), `KID.pub.pem` and `jwks.json` (this key only) into `dir`.
pub fn write(pair: &KeyPair, dir: &Path) -> Result<KeygenPaths, KeygenError> {
    let paths = KeygenPaths {
        private_key: dir.join(format!("{}.pem", pair.kid)),
        public_key: dir.join(format!("{}.pub.pem", pair.kid)),
        jwks: dir.join("jwks.json"),
    };
    fs::create_dir_all(dir).map_err(write_error(dir))?;
    // Check both first so a refusal leaves nothing half written.
    for path in [&paths.private_key, &paths.public_key] {
        if path.exists() {
            return Err(KeygenError::AlreadyExists(path.clone()));
        }
    }
    create_new(&paths.private_key, pair.private_pem.as_bytes(), 0o600)?;
    create_new(&paths.public_key, pair.public_pem.as_bytes(), 0o644)?;
    let jwks = serde_json::to_vec_pretty(&jwks(&[pair])).expect("a JSON value serialises");
    replace(&paths.jwks, &jwks)?;
    Ok(paths)
}

fn is_safe_kid(kid: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (1..=64).contains(&kid.len()) && !kid.starts_with('.') && kid.chars().all(allowed)
}

/// Creates `path` with `mode` from the start (no window where a private key is world-readable).
fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeygenError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeygenError::AlreadyExists(path.to_owned()),
        _ => write_error(path)(source),
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(write_error(path))
}

/// Replaces `path` atomically: readers (the sandbox re-reads JWKS per request) see old or new.
fn replace(path: &Path, contents: &[u8]) -> Result<(), KeygenError> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, contents).map_err(write_error(&tmp))?;
    fs::rename(&tmp, path).map_err(write_error(path))
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeygenError + '_ {
    move |source| KeygenError::Write {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_must_be_a_safe_file_name() {
        assert!(is_safe_kid("ads-2025.01_a"));
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(!is_safe_kid(bad), "{bad:?}");
        }
    }

    #[test]
    fn refuses_small_keys_before_generating() {
        assert!(matches!(
            generate("k", 1024),
            Err(KeygenError::KeySize(1024))
        ));
        assert!(matches!(
            generate("a/b", 2048),
            Err(KeygenError::InvalidKid(_))
        ));
    }
}
