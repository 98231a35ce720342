//! Certificates made for a test with the `openssl` command: an authority and what it signs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate authority made for the test, and certificates it signs.
pub(crate) struct Authority {
    dir: PathBuf,
    name: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `openssl req` making a new P-256 key in `key`, with `more` arguments: a certificate request,
/// or with `-x509` a self-signed certificate.
fn new_key(dir: &Path, key: &str, more: &[&str]) {
    let args = [
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
    ];
    openssl(dir, &[&args[..], more].concat());
}

impl Authority {
    pub(crate) fn new(dir: &Path, name: &str) -> Authority {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        new_key(
            dir,
            &key,
            &[
                "-x509",
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Authority {
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    pub(crate) fn pem(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// Signs a new key as `leaf` (`server` for localhost and 127.0.0.1, or a client); returns
    /// the paths of its certificate and key.
    pub(crate) fn sign(&self, leaf: &str, server: bool) -> (PathBuf, PathBuf) {
        let (key, csr, pem, ext) = (
            format!("{leaf}.key"),
            format!("{leaf}.csr"),
            format!("{leaf}.pem"),
            format!("{leaf}.ext"),
        );
        let extensions = if server {
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        } else {
            "extendedKeyUsage=clientAuth\n"
        };
        std::fs::write(self.dir.join(&ext), format!("basicConstraints=CA:FALSE\n{extensions}")).expect("ext");
        new_key(&self.dir, &key, &["-out", &csr, "-subj", &format!("/CN={leaf}")]);
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{}.pem", self.name),
                "-CAkey",
                &format!("{}.key", self.name),
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (self.dir.join(pem), self.dir.join(key))
    }
}
