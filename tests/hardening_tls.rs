//! Hardening of identity and TLS, over real TLS against the real binary: exactly one CN, the clientAuth key usage,
//! a rewritten CRL taking effect without a restart (poll and SIGHUP), and dev certificates with sane validity.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use rustls::pki_types::pem::PemObject;

/// The dev CA of `certs`, to sign extra certificates and CRLs.
fn ca(certs: &Certs) -> Issuer<'static, KeyPair> {
    let pem = std::fs::read_to_string(certs.ca()).unwrap();
    let key = KeyPair::from_pem(&std::fs::read_to_string(certs.path().join("ca.key")).unwrap()).unwrap();
    Issuer::from_ca_cert_pem(&pem, key).unwrap()
}

/// Issues a client certificate `name` with the given subject and key usages; returns (cert, key) paths.
fn issue(certs: &Certs, name: &str, dn: DistinguishedName, eku: Vec<ExtendedKeyUsagePurpose>) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = dn;
    params.extended_key_usages = eku;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca(certs)).unwrap();
    let (c, k) = (certs.path().join(format!("{name}.pem")), certs.path().join(format!("{name}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn cn(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_needs_exactly_one_cn_and_the_client_auth_usage() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let certs = &gw.certs;
    // subject /CN=relief-office/CN=H0008: many tools show the last CN, the first used to win
    let mut two = cn("relief-office");
    two.push(DnType::CustomDnType(vec![2, 5, 4, 3]), "H0008");
    let two = issue(certs, "two-cns", two, vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let no_eku = issue(certs, "no-eku", cn("H0009"), vec![]);
    let server_only = issue(certs, "server-eku", cn("H0010"), vec![ExtendedKeyUsagePurpose::ServerAuth]);
    for (what, (cert, key)) in [("two CNs", &two), ("no key usage", &no_eku), ("serverAuth only", &server_only)] {
        let client = Client::new(gw.port, cert, key, &certs.ca());
        match client.send("GET", "/admin/v1/pools", None, Vec::new()).await {
            Ok(r) => assert_problem(&r, 403, "forbidden", what),
            Err(e) => eprintln!("{what}: refused at the handshake ({e})"),
        }
        if let Ok(r) = client.send("GET", "/v1/reconciliation", None, Vec::new()).await {
            assert_problem(&r, 403, "forbidden", what);
        }
    }
    // the normal certificates still work
    assert_eq!(gw.client(ADMIN).get("/admin/v1/pools").await.status, 200);
    assert_eq!(gw.client("H0001").get("/v1/reconciliation").await.status, 200);
}

/// Writes a CRL of the dev CA revoking `serials` (an empty list is a valid, empty CRL).
fn write_crl(certs: &Certs, path: &Path, number: u64, serials: &[Vec<u8>]) {
    let now = rcgen::date_time_ymd(2026, 1, 1);
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(s),
                revocation_time: now,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let pem = params.signed_by(&ca(certs)).unwrap().pem().unwrap();
    // write-then-rename, as an operator's tooling would
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, pem).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn serial_of(cert: &Path) -> Vec<u8> {
    let pem = std::fs::read(cert).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    c.tbs_certificate.raw_serial().to_vec()
}

/// Waits until `who` can no longer get an answer on a new connection; returns how long that took.
async fn refused_within(gw: &Gateway, who: &str, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        let refused = match gw.request_as(who, "GET", "/v1/reconciliation", &[], fixed(Vec::new())).await {
            Err(_) => true,
            Ok(r) => r.status != 200,
        };
        if refused {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_crl_takes_effect_without_a_restart() {
    let redis = Redis::start();
    let certs = Arc::new(Certs::new());
    let crl = certs.path().join("revoked.pem");
    write_crl(&certs, &crl, 1, &[]);
    let crl_path = crl.display().to_string();
    let env = [("SETTLEGATE_TLS_CRL", crl_path.as_str()), ("SETTLEGATE_TLS_RELOAD_MS", "2000")];
    let gw = Gateway::start_env(&redis.url(), &certs, "", &env);
    assert_eq!(gw.client("H0003").get("/v1/reconciliation").await.status, 200);
    let kept = gw.client("H0003"); // a keep-alive connection made before the revocation
    assert_eq!(kept.get("/v1/reconciliation").await.status, 200);

    // Rewritten file, no signal: within the poll interval (the contract allows 10 s).
    write_crl(&certs, &crl, 2, &[serial_of(&certs.identity("H0003").cert)]);
    let took = refused_within(&gw, "H0003", Duration::from_secs(10)).await.expect("H0003 still served after 10 s");
    assert!(kept.send("GET", "/v1/reconciliation", None, Vec::new()).await.map_or(true, |r| r.status != 200));
    assert_eq!(gw.client("H0001").get("/v1/reconciliation").await.status, 200, "others unaffected");

    // SIGHUP: at once.
    write_crl(&certs, &crl, 3, &[serial_of(&certs.identity("H0003").cert), serial_of(&certs.identity("H0004").cert)]);
    let hup = Instant::now();
    send_signal(gw.pid(), "HUP");
    let by_signal = refused_within(&gw, "H0004", Duration::from_secs(10)).await.expect("H0004 still served");
    assert!(hup.elapsed() < Duration::from_millis(1500), "SIGHUP reload took {:?}", hup.elapsed());
    eprintln!("revoked in a rewritten CRL: refused after {took:?} (poll), {by_signal:?} after SIGHUP");
}

/// Sends a signal with the `kill` command.
fn send_signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(ok.success());
}

#[test]
fn dev_certificates_are_valid_for_about_a_year_from_now() {
    let certs = Certs::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let now = i64::try_from(now).unwrap();
    for name in ["server", "H0001", "ca"] {
        let pem = std::fs::read(certs.path().join(format!("{name}.pem"))).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let (from, until) = (c.validity().not_before.timestamp(), c.validity().not_after.timestamp());
        assert!(from <= now && from >= now - 2 * 86_400, "{name}: not before {from}, now {now}");
        let max_days = if name == "ca" { 3651 } else { 398 };
        assert!(until > now && until <= now + max_days * 86_400, "{name}: not after {until}");
    }
}
