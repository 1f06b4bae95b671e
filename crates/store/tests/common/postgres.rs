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
    bin: PathBuf,
    data: PathBuf,
    root: PathBuf,
    as_root: bool,
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
    Some(cluster.fresh_database().await)
}

/// A cluster of the caller's own, which it may stop and start again (to
/// take the database away from running servers); `None` when PostgreSQL is
/// skipped. It is stopped and removed when dropped.
pub fn private_cluster() -> Option<Cluster> {
    if std::env::var("SALON_POSTGRES").is_ok_and(|v| v == "skip") {
        eprintln!("skipping the PostgreSQL variant (SALON_POSTGRES=skip)");
        return None;
    }
    let n = NEXT_DATABASE.fetch_add(1, Ordering::Relaxed);
    match Cluster::start_in(&format!("salon-pg-{}-private-{n}", std::process::id())) {
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

impl Cluster {
    /// A fresh, empty database's URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!(
            "salon_test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        self.create_database(&name).await;
        self.url(&name)
    }

    async fn create_database(&self, name: &str) {
        use sqlx::Connection;
        let mut admin = sqlx::AnyConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        let _ = admin.close().await;
    }

    /// Stop the server (fast shutdown: connections are cut), keeping its
    /// data and port.
    pub fn stop(&self) {
        run(as_postgres(self.as_root, &self.bin.join("pg_ctl"))
            .args(["-w", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop"))
        .expect("pg_ctl stop");
    }

    /// Start it again after [`Cluster::stop`], on the same port.
    pub fn start_again(&self) {
        self.pg_ctl_start().expect("pg_ctl start");
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn start() -> Result<Cluster, String> {
        Self::start_in(&format!("salon-pg-{}", std::process::id()))
    }

    /// initdb and start a cluster in a new temporary directory `name`.
    fn start_in(name: &str) -> Result<Cluster, String> {
        sqlx::any::install_default_drivers();
        let bin = bin_dir().ok_or("PostgreSQL's initdb and pg_ctl are not installed")?;
        let root = std::env::temp_dir().join(name);
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
        let cluster = Cluster {
            port: free_port()?,
            bin,
            data,
            root,
            as_root,
        };
        cluster.pg_ctl_start()?;
        // Stop it when this test process is gone.
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{root}'",
            pid = std::process::id(),
            stop = stop_command(cluster.as_root, &cluster.bin, &cluster.data),
            root = cluster.root.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))?;
        Ok(cluster)
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.root.display()
        );
        run(as_postgres(self.as_root, &self.bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-l"])
            .arg(self.root.join("log"))
            .args(["-o", &options, "start"]))
    }
}

impl Drop for Cluster {
    /// Only private clusters are dropped (the shared one lives until the
    /// process ends, and its watchdog stops it).
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(stop_command(self.as_root, &self.bin, &self.data))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
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
