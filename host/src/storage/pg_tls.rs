//! TLS to PostgreSQL, with libpq's `sslmode` names, so a URL written for `psql` means
//! the same protection here:
//!
//! | `sslmode`                   | encrypted                 | server's certificate checked |
//! |-----------------------------|---------------------------|------------------------------|
//! | `disable`                   | never                     | -                            |
//! | `allow`, `prefer` (default) | when the server offers it | only with a CA file          |
//! | `require`                   | always                    | only with a CA file          |
//! | `verify-ca`                 | always                    | against the CA file          |
//! | `verify-full`               | always                    | against the CA file, and the host name |
//!
//! "With a CA file" means signed by that CA, whatever name it carries; a server it did not
//! sign is refused, not talked to in the clear. The CA file is the URL's `sslrootcert`
//! (PEM), or else the host's `--database-ca` (`XBHOST_DATABASE_CA_FILE`); libpq's
//! `~/.postgresql/` files are not read. A client certificate for `cert` authentication
//! is the URL's `sslcert` and `sslkey` (PEM). Only `verify-full` stops a machine in the
//! middle that holds a certificate from the same CA: use it across any network you do
//! not own. Certificates are checked as browsers check them (webpki): the name must be
//! in the certificate's subject alternative names, and a self-signed server certificate
//! cannot be its own CA.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and refuses the other
//! parameters, so they are taken out of the URL here, and the verification is done by
//! rustls (the `ring` provider: no C toolchain beyond what the build has) through
//! tokio-postgres-rustls, which also gives SCRAM its channel binding.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use tokio_postgres::config::SslMode;
pub use tokio_postgres_rustls::MakeRustlsConnect;

/// How a connection protects itself: libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// `allow` and `prefer`: TLS when the server offers it.
    Prefer,
    /// TLS always.
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<TlsMode> {
        Ok(match value {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => bail!(
                "the database URL's sslmode={other:?} is not one of disable, allow, prefer, \
                 require, verify-ca, verify-full"
            ),
        })
    }

    /// What tokio-postgres is told: whether to ask for TLS, and whether to insist.
    fn negotiation(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }

    /// The mode as a URL names it.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// Whether `location` names a PostgreSQL database (rather than a directory).
pub fn is_database_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// A database URL taken apart: what tokio-postgres connects with, and the TLS it uses.
pub struct DatabaseTarget {
    pub config: tokio_postgres::Config,
    pub mode: TlsMode,
    pub connector: MakeRustlsConnect,
}

/// The URL's parameters that are handled here rather than by tokio-postgres.
#[derive(Default)]
struct TlsParams {
    mode: Option<String>,
    root_cert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// Parses `url`, with `default_ca` (the host's `--database-ca`) used when the URL names
/// no `sslrootcert`. Errors name the parameter or file at fault, never the URL itself
/// (it may carry a password).
pub fn parse(url: &str, default_ca: Option<&Path>) -> Result<DatabaseTarget> {
    let (rest, params) = take_tls_params(url)?;
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|e| anyhow!("the database URL is not valid: {e}"))?;
    // What tokio-postgres read of TLS would be overwritten below: there must be nothing
    // (a form of the parameter that was not taken out above would weaken `require`).
    if config.get_ssl_mode() != SslMode::Prefer {
        bail!(
            "the database URL gives sslmode in a form xbhost does not read: write it as \
             ?sslmode=MODE"
        );
    }
    let mode = match &params.mode {
        Some(value) => TlsMode::parse(value)?,
        None => TlsMode::Prefer,
    };
    config.ssl_mode(mode.negotiation());
    let root_cert = match (&params.root_cert, default_ca) {
        (Some(path), _) => Some((PathBuf::from(path), "sslrootcert")),
        (None, Some(path)) => Some((path.to_path_buf(), "--database-ca")),
        (None, None) => None,
    };
    if let Some((path, from)) = &root_cert
        && path.as_path() == Path::new("system")
    {
        bail!(
            "the database's {from}=system (the operating system's trust store) is not \
             supported: name the PEM file of the CA that signed the server's certificate"
        );
    }
    let roots = match &root_cert {
        Some((path, from)) if mode != TlsMode::Disable => Some(read_roots(path, from)?),
        _ => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (TlsMode::VerifyCa | TlsMode::VerifyFull, None) => bail!(
            "the database URL asks for sslmode={} but names no CA certificate to check the \
             server's against: add sslrootcert=FILE to the URL, or give --database-ca FILE \
             (XBHOST_DATABASE_CA_FILE)",
            mode.name()
        ),
        (TlsMode::VerifyFull, Some(roots)) => {
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .context("cannot check server certificates against the CA file")?
        }
        // A CA given is a CA used: `prefer` and `require` then check the chain (and fail
        // rather than connect to a server it did not sign).
        (_, roots) => Arc::new(NameUnchecked::new(roots)),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let client_cert = match (&params.cert, &params.key) {
        _ if mode == TlsMode::Disable => None,
        (None, None) => None,
        (Some(cert), Some(key)) => Some(read_client_cert(cert, key)?),
        (Some(_), None) => bail!("the database URL names sslcert but no sslkey for it"),
        (None, Some(_)) => bail!("the database URL names sslkey but no sslcert for it"),
    };
    let mut tls = match client_cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            anyhow!("the database URL's sslcert and sslkey do not make a client certificate: {e}")
        })?,
    };
    // PostgreSQL 17's direct TLS (`sslnegotiation=direct`) insists on it; older servers
    // ignore it.
    tls.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(DatabaseTarget {
        config,
        mode,
        connector: MakeRustlsConnect::new(tls),
    })
}

fn read_client_cert(
    cert: &str,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = read_certs(Path::new(cert), "sslcert")?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow!("cannot read the database URL's sslkey {key:?} (a PEM private key): {e}")
    })?;
    Ok((chain, key))
}

/// Splits the TLS parameters off the URL's query, keeping the others as written. The
/// query is found where tokio-postgres finds it: after the credentials (which end at the
/// first `@` and may hold a `?`).
fn take_tls_params(url: &str) -> Result<(String, TlsParams)> {
    if !is_database_url(url) {
        bail!(
            "the database must be given as a URL, postgres://USER@HOST:PORT/NAME (with \
             ?sslmode=... and other settings as query parameters)"
        );
    }
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(query_at) = url[after_credentials..]
        .find('?')
        .map(|q| after_credentials + q)
    else {
        return Ok((url.to_string(), TlsParams::default()));
    };
    let (base, query) = (&url[..query_at], &url[query_at + 1..]);
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (raw_key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // tokio-postgres decodes keys too: `ssl%6Dode` is `sslmode`.
        let key = percent_encoding::percent_decode_str(raw_key).decode_utf8_lossy();
        let slot = match key.as_ref() {
            "sslmode" => &mut params.mode,
            "sslrootcert" => &mut params.root_cert,
            "sslcert" => &mut params.cert,
            "sslkey" => &mut params.key,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| anyhow!("the database URL's {key} is not UTF-8"))?;
        *slot = Some(value.into_owned());
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, params))
}

/// ring's provider, made once and shared by every configuration and verifier.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow!(
                "cannot read the database {what} {} (PEM certificates): {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "the database {what} {} holds no PEM certificate",
            path.display()
        );
    }
    Ok(certs)
}

/// The CA certificates of `path`, named by `from` (`sslrootcert` or `--database-ca`) in
/// errors.
fn read_roots(path: &Path, from: &str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let what = format!("CA file ({from})");
    for cert in read_certs(path, &what)? {
        roots.add(cert).map_err(|e| {
            anyhow!(
                "the database {what} {} holds a certificate that cannot be a CA: {e}",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

/// Every mode short of `verify-full`: the server's name is not checked. With `roots`
/// (`verify-ca`, and `require` with a CA file) its certificate must chain to the CA;
/// without (`prefer`, and `require` without a CA file, as libpq has them) any certificate
/// is taken: encrypted, which guards against listening, not against a machine in the
/// middle. The handshake's signatures are checked either way, so the certificate's key is
/// the one the server holds and SCRAM's channel binding means something.
#[derive(Debug)]
struct NameUnchecked {
    roots: Option<rustls::RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl NameUnchecked {
    fn new(roots: Option<rustls::RootCertStore>) -> NameUnchecked {
        NameUnchecked {
            roots,
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for NameUnchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA certificate that signed nothing (openssl req -x509, P-256): the modes that
    /// verify need one to be set up at all.
    const TEST_CA: &str = "\
-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIURj4YZL4TWTnOzO4TLZran6jL8AowCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTeGJob3N0IHVuaXQtdGVzdCBDQTAgFw0yNjEyMDIxNTUxNTla
GA8yMTI2MTEwODE1NTE1OVowHjEcMBoGA1UEAwwTeGJob3N0IHVuaXQtdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDwnw5NZWnfIclMJq+qUiMGjRGof
fx1HmuF3vIzRIofYoyPExl2W3kLxNc5KPq0/0HYVGTrBlUgUD8Xd/TeMND6jUzBR
MB0GA1UdDgQWBBQgZ94WLxTc0WPndlSNfxUYN6SOMzAfBgNVHSMEGDAWgBQgZ94W
LxTc0WPndlSNfxUYN6SOMzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQCtKnESKHiPsJ6YdnbaJimyWllOh+c65+QaeFWbfdUqQwIgPYPcAyBXaYwu
txlV6BuL6t4aFaZve4nJMOPAvcF3eMk=
-----END CERTIFICATE-----
";

    #[test]
    fn tls_parameters_leave_the_rest_of_the_url_as_written() {
        let (rest, params) = take_tls_params(
            "postgres://u:p%3Fw@db:5432/x?application_name=a&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@db:5432/x?application_name=a&connect_timeout=3"
        );
        assert_eq!(params.mode.as_deref(), Some("verify-full"));
        assert_eq!(params.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (rest, params) = take_tls_params("postgres://db/x?sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://db/x");
        assert_eq!(params.mode.as_deref(), Some("disable"));
    }

    #[test]
    fn modes_map_to_what_tokio_postgres_negotiates() {
        for (query, mode, negotiated) in [
            ("", TlsMode::Prefer, SslMode::Prefer),
            ("?sslmode=disable", TlsMode::Disable, SslMode::Disable),
            ("?sslmode=allow", TlsMode::Prefer, SslMode::Prefer),
            ("?sslmode=prefer", TlsMode::Prefer, SslMode::Prefer),
            ("?sslmode=require", TlsMode::Require, SslMode::Require),
            // The verifying modes must never fall back to a connection in the clear.
            ("?sslmode=verify-ca", TlsMode::VerifyCa, SslMode::Require),
            (
                "?sslmode=verify-full",
                TlsMode::VerifyFull,
                SslMode::Require,
            ),
        ] {
            let ca = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(ca.path(), TEST_CA).unwrap();
            let target = parse(&format!("postgres://db/x{query}"), Some(ca.path())).unwrap();
            assert_eq!(target.mode, mode, "{query}");
            assert_eq!(target.config.get_ssl_mode(), negotiated, "{query}");
        }
    }

    #[test]
    fn sslmode_cannot_reach_tokio_postgres_past_the_split() {
        // A `?` in the password: the query starts after the credentials.
        let (rest, params) =
            take_tls_params("postgres://u:p?w@db/x?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(rest, "postgres://u:p?w@db/x");
        assert_eq!(params.mode.as_deref(), Some("require"));
        assert_eq!(params.root_cert.as_deref(), Some("/ca.pem"));
        // A percent-encoded key is the same key.
        let (rest, params) = take_tls_params("postgres://db/x?ssl%6Dode=require").unwrap();
        assert_eq!(rest, "postgres://db/x");
        assert_eq!(params.mode.as_deref(), Some("require"));
        // Connection strings in libpq's key=value form are refused, not half read.
        let err = parse("host=db user=x sslmode=require", None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("postgres://"), "{err}");
    }

    #[test]
    fn verification_without_a_ca_is_refused_naming_the_ways_to_give_one() {
        for mode in ["verify-ca", "verify-full"] {
            let err = parse(&format!("postgres://db/x?sslmode={mode}"), None)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(mode) && err.contains("sslrootcert"), "{err}");
            assert!(err.contains("XBHOST_DATABASE_CA_FILE"), "{err}");
        }
        let err = parse("postgres://db/x?sslmode=verify-all", None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("verify-all"), "{err}");
    }

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let err = parse(
            "postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = parse("postgres://db/x?sslmode=require", Some(&empty))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("empty.pem") && err.contains("no PEM"), "{err}");
    }
}
