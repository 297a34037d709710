//! HTTPS for the simulator: [`TlsMaterial`] (a server certificate chain and
//! its key, PEM) turns the plain HTTP/1.1 listener into an HTTPS one, so the
//! pipeline's TLS handling (system roots, `jira.ca_bundle`,
//! `jira.danger_accept_invalid_certs`) is tested against a real handshake.
//!
//! Each accepted TCP connection is handshaken with tokio-rustls (ring, TLS
//! 1.2 and 1.3, HTTP/1.1 only) and then served exactly as a plain one
//! ([`crate::server`]), faults included: a cut mid-body sets zero linger on
//! the TCP socket under the TLS stream, so the client sees a reset. A failed
//! handshake (the client does not trust the certificate) closes the
//! connection and is counted in [`crate::SimStats::tls_handshake_failures`].

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::server::Socket;
use crate::{Error, Result};

/// A server certificate chain (leaf first) and its private key, both PEM.
#[derive(Clone)]
pub struct TlsMaterial {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("cert_chain_pem", &self.cert_chain_pem.len())
            .field("key_pem", &"***")
            .finish()
    }
}

impl TlsMaterial {
    pub fn new(cert_chain_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        TlsMaterial {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// The acceptor serving this certificate.
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor> {
        let certs: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut self.cert_chain_pem.as_bytes())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::Config(format!("the TLS certificate PEM is invalid ({e})")))?;
        if certs.is_empty() {
            return Err(Error::Config(
                "the TLS certificate PEM holds no certificate".into(),
            ));
        }
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .map_err(|e| Error::Config(format!("the TLS key PEM is invalid ({e})")))?
            .ok_or_else(|| Error::Config("the TLS key PEM holds no private key".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Other(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| Error::Config(format!("the TLS certificate and key do not fit ({e})")))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }
}

impl Socket for TlsStream<TcpStream> {
    fn zero_linger(&self) {
        let _ = self.get_ref().0.set_zero_linger();
    }
}

/// Handshakes `stream` and serves it; a failed handshake is counted and
/// closes the connection.
pub(crate) async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    shared: Arc<crate::state::Shared>,
    http: hyper::server::conn::http1::Builder,
) {
    let result = acceptor.accept(stream).await;
    {
        let mut st = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        st.tls_handshakes += 1;
        if result.is_err() {
            st.tls_handshake_failures += 1;
        }
    }
    match result {
        Ok(tls) => crate::server::serve_connection(tls, shared, http).await,
        Err(e) => tracing::debug!("simulator TLS handshake failed: {e}"),
    }
}
