//! PEM loading and rustls configs, ring provider only (never aws-lc-rs: two providers in one binary panic rustls).
//! Client: the CA that signed the gateway's server certificate + one client certificate per identity.
//! Server (floor servers): the same settings as the gateway: TLS 1.2/1.3, client certificate required.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::BoxError;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, BoxError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()).into());
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, BoxError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

pub fn load_roots(ca: &Path) -> Result<RootCertStore, BoxError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// Client config of one identity: trusts `ca`, presents `<certs_dir>/<name>.pem` + `.key`.
pub fn client_config(ca: &Path, certs_dir: &Path, name: &str, http2: bool) -> Result<ClientConfig, BoxError> {
    let roots = load_roots(ca)?;
    let chain = load_certs(&certs_dir.join(format!("{name}.pem")))?;
    let key = load_key(&certs_dir.join(format!("{name}.key")))?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = if http2 { vec![b"h2".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(config)
}

/// Server config with the gateway's TLS settings: ring, TLS 1.2 + 1.3, client certificate required.
pub fn server_config(cert: &Path, key: &Path, client_ca: &Path) -> Result<ServerConfig, BoxError> {
    let roots = Arc::new(load_roots(client_ca)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
