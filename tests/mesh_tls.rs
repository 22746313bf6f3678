//! Mutual TLS between [`MeshClient`] and a MESH server, over real TLS on loopback. The crate's
//! built-in MESH mailbox ([`mesh_box::routes`]) is served by rustls with a client verifier that
//! requires a certificate from the mailbox CA; every certificate is made here with rcgen. Proves:
//! a client with that CA's certificate (and the CA in `ca_pem`) handshakes, sends, lists,
//! retrieves and acknowledges; a client with no certificate, with a certificate from another CA,
//! or that does not trust the server's CA is refused as [`MeshError::Tls`] naming the verdict; and the
//! `[mesh]` file keys (`client_cert_file`, `client_key_file`, `ca_file`) build a client that
//! handshakes, as `run` builds it. No key is ever printed.

mod common;

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use ads_connector::config::Config;
use ads_connector::mesh::{MeshClient, MeshClientConfig, MeshError};
use common::{mesh_client_config, write_file, INT_CONFIG};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use nhs_emulator::mesh_box::{self, PASSWORD, SHARED_KEY};
use nhs_emulator::mesh_send::{MeshSend, SendOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const MAILBOX: &str = "X26ABC2";

/// A CA and what it signs.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn sign(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

impl Leaf {
    /// What `identity_pem` holds: certificate then key.
    fn identity(&self) -> Vec<u8> {
        format!("{}\n{}", self.cert_pem, self.key_pem).into_bytes()
    }
}

/// The mailbox CA, a client certificate from it, and a stranger's CA and client certificate.
struct Pki {
    ca: Ca,
    client: Leaf,
    stranger: Leaf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("Test MESH CA");
        let client = ca.sign(&[MAILBOX], ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = Ca::new("Stranger CA").sign(&[MAILBOX], ExtendedKeyUsagePurpose::ClientAuth);
        Self {
            ca,
            client,
            stranger,
        }
    }
}

/// Serves the MESH mailbox over TLS on 127.0.0.1, requiring a client certificate from `pki.ca`;
/// returns the base URL (`https://localhost:{port}`, the name the server certificate carries).
async fn serve(pki: &Pki) -> String {
    let server = pki.ca.sign(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.issuer.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der));
    let tls = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert_der], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = mesh_box::routes();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, service) = (acceptor.clone(), TowerToHyperService::new(router.clone()));
            tokio::spawn(async move {
                // A refused handshake ends here: refusing is what some tests expect.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}")
}

fn client(url: &str, identity: Option<&Leaf>, ca: Option<&Ca>) -> MeshClient {
    MeshClient::new(&MeshClientConfig {
        identity_pem: identity.map(Leaf::identity),
        ca_pem: ca.map(|ca| ca.pem().into_bytes()),
        timeout: Duration::from_secs(30),
        ..mesh_client_config(url, MAILBOX, PASSWORD, SHARED_KEY.as_bytes())
    })
    .unwrap()
}

/// The error and every source below it, one line (TLS alerts and verifier verdicts only).
fn chain(err: &MeshError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    text
}

/// Asserts `err` is a refused TLS handshake reported as such: [`MeshError::Tls`], not retryable
/// (it needs an operator), whose own message (what the poller logs) names the TLS verdict
/// `cause` and the keys to check.
fn assert_refused(err: MeshError, cause: &str) {
    let text = chain(&err);
    assert!(matches!(err, MeshError::Tls(_)), "{text}");
    assert_eq!(err.kind(), "tls");
    assert!(!err.is_retryable());
    let shown = err.to_string();
    assert!(shown.contains(cause), "expected {cause:?} in: {shown}");
    assert!(shown.contains("mesh.client_cert_file"), "{shown}");
}

#[tokio::test]
async fn a_client_with_a_certificate_from_the_mailbox_ca_completes_the_handshake_and_reads_its_inbox(
) {
    let pki = Pki::new();
    let url = serve(&pki).await;
    let mesh = client(&url, Some(&pki.client), Some(&pki.ca));
    mesh.handshake().await.unwrap();
    let body = b"DPS error notification, sent to ourselves in three chunks";
    let options = SendOptions {
        workflow_id: "ADS_DPS_ERRORS".into(),
        chunk_size: Some(20),
        ..SendOptions::default()
    };
    let id = mesh.send_message(MAILBOX, body, &options).await.unwrap();
    assert_eq!(
        mesh.list_inbox(Some("ADS_DPS_ERRORS"), 10).await.unwrap(),
        vec![id.clone()]
    );
    let message = mesh.retrieve(&id).await.unwrap();
    assert_eq!((message.chunks, message.body.as_slice()), (3, &body[..]));
    assert_eq!(message.from.as_deref(), Some(MAILBOX));
    mesh.acknowledge(&id).await.unwrap();
    assert_eq!(mesh.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_with_the_tls_verdict_named() {
    let pki = Pki::new();
    let url = serve(&pki).await;
    let err = client(&url, None, Some(&pki.ca))
        .handshake()
        .await
        .unwrap_err();
    assert_refused(err, "CertificateRequired");
}

#[tokio::test]
async fn a_client_with_a_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let url = serve(&pki).await;
    let err = client(&url, Some(&pki.stranger), Some(&pki.ca))
        .handshake()
        .await
        .unwrap_err();
    assert_refused(err, "UnknownCA");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_ca_refuses_the_server() {
    let pki = Pki::new();
    let url = serve(&pki).await;
    let err = client(&url, Some(&pki.client), None)
        .handshake()
        .await
        .unwrap_err();
    assert_refused(err, "UnknownIssuer");
}

#[tokio::test]
async fn the_mesh_section_files_build_a_client_that_completes_the_mutual_tls_handshake() {
    let pki = Pki::new();
    let url = serve(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| write_file(dir.path(), name, text).display().to_string();
    let toml = format!(
        r#"{INT_CONFIG}
        [mesh]
        url = "{url}"
        mailbox = "{MAILBOX}"
        password_file = "{}"
        shared_key_file = "{}"
        client_cert_file = "{}"
        client_key_file = "{}"
        ca_file = "{}"
        errors_topic = "ads.dps-errors"
        "#,
        file("password", &format!("{PASSWORD}\n")),
        file("shared-key", SHARED_KEY),
        file("client.crt", &pki.client.cert_pem),
        file("client.key", &pki.client.key_pem),
        file("ca.crt", &pki.ca.pem()),
    );
    let mesh = Config::from_toml_str(&toml).unwrap().mesh.unwrap();
    let client_config = MeshClientConfig::from_config(&mesh).unwrap();
    assert!(client_config.identity_pem.is_some() && client_config.ca_pem.is_some());
    let mesh = MeshClient::new(&client_config).unwrap();
    mesh.handshake().await.unwrap();
    assert_eq!(mesh.count().await.unwrap(), 0);
}
