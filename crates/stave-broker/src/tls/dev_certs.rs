//! Certificates for trying TLS on one machine (`stave dev-certs DIR`): a local CA, a node
//! certificate it signs (for serving and for dialling peers), and a client certificate (for
//! mutual TLS; its CN is the client's principal). Keys are ECDSA P-256. Not for production:
//! the CA's key sits beside the certificates.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::error::BrokerError;

/// The names every node certificate carries: what a client on the same machine dials.
pub const NODE_HOSTS_DEFAULT: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long the certificates are valid: a year from yesterday (a day of slack for clocks
/// that disagree).
const VALIDITY: Duration = Duration::from_secs(365 * 86_400);
const CLOCK_SLACK: Duration = Duration::from_secs(86_400);

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey").finish_non_exhaustive()
    }
}

/// A CA and the two certificates it signed.
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub ca: CertAndKey,
    /// The node's: SANs for [`NODE_HOSTS_DEFAULT`] and the hosts asked for; serverAuth and
    /// clientAuth (nodes dial each other with it).
    pub node: CertAndKey,
    /// The client's: CN the client name; clientAuth.
    pub client: CertAndKey,
}

fn failed(what: &str) -> impl FnOnce(rcgen::Error) -> BrokerError + '_ {
    move |err| BrokerError::Internal(format!("cannot make the {what} certificate: {err}"))
}

impl DevCerts {
    /// A new CA, a node certificate for [`NODE_HOSTS_DEFAULT`] plus `hosts` (DNS names or IP
    /// addresses), and a client certificate whose CN is `client_name`.
    pub fn generate(hosts: &[String], client_name: &str) -> Result<DevCerts, BrokerError> {
        let ca_key = KeyPair::generate().map_err(failed("CA"))?;
        let mut ca = CertificateParams::default();
        // A name of its own: a client given another dev CA then reads "UnknownIssuer", not
        // a signature that fails under a CA of the same name.
        let ca_name = format!("Stave dev CA {:08x}", rand::random::<u32>());
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut ca);
        let ca_cert = ca.self_signed(&ca_key).map_err(failed("CA"))?;
        let issuer = Issuer::new(ca, ca_key);

        let mut node = leaf("stave node");
        node.subject_alt_names = node_names(hosts)?;
        node.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let mut client = leaf(client_name);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        Ok(DevCerts {
            ca: CertAndKey {
                cert_pem: ca_cert.pem(),
                key_pem: issuer.key().serialize_pem(),
            },
            node: signed(&node, &issuer, "node")?,
            client: signed(&client, &issuer, "client")?,
        })
    }
}

/// An end-entity certificate's parameters: CN `name`, signatures only.
fn leaf(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    params
}

fn signed(
    params: &CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    what: &str,
) -> Result<CertAndKey, BrokerError> {
    let key = KeyPair::generate().map_err(failed(what))?;
    let cert = params.signed_by(&key, issuer).map_err(failed(what))?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// [`NODE_HOSTS_DEFAULT`] and `hosts`, each once, as SANs: IP addresses as IP SANs.
fn node_names(hosts: &[String]) -> Result<Vec<SanType>, BrokerError> {
    let mut names = Vec::new();
    let all = NODE_HOSTS_DEFAULT
        .iter()
        .copied()
        .chain(hosts.iter().map(String::as_str));
    for host in all {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let refused = || BrokerError::Config {
            message: format!("--host {host:?} is neither a DNS name nor an IP address"),
        };
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            // A name TLS clients can check a certificate against, and nothing else.
            Err(_) => match rustls::pki_types::DnsName::try_from(host) {
                Ok(_) => SanType::DnsName(host.try_into().map_err(|_| refused())?),
                Err(_) => return Err(refused()),
            },
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Valid from a day ago, for a year after that.
fn set_validity(params: &mut CertificateParams) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + now.saturating_sub(CLOCK_SLACK);
    params.not_after = params.not_before + VALIDITY;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_node_and_client_certificates_chain_to_the_ca_and_match_their_keys() {
        let certs =
            DevCerts::generate(&["node-1.example".into(), "10.0.0.7".into()], "ops").unwrap();
        let tls = stave_client::TlsConfig::new(certs.ca.cert_pem.clone()).unwrap();
        let node = tls
            .clone()
            .with_identity(certs.node.cert_pem.clone(), certs.node.key_pem.clone());
        assert!(node.is_ok());
        assert!(
            tls.clone()
                .with_identity(certs.client.cert_pem.clone(), certs.node.key_pem.clone())
                .is_err()
        );
        use rustls::pki_types::pem::PemObject;
        let der =
            rustls::pki_types::CertificateDer::from_pem_slice(certs.client.cert_pem.as_bytes())
                .unwrap();
        assert_eq!(super::super::common_name(&der).as_deref(), Some("ops"));
    }

    #[test]
    fn hosts_are_added_once_and_bad_ones_refused() {
        let names = node_names(&["127.0.0.1".into(), "[::1]".into(), "db.local".into()]).unwrap();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(node_names(&["not a host".into()]).is_err());
    }
}
