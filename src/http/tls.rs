//! TLS with client certificates (ring provider only) and the caller's identity: the leaf certificate's subject CN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

/// What a caller may do, decided by its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// The relief office (a CN listed in `admin.identities`).
    Admin,
    /// A hospital; its id is the CN.
    Hospital,
    /// A certificate this gateway will not serve (CN missing or not a valid hospital id): 403 on every path.
    Unusable,
}

/// Who is calling, decided once per connection: the kind, the certificate's CN as presented, and the CN's log-safe
/// form. The CN is chosen by whoever holds a certificate of the client CA, so it is never logged raw: a newline,
/// an escape sequence or a NUL in it would forge or break log lines. [`Identity::log_name`] is the only form of
/// it any log line may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    kind: CallerKind,
    name: String,
    log_name: String,
}

impl Identity {
    pub fn new(kind: CallerKind, name: String) -> Identity {
        let log_name = crate::redact::log_safe(&name).into_owned();
        Identity { kind, name, log_name }
    }

    pub fn kind(&self) -> CallerKind {
        self.kind
    }

    /// The CN as presented: the hospital id of a hospital. Not for logs: see [`Identity::log_name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CN for logs and messages: printable ASCII, control and non-ASCII characters escaped, at most
    /// `redact::LOG_TEXT_MAX_CHARS` characters of it (`redact::log_safe`).
    pub fn log_name(&self) -> &str {
        &self.log_name
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
    let unusable = || Identity::new(CallerKind::Unusable, String::new());
    let Some(leaf) = chain.and_then(|c| c.first()) else { return unusable() };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return unusable();
    };
    let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("").to_string();
    let kind = if admins.contains(&cn) {
        CallerKind::Admin
    } else if crate::domain::is_valid_id(&cn) {
        CallerKind::Hospital
    } else {
        CallerKind::Unusable
    };
    Identity::new(kind, cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_name_of_a_hostile_cn_is_one_bounded_printable_line() {
        let cn = format!("H0001\nINFO forged\x1b[31m\0{}", "x".repeat(300));
        let who = Identity::new(CallerKind::Unusable, cn.clone());
        assert_eq!(who.name(), cn);
        assert!(who.log_name().bytes().all(|b| b.is_ascii_graphic()), "{}", who.log_name());
        assert!(who.log_name().starts_with("H0001\\x0aINFO\\x20forged\\x1b[31m\\x00x"), "{}", who.log_name());
        assert!(who.log_name().len() < 100);
        assert_eq!(Identity::new(CallerKind::Hospital, "H0001".into()).log_name(), "H0001");
    }
}
