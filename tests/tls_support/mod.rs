//! Certificates made at test time: a certificate authority and a server certificate it signed,
//! valid for `localhost` and `127.0.0.1`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use repod::tls::{TlsClientConfig, TlsServerConfig};

/// A CA and a server certificate it signed, all as PEM text.
pub struct TestCerts {
    /// The certificate authority's certificate: what a client trusts.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

impl TestCerts {
    /// A fresh CA, and a server certificate for `localhost` and `127.0.0.1` signed by it.
    pub fn generate() -> TestCerts {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "repod test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "repod test server");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        TestCerts {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The server side: its certificate and key.
    pub fn server(&self) -> TlsServerConfig {
        TlsServerConfig::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
            .expect("server TLS config")
    }

    /// A client trusting this CA.
    pub fn client(&self) -> TlsClientConfig {
        TlsClientConfig::from_ca_pem(self.ca_pem.as_bytes()).expect("client TLS config")
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir` (created if needed); returns their
    /// paths in that order.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).expect("create the certificate directory");
        let paths = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        std::fs::write(&paths.0, &self.ca_pem).expect("write ca.pem");
        std::fs::write(&paths.1, &self.cert_pem).expect("write cert.pem");
        std::fs::write(&paths.2, &self.key_pem).expect("write key.pem");
        paths
    }
}
