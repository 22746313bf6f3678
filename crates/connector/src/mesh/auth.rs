//! The MESH `NHSMESH` authorization header.
//!
//! Input: mailbox id, mailbox password, the environment's shared key. Output: one header value per
//! request, `NHSMESH {mailbox}:{nonce}:{nonce_count}:{timestamp}:{hmac}`, where `hmac` is the
//! lower-case hex HMAC-SHA256, keyed with the shared key, of
//! `{mailbox}:{nonce}:{nonce_count}:{password}:{timestamp}` and `timestamp` is UTC `YYYYMMDDHHMM`.
//! This is the scheme NHS England's `mesh-client` sends (`AuthTokenGenerator`) and
//! `mesh-sandbox` checks (`generate_cipher_text`), both read in their PyPI sources: one random
//! nonce per generator, and a count incremented on every header. Pure apart from the clock and
//! the random nonce; the password never leaves this module except inside the HMAC.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The authorization scheme name.
pub const SCHEME: &str = "NHSMESH";

/// Generates `NHSMESH` header values for one mailbox.
pub struct MeshAuth {
    mailbox: String,
    password: String,
    shared_key: Vec<u8>,
    nonce: String,
    count: AtomicU64,
}

impl std::fmt::Debug for MeshAuth {
    // Not derived: the password and the shared key stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshAuth")
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

impl MeshAuth {
    /// A generator with a fresh random nonce.
    pub fn new(mailbox: &str, password: &str, shared_key: &[u8]) -> Self {
        Self {
            mailbox: mailbox.to_owned(),
            password: password.to_owned(),
            shared_key: shared_key.to_vec(),
            nonce: uuid::Uuid::new_v4().to_string(),
            count: AtomicU64::new(0),
        }
    }

    /// The mailbox this generator signs for.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// The next header value (the nonce count increments).
    pub fn header(&self) -> String {
        let timestamp = chrono::Utc::now().format("%Y%m%d%H%M").to_string();
        let count = self.count.fetch_add(1, Ordering::Relaxed);
        header_value(
            &self.mailbox,
            &self.password,
            &self.shared_key,
            &self.nonce,
            count,
            &timestamp,
        )
    }
}

/// The header value for explicit inputs (tests pin them).
pub fn header_value(
    mailbox: &str,
    password: &str,
    shared_key: &[u8],
    nonce: &str,
    count: u64,
    timestamp: &str,
) -> String {
    let private = format!("{mailbox}:{nonce}:{count}:{password}:{timestamp}");
    let mac = crate::telemetry::hex(&hmac_sha256(shared_key, private.as_bytes()));
    format!("{SCHEME} {mailbox}:{nonce}:{count}:{timestamp}:{mac}")
}

/// HMAC-SHA256 (RFC 2104), written out on `sha2` so no extra crate is needed.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::hex;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn header_matches_python_mesh_client() {
        // hmac.HMAC(b"TestKey", b"X26ABC1:nonce:0:password:202601010000", sha256).hexdigest()
        let header = header_value(
            "X26ABC1",
            "password",
            b"TestKey",
            "nonce",
            0,
            "202601010000",
        );
        assert_eq!(
            header,
            "NHSMESH X26ABC1:nonce:0:202601010000:\
             30f97bab382b9e3626c7a5f399fdad9ebf7e27e1bba66194f41dd7a5c6e9efc4"
        );
    }

    #[test]
    fn nonce_count_increments() {
        let auth = MeshAuth::new("X26ABC1", "password", b"TestKey");
        let a = auth.header();
        let b = auth.header();
        assert_eq!(a.split(':').nth(2), Some("0"));
        assert_eq!(b.split(':').nth(2), Some("1"));
    }
}
