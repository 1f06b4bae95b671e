//! A private PostgreSQL cluster for tests: `initdb` into a temporary
//! directory, `pg_ctl start` on a free loopback port, one fresh database per
//! test. Shared by the test binaries of several crates (included with
//! `#[path]`), so it depends on nothing but std and sqlx.
//!
//! One cluster serves a whole test binary. The harness cannot run code when
//! the binary exits, so a small watchdog shell stops the cluster (and
//! removes its directory) once the test process is gone.
//!
//! `SALON_POSTGRES=required` (as `scripts/test` sets) turns a missing
//! PostgreSQL into a failure; otherwise the PostgreSQL variants of tests
//! skip with a note when it is missing, and `SALON_POSTGRES=skip` skips them.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running private cluster.
pub struct Cluster {
    port: u16,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// The cluster, started on first use; `None` (with a note on stderr) when
/// PostgreSQL is not installed and not required.
pub fn cluster() -> Option<&'static Cluster> {
    if std::env::var("SALON_POSTGRES").is_ok_and(|v| v == "skip") {
        eprintln!("skipping the PostgreSQL variant (SALON_POSTGRES=skip)");
        return None;
    }
    match CLUSTER.get_or_init(Cluster::start) {
        Ok(cluster) => Some(cluster),
        Err(e) if required() => panic!("SALON_POSTGRES=required but {e}"),
        Err(e) => {
            eprintln!(
                "skipping the PostgreSQL variant: {e} (SALON_POSTGRES=required makes this a failure)"
            );
            None
        }
    }
}

fn required() -> bool {
    std::env::var("SALON_POSTGRES").is_ok_and(|v| v == "required")
}

/// A fresh, empty database's URL, or `None` when PostgreSQL is skipped.
pub async fn fresh_database() -> Option<String> {
    let cluster = cluster()?;
    let name = format!(
        "salon_test_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    use sqlx::Connection;
    let mut admin = sqlx::AnyConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connect to the test cluster");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    Some(cluster.url(&name))
}

impl Cluster {
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn start() -> Result<Cluster, String> {
        sqlx::any::install_default_drivers();
        let bin = bin_dir().ok_or("PostgreSQL's initdb and pg_ctl are not installed")?;
        let root = std::env::temp_dir().join(format!("salon-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {root:?}: {e}"))?;
        let data = root.join("data");
        let as_root = is_root();
        if as_root {
            // PostgreSQL refuses to run as root: its files belong to `postgres`.
            run(Command::new("chown").arg("postgres").arg(&root))?;
        }
        run(as_postgres(as_root, &bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data))?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            root.display()
        );
        run(as_postgres(as_root, &bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-l"])
            .arg(root.join("log"))
            .args(["-o", &options, "start"]))?;
        // Stop it when this test process is gone.
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{root}'",
            pid = std::process::id(),
            stop = stop_command(as_root, &bin, &data),
            root = root.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))?;
        Ok(Cluster { port })
    }
}

fn stop_command(as_root: bool, bin: &Path, data: &Path) -> String {
    let stop = format!(
        "{} -D '{}' -m immediate stop",
        bin.join("pg_ctl").display(),
        data.display()
    );
    if as_root {
        format!("runuser -u postgres -- {stop}")
    } else {
        stop
    }
}

fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Debian keeps the server's programs out of PATH.
fn bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = versions.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
