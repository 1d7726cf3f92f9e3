//! TLS for servers and clients, with [rustls](https://docs.rs/rustls) (the `tls` cargo feature).
//!
//! A server serves TLS on a listener of its own, next to (or instead of) plain TCP, with a
//! [`TlsServerConfig`]: its certificate chain and private key, usually read from PEM files. A
//! client connects over TLS when its builder has a [`TlsClientConfig`]: the certificates it
//! trusts (a CA, or the server's own self-signed certificate) and, unless it is the host of the
//! address, the name the server's certificate must carry.
//!
//! ```no_run
//! use repod_core::tls::{TlsClientConfig, TlsServerConfig};
//!
//! let server_tls = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
//! let client_tls = TlsClientConfig::from_ca_pem_file("ca.pem")?.server_name("game.example.com")?;
//! # let _ = (server_tls, client_tls);
//! # Ok::<(), repod_core::tls::TlsError>(())
//! ```
//!
//! The cryptography is rustls' `ring` provider, TLS 1.2 and 1.3 with rustls' safe defaults.
//! For anything else (client certificates, other roots, ALPN, another provider), build a
//! rustls configuration and wrap it with [`TlsServerConfig::from_rustls`] or
//! [`TlsClientConfig::from_rustls`]; rustls is re-exported as [`rustls`].

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use tokio_rustls::rustls;

use self::rustls::pki_types::pem::PemObject;
use self::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what}: {source}")]
    Pem {
        /// What was being read: a file's path, or what the bytes were meant to hold.
        what: String,
        /// What went wrong.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The PEM input holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(String),
    /// The text is not a DNS name or an IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// rustls refused the certificates or the key (a key that does not match the certificate,
    /// a certificate it cannot parse, ...).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(
    iter: impl Iterator<Item = Result<CertificateDer<'static>, rustls::pki_types::pem::Error>>,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: what.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what.to_owned()));
    }
    Ok(certs)
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let what = path.display().to_string();
    let iter = CertificateDer::pem_file_iter(path).map_err(|source| TlsError::Pem {
        what: what.clone(),
        source,
    })?;
    certificates(iter, &what)
}

/// The TLS side of a server: its certificate chain and private key.
///
/// Cheap to clone (the configuration is shared). Serve it with the server builder's
/// `listen_tls`.
#[derive(Clone)]
pub struct TlsServerConfig {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig").finish_non_exhaustive()
    }
}

impl TlsServerConfig {
    /// Reads the certificate chain (the server's certificate first, then any intermediates)
    /// and the private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let chain = read_certificates(cert_chain.as_ref())?;
        let key_path = key.as_ref();
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::Pem {
            what: key_path.display().to_string(),
            source,
        })?;
        Self::from_der(chain, key)
    }

    /// The same, from PEM text held in memory.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = certificates(
            CertificateDer::pem_slice_iter(cert_chain),
            "the certificate chain",
        )?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|source| TlsError::Pem {
            what: "the private key".to_owned(),
            source,
        })?;
        Self::from_der(chain, key)
    }

    /// The same, from DER certificates and key.
    pub fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(cert_chain, key)?;
        Ok(Self::from_rustls(Arc::new(config)))
    }

    /// Wraps a rustls configuration built by the application.
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        TlsServerConfig {
            acceptor: TlsAcceptor::from(config),
        }
    }

    /// The rustls configuration in use.
    pub fn rustls(&self) -> &Arc<rustls::ServerConfig> {
        self.acceptor.config()
    }

    /// Runs the server side of the handshake on an accepted connection.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        // The handshake's messages leave at once, not when the kernel decides.
        let _ = stream.set_nodelay(true);
        self.acceptor.accept(stream).await
    }
}

/// The TLS side of a client: the certificates it trusts, and the name the server's certificate
/// must carry.
///
/// Cheap to clone (the configuration is shared). Give it to the client builder's `tls`.
#[derive(Clone)]
pub struct TlsClientConfig {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClientConfig {
    /// Trusts the certificates of a PEM file: a certificate authority's, or the server's own
    /// self-signed certificate. No other root is trusted.
    pub fn from_ca_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::from_ca_der(read_certificates(path.as_ref())?)
    }

    /// The same, from PEM text held in memory.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, TlsError> {
        Self::from_ca_der(certificates(
            CertificateDer::pem_slice_iter(pem),
            "the trusted certificates",
        )?)
    }

    /// The same, from DER certificates.
    pub fn from_ca_der(
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, TlsError> {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Self::from_rustls(Arc::new(config)))
    }

    /// Wraps a rustls configuration built by the application.
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> Self {
        TlsClientConfig {
            connector: TlsConnector::from(config),
            server_name: None,
        }
    }

    /// The name the server's certificate must carry: a DNS name or an IP address. Without
    /// one, it is the host of the address the client connects to (`"game.example.com"` for
    /// `"game.example.com:5071"`, `127.0.0.1` for `"127.0.0.1:5071"`).
    pub fn server_name(mut self, name: &str) -> Result<Self, TlsError> {
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::ServerName(name.to_owned()))?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// The rustls configuration in use.
    pub fn rustls(&self) -> &Arc<rustls::ClientConfig> {
        self.connector.config()
    }

    /// Runs the client side of the handshake on a connected socket; `host` is the host of the
    /// address connected to, the server name unless one was set.
    pub(crate) async fn connect(
        &self,
        host: Option<&str>,
        stream: TcpStream,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = match (&self.server_name, host) {
            (Some(name), _) => name.clone(),
            (None, Some(host)) => ServerName::try_from(host.to_owned()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{host:?} is not a server name; set one with TlsClientConfig::server_name"
                    ),
                )
            })?,
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no server name to verify; set one with TlsClientConfig::server_name",
                ))
            }
        };
        let _ = stream.set_nodelay(true);
        self.connector.connect(name, stream).await
    }
}
