//! A test certificate authority issuing SPIFFE workload certificates, as Istio's CA does
//! (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>` URI SANs), made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// A CA in a directory: `ca.pem` / `ca.key`, and per-identity certificates.
pub struct TestCa {
    dir: PathBuf,
    trust_domain: String,
}

/// A workload certificate and key (PEM files).
#[derive(Clone, Debug)]
pub struct WorkloadCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub spiffe_id: String,
}

fn openssl(args: &[&str], dir: &Path) -> Result<(), HarnessError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| HarnessError::io("running openssl (install it: bash .ci/install)", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::check(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))))
    }
}

impl TestCa {
    /// Creates a CA for `trust_domain` in `dir` (created if needed).
    pub fn create(dir: &Path, trust_domain: &str) -> Result<TestCa, HarnessError> {
        std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir)?;
        openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-days",
                "2",
                "-subj",
                "/O=wasmixer test CA",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir,
        )?;
        Ok(TestCa { dir: dir.to_path_buf(), trust_domain: trust_domain.to_string() })
    }

    /// The CA certificate (what sidecars trust).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a certificate for `spiffe://<trust-domain>/ns/<namespace>/sa/<service_account>`.
    pub fn issue(&self, namespace: &str, service_account: &str) -> Result<WorkloadCert, HarnessError> {
        let spiffe_id = format!("spiffe://{}/ns/{namespace}/sa/{service_account}", self.trust_domain);
        let base = format!("{namespace}-{service_account}");
        let (key, csr, cert, ext) =
            (format!("{base}.key"), format!("{base}.csr"), format!("{base}.pem"), format!("{base}.ext"));
        let extensions = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:{spiffe_id}\n"
        );
        std::fs::write(self.dir.join(&ext), extensions)
            .map_err(|e| HarnessError::io("writing the certificate extensions", e))?;
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key], &self.dir)?;
        openssl(&["req", "-new", "-key", &key, "-subj", "/O=wasmixer workload", "-out", &csr], &self.dir)?;
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
            &self.dir,
        )?;
        Ok(WorkloadCert { cert: self.dir.join(cert), key: self.dir.join(key), spiffe_id })
    }
}
