//! Who a TLS client is: the subject common name (CN) of the certificate it presented, which
//! the node's TLS already checked chains to the cluster's CA. The CN is the principal ACLs
//! name (`stave dev-certs --client-name admin` makes a certificate whose CN is `admin`).

use tonic::Request;
use x509_cert::der::Decode;
use x509_cert::der::asn1::{Ia5StringRef, ObjectIdentifier, PrintableStringRef, Utf8StringRef};

/// The OID of an X.520 common name (`id-at-commonName`, RFC 4519).
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// The subject CN of the client certificate `request` came with: `None` on a plaintext
/// connection, when the client presented no certificate (they are optional), or when its
/// certificate names no CN.
///
/// It needs the TLS connect info tonic records per connection, which the node's server keeps
/// (its `TcpIncoming` yields `TcpStream`s, whose TLS streams carry the peer's certificates).
pub fn peer_common_name<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    common_name(certs.first()?)
}

/// The subject CN of the DER certificate `der` (the last one, if the subject names several,
/// as the most specific); `None` if it names none or does not parse.
pub fn common_name(der: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let subject = &cert.tbs_certificate.subject.0;
    let value = subject
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .rfind(|attribute| attribute.oid == COMMON_NAME)?;
    let value = &value.value;
    let text = if let Ok(text) = value.decode_as::<Utf8StringRef<'_>>() {
        text.as_str().to_string()
    } else if let Ok(text) = value.decode_as::<PrintableStringRef<'_>>() {
        text.as_str().to_string()
    } else {
        value
            .decode_as::<Ia5StringRef<'_>>()
            .ok()?
            .as_str()
            .to_string()
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn certificate(names: &[(&str, rcgen::DnValue)]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            let kind = match *kind {
                "CN" => rcgen::DnType::CommonName,
                _ => rcgen::DnType::OrganizationName,
            };
            params.distinguished_name.push(kind, value.clone());
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_common_name_is_read_from_the_subject() {
        let der = certificate(&[("O", "Stave".into()), ("CN", "admin".into())]);
        assert_eq!(common_name(&der).as_deref(), Some("admin"));
        let printable = rcgen::DnValue::PrintableString("svc-orders".try_into().unwrap());
        let der = certificate(&[("CN", printable)]);
        assert_eq!(common_name(&der).as_deref(), Some("svc-orders"));
    }

    #[test]
    fn no_common_name_or_no_certificate_is_none() {
        let der = certificate(&[("O", "Stave".into())]);
        assert_eq!(common_name(&der), None);
        assert_eq!(common_name(b"not a certificate"), None);
        assert_eq!(common_name(&[]), None);
    }

    #[test]
    fn a_plaintext_request_has_no_principal() {
        assert_eq!(peer_common_name(&Request::new(())), None);
    }
}
