//! Disk faults (issue 16): a full staging file system, a read-only one, a
//! corrupt or truncated staged page and batch, a staging area spread over
//! two file systems, and (through the staging writers' fault-injection seam)
//! a full disk and an I/O error at one exact write or fsync. Each gives a
//! one-line error naming the file and what to do, leaves no half-written
//! file at a final name, and a rerun reaches the warehouse of a run that was
//! never interrupted.
//!
//! Full and read-only file systems are real: a small tmpfs mounted by the
//! test. That needs root (CAP_SYS_ADMIN), which these tests have in CI;
//! without it they fail saying so rather than skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::pipeline::digest;
use jira_sim::{SimConfig, SimHandle, Simulator};

fn sim() -> SimHandle {
    Simulator::start(SimConfig::default().issues(400).projects(1).seed(16)).unwrap()
}

/// A config staging into `staging`.
fn config(sim: &SimHandle, schema: &str, staging: &Path) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 25\nconcurrency = 2\n[jira.retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n\
         [staging]\ndir = \"{}\"\n\
         [database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n",
        sim.url(),
        staging.display()
    )
}

/// `pipeline ARGS` with extra environment: (exit code, stderr).
fn pipeline(w: &Workdir, sim: &SimHandle, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = w.cmd();
    c.env("JIRA_PAT", sim.token()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The warehouse of one uninterrupted `run` on ordinary disk.
fn reference(sim: &SimHandle) -> BTreeMap<String, (i64, String)> {
    let mut s = TestSchema::initialised();
    let dir = tempfile::tempdir().unwrap();
    let w = Workdir::new(&config(sim, &s.name, &dir.path().join("staging")));
    let (code, stderr) = pipeline(&w, sim, &["run"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let d = digest(&mut s);
    assert!(d["issue"].0 > 0);
    d
}

/// The one error line of a failed command.
fn error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    eprintln!("{}", errors[0]);
    errors[0].to_string()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Nothing half-written: no temp file is left behind, every staged page
/// reads whole, and every batch directory at its final name is complete.
fn assert_nothing_half_written(staging: &Path) {
    for f in files(staging) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".tmp"),
            "leftover temp file {}",
            f.display()
        );
        if name.ends_with(".ndjson.zst") {
            jira_pipeline_core::staging::read_page(&f)
                .unwrap_or_else(|e| panic!("half-written page {}: {e}", f.display()));
        }
    }
    let batches = staging.join("batches");
    for dir in files(&batches).iter().filter_map(|f| f.parent()) {
        assert!(
            dir.join("meta.json").is_file(),
            "batch without meta.json at its final name: {}",
            dir.display()
        );
    }
}

#[test]
fn disk_full_staging_fails_clearly_and_the_rerun_equals_an_uninterrupted_run() {
    let sim = sim();
    let expected = reference(&sim);
    let fs = Tmpfs::mount("160k");
    let staging = fs.path().join("staging");
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, &staging));
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[]);
    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains(&staging.display().to_string())
            && line.contains("No space left on device")
            && line.contains("free space there")
            && line.contains("rerun"),
        "{line}"
    );
    assert_nothing_half_written(&staging);
    fs.remount("size=64m");
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(digest(&mut s), expected);
}

#[test]
fn disk_read_only_staging_fails_clearly_and_the_rerun_equals_an_uninterrupted_run() {
    let sim = sim();
    let expected = reference(&sim);
    let fs = Tmpfs::mount("64m");
    let staging = fs.path().join("staging");
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, &staging));
    // Half a run, then the file system turns read-only under the next one.
    let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "extract"], &[]);
    assert_eq!(code, 0, "{stderr}");
    fs.remount("ro");
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[]);
    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains(&staging.display().to_string())
            && line.contains("Read-only file system")
            && line.contains("make it writable"),
        "{line}"
    );
    fs.remount("rw");
    assert_nothing_half_written(&staging);
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(digest(&mut s), expected);
}

/// Cuts `f` to half its length.
fn truncate_half(f: &Path) {
    let len = std::fs::metadata(f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(f)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

/// Overwrites bytes in the middle of `f`.
fn garble(f: &Path) {
    let mut b = std::fs::read(f).unwrap();
    let (mid, end) = (b.len() / 2, (b.len() / 2 + 64).min(b.len() * 3 / 4));
    for x in &mut b[mid..end] {
        *x ^= 0x5a;
    }
    std::fs::write(f, b).unwrap();
}

#[test]
fn disk_corrupt_and_truncated_pages_are_quarantined_and_the_rerun_fetches_them_again() {
    let sim = sim();
    let expected = reference(&sim);
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, &staging));
    let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "extract"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let mut pages: Vec<PathBuf> = files(&staging.join("pages/demo"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with("-zend.ndjson.zst"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 4, "{pages:?}");
    truncate_half(&pages[1]);
    garble(&pages[2]);
    let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "transform"], &[]);
    assert_eq!(code, 4, "{stderr}");
    for p in &pages[1..3] {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name.trim_end_matches(".ndjson.zst");
        assert!(stderr.contains(stem), "{name} not named: {stderr}");
        let reason = staging.join(format!("quarantine/demo/{stem}.reason.txt"));
        let reason = std::fs::read_to_string(&reason).unwrap();
        assert!(reason.contains(&name), "{reason}");
    }
    // The rest loads, but the run stays open: its checkpoint does not move
    // past a lost page, so the next run fetches the lost issues again.
    let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "load"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(s.count("issue") > 0);
    assert_eq!(s.count("checkpoint"), 0);
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(digest(&mut s), expected);
}

#[test]
fn disk_corrupt_and_truncated_batches_stop_the_load_naming_the_file() {
    let sim = sim();
    let expected = reference(&sim);
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, &staging));
    for stage in ["extract", "transform"] {
        let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", stage], &[]);
        assert_eq!(code, 0, "{stage}: {stderr}");
    }
    let mut issue_files: Vec<PathBuf> = files(&staging.join("batches/demo"))
        .into_iter()
        .filter(|p| p.ends_with("issue.copy.zst"))
        .collect();
    issue_files.sort();
    assert!(issue_files.len() >= 3);
    for (i, bad) in [&issue_files[0], &issue_files[1]].into_iter().enumerate() {
        if i == 0 {
            truncate_half(bad);
        } else {
            garble(bad);
        }
        let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "load"], &[]);
        assert_eq!(code, 1, "{stderr}");
        let line = error_line(&stderr);
        assert!(
            line.contains(&bad.display().to_string())
                && line.contains("delete the batch directory and rerun transform"),
            "{line}"
        );
        // What the message says to do.
        std::fs::remove_dir_all(bad.parent().unwrap()).unwrap();
        let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "transform"], &[]);
        assert_eq!(code, 0, "{stderr}");
    }
    let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "load"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(digest(&mut s), expected);
}

/// The device a path lives on.
fn device(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().dev()
}

#[test]
fn disk_staging_spread_over_two_file_systems_works() {
    let sim = sim();
    let expected = reference(&sim);
    // The staging area on one file system, TMPDIR and the archive on
    // another (a tmpfs of our own).
    let other = Tmpfs::mount("64m");
    let dir = tempfile::tempdir().unwrap();
    assert_ne!(device(dir.path()), device(other.path()));
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let archive = other.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    std::os::unix::fs::symlink(&archive, staging.join("archive")).unwrap();
    let tmp = other.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, &staging));
    let tmpdir = tmp.to_string_lossy().into_owned();
    for stage in [&["run", "--stage", "extract"][..], &["run"][..]] {
        let (code, stderr) = pipeline(&w, &sim, stage, &[("TMPDIR", &tmpdir)]);
        assert_eq!(code, 0, "{stage:?}: {stderr}");
    }
    assert_eq!(digest(&mut s), expected);
    let archived = files(&archive);
    assert!(!archived.is_empty());
    assert_nothing_half_written(&staging);
    assert_nothing_half_written(&archive);
    assert!(files(&staging.join("pages")).is_empty());
}

/// Through the fault-injection seam: a full disk at the 5th page write of
/// `run`, then an I/O error at the 3rd fsync of a batch file of `run
/// --stage transform` (its batch directory is never renamed into place).
#[test]
fn disk_injected_enospc_and_eio_at_one_exact_write() {
    let sim = sim();
    let expected = reference(&sim);
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, &staging));
    let fault = "JIRA_PIPELINE_STAGING_FAULT";
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[(fault, "write:enospc:5")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("fault injection"),
        "the seam is off: {stderr}"
    );
    let line = error_line(&stderr);
    assert!(
        line.contains(&staging.display().to_string()) && line.contains("free space there"),
        "{line}"
    );
    assert_nothing_half_written(&staging);
    let (code, stderr) = pipeline(&w, &sim, &["run", "--stage", "extract"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = pipeline(
        &w,
        &sim,
        &["run", "--stage", "transform"],
        &[(fault, "sync:eio:3")],
    );
    assert_eq!(code, 1, "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("batches") && line.contains("Input/output error"),
        "{line}"
    );
    assert_nothing_half_written(&staging);
    let (code, stderr) = pipeline(&w, &sim, &["run"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(digest(&mut s), expected);
}
