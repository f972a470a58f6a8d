//! HTTPS through the proxy axis: a certificate authority made for one
//! replay run, the certificates it signs for the hosts a client `CONNECT`s
//! to (so that the cache modes see HTTPS requests too, as a company's
//! TLS-intercepting cache does), and a TLS terminator in front of a
//! scenario service that asks for `tls: true`.
//!
//! The CA's key lives in memory only, in the process that made it (a run's
//! supervisor); what reaches the disk is its certificate, inside a bundle
//! with the system's CAs, in the run's own directory, which is removed with
//! the run. Certificates are ECDSA P-256, made with rcgen; TLS is rustls
//! with the ring provider. No OpenSSL.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;

/// Where Debian, Fedora and others keep the system's CA bundle, in order.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The variables through which runtimes find the CAs they trust: OpenSSL
/// (Python, Ruby, curl built on it), requests, curl, Node.js and git.
pub const CA_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client that trusts `roots` (the proxy's, towards origins).
pub(crate) fn client_trusting(roots: RootCertStore) -> Result<ClientConfig, rustls::Error> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A CA for one run, and the server certificates it has signed.
pub struct Authority {
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The system's CAs and this one, PEM.
    bundle: String,
    /// Trusts the same CAs as the bundle: for the proxy's own HTTPS
    /// requests to origins.
    client: Arc<ClientConfig>,
    /// One server config per host name, made on first use.
    servers: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA, with a fresh key.
    pub fn new() -> Result<Self, String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot make a CA key: {e}"))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "bugpack replay CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, key)
            .map_err(|e| format!("cannot make the CA certificate: {e}"))?;
        let mut bundle = SYSTEM_BUNDLES
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str("# bugpack replay CA, made for this run\n");
        bundle.push_str(&ca.pem());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(bundle.as_bytes()).flatten() {
            // A system CA rustls cannot use is one fewer root, not an error.
            let _ = roots.add(cert);
        }
        let client = client_trusting(roots).map_err(|e| e.to_string())?;
        Ok(Self {
            ca,
            bundle,
            client: Arc::new(client),
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Writes the bundle (the system's CAs and this one) to `path`.
    pub fn write_bundle(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, &self.bundle)
    }

    /// For the proxy's requests to HTTPS origins.
    pub(crate) fn client_config(&self) -> ClientConfig {
        (*self.client).clone()
    }

    /// A server config with a certificate for `host` (a name or an address).
    pub(crate) fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(config) = servers.get(host) {
            return Ok(Arc::clone(config));
        }
        let config = Arc::new(self.make_server_config(&[host.to_owned()])?);
        servers.insert(host.to_owned(), Arc::clone(&config));
        Ok(config)
    }

    fn make_server_config(&self, names: &[String]) -> Result<ServerConfig, String> {
        let bad =
            |e: rcgen::Error| format!("cannot make a certificate for {}: {e}", names.join(", "));
        let key = KeyPair::generate().map_err(bad)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(bad)?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.ca).map_err(bad)?;
        let chain = vec![cert.der().clone(), self.ca.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A TLS terminator in front of a service: accepts TLS on its port with a
/// certificate for `127.0.0.1` and `localhost`, and forwards the plain
/// bytes to the service's port. Dropping it stops it.
#[derive(Debug)]
pub struct Terminator {
    server: super::background::Background,
}

impl Terminator {
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        authority: &Authority,
    ) -> Result<Self, String> {
        let config =
            authority.make_server_config(&["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let server =
            super::background::Background::spawn(listen, "bugpack-tls", move |client, peer| {
                terminate(acceptor.clone(), client, peer, upstream)
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

/// One client of a TLS terminator: the handshake, then the plain bytes
/// both ways between it and the service.
async fn terminate(
    acceptor: tokio_rustls::TlsAcceptor,
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
) {
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!(%peer, "TLS handshake failed: {err}");
            return;
        }
        Err(_) => return,
    };
    match TcpStream::connect(upstream).await {
        Ok(mut service) => {
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut service).await;
        }
        Err(err) => tracing::debug!("TLS terminator cannot reach {upstream}: {err}"),
    }
}
