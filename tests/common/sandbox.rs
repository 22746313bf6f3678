//! The NHS API sandbox (`nhs-emulator`) on 127.0.0.1:0, and requests to it.

use std::path::PathBuf;

use nhs_emulator::{SandboxApp, SandboxConfig, SandboxHandle};
use reqwest::header;

use super::keys::fresh_key_files;

/// The content type of a token request.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// A sandbox on 127.0.0.1:0 serving `apps`, with whatever else `configure` sets.
pub async fn spawn_sandbox(
    apps: Vec<SandboxApp>,
    configure: impl FnOnce(&mut SandboxConfig),
) -> SandboxHandle {
    let mut cfg = SandboxConfig {
        apps,
        ..SandboxConfig::default()
    };
    configure(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    nhs_emulator::start(listener, cfg).await.unwrap()
}

/// An application `api_key` whose public keys are the JWKS at `jwks_path`.
pub fn app(api_key: &str, jwks_path: PathBuf) -> SandboxApp {
    SandboxApp {
        api_key: api_key.into(),
        jwks_path: Some(jwks_path),
    }
}

/// The sandbox's `$process-message` URL.
pub fn process_message_url(handle: &SandboxHandle) -> String {
    format!("{}/$process-message", handle.api_base_url())
}

/// POSTs `form`, URL-encoded, to `url`.
pub async fn post_form(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    form: &[(&str, &str)],
) -> reqwest::Result<reqwest::Response> {
    let body = serde_urlencoded::to_string(form).unwrap();
    http.post(url)
        .header(header::CONTENT_TYPE, FORM)
        .body(body)
        .send()
        .await
}

/// The sandbox with authentication and one application whose key is freshly generated.
pub struct AuthSandbox {
    pub handle: SandboxHandle,
    pub api_key_file: PathBuf,
    pub private_key: PathBuf,
    pub kid: String,
    pub dir: tempfile::TempDir,
}

pub async fn auth_sandbox() -> AuthSandbox {
    auth_sandbox_with(|_| {}).await
}

pub async fn auth_sandbox_with(configure: impl FnOnce(&mut SandboxConfig)) -> AuthSandbox {
    let dir = tempfile::tempdir().unwrap();
    let kid = "test-1".to_string();
    let paths = fresh_key_files(&kid, dir.path());
    let api_key = format!("app-{}", uuid::Uuid::new_v4().simple());
    let api_key_file = dir.path().join("api-key");
    std::fs::write(&api_key_file, &api_key).unwrap();
    let handle = spawn_sandbox(vec![app(&api_key, paths.jwks.clone())], configure).await;
    AuthSandbox {
        handle,
        api_key_file,
        private_key: paths.private_key,
        kid,
        dir,
    }
}

impl AuthSandbox {
    /// The `[nhs_api]` lines of a connector that authenticates to this sandbox.
    pub fn nhs_api_toml(&self) -> String {
        format!(
            "environment = \"custom\"\nbase_url = \"{base}\"\ntoken_url = \"{token}\"\n\
             api_key_file = \"{api_key_file}\"\nprivate_key_file = \"{key}\"\nkid = \"{kid}\"",
            base = self.handle.api_base_url(),
            token = self.handle.token_url(),
            api_key_file = self.api_key_file.display(),
            key = self.private_key.display(),
            kid = self.kid,
        )
    }
}
