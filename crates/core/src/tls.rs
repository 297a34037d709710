//! TLS material shared by the database connector ([`crate::db`]) and the
//! Jira client ([`crate::jira::client`]): reading a configured CA bundle.

use crate::error::{Error, Result};

/// Reads every certificate from a PEM file.
pub(crate) fn read_pem_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let data = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "{}: cannot read the CA bundle ({e}); fix the path or remove the setting",
            path.display()
        ))
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Error::Config(format!(
                "{}: the CA bundle is not valid PEM ({e})",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{}: the CA bundle holds no certificate; give a PEM file with -----BEGIN CERTIFICATE-----",
            path.display()
        )));
    }
    Ok(certs)
}
