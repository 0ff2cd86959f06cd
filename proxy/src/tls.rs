//! TLS material: reads PEM files and builds the rustls configurations of the
//! client listener (server side, optionally verifying client certificates)
//! and of the links towards masters (client side).
//!
//! Everything here runs at start (config validation and `Gateway::start`),
//! never per connection: a configuration is built once and shared by every
//! handshake through an `Arc`. The crypto provider is always ring, named
//! explicitly, so the result does not depend on which rustls features other
//! crates in the same binary happen to enable.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why TLS material could not be loaded. The operator is at fault: a file
/// is missing, is not PEM, or the certificate does not fit the key. `key`
/// is the configuration key the file came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path:?}: {reason}")]
    File {
        key: String,
        path: String,
        reason: String,
    },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl TlsError {
    /// The configuration key at fault.
    pub fn key(&self) -> &str {
        match self {
            TlsError::File { key, .. } | TlsError::Invalid { key, .. } => key,
        }
    }

    /// The reason without the key.
    pub fn reason(&self) -> String {
        match self {
            TlsError::File { path, reason, .. } => format!("cannot read {path:?}: {reason}"),
            TlsError::Invalid { reason, .. } => reason.clone(),
        }
    }
}

/// The files of one TLS identity or trust anchor set, with the keys they
/// were configured under, so every error names its key.
#[derive(Debug, Clone, Copy)]
pub struct Pem<'a> {
    pub key: &'a str,
    pub path: &'a str,
}

/// The crypto provider of every configuration built here (ring); also for
/// tools that install it as the process default for other rustls users.
pub fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring_provider())
}

fn file_error(p: Pem<'_>, reason: impl ToString) -> TlsError {
    TlsError::File {
        key: p.key.to_string(),
        path: p.path.to_string(),
        reason: reason.to_string(),
    }
}

fn invalid(key: &str, reason: impl ToString) -> TlsError {
    TlsError::Invalid {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file; at least one.
///
/// # Errors
/// Unreadable file, bad PEM, or no certificate in it.
pub fn load_certs(p: Pem<'_>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if !Path::new(p.path).is_file() {
        return Err(file_error(p, "no such file"));
    }
    let certs = CertificateDer::pem_file_iter(p.path)
        .map_err(|e| file_error(p, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(p, e))?;
    if certs.is_empty() {
        return Err(file_error(p, "no PEM certificate found"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
///
/// # Errors
/// Unreadable file or no key in it.
pub fn load_key(p: Pem<'_>) -> Result<PrivateKeyDer<'static>, TlsError> {
    if !Path::new(p.path).is_file() {
        return Err(file_error(p, "no such file"));
    }
    PrivateKeyDer::from_pem_file(p.path).map_err(|e| file_error(p, e))
}

/// A trust store made of every certificate in a PEM file.
///
/// # Errors
/// Unreadable file, or a certificate that is not a usable trust anchor.
pub fn load_roots(p: Pem<'_>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(p)? {
        roots
            .add(c)
            .map_err(|e| invalid(p.key, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The client listener's configuration. With `client_ca`, every client must
/// present a certificate issued by it (mTLS); without, none is asked for.
///
/// # Errors
/// The first file that cannot be loaded, or a key that does not match the
/// certificate.
pub fn server_config(
    cert: Pem<'_>,
    key: Pem<'_>,
    client_ca: Option<Pem<'_>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert)?;
    let private = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(cert.key, e))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider())
                .build()
                .map_err(|e| invalid(ca.key, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(chain, private)
        .map_err(|e| invalid(key.key, format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(cfg))
}

/// The configuration of links towards masters: trust `ca`, and present
/// `identity` (certificate, key) when masters ask for a client certificate.
///
/// # Errors
/// The first file that cannot be loaded, or a key that does not match the
/// certificate.
pub fn client_config(
    ca: Pem<'_>,
    identity: Option<(Pem<'_>, Pem<'_>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(ca.key, e))?
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| invalid(key.key, format!("does not fit the certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The name a master's certificate must carry: `configured` when set,
/// otherwise the host part of `address` (a DNS name or an IP address).
///
/// # Errors
/// A name that is neither a valid DNS name nor an IP address.
pub fn server_name(
    configured: Option<&str>,
    address: &str,
) -> Result<ServerName<'static>, TlsError> {
    let (key, name) = match configured {
        Some(n) => ("master_tls.server_name", n),
        None => {
            let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
            // `[::1]:6379` carries its IPv6 host in brackets.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            ("masters.address", host)
        }
    };
    ServerName::try_from(name.to_string()).map_err(|e| {
        invalid(
            key,
            format!("{name:?} is not a DNS name or IP address: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_defaults_to_the_host_of_the_address() {
        let n = server_name(None, "redis-0.redis:6379").expect("dns name");
        assert_eq!(n.to_str(), "redis-0.redis");
        let n = server_name(None, "127.0.0.1:6379").expect("ip");
        assert!(matches!(n, ServerName::IpAddress(_)));
        let n = server_name(None, "[::1]:6379").expect("ipv6");
        assert!(matches!(n, ServerName::IpAddress(_)));
        let n = server_name(Some("masters.internal"), "10.0.0.1:6379").expect("configured");
        assert_eq!(n.to_str(), "masters.internal");
        let e = server_name(Some("not a name"), "10.0.0.1:6379");
        assert!(matches!(e, Err(e) if e.key() == "master_tls.server_name"));
    }

    #[test]
    fn a_missing_or_empty_file_names_its_key() {
        let e = load_certs(Pem {
            key: "tls.cert_file",
            path: "/nonexistent/cert.pem",
        });
        assert!(matches!(e, Err(e) if e.key() == "tls.cert_file"));
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "not pem at all\n").expect("write");
        let path = p.to_str().expect("utf-8 path");
        let e = load_certs(Pem {
            key: "master_tls.ca_file",
            path,
        });
        assert!(matches!(e, Err(e) if e.key() == "master_tls.ca_file"));
        let e = load_key(Pem {
            key: "tls.key_file",
            path,
        });
        assert!(matches!(e, Err(e) if e.key() == "tls.key_file"));
    }
}
