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
];

/// The newest schema version this binary knows.
pub(crate) fn latest_version() -> i32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Connects to `url`. `sslmode=disable|prefer|require` is honoured as libpq
/// does: `require` encrypts; the certificate is verified only when a CA bundle
/// is configured (`database.ca_bundle`), as libpq's `verify-ca`.
pub fn connect(url: &Secret, db: &DatabaseConfig) -> Result<Client> {
    let masked = mask_url(url.expose());
    let mut cfg: postgres::Config = url.expose().parse().map_err(|e| {
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
    let connect_err = |e: postgres::Error| {
        Error::Database(format!(
            "cannot connect to PostgreSQL at {masked} ({}); check DATABASE_URL and that the server is running (e.g. pg_ctlcluster <version> main start)",
            crate::error::Error::Db {
                context: String::new(),
                source: e
            }
            .one_line()
            .trim_start_matches(": ")
        ))
    };
    let client = match cfg.get_ssl_mode() {
        SslMode::Disable => cfg.connect(postgres::NoTls).map_err(connect_err)?,
        _ => {
            let tls = tls_connector(db)?;
            cfg.connect(tls).map_err(connect_err)?
        }
    };
    Ok(client)
}

fn tls_connector(db: &DatabaseConfig) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Other(format!("TLS setup failed: {e}")))?;
    let config = match &db.ca_bundle {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::tls::read_pem_certs(path)? {
                roots.add(cert).map_err(|e| {
                    Error::Config(format!(
                        "{}: database.ca_bundle holds a certificate rustls rejects ({e})",
                        path.display()
                    ))
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify::new()))
            .with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
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
