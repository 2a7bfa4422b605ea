//! TLS with client certificates (ring provider only) and the caller's identity: the leaf certificate's subject CN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

/// Who is calling, decided once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The relief office (a CN listed in `admin.identities`).
    Admin(String),
    /// A hospital; its id is the CN.
    Hospital(String),
    /// A certificate this gateway will not serve (CN missing or not a valid hospital id): 403 on every path.
    Unusable(String),
}

impl Identity {
    pub fn name(&self) -> &str {
        match self {
            Identity::Admin(n) | Identity::Hospital(n) | Identity::Unusable(n) => n,
        }
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

pub fn server_config(tls: &TlsConfig) -> Result<ServerConfig, String> {
    let provider = provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&tls.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&tls.key)?).map_err(|e| format!("{}: {e}", tls.key.display()))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read(&tls.client_ca)?) {
        let ca = ca.map_err(|e| format!("{}: {e}", tls.client_ca.display()))?;
        roots.add(ca).map_err(|e| format!("{}: {e}", tls.client_ca.display()))?;
    }
    let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(crl) = &tls.crl {
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_slice_iter(&read(crl)?)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", crl.display()))?;
        verifier = verifier.with_crls(crls);
    }
    let verifier = verifier.build().map_err(|e| format!("client verifier: {e}"))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("server certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The identity of a verified client certificate chain (leaf first).
pub fn identity(chain: Option<&[CertificateDer<'_>]>, admins: &[String]) -> Identity {
    let Some(leaf) = chain.and_then(|c| c.first()) else { return Identity::Unusable(String::new()) };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Identity::Unusable(String::new());
    };
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("").to_string();
    if admins.contains(&cn) {
        Identity::Admin(cn)
    } else if crate::domain::is_valid_id(&cn) {
        Identity::Hospital(cn)
    } else {
        Identity::Unusable(cn)
    }
}
