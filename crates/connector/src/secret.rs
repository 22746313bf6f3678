//! Secret files: the only way the connector reads a key, a password or an API key.
//!
//! Input: the configuration key that names the file (`nhs_api.private_key_file`, …) and its path.
//! Output: the file's bytes. A secret file must be a regular file (a FIFO or a device such as
//! `/dev/zero` is refused at once instead of hanging or filling memory) of at most
//! [`MAX_SECRET_BYTES`]. Errors name the configuration key and never the file's content; they
//! name the path only when it looks like a path, because the most common mistake is pasting
//! the secret itself where its path belongs (a PEM block, a JWT, a token), and the path is
//! then the secret.

use std::io::Read;
use std::path::Path;

/// The largest secret file read (a 4096-bit RSA key in PEM is about 3.3 kB).
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A secret file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The value is not a path but looks like the secret itself.
    #[error("`{key}` must be the path of a file holding the secret, not the secret itself (the value looks like a PEM block, a JWT or a token; it is not repeated here)")]
    NotAPath {
        /// The configuration key.
        key: &'static str,
    },
    /// Not a regular file.
    #[error("`{key}` ({path}) is not a regular file")]
    NotAFile {
        /// The configuration key.
        key: &'static str,
        /// The path (shown only when it looks like one).
        path: String,
    },
    /// Larger than [`MAX_SECRET_BYTES`].
    #[error("`{key}` ({path}) is larger than {MAX_SECRET_BYTES} bytes: not a secret file")]
    TooLarge {
        /// The configuration key.
        key: &'static str,
        /// The path.
        path: String,
    },
    /// Reading failed.
    #[error("cannot read `{key}` ({path}): {reason}")]
    Io {
        /// The configuration key.
        key: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        reason: String,
    },
}

/// True when `value` looks like a secret rather than a path: a PEM block, a JWT, text over
/// several lines, or something far longer than any path.
pub fn looks_like_a_secret(value: &str) -> bool {
    let v = value.trim();
    v.contains("-----BEGIN")
        || v.contains('\n')
        || v.len() > 1024
        || (v.starts_with("eyJ") && v.matches('.').count() >= 2)
}

/// The path as an error may show it.
pub fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    if looks_like_a_secret(&text) {
        "the value is not shown: it looks like a secret".into()
    } else {
        text
    }
}

/// Reads the secret file named by `key`; see the module header.
pub fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SecretError> {
    if looks_like_a_secret(&path.display().to_string()) {
        return Err(SecretError::NotAPath { key });
    }
    let io = |e: std::io::Error| SecretError::Io {
        key,
        path: shown(path),
        reason: e.to_string(),
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(SecretError::NotAFile {
            key,
            path: shown(path),
        });
    }
    if metadata.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge {
            key,
            path: shown(path),
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge {
            key,
            path: shown(path),
        });
    }
    Ok(bytes)
}

/// [`read`] as text, trimmed.
pub fn read_text(key: &'static str, path: &Path) -> Result<String, SecretError> {
    let bytes = read(key, path)?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

    #[test]
    fn a_secret_pasted_where_its_path_belongs_is_refused_without_echoing_it() {
        for value in [PEM, "eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"] {
            let err = read("nhs_api.private_key_file", Path::new(value)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("`nhs_api.private_key_file`"), "{text}");
            assert!(!text.contains("MIIEvQ") && !text.contains("eyJ"), "{text}");
        }
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once() {
        for path in ["/dev/zero", "/dev/null", "/"] {
            let err = read("kafka.sasl_password_file", Path::new(path)).unwrap_err();
            assert!(matches!(err, SecretError::NotAFile { .. }), "{path}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read("nhs_api.api_key_file", &fifo).unwrap_err();
            assert!(matches!(err, SecretError::NotAFile { .. }), "{err}");
        }
    }

    #[test]
    fn a_file_over_the_cap_is_refused_and_a_normal_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            read("mesh.password_file", &big).unwrap_err(),
            SecretError::TooLarge { .. }
        ));
        let ok = dir.path().join("ok");
        std::fs::write(&ok, " secret \n").unwrap();
        assert_eq!(read_text("mesh.password_file", &ok).unwrap(), "secret");
        let err = read("mesh.password_file", &dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("`mesh.password_file`"), "{err}");
    }
}
