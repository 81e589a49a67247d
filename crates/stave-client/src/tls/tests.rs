#![allow(clippy::unwrap_used)]

use super::*;

/// A self-signed certificate and its key, PEM.
fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn problem(err: ClientError) -> String {
    crate::display_chain(&err)
}

#[test]
fn a_ca_without_a_certificate_is_refused_with_a_line_that_says_so() {
    let (_, key) = self_signed("localhost");
    let err = problem(TlsConfig::new(key).unwrap_err());
    assert_eq!(
        err,
        "TLS the CA certificate: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    );
    assert!(TlsConfig::new("").is_err());
}

#[test]
fn a_missing_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    let err = problem(TlsConfig::from_ca_file(&path).unwrap_err());
    assert!(err.starts_with(&format!("TLS CA file {}: cannot be read: ", path.display())));
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn an_identity_must_hold_a_key_that_matches_its_certificate() {
    let (ca, _) = self_signed("ca");
    let (cert, key) = self_signed("client");
    let (_, other_key) = self_signed("other");
    let tls = TlsConfig::new(ca).unwrap();
    assert!(tls.clone().with_identity(cert.clone(), key.clone()).is_ok());
    let err = problem(
        tls.clone()
            .with_identity(cert.clone(), other_key)
            .unwrap_err(),
    );
    assert_eq!(
        err,
        "TLS the private key: is not the private key of the certificate"
    );
    let err = problem(tls.with_identity(cert.clone(), cert).unwrap_err());
    assert!(err.contains("holds no PEM private key"), "{err}");
}

#[test]
fn identity_files_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = self_signed("ca");
    let (cert, _) = self_signed("client");
    let (_, other_key) = self_signed("other");
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, other_key).unwrap();
    let err = problem(
        TlsConfig::new(ca)
            .unwrap()
            .with_identity_files(&cert_path, &key_path)
            .unwrap_err(),
    );
    assert_eq!(
        err,
        format!(
            "TLS key file {}: is not the private key of certificate file {}",
            key_path.display(),
            cert_path.display()
        )
    );
}

#[test]
fn endpoints_are_https_with_tls_and_http_without() {
    let (ca, _) = self_signed("ca");
    let tls = TlsConfig::new(ca).unwrap();
    let plain = endpoint("127.0.0.1:7070", None).unwrap();
    assert_eq!(plain.uri().scheme_str(), Some("http"));
    let secure = endpoint("127.0.0.1:7070", Some(&tls)).unwrap();
    assert_eq!(secure.uri().scheme_str(), Some("https"));
    // An IPv6 host is checked without its brackets (tonic would refuse "[::1]").
    assert!(endpoint("[::1]:7070", Some(&tls)).is_ok());
    assert_eq!(bracketed_ip("[::1]:7070"), Some("::1"));
    assert_eq!(bracketed_ip("127.0.0.1:7070"), None);
}
