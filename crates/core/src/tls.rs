//! TLS shared by the database connector ([`crate::db`]) and the Jira client
//! ([`crate::jira::client`]): reading a configured CA bundle, and finding
//! a refused certificate behind a failed connection (never worth a retry).

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

/// The rustls error behind a failed connection, when the server's
/// certificate was refused (unknown issuer, wrong name, expired…). It sits
/// in `io::Error`s nested in each other, whose `source()` skips the error
/// they wrap, so those are opened with `get_ref`.
pub(crate) fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return matches!(
                t,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            )
            .then(|| t.clone());
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// True when a refused certificate was otherwise fine but names another host.
pub(crate) fn is_wrong_name(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    )
}
