//! A throwaway certificate authority with server and client certificates, for TLS.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A certificate authority made at test time, a server certificate for `localhost` and
/// 127.0.0.1, and a client certificate, all as PEM (certificate, key).
#[derive(Debug)]
pub struct Pki {
    pub ca: String,
    pub server: (String, String),
    pub client: (String, String),
}

/// The files of a [`Pki`], written to a directory.
#[derive(Debug)]
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// Writes every certificate and key as a PEM file in `dir`.
    pub fn write_to(&self, dir: &Path) -> PkiFiles {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("writes a PEM file");
            path
        };
        PkiFiles {
            ca: write("ca.pem", &self.ca),
            server_cert: write("server.pem", &self.server.0),
            server_key: write("server.key", &self.server.1),
            client_cert: write("client.pem", &self.client.0),
            client_key: write("client.key", &self.client.1),
        }
    }
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]),
        client: leaf(vec!["scoring-client".to_owned()]),
    }
}
