//! TLS to the database: rustls (with the `ring` provider) trusting the
//! system's root certificates, plus an optional PEM bundle.
//!
//! The system store is read with `rustls-native-certs`, which honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`; when it holds nothing (a distroless
//! image without `ca-certificates`), Mozilla's roots from `webpki-roots` are
//! used instead. Managed databases signed by a private CA, such as Amazon
//! RDS, need that CA's bundle in `PG_SSLROOTCERT` (or `sslrootcert=` in
//! `DATABASE_URL`). Certificates are always verified, host name included.

use std::{path::Path, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The `PG_SSLROOTCERT` file is unreadable or holds no certificate.
    #[error("PG_SSLROOTCERT: {path}: {problem}")]
    RootCert {
        /// The file named.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The trusted roots: the system's (or Mozilla's when the system has none),
/// plus every certificate of `extra_pem`.
///
/// # Errors
/// [`TlsError::RootCert`] when `extra_pem` cannot be read or holds no
/// usable certificate.
pub fn root_store(extra_pem: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        tracing::debug!("no system root certificates found; using webpki-roots");
    }
    if let Some(path) = extra_pem {
        let root_cert_error = |problem: String| TlsError::RootCert {
            path: path.display().to_string(),
            problem,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|error| root_cert_error(error.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| root_cert_error(error.to_string()))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(root_cert_error(
                "no usable PEM certificate in the file".into(),
            ));
        }
    }
    Ok(roots)
}

/// A tokio-postgres TLS connector verifying servers against [`root_store`].
///
/// # Errors
/// [`TlsError`] when the roots cannot be loaded.
pub fn connector(extra_pem: Option<&Path>) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(extra_pem)?)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_or_mozilla_roots_are_loaded() {
        assert!(!root_store(None).unwrap().is_empty());
        assert!(connector(None).is_ok());
    }

    #[test]
    fn a_bad_root_cert_file_is_named() {
        let message = root_store(Some(Path::new("/nonexistent/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(message.contains("PG_SSLROOTCERT"), "{message}");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }
}
