//! Certificates for `bench --only tls`, made at run time with rcgen: a CA
//! and one server certificate for `127.0.0.1` and `localhost`, used by the
//! gateway's TLS listener and by the TLS-only masters. Written to a private
//! temporary directory that is removed on drop.

use std::path::PathBuf;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// `ca.pem`, `server.pem` and `server.key` in one directory.
pub struct BenchPki {
    dir: PathBuf,
}

impl BenchPki {
    /// Generates the CA and the server certificate.
    ///
    /// # Errors
    /// Key generation, signing, or writing the files failed.
    pub fn generate() -> anyhow::Result<BenchPki> {
        let dir = std::env::temp_dir().join(format!("lockgate-bench-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki = BenchPki { dir };

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "lockgate bench CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = ca.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = leaf.signed_by(&key, &issuer)?;

        for (name, text) in [
            ("ca.pem", ca_pem),
            ("server.pem", cert.pem()),
            ("server.key", key.serialize_pem()),
        ] {
            std::fs::write(pki.dir.join(name), text).with_context(|| format!("writing {name}"))?;
        }
        Ok(pki)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for BenchPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
