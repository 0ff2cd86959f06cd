//! Test certificates made with rcgen in a temporary directory: a CA, a
//! server certificate for `localhost` and `127.0.0.1` (used by the gateway's
//! TLS listener and by TLS masters), a client certificate from the same CA,
//! and a second, unrelated CA with its own client and server certificates
//! (what must be refused).

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// The files, by name: `ca.pem`, `server.pem`/`server.key`,
/// `client.pem`/`client.key`, `wrong-ca.pem`, `wrong-client.pem`/`.key`,
/// `wrong-server.pem`/`.key`.
pub struct Pki {
    dir: TempDir,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = p.self_signed(&key).expect("self-signed CA").pem();
    Ca {
        issuer: Issuer::new(p, key),
        pem,
    }
}

/// A leaf certificate and its key, both PEM.
fn leaf(ca: &Ca, cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = p.signed_by(&key, &ca.issuer).expect("signed leaf");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("lockgate-pki-")
            .tempdir()
            .expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write PEM");
        };
        let good = ca("lockgate test CA");
        let wrong = ca("some other CA");
        write("ca.pem", &good.pem);
        write("wrong-ca.pem", &wrong.pem);
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        for (name, ca, cn, usage) in [
            ("server", &good, "localhost", server.clone()),
            ("client", &good, "lockgate test client", client.clone()),
            ("wrong-server", &wrong, "localhost", server),
            ("wrong-client", &wrong, "intruder", client),
        ] {
            let (cert, key) = leaf(ca, cn, &["localhost", "127.0.0.1"], usage);
            write(&format!("{name}.pem"), &cert);
            write(&format!("{name}.key"), &key);
        }
        Pki { dir }
    }

    /// The path of one of the files, as a string for configs and argv.
    pub fn path(&self, name: &str) -> String {
        let p: PathBuf = self.dir.path().join(name);
        assert!(p.is_file(), "no test PEM file {name}");
        p.to_string_lossy().into_owned()
    }
}
