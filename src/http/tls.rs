//! TLS with client certificates (ring provider only), reloaded when its files change, and the caller's identity:
//! the leaf certificate's one subject CN.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// What a caller may do, decided by its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// The relief office (a CN listed in `admin.identities`).
    Admin,
    /// A hospital; its id is the CN.
    Hospital,
    /// A street office (a CN listed in `[streets] identities`); [`Identity::street`] is the street it serves.
    Street,
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
    /// The street a street office serves (`[streets] identities`); `None` for every other kind.
    street: Option<String>,
    /// Signed in to the web console (a person, not a certificate): audited with role `console`, and not counted
    /// against a hospital's quota.
    console: bool,
}

impl Identity {
    pub fn new(kind: CallerKind, name: String) -> Identity {
        let log_name = crate::redact::log_safe(&name).into_owned();
        Identity { kind, name, log_name, street: None, console: false }
    }

    /// A web-console account: the relief office's view, or (with `street`) one street's, as a street certificate.
    pub fn console_user(name: &str, street: Option<&str>) -> Identity {
        let kind = if street.is_some() { CallerKind::Street } else { CallerKind::Admin };
        let log_name = format!("console:{}", crate::redact::log_safe(name));
        Identity { kind, name: name.to_string(), log_name, street: street.map(String::from), console: true }
    }

    /// Whether this is a web-console account.
    pub fn is_console(&self) -> bool {
        self.console
    }

    /// A street office's identity: CN `name`, serving `street`.
    pub fn street_office(name: String, street: String) -> Identity {
        Identity { street: Some(street), ..Identity::new(CallerKind::Street, name) }
    }

    /// The street of a street office; `None` for every other caller.
    pub fn street(&self) -> Option<&str> {
        self.street.as_deref()
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

/// The files of a TLS config, read once: what a server config is built from, and what a reload compares.
struct TlsFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Vec<u8>,
    crl: Option<Vec<u8>>,
}

impl TlsFiles {
    fn read(tls: &TlsConfig) -> Result<TlsFiles, String> {
        Ok(TlsFiles {
            cert: read(&tls.cert)?,
            key: read(&tls.key)?,
            client_ca: read(&tls.client_ca)?,
            crl: tls.crl.as_deref().map(read).transpose()?,
        })
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        (&self.cert, &self.key, &self.client_ca, &self.crl).hash(&mut h);
        h.finish()
    }
}

/// The server config of the API (`client_auth`: a client certificate of `tls.client_ca` is required) or of the
/// web console (no client certificate: officials sign in with a password).
fn build(tls: &TlsConfig, files: &TlsFiles, client_auth: bool) -> Result<ServerConfig, String> {
    let provider = provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| format!("{}: {e}", tls.key.display()))?;
    if !client_auth {
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("server certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        return Ok(config);
    }
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&files.client_ca) {
        let ca = ca.map_err(|e| format!("{}: {e}", tls.client_ca.display()))?;
        roots.add(ca).map_err(|e| format!("{}: {e}", tls.client_ca.display()))?;
    }
    let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let (Some(path), Some(crl)) = (&tls.crl, &files.crl) {
        let crls: Vec<CertificateRevocationListDer<'static>> = CertificateRevocationListDer::pem_slice_iter(crl)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
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

/// The TLS acceptor in use, rebuilt when a TLS file changes (a rewritten CRL above all): every `tls.reload_ms`,
/// and at once on SIGHUP. After a reload, connections made under the old files are closed gracefully, so a revoked
/// certificate cannot keep a connection open.
pub struct TlsReloader {
    /// Where the files are.
    config: TlsConfig,
    /// The acceptor for new connections (swapped whole; never held across an await).
    acceptor: RwLock<TlsAcceptor>,
    /// The fingerprint of the files `acceptor` was built from.
    fingerprint: Mutex<u64>,
    /// Bumped after every reload; a connection watches it and ends gracefully when it moves.
    generation: watch::Sender<u64>,
    /// Whether clients must present a certificate (the API) or not (the web console).
    client_auth: bool,
}

impl TlsReloader {
    /// The API's TLS: a client certificate is required.
    pub fn new(config: TlsConfig) -> Result<Arc<TlsReloader>, String> {
        TlsReloader::with_client_auth(config, true)
    }

    /// The web console's TLS: the same server certificate, no client certificate.
    pub fn console(config: TlsConfig) -> Result<Arc<TlsReloader>, String> {
        TlsReloader::with_client_auth(config, false)
    }

    fn with_client_auth(config: TlsConfig, client_auth: bool) -> Result<Arc<TlsReloader>, String> {
        let files = TlsFiles::read(&config)?;
        let acceptor = TlsAcceptor::from(Arc::new(build(&config, &files, client_auth)?));
        Ok(Arc::new(TlsReloader {
            config,
            acceptor: RwLock::new(acceptor),
            fingerprint: Mutex::new(files.fingerprint()),
            generation: watch::Sender::new(0),
            client_auth,
        }))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().expect("tls lock").clone()
    }

    /// Moves after every reload.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Rebuilds the acceptor if the files changed; `Ok(true)` when it did. A file that no longer parses keeps the
    /// old acceptor (and says why).
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let files = TlsFiles::read(&self.config)?;
        let fingerprint = files.fingerprint();
        if fingerprint == *self.fingerprint.lock().expect("tls lock") {
            return Ok(false);
        }
        let acceptor = TlsAcceptor::from(Arc::new(build(&self.config, &files, self.client_auth)?));
        *self.acceptor.write().expect("tls lock") = acceptor;
        *self.fingerprint.lock().expect("tls lock") = fingerprint;
        self.generation.send_modify(|g| *g += 1);
        Ok(true)
    }

    /// Checks the files every `tls.reload_ms` and on SIGHUP, until the task is dropped.
    pub async fn keep_fresh(self: Arc<Self>) {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("no SIGHUP handler; TLS files are still checked every tls.reload_ms");
            return self.poll_only().await;
        };
        let every = Duration::from_millis(self.config.reload_ms);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = hup.recv() => tracing::info!("SIGHUP: checking the TLS files"),
            }
            self.reload_and_log();
        }
    }

    async fn poll_only(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_millis(self.config.reload_ms)).await;
            self.reload_and_log();
        }
    }

    fn reload_and_log(&self) {
        match self.reload_if_changed() {
            Ok(true) => {
                metrics::counter!("settlegate_tls_reloads_total", "outcome" => "reloaded").increment(1);
                tracing::info!("TLS files changed: new connections use them; older connections are closed gracefully");
            }
            Ok(false) => {}
            Err(e) => {
                metrics::counter!("settlegate_tls_reloads_total", "outcome" => "failed").increment(1);
                tracing::error!(error = %e, "TLS files changed but do not load; keeping the previous ones");
            }
        }
    }
}

/// The identity of a verified client certificate chain (leaf first): the relief office when its CN is in `admins`,
/// a street office when it is a key of `streets` (CN → street; config validation keeps the two lists apart), else
/// a hospital when the CN is a valid id.
pub fn identity(
    chain: Option<&[CertificateDer<'_>]>,
    admins: &[String],
    streets: &crate::config::StreetsConfig,
) -> Identity {
    let unusable = || Identity::new(CallerKind::Unusable, String::new());
    let Some(leaf) = chain.and_then(|c| c.first()) else { return unusable() };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return unusable();
    };
    // exactly one CN: with two, tools disagree about which one is "the" name
    let mut cns = cert.subject().iter_common_name();
    let (Some(cn), None) = (cns.next(), cns.next()) else {
        return Identity::new(CallerKind::Unusable, "(not exactly one CN)".into());
    };
    let Ok(cn) = cn.as_str() else { return Identity::new(CallerKind::Unusable, "(CN not a string)".into()) };
    // a client certificate must say it is one (webpki checks the purpose only when the extension is there)
    let client_auth = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth);
    let kind = if !client_auth {
        CallerKind::Unusable
    } else if admins.iter().any(|a| a == cn) {
        CallerKind::Admin
    } else if let Some(street) = streets.street_of(cn) {
        return Identity::street_office(cn.to_string(), street.to_string());
    } else if crate::domain::is_valid_id(cn) {
        CallerKind::Hospital
    } else {
        CallerKind::Unusable
    };
    Identity::new(kind, cn.to_string())
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
