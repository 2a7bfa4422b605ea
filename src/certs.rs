//! Development certificates (rcgen): a CA, a server certificate and one client certificate per hospital or
//! relief-office identity (subject CN = the identity). For demos and tests; production uses the relief office's PKI.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Days a dev CA is valid from today; its leaf certificates get [`LEAF_DAYS`] (rcgen's default is 1975 to 4096).
const CA_DAYS: u64 = 3650;
/// Days a dev server or client certificate is valid from today (the 397 days browsers accept).
const LEAF_DAYS: u64 = 397;

/// Sets a validity of `days` from yesterday (a day of slack for clocks that are a little behind).
fn valid_for(params: &mut CertificateParams, days: u64) {
    let today = chrono::Utc::now().date_naive();
    let at = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), u8::try_from(d.month()).unwrap_or(1), u8::try_from(d.day()).unwrap_or(1))
    };
    params.not_before = at(today - chrono::Days::new(1));
    params.not_after = at(today + chrono::Days::new(days));
}

fn write(dir: &Path, name: &str, contents: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(name), contents)
}

/// Writes `ca.pem ca.key server.pem server.key` and `<name>.pem <name>.key` for every client into `dir`.
pub fn generate(dir: &Path, server_names: &[String], clients: &[String]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| e.to_string();
    let io = |e: std::io::Error| e.to_string();

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "settlegate dev CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    valid_for(&mut ca, CA_DAYS);
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    write(dir, "ca.pem", &ca_cert.pem()).map_err(io)?;
    write(dir, "ca.key", &ca_key.serialize_pem()).map_err(io)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(server_names.to_vec()).map_err(err)?;
    server.distinguished_name.push(DnType::CommonName, server_names.first().cloned().unwrap_or_default());
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    valid_for(&mut server, LEAF_DAYS);
    let server_key = KeyPair::generate().map_err(err)?;
    write(dir, "server.pem", &server.signed_by(&server_key, &issuer).map_err(err)?.pem()).map_err(io)?;
    write(dir, "server.key", &server_key.serialize_pem()).map_err(io)?;

    for name in clients {
        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        client.distinguished_name = DistinguishedName::new();
        client.distinguished_name.push(DnType::CommonName, name.as_str());
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        valid_for(&mut client, LEAF_DAYS);
        let key = KeyPair::generate().map_err(err)?;
        write(dir, &format!("{name}.pem"), &client.signed_by(&key, &issuer).map_err(err)?.pem()).map_err(io)?;
        write(dir, &format!("{name}.key"), &key.serialize_pem()).map_err(io)?;
    }
    Ok(())
}
