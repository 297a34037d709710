//! A throwaway PostgreSQL cluster for tests that need a server of their own
//! (TLS settings, database faults): `initdb` and `pg_ctl` of the
//! installed PostgreSQL (`/usr/lib/postgresql/<version>/bin`, newest first,
//! or `PG_BIN`), a temp directory holding the data directory and the unix
//! socket, a free port on 127.0.0.1, trust authentication, and optionally
//! `ssl = on` with a given server certificate. The cluster is stopped
//! (`pg_ctl stop -m immediate`) and its directory removed on drop.
//!
//! `initdb` refuses to run as root; when the tests run as root, every
//! PostgreSQL program runs as the `postgres` user (`runuser`), which owns the
//! temp directory. Anything that cannot work fails with a message saying why.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::certs::ServerCert;

/// A running throwaway cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// As which user PostgreSQL's programs run (`None`: as this process).
    run_as: Option<String>,
    pub port: u16,
}

/// The newest installed PostgreSQL's program directory.
fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "pgcluster: no PostgreSQL server programs under /usr/lib/postgresql/*/bin \
             (install the postgresql package, or set PG_BIN to the directory holding initdb and pg_ctl)"
        )
    })
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("pgcluster: binding a free port");
    l.local_addr().unwrap().port()
}

/// The uid and gid of `user` (from `id`).
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

impl PgCluster {
    /// Starts a cluster; with `tls`, `ssl = on` serving that certificate.
    pub fn start(tls: Option<&ServerCert>) -> PgCluster {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("pgcluster-")
            .tempdir()
            .expect("pgcluster: temp dir");
        // SAFETY: geteuid has no preconditions and cannot fail.
        let is_root = unsafe { libc::geteuid() } == 0;
        let run_as = is_root.then(|| "postgres".to_string());
        let owner = run_as.as_ref().map(|u| {
            ids_of(u).unwrap_or_else(|| {
                panic!(
                    "pgcluster: the tests run as root, which initdb refuses, and there is no `{u}` user to run PostgreSQL as; create one (useradd {u}) or run the tests as another user"
                )
            })
        });
        let mut c = PgCluster {
            dir,
            bin,
            run_as,
            port: 0,
        };
        c.give(c.dir.path(), owner, 0o700);
        c.initdb();
        if let Some(cert) = tls {
            c.install_cert(cert, owner);
        }
        c.start_server(tls.is_some());
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Sets `path`'s mode and (as root) hands it to PostgreSQL's user.
    fn give(&self, path: &Path, owner: Option<(u32, u32)>, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| {
                panic!(
                    "pgcluster: cannot hand {} to uid {uid}: {e}",
                    path.display()
                )
            });
        }
    }

    /// Runs one PostgreSQL program (as PostgreSQL's user when root).
    fn program(&self, name: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(name);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd.output().unwrap_or_else(|e| {
            panic!(
                "pgcluster: cannot run {} ({e}){}",
                exe.display(),
                if self.run_as.is_some() {
                    " through runuser (util-linux)"
                } else {
                    ""
                }
            )
        })
    }

    fn check(&self, what: &str, out: Output) {
        assert!(
            out.status.success(),
            "pgcluster: {what} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn initdb(&self) {
        let data = self.data();
        let out = self.program(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        self.check("initdb", out);
    }

    /// Writes the server certificate and key (0600, PostgreSQL's user) into
    /// the data directory.
    fn install_cert(&self, cert: &ServerCert, owner: Option<(u32, u32)>) {
        for (name, pem) in [
            ("server.crt", &cert.cert_pem),
            ("server.key", &cert.key_pem),
        ] {
            let p = self.data().join(name);
            std::fs::write(&p, pem).unwrap();
            self.give(&p, owner, 0o600);
        }
    }

    /// Appends the settings and starts the server on a free port (`pg_ctl
    /// -w` returns once it accepts connections); tries three ports.
    fn start_server(&mut self, ssl: bool) {
        let conf = self.data().join("postgresql.conf");
        let mut base = std::fs::read_to_string(&conf).unwrap();
        base.push_str(&format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 20\nshared_buffers = 16MB\nssl = {}\n",
            self.dir.path().display(),
            if ssl { "on" } else { "off" }
        ));
        let mut last = String::new();
        for _ in 0..3 {
            self.port = free_port();
            std::fs::write(&conf, format!("{base}port = {}\n", self.port)).unwrap();
            let log = self.dir.path().join("server.log");
            let out = self.program(
                "pg_ctl",
                &[
                    "-D",
                    &self.data().to_string_lossy(),
                    "-l",
                    &log.to_string_lossy(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if out.status.success() {
                return;
            }
            last = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("pgcluster: the server did not start on three ports: {last}");
    }

    /// `postgres://postgres@HOST:PORT/postgres?PARAMS`.
    pub fn url(&self, host: &str, params: &str) -> String {
        let q = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!("postgres://postgres@{host}:{}/postgres{q}", self.port)
    }

    /// `pg_ctl restart -m fast`: every session is ended, the server stops
    /// and starts again; returns once it accepts connections.
    pub fn restart(&self) {
        let log = self.dir.path().join("server.log");
        let out = self.program(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        );
        self.check("pg_ctl restart", out);
    }

    /// The temp directory holding the cluster (PostgreSQL's user can reach
    /// anything made inside it for that user, e.g. a tablespace).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The uid and gid the server runs as.
    pub fn server_ids(&self) -> (u32, u32) {
        match &self.run_as {
            Some(u) => ids_of(u).expect("the server's user"),
            // SAFETY: getuid and getgid have no preconditions and cannot fail.
            None => unsafe { (libc::getuid(), libc::getgid()) },
        }
    }

    /// A plain connection as `postgres` to the `postgres` database.
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("127.0.0.1", ""), postgres::NoTls)
            .unwrap_or_else(|e| panic!("pgcluster: cannot connect ({e}): {}", self.log()))
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.program(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
