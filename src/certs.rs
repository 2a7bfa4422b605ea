//! Development certificates (rcgen): a CA, a server certificate and one client certificate per hospital or
//! relief-office identity (subject CN = the identity). For demos and tests; production uses the relief office's PKI.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

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
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    write(dir, "ca.pem", &ca_cert.pem()).map_err(io)?;
    write(dir, "ca.key", &ca_key.serialize_pem()).map_err(io)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(server_names.to_vec()).map_err(err)?;
    server.distinguished_name.push(DnType::CommonName, server_names.first().cloned().unwrap_or_default());
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(err)?;
    write(dir, "server.pem", &server.signed_by(&server_key, &issuer).map_err(err)?.pem()).map_err(io)?;
    write(dir, "server.key", &server_key.serialize_pem()).map_err(io)?;

    for name in clients {
        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        client.distinguished_name = DistinguishedName::new();
        client.distinguished_name.push(DnType::CommonName, name.as_str());
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(err)?;
        write(dir, &format!("{name}.pem"), &client.signed_by(&key, &issuer).map_err(err)?.pem()).map_err(io)?;
        write(dir, &format!("{name}.key"), &key.serialize_pem()).map_err(io)?;
    }
    Ok(())
}
