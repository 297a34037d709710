//! Foundation: configuration errors, `db init`, schema contract, TLS, lock, secrets.

use crate::common::*;
use predicates::prelude::*;

#[test]
fn db_init_twice_creates_every_contract_table() {
    let mut s = TestSchema::new();
    let w = Workdir::new(&config_with(&s.name, ""));
    let latest = jira_pipeline_core::db::MIGRATIONS.last().unwrap().version;
    w.cmd()
        .args(["db", "init"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "migrated from version 0 to {latest}"
        )));
    w.cmd()
        .args(["db", "init"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "up to date at version {latest}"
        )));
    // Every table spec (bookkeeping included) matches the migrated columns,
    // types and nullability.
    let specs = jira_pipeline_core::tables::SCHEMA
        .iter()
        .chain([&&jira_pipeline_core::tables::SCHEMA_MIGRATIONS]);
    for t in specs {
        let rows = s
            .client
            .query(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns
                  WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&s.name, &t.name],
            )
            .unwrap();
        assert!(!rows.is_empty(), "table {} missing", t.name);
        for c in t.columns {
            let found = rows
                .iter()
                .find(|r| r.get::<_, String>(0) == c.name)
                .unwrap_or_else(|| panic!("{}.{} missing", t.name, c.name));
            assert_eq!(
                found.get::<_, String>(1),
                c.ty.sql(),
                "{}.{}",
                t.name,
                c.name
            );
            let nullable = c.nullable && !t.key.contains(&c.name);
            assert_eq!(
                found.get::<_, String>(2),
                if nullable { "YES" } else { "NO" },
                "nullability of {}.{}",
                t.name,
                c.name
            );
        }
        // Primary key equals the spec's key.
        let pk: Vec<String> = s
            .client
            .query(
                "SELECT a.attname FROM pg_index i
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                  WHERE i.indrelid = ($1 || '.' || $2)::regclass AND i.indisprimary
                  ORDER BY array_position(i.indkey, a.attnum)",
                &[&format!("\"{}\"", s.name), &t.name],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(pk, t.key, "primary key of {}", t.name);
    }
    for state in [
        "checkpoint",
        "page_ledger",
        "run_history",
        "quarantine",
        "issue_digest",
        "deferred_index",
    ] {
        assert_eq!(s.count(state), 0, "{state} starts empty");
    }
    assert_eq!(
        s.count("schema_migrations") as usize,
        jira_pipeline_core::db::MIGRATIONS.len()
    );
}

#[test]
fn db_init_refuses_newer_schema() {
    let mut s = TestSchema::initialised();
    s.client
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_migrations (version, name) VALUES (999, 'future')",
                s.name
            ),
            &[],
        )
        .unwrap();
    let w = Workdir::new(&config_with(&s.name, ""));
    w.cmd()
        .args(["db", "init"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "version 999, newer than this pipeline knows",
        ));
}

#[test]
fn db_connects_with_sslmode_require() {
    let s = TestSchema::new();
    let url = format!("{}?sslmode=require", database_url());
    let w = Workdir::new(&config_with(&s.name, ""));
    w.cmd()
        .env("DATABASE_URL", &url)
        .args(["db", "init"])
        .assert()
        .success();
    // Prove the session was encrypted.
    let secret = jira_pipeline_core::config::Secret::new(url);
    let cfg = jira_pipeline_core::config::Config::load(&w.config_path()).unwrap();
    let mut c = jira_pipeline_core::db::connect(&secret, &cfg.database).unwrap();
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "sslmode=require must give an encrypted session");
}

#[test]
fn bad_database_url_is_a_config_error() {
    let s = TestSchema::new();
    let w = Workdir::new(&config_with(&s.name, ""));
    w.cmd()
        .env("DATABASE_URL", "mysql://root:hunter2@localhost/x")
        .args(["db", "init"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a PostgreSQL URL"))
        .stderr(predicate::str::contains("hunter2").not());
}

#[test]
fn unreachable_database_says_how_to_start_it() {
    let s = TestSchema::new();
    let w = Workdir::new(&config_with(&s.name, ""));
    w.cmd()
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/test?connect_timeout=2",
        )
        .args(["db", "init"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot connect to PostgreSQL"));
}

/// Each bad configuration exits 2 with one line naming the key.
#[test]
fn bad_configs_exit_2_naming_the_key() {
    let scope = "[[scope]]\nname = \"a\"\nproject = \"ABC\"\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown key",
            format!("[jira]\npagesize = 10\n{scope}"),
            "pagesize",
        ),
        (
            "wrong type",
            format!("[jira]\npage_size = \"ten\"\n{scope}"),
            "jira.page_size",
        ),
        (
            "no scopes",
            "[jira]\npage_size = 10\n".to_string(),
            "[[scope]]",
        ),
        (
            "duplicate scope",
            format!("{scope}{scope}"),
            "scope[1].name",
        ),
        (
            "page size",
            format!("[jira]\npage_size = 0\n{scope}"),
            "jira.page_size",
        ),
        (
            "schema name",
            format!("[database]\nschema = \"Bad-Name\"\n{scope}"),
            "database.schema",
        ),
        (
            "project key",
            "[[scope]]\nname = \"a\"\nproject = \"not a key\"\n".to_string(),
            "scope[0].project",
        ),
        ("syntax", "[jira\n".to_string(), "pipeline.toml:1"),
    ];
    for (what, cfg, needle) in cases {
        let w = Workdir::new(cfg);
        let out = w.cmd().args(["config", "check"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(needle), "{what}: {err:?} should name {needle}");
        assert!(
            err.contains("pipeline.toml"),
            "{what}: {err:?} should name the file"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{what}: one line: {err:?}"
        );
    }
}

#[test]
fn missing_config_file_is_exit_2() {
    let w = Workdir::new("");
    w.cmd()
        .args(["--config", "nope.toml", "config", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.toml"));
}

#[test]
fn missing_jira_pat_names_the_variable() {
    // SAFETY of the test: no other test in this binary reads JIRA_PAT from the
    // process environment (they run the binary with its own environment).
    let e = {
        let saved = std::env::var("JIRA_PAT").ok();
        unsafe { std::env::remove_var("JIRA_PAT") };
        let e = jira_pipeline_core::config::jira_pat().unwrap_err();
        if let Some(v) = saved {
            unsafe { std::env::set_var("JIRA_PAT", v) };
        }
        e
    };
    assert_eq!(e.exit_code(), jira_pipeline_core::error::ExitCode::Usage);
    assert!(e.to_string().contains("JIRA_PAT is not set"));
}

#[test]
fn shipped_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.toml");
    let cfg = jira_pipeline_core::config::Config::load(&path).expect("shipped pipeline.toml");
    assert_eq!(cfg.scopes.len(), 1);
    assert_eq!(cfg.database.schema, "jira");
}

#[test]
fn config_check_masks_secrets_at_every_verbosity() {
    let token = "SEKRIT-token-4f1d9a";
    let w = Workdir::new(&config_with("jira", ""));
    for args in [
        vec!["config", "check", "--offline"],
        vec![
            "-vv",
            "--log-format",
            "json",
            "config",
            "check",
            "--offline",
        ],
        vec!["-v", "config", "check", "--offline"],
    ] {
        let out = w
            .cmd()
            .env("JIRA_PAT", token)
            .env("DATABASE_URL", "postgres://u:dbpass-77@127.0.0.1/test")
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("JIRA_PAT = set (***)"), "{all}");
        assert!(!all.contains(token), "token leaked with {args:?}: {all}");
        assert!(
            !all.contains("dbpass-77"),
            "db password leaked with {args:?}"
        );
    }
}

#[test]
fn dotenv_is_loaded_without_overriding() {
    let w = Workdir::new(&config_with("jira", ""));
    std::fs::write(
        w.path().join(".env"),
        "JIRA_PAT=from-dotenv\nDATABASE_URL=postgres://a@127.0.0.1/x\n",
    )
    .unwrap();
    let out = w
        .cmd()
        .env_remove("DATABASE_URL")
        .args(["config", "check"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("JIRA_PAT = set (***)"), "{s}");
    assert!(s.contains("postgres://a@127.0.0.1/x"), "{s}");
    // An already-set variable wins over .env.
    let out = w
        .cmd()
        .env("DATABASE_URL", "postgres://b@127.0.0.1/y")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("postgres://b@127.0.0.1/y"));
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let w = Workdir::new("");
    w.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("db"))
        .stdout(predicate::str::contains("Exit codes"))
        .stdout(predicate::str::contains("5  another run holds the lock"));
}

#[test]
fn second_lock_holder_is_refused_with_exit_5() {
    let s = TestSchema::initialised();
    let mut a = connect();
    let mut b = connect();
    jira_pipeline_core::db::try_lock(&mut a, &s.name).unwrap();
    let e = jira_pipeline_core::db::try_lock(&mut b, &s.name).unwrap_err();
    assert_eq!(e.exit_code(), jira_pipeline_core::error::ExitCode::Locked);
    assert!(e.to_string().contains("holds the lock"), "{e}");
    assert!(e.to_string().contains("pid"), "{e}");
    drop(a);
    // Released with the session (once the server has noticed it ended).
    let mut released = false;
    for _ in 0..500 {
        if jira_pipeline_core::db::try_lock(&mut b, &s.name).is_ok() {
            released = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(released, "the lock was not released with the session");
}

#[test]
fn config_check_asks_jira_about_every_scope_and_warns_about_a_shared_env_file() {
    let sim =
        jira_sim::Simulator::start(jira_sim::SimConfig::default().issues(20).port(0)).unwrap();
    let scope = |fields: &str| {
        format!(
            "[jira]\nbase_url = \"{}\"\n[[scope]]\nname = \"demo\"\nproject = \"DEMO\"\nissue_types = [\"BUG\"]\nfields = [{fields}]\n",
            sim.url()
        )
    };
    let w = Workdir::new(&scope("\"story points\""));
    let out = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .args(["config", "check"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("every project, issue type and field exists"),
        "{text}"
    );

    let w = Workdir::new(&scope("\"Story Pionts\""));
    // A .env readable by others (it holds the token) gets a warning.
    let env = w.path().join(".env");
    std::fs::write(&env, format!("JIRA_PAT={}\n", sim.token())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = w.cmd().args(["config", "check"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "scope \"demo\": field \"Story Pionts\" does not exist (did you mean \"Story Points\""
        ),
        "{err}"
    );
    assert!(err.contains("readable by other users"), "{err}");
    assert!(!err.contains(sim.token()), "{err}");
    // --offline skips the server.
    let out = w
        .cmd()
        .args(["config", "check", "--offline"])
        .output()
        .unwrap();
    assert!(out.status.success());
}
