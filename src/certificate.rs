//! X.509 certificates as the charm meets them: the names a certificate is issued for (so that
//! the charm's own client connects by one of them), and the certificate the `certificates`
//! relation issued to this unit, kept on the machine so that every hook serves it without
//! asking Juju.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::secret::Sensitive;

/// A PEM certificate that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertificateError(String);

/// What the charm reads of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// The names of the first certificate in `pem` (a chain may follow it).
pub fn names(pem: &str) -> Result<CertificateNames, CertificateError> {
    let first = Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .ok_or_else(|| CertificateError("it holds no PEM block".to_owned()))?
        .map_err(|err| CertificateError(format!("it is not valid PEM ({err})")))?;
    if first.label != "CERTIFICATE" {
        return Err(CertificateError(format!(
            "its first PEM block is a {}, not a CERTIFICATE",
            first.label
        )));
    }
    let certificate = first
        .parse_x509()
        .map_err(|err| CertificateError(format!("it is not an X.509 certificate ({err})")))?;
    let common_name = certificate
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ip_addresses.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ip_addresses.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertificateNames {
        common_name,
        dns_names,
        ip_addresses,
    })
}

/// Whether `pem` holds a private key (PKCS#8, PKCS#1 or SEC1) and nothing else.
pub fn is_private_key(pem: &str) -> bool {
    let blocks: Vec<_> = Pem::iter_from_buffer(pem.as_bytes()).collect();
    blocks.len() == 1
        && blocks.iter().all(|block| {
            block
                .as_ref()
                .is_ok_and(|b| b.label.ends_with("PRIVATE KEY") && !b.label.contains("ENCRYPTED"))
        })
}

/// The certificate the `certificates` relation issued to this unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The certificate, then the chain the provider sent with it.
    pub certificate: String,
    pub key: Sensitive<String>,
    /// The CA that issued it, for the charm's client, the system store and the consumers.
    pub ca: Option<String>,
    /// The application that issued it (vault, self-signed-certificates, ...).
    pub issuer: String,
}

/// What the `certificates` relation keeps on the machine (root only: it holds private keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptCertificate {
    /// The key this unit generated for its signing request (the current protocol).
    #[serde(default)]
    pub request_key: Option<Sensitive<String>>,
    /// The signing request made with it, and the names it asked for.
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub requested_names: Vec<String>,
    /// The certificate Apache serves.
    #[serde(default)]
    pub issued: Option<Issued>,
    /// Why the provider's latest reply is not served (the status says it).
    #[serde(default)]
    pub problem: Option<String>,
}

impl KeptCertificate {
    /// Parses the kept file; a file the charm cannot read back counts as nothing kept (the
    /// relation's next hook asks again).
    pub fn parse(bytes: &[u8]) -> KeptCertificate {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(names: &[&str]) -> String {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        rcgen::generate_simple_self_signed(names)
            .unwrap()
            .cert
            .pem()
    }

    #[test]
    fn what_is_not_a_certificate_or_a_key_is_refused() {
        assert!(names("").is_err());
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(
            names(&key)
                .unwrap_err()
                .to_string()
                .contains("not a CERTIFICATE")
        );
        assert!(is_private_key(&key));
        assert!(!is_private_key(&certificate(&["a.example"])));
        assert!(!is_private_key(&format!("{key}{key}")));
    }

    #[test]
    fn an_unreadable_kept_file_counts_as_nothing_kept() {
        assert_eq!(
            KeptCertificate::parse(b"{not json"),
            KeptCertificate::default()
        );
    }
}
