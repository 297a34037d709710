//! PostgreSQL access shared by every command: connecting (plain or TLS),
//! quoting identifiers, numbered migrations (`pipeline db init`) and the
//! advisory lock that keeps two runs from interleaving.
//!
//! The `postgres` client is synchronous; never call it from inside a tokio
//! runtime (it would panic) — the loader owns a thread of its own.

use std::fmt;
use std::sync::Arc;

/// The synchronous PostgreSQL client every connection of the pipeline is.
pub use postgres::Client;
use postgres::config::SslMode;

use crate::config::{DatabaseConfig, Secret, mask_url};
use crate::error::{Error, Result};

/// A quoted SQL identifier. The only way identifiers enter SQL text; data never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    pub fn new(name: &str) -> Self {
        Ident(name.to_string())
    }
    pub fn raw(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.replace('"', "\"\""))
    }
}

/// One migration: a numbered SQL file in `sql/`, embedded at build time.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration the binary knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../../sql/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_digests",
        sql: include_str!("../../../sql/0002_digests.sql"),
    },
    Migration {
        version: 3,
        name: "0003_mirror",
        sql: include_str!("../../../sql/0003_mirror.sql"),
    },
    Migration {
        version: 4,
        name: "0004_model",
        sql: include_str!("../../../sql/0004_model.sql"),
    },
    Migration {
        version: 5,
        name: "0005_reports",
        sql: include_str!("../../../sql/0005_reports.sql"),
    },
];

/// The newest schema version this binary knows.
pub(crate) fn latest_version() -> i32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Connects to `url`. TLS follows libpq's `sslmode`: `disable` is plain;
/// `prefer` and `require` encrypt without checking the server, unless a CA
/// is given (`sslrootcert=` in the URL, else `database.ca_bundle`), when they
/// check the certificate's chain (as libpq does); `verify-ca` checks the
/// chain and `verify-full` the chain and the host name, and both need a CA.
pub fn connect(url: &Secret, db: &DatabaseConfig) -> Result<Client> {
    let masked = mask_url(url.expose());
    let tls = TlsParams::split(url.expose());
    let mut cfg: postgres::Config = tls.url.parse().map_err(|e| {
        Error::Config(format!(
            "DATABASE_URL {masked:?} cannot be parsed ({e}); write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ))
    })?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("jira-pipeline");
    }
    let timeout_ms = db.statement_timeout.as_millis();
    cfg.options(&format!("-c statement_timeout={timeout_ms}"));
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(std::time::Duration::from_secs(10));
    }
    let connect_err = |e: postgres::Error| connect_error(&masked, e);
    let root = tls.root_cert.as_deref().or(db.ca_bundle.as_deref());
    let client = match (cfg.get_ssl_mode(), tls.verify) {
        (SslMode::Disable, Verify::Nothing) => cfg.connect(postgres::NoTls).map_err(connect_err)?,
        (_, verify) => {
            let verify = match (verify, root) {
                (Verify::Nothing, Some(_)) => Verify::Chain,
                (v, _) => v,
            };
            cfg.connect(tls_connector(verify, root, &masked)?)
                .map_err(connect_err)?
        }
    };
    Ok(client)
}

/// The one-line error of a failed connection, with what to do.
fn connect_error(masked: &str, e: postgres::Error) -> Error {
    if let Some(cert) = crate::tls::certificate_error(&e) {
        let hint = if crate::tls::is_wrong_name(&cert) {
            "connect with a host name the certificate holds, or use sslmode=verify-ca to check the CA only"
        } else {
            "set database.ca_bundle (or sslrootcert= in DATABASE_URL) to the PEM file of the CA that signed it"
        };
        return Error::Database(format!(
            "cannot connect to PostgreSQL at {masked}: its TLS certificate is not trusted ({cert}); {hint}"
        ));
    }
    Error::Database(format!(
        "cannot connect to PostgreSQL at {masked} ({}); check DATABASE_URL and that the server is running (e.g. pg_ctlcluster <version> main start)",
        crate::error::Error::Db {
            context: String::new(),
            source: e
        }
        .one_line()
        .trim_start_matches(": ")
    ))
}

/// What a TLS connection checks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Nothing (libpq's `require` without a CA): encrypted, not authenticated.
    Nothing,
    /// That a configured CA signed it (libpq's `verify-ca`).
    Chain,
    /// That, and that it names the host connected to (libpq's `verify-full`).
    ChainAndName,
}

/// The libpq TLS settings the `postgres` crate does not read
/// (`sslmode=verify-ca|verify-full`, `sslrootcert`), taken out of a
/// connection string (URL or `key=value` form) that it can then parse.
#[derive(Debug, PartialEq, Eq)]
struct TlsParams {
    /// The connection string without them (`verify-*` becomes `require`).
    url: String,
    verify: Verify,
    root_cert: Option<std::path::PathBuf>,
}

impl TlsParams {
    fn split(url: &str) -> TlsParams {
        let mut out = TlsParams {
            url: String::new(),
            verify: Verify::Nothing,
            root_cert: None,
        };
        let mut keep = |k: &str, v: &str| -> Option<String> {
            match (k, v) {
                ("sslmode", "verify-ca") => out.verify = Verify::Chain,
                ("sslmode", "verify-full") => out.verify = Verify::ChainAndName,
                ("sslrootcert", path) => out.root_cert = Some(percent_decode(path).into()),
                _ => return Some(format!("{k}={v}")),
            }
            (k == "sslmode").then(|| "sslmode=require".to_string())
        };
        let rebuilt = if url.contains("://") {
            match url.split_once('?') {
                Some((base, query)) => {
                    let params: Vec<String> = query
                        .split('&')
                        .filter_map(|p| {
                            let (k, v) = p.split_once('=').unwrap_or((p, ""));
                            keep(k, v)
                        })
                        .collect();
                    if params.is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}?{}", params.join("&"))
                    }
                }
                None => url.to_string(),
            }
        } else {
            url.split_whitespace()
                .filter_map(|p| match p.split_once('=') {
                    Some((k, v)) => keep(k, v),
                    None => Some(p.to_string()),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.url = rebuilt;
        out
    }
}

/// `url` as the `postgres` driver reads it: without the libpq TLS settings
/// it does not know (see [`connect`]).
pub(crate) fn driver_url(url: &str) -> String {
    TlsParams::split(url).url
}

/// `%XX` escapes of a URL query value (a path given as `sslrootcert=`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).ok()?, 16).ok())
            .flatten();
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tls_connector(
    verify: Verify,
    root: Option<&std::path::Path>,
    masked: &str,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Other(format!("TLS setup failed: {e}")))?;
    let config = match (verify, root) {
        (Verify::Nothing, _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify::new()))
            .with_no_client_auth(),
        (_, None) => {
            return Err(Error::Config(format!(
                "DATABASE_URL {masked:?} asks to verify the server's certificate but names no CA; set database.ca_bundle (or sslrootcert= in the URL) to the CA's PEM file"
            )));
        }
        (_, Some(path)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::tls::read_pem_certs(path)? {
                roots.add(cert).map_err(|e| {
                    Error::Config(format!(
                        "{}: the CA bundle holds a certificate rustls rejects ({e})",
                        path.display()
                    ))
                })?;
            }
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| Error::Config(format!("{}: unusable CA bundle ({e})", path.display())))?;
            let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match verify {
                Verify::Chain => Arc::new(ChainOnly(webpki)),
                _ => webpki,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq's `verify-ca`: the chain must lead to a configured CA; the name in
/// the certificate is not compared with the host.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last: a name error
        // means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(e) if crate::tls::is_wrong_name(&e) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// libpq's `sslmode=require` semantics: encrypt, do not verify the server.
#[derive(Debug)]
struct NoVerify(rustls::crypto::WebPkiSupportedAlgorithms);

impl NoVerify {
    fn new() -> Self {
        NoVerify(rustls::crypto::ring::default_provider().signature_verification_algorithms)
    }
}

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// What `db init` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InitReport {
    pub schema: String,
    pub from_version: i32,
    pub to_version: i32,
    pub applied: Vec<String>,
}

/// Creates the schema and applies every pending migration, each in its own
/// transaction under a transaction-scoped advisory lock (so two concurrent
/// `db init` cannot race). Refuses a schema newer than this binary knows.
pub fn init(client: &mut Client, schema: &str) -> Result<InitReport> {
    let ident = Ident::new(schema);
    let migrations = crate::tables::SCHEMA_MIGRATIONS.ident();
    let mut report = InitReport {
        schema: schema.to_string(),
        ..Default::default()
    };
    let mut tx = client.transaction().map_err(Error::db("db init: BEGIN"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('jira-pipeline-migrate'))",
        &[],
    )
    .map_err(Error::db("db init: advisory lock"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {ident};\n{};",
        crate::tables::create_table(&ident, &crate::tables::SCHEMA_MIGRATIONS)
    ))
    .map_err(Error::db(format!("db init: creating schema {ident}")))?;
    let current: i32 = tx
        .query_one(
            &format!(
                "SELECT coalesce(max({version}), 0) FROM {ident}.{migrations}",
                version = Ident::new("version")
            ),
            &[],
        )
        .map_err(Error::db("db init: reading schema version"))?
        .get(0);
    report.from_version = current;
    if current > latest_version() {
        return Err(Error::Database(format!(
            "schema {ident} is at version {current}, newer than this pipeline knows ({}); upgrade the pipeline binary instead of downgrading the schema",
            latest_version()
        )));
    }
    tx.batch_execute(&format!("SET LOCAL search_path TO {ident}"))
        .map_err(Error::db("db init: search_path"))?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql)
            .map_err(Error::db(format!("db init: migration {}", m.name)))?;
        tx.execute(
            &format!(
                "INSERT INTO {ident}.{migrations} ({version}, {name}) VALUES ($1, $2)",
                version = Ident::new("version"),
                name = Ident::new("name")
            ),
            &[&m.version, &m.name],
        )
        .map_err(Error::db(format!(
            "db init: recording migration {}",
            m.name
        )))?;
        report.applied.push(m.name.to_string());
    }
    tx.commit().map_err(Error::db("db init: COMMIT"))?;
    report.to_version = latest_version().max(current);
    Ok(report)
}

/// Checks that the schema exists at the version this binary knows.
pub(crate) fn check_schema(client: &mut Client, schema: &str) -> Result<()> {
    let ident = Ident::new(schema);
    let migrations = crate::tables::SCHEMA_MIGRATIONS.ident();
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{ident}.{migrations}")],
        )
        .map_err(Error::db("checking the warehouse schema"))?
        .get(0);
    if !exists {
        return Err(Error::Config(format!(
            "schema {ident} is not initialised; run `pipeline db init` first"
        )));
    }
    let v: i32 = client
        .query_one(
            &format!(
                "SELECT coalesce(max({version}), 0) FROM {ident}.{migrations}",
                version = Ident::new("version")
            ),
            &[],
        )
        .map_err(Error::db("reading the schema version"))?
        .get(0);
    if v > latest_version() {
        return Err(Error::Database(format!(
            "schema {ident} is at version {v}, newer than this pipeline knows ({}); upgrade the pipeline binary",
            latest_version()
        )));
    }
    if v < latest_version() {
        return Err(Error::Config(format!(
            "schema {ident} is at version {v}, older than this pipeline needs ({}); run `pipeline db init` to migrate it",
            latest_version()
        )));
    }
    Ok(())
}

/// The advisory-lock key of a warehouse schema (one writer per schema).
pub fn lock_key(schema: &str) -> i64 {
    // FNV-1a, stable across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in b"jira-pipeline:".iter().chain(schema.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h as i64
}

/// True when some session holds the advisory lock of `schema` (a run is
/// under way). Takes nothing itself.
pub fn lock_held(client: &mut Client, schema: &str) -> Result<bool> {
    let key = lock_key(schema);
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.classid = (($1::bigint >> 32) & 4294967295)::oid
                AND l.objid = ($1::bigint & 4294967295)::oid)",
            &[&key],
        )
        .map_err(Error::db("checking the advisory lock"))?
        .get(0))
}

/// Releases the advisory lock of `schema` held by this session. Dropping a
/// connection frees it too, but only once the server has noticed the closed
/// socket, which may be after the next command has already asked for it:
/// so every command that locks releases explicitly before it exits.
pub(crate) fn unlock(client: &mut Client, schema: &str) -> Result<()> {
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock_key(schema)])
        .map_err(Error::db("releasing the advisory lock"))?;
    Ok(())
}

/// Takes the session-level advisory lock of `schema` or fails with exit code 5,
/// naming the session that holds it.
pub fn try_lock(client: &mut Client, schema: &str) -> Result<()> {
    let key = lock_key(schema);
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .map_err(Error::db("taking the advisory lock"))?
        .get(0);
    if got {
        return Ok(());
    }
    let holder = client
        .query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local socket'), a.backend_start::text
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.classid = (($1::bigint >> 32) & 4294967295)::oid
                AND l.objid = ($1::bigint & 4294967295)::oid
              LIMIT 1",
            &[&key],
        )
        .ok()
        .flatten()
        .map(|r| {
            format!(
                "PostgreSQL backend pid {} ({} from {}, connected since {})",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            )
        })
        .unwrap_or_else(|| "another session".to_string());
    Err(Error::Locked(format!(
        "another pipeline run holds the lock on schema {}: {holder}; wait for it to finish (or stop it) and run again (a run that was just killed keeps it until PostgreSQL notices, usually within seconds)",
        Ident::new(schema)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libpq's `verify-*` modes and `sslrootcert` are taken out of both forms
    /// of connection string; everything else stays as written.
    #[test]
    fn tls_params_split_off_what_the_driver_cannot_read() {
        let t = TlsParams::split(
            "postgres://u:p@db:5432/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=a",
        );
        assert_eq!(t.verify, Verify::ChainAndName);
        assert_eq!(t.root_cert, Some("/etc/ca x.pem".into()));
        assert_eq!(
            t.url,
            "postgres://u:p@db:5432/x?sslmode=require&application_name=a"
        );
        let t = TlsParams::split("postgres://db/x?sslrootcert=/ca.pem");
        assert_eq!(
            (t.verify, t.url.as_str()),
            (Verify::Nothing, "postgres://db/x")
        );
        let t = TlsParams::split("host=db sslmode=verify-ca dbname=x");
        assert_eq!(t.verify, Verify::Chain);
        assert_eq!(t.url, "host=db sslmode=require dbname=x");
        let t = TlsParams::split("postgres://db/x?sslmode=require");
        assert_eq!(
            (t.verify, t.url.as_str()),
            (Verify::Nothing, "postgres://db/x?sslmode=require")
        );
    }

    #[test]
    fn ident_quotes() {
        assert_eq!(Ident::new("jira").to_string(), "\"jira\"");
        assert_eq!(Ident::new("a\"b").to_string(), "\"a\"\"b\"");
    }

    #[test]
    fn lock_key_stable_and_distinct() {
        assert_eq!(lock_key("jira"), lock_key("jira"));
        assert_ne!(lock_key("jira"), lock_key("jira2"));
    }
}
