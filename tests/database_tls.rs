//! TLS to PostgreSQL (#19): a private cluster serves TLS with a certificate for `localhost`
//! from a CA made here, and lets its `xbhost_*` roles in over TLS only. Each `sslmode`
//! protects as libpq's does (what `pg_stat_ssl` says of the server's side of the
//! connection, and which certificates are refused), and a host on `verify-full` makes
//! every connection of its own, the change listener's among them, over TLS.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use xbhost::storage::{PgOptions, PgStorage, db_error};
use xbhost_tests::db_pages::{visit, warm_up};
use xbhost_tests::http::client;
use xbhost_tests::pg::{ClusterSetup, PgCluster, TestDatabase};
use xbhost_tests::served::Served;

/// A CA, the server's certificate (for `localhost` only) and a client certificate for the
/// `xbhost_cert` role, all signed by it; and a second CA that signed nothing here.
struct Pki {
    dir: tempfile::TempDir,
    server_cert: String,
    server_key: String,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("xbhost test CA");
        let server = leaf(&["localhost"], "localhost", &ca);
        let client = leaf(&[], "xbhost_cert", &ca);
        let other = ca_cert("another CA");
        let pki = Pki {
            server_cert: server.0,
            server_key: server.1,
            ca_pem: ca.pem(),
            dir,
        };
        for (name, text) in [
            ("ca.pem", pki.ca_pem.as_str()),
            ("other-ca.pem", other.as_str()),
            ("client.pem", client.0.as_str()),
            ("client.key", client.1.as_str()),
        ] {
            std::fs::write(pki.path(name), text).unwrap();
        }
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn ca_cert(name: &str) -> String {
    ca(name).pem()
}

/// A certificate and its key (PEM) for these DNS names and common name.
fn leaf(names: &[&str], common_name: &str, ca: &CertifiedIssuer<'_, KeyPair>) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A cluster serving TLS with `pki`'s server certificate, taking client certificates
/// signed by its CA. `postgres` and `xbhost_any` may connect without TLS (the tests' own
/// helpers do); `xbhost_tls` only over TLS, `xbhost_cert` only with a client certificate.
/// It listens on 127.0.0.1 alone: URLs name `localhost` (the certificate's name) with
/// `hostaddr=127.0.0.1`, so that a `localhost` that resolves to `::1` first changes
/// nothing.
fn tls_cluster(pki: &Pki) -> PgCluster {
    let cluster = PgCluster::start_with(ClusterSetup {
        files: vec![
            ("server.crt".into(), pki.server_cert.clone().into_bytes()),
            ("server.key".into(), pki.server_key.clone().into_bytes()),
            ("root.crt".into(), pki.ca_pem.clone().into_bytes()),
        ],
        settings: vec![
            "ssl = on".into(),
            "ssl_cert_file = 'server.crt'".into(),
            "ssl_key_file = 'server.key'".into(),
            "ssl_ca_file = 'root.crt'".into(),
        ],
        hba: Some(
            [
                "local all all trust",
                "host all postgres 127.0.0.1/32 trust",
                "hostssl all xbhost_tls 127.0.0.1/32 trust",
                "hostssl all xbhost_cert 127.0.0.1/32 cert",
                "host all xbhost_any 127.0.0.1/32 trust",
                "",
            ]
            .join("\n"),
        ),
    })
    .unwrap_or_else(|e| panic!("starting a PostgreSQL cluster that serves TLS: {e}"));
    // Superusers, so that each may bring the schema up in a database it does not own.
    cluster.execute(
        "CREATE ROLE xbhost_tls LOGIN SUPERUSER; CREATE ROLE xbhost_cert LOGIN SUPERUSER; \
         CREATE ROLE xbhost_any LOGIN SUPERUSER",
    );
    cluster
}

/// Connects as a host would; `Ok` with whether the connection is encrypted, as the server
/// sees it, and the role it is; or the error a host would report.
fn connect(url: &str, ca_file: Option<&Path>) -> Result<(bool, String), String> {
    let options = PgOptions {
        pool_size: 1,
        ca_file: ca_file.map(Path::to_path_buf),
        ..PgOptions::default()
    };
    let store = PgStorage::connect(url, &options).map_err(|e| format!("{e:#}"))?;
    store
        .with_connection(async |client| {
            let row = client
                .query_one(
                    "SELECT ssl, current_user::text FROM pg_stat_ssl \
                     WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .map_err(db_error)?;
            Ok((row.get(0), row.get(1)))
        })
        .map_err(|e| format!("{e:#}"))
}

fn encrypted(url: &str, ca_file: Option<&Path>) -> String {
    match connect(url, ca_file) {
        Ok((true, role)) => role,
        Ok((false, _)) => panic!("{url}: connected without TLS"),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn refused(url: &str, ca_file: Option<&Path>, expect: &[&str]) {
    match connect(url, ca_file) {
        Ok((tls, role)) => panic!("{url}: connected as {role} (TLS {tls}), expected a refusal"),
        Err(e) => {
            let lower = e.to_lowercase();
            for word in expect {
                assert!(lower.contains(word), "{url}: the error lacks {word:?}: {e}");
            }
        }
    }
}

#[test]
fn each_sslmode_checks_what_libpqs_does() {
    let pki = Pki::new();
    let cluster = tls_cluster(&pki);
    let port = cluster.port();
    let at = |host: &str, user: &str, query: &str| {
        let hostaddr = if host == "localhost" {
            "hostaddr=127.0.0.1&"
        } else {
            ""
        };
        format!("postgres://{user}@{host}:{port}/postgres?{hostaddr}{query}")
    };
    let ca = pki.file("ca.pem");
    let other = pki.file("other-ca.pem");
    let other_ca = pki.path("other-ca.pem");

    // verify-full: the CA and the host name.
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    encrypted(&at("localhost", "xbhost_tls", &full), None);
    refused(
        &at("127.0.0.1", "xbhost_tls", &full),
        None,
        &["postgresql at 127.0.0.1", "certificate", "name"],
    );
    let full_other = format!("sslmode=verify-full&sslrootcert={other}");
    refused(
        &at("localhost", "xbhost_tls", &full_other),
        None,
        &["certificate", "issuer"],
    );
    // verify-ca: the CA, whatever the name.
    encrypted(
        &at(
            "127.0.0.1",
            "xbhost_tls",
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        ),
        None,
    );
    refused(
        &at(
            "127.0.0.1",
            "xbhost_tls",
            &format!("sslmode=verify-ca&sslrootcert={other}"),
        ),
        None,
        &["certificate", "issuer"],
    );
    // The host's --database-ca (XBHOST_DATABASE_CA_FILE) stands in for sslrootcert, and
    // the URL's own wins over it.
    encrypted(
        &at("localhost", "xbhost_tls", "sslmode=verify-full"),
        Some(&pki.path("ca.pem")),
    );
    refused(
        &at("localhost", "xbhost_tls", "sslmode=verify-full"),
        Some(&other_ca),
        &["issuer"],
    );
    encrypted(&at("localhost", "xbhost_tls", &full), Some(&other_ca));
    // require and prefer: encrypted, and with a CA given, checked against it (a server it
    // did not sign is refused, not talked to in the clear).
    encrypted(&at("127.0.0.1", "xbhost_tls", "sslmode=require"), None);
    refused(
        &at("127.0.0.1", "xbhost_tls", "sslmode=require"),
        Some(&other_ca),
        &["issuer"],
    );
    encrypted(&at("127.0.0.1", "xbhost_tls", "sslmode=prefer"), None);
    encrypted(&at("127.0.0.1", "xbhost_tls", "sslmode=allow"), None);
    refused(
        &at("127.0.0.1", "xbhost_any", "sslmode=prefer"),
        Some(&other_ca),
        &["issuer"],
    );
    encrypted(
        &format!("postgres://xbhost_tls@127.0.0.1:{port}/postgres"),
        None,
    );
    // disable: the server's rules refuse this role without TLS, and say so; a role the
    // rules let in connects in the clear.
    refused(
        &at("127.0.0.1", "xbhost_tls", "sslmode=disable"),
        None,
        &["pg_hba.conf", "no encryption"],
    );
    assert_eq!(
        connect(&at("127.0.0.1", "xbhost_any", "sslmode=disable"), None),
        Ok((false, "xbhost_any".to_string()))
    );
    // A client certificate for `cert` authentication: the role is the certificate's.
    let client = format!(
        "{full}&sslcert={}&sslkey={}",
        pki.file("client.pem"),
        pki.file("client.key")
    );
    assert_eq!(
        encrypted(&at("localhost", "xbhost_cert", &client), None),
        "xbhost_cert"
    );
    refused(
        &at("localhost", "xbhost_cert", &full),
        None,
        &["certificate"],
    );

    // A server without TLS: the modes that insist refuse it; prefer talks in the clear.
    let plain = PgCluster::for_test();
    let plain_at = |query: &str| format!("{}?{query}", plain.admin_url());
    for mode in ["require", "verify-ca", "verify-full"] {
        refused(
            &plain_at(&format!("sslmode={mode}&sslrootcert={ca}")),
            None,
            &["does not support tls"],
        );
    }
    assert_eq!(
        connect(&plain_at("sslmode=prefer"), None),
        Ok((false, "postgres".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_verify_full_makes_every_connection_over_tls() {
    let pki = Pki::new();
    let cluster = tls_cluster(&pki);
    let db: TestDatabase = cluster.fresh_database();
    // A role the server would also let in without TLS: what is encrypted, the host chose.
    let url = format!(
        "postgres://xbhost_any@localhost:{}/{}?hostaddr=127.0.0.1&sslmode=verify-full",
        cluster.port(),
        db.name
    );
    let ca = pki.file("ca.pem");
    let xbhost = |data: &Path, args: &[&str], ca: Option<&str>| {
        let mut command = std::process::Command::new(xbhost_tests::xbhost_bin());
        command
            .arg("--data")
            .arg(data)
            .args(args)
            .env_remove("XBHOST_DATABASE_CA_FILE")
            .env_remove("XBHOST_DATABASE_URL");
        if let Some(ca) = ca {
            command.env("XBHOST_DATABASE_CA_FILE", ca);
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The operator's commands, over TLS: the shipped plugins and the demo course.
    let data = tempfile::tempdir().unwrap();
    let plugins: Vec<String> = xbhost_tests::PRODUCT_PLUGINS
        .iter()
        .map(|p| xbhost_tests::plugin_path(p).to_string_lossy().into_owned())
        .collect();
    let demo = xbhost_tests::demo_course_path();
    let mut add = vec!["--database", url.as_str(), "plugin", "add"];
    add.extend(plugins.iter().map(String::as_str));
    for args in [
        add,
        vec![
            "--database",
            url.as_str(),
            "course",
            "load",
            demo.to_str().unwrap(),
        ],
    ] {
        let (ok, err) = xbhost(data.path(), &args, Some(&ca));
        assert!(ok, "{args:?}: {err}");
    }
    // Without the CA the same URL is refused, saying what is missing.
    let (ok, err) = xbhost(data.path(), &["--database", &url, "course", "list"], None);
    assert!(
        !ok && err.contains("verify-full") && err.contains("XBHOST_DATABASE_CA_FILE"),
        "{err}"
    );

    // The server gets the CA by its flag, and the components the commands compiled.
    let server = Served::start(data, &["--database", &url, "--database-ca", &ca]);
    let c = client();
    warm_up(&c, &server.url).await;
    let page = visit(&c, &server.url, 0, "tls-learner").await;
    assert!(page.acknowledged(), "{}", page.body);
    assert!(
        !page.groups.is_empty(),
        "the demo unit shows no group: {}",
        page.body
    );

    // Every connection the server holds, as the database sees them.
    let connections = db.query(
        "SELECT a.query, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = $1 AND a.usename = 'xbhost_any'",
        &[&db.name],
    );
    let plain: Vec<String> = connections
        .iter()
        .filter(|r| !r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    assert!(plain.is_empty(), "connections without TLS: {plain:?}");
    assert!(
        connections
            .iter()
            .any(|r| r.get::<_, String>(0).starts_with("LISTEN")),
        "the change listener's connection is not among the server's: {} connections",
        connections.len()
    );
    assert!(connections.len() >= 2, "{} connections", connections.len());
    drop(server);
}
