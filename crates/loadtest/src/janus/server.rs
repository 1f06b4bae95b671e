//! A Janus for one run: find (or install) Debian's `janus`, write a
//! configuration of our own into a temporary directory, start it, wait
//! until its API answers, expose its PID, stop it.
//!
//! # The configuration
//!
//! Only what the run needs is loaded: the folders Janus reads plugins and
//! transports from are directories of symbolic links to the VideoRoom
//! plugin and the WebSocket transport alone; no event handlers, no loggers,
//! no admin API. The WebSocket API listens on `127.0.0.1` on a free port.
//! ICE is restricted to the address [`JanusOptions::ice_address`] (see
//! [`super::netns`]), with no STUN or TURN server, mDNS candidates ignored,
//! IPv6 off. Everything else is Janus's default — threads (one event loop
//! per handle), full ICE rather than ICE-lite, half-trickle, NACK queue,
//! TWCC feedback every 200 ms, the DTLS certificate generated at startup,
//! logging at its default level 4 (no per-packet logging; the log is
//! `janus.log` in the directory unless [`JanusOptions::log`] says where) —
//! so Janus runs as it would for anyone
//! who installs it, neither handicapped nor tuned. JSON is written compact
//! rather than indented, which only touches signaling.
//!
//! # Lifetime
//!
//! Janus is started with `PR_SET_PDEATHSIG`, so it is killed if the thread
//! that started it — the process, for the `salon` binary — dies without
//! stopping it (a crash, `SIGKILL`). [`JanusServer::stop`] asks it to shut
//! down (`SIGTERM`) and kills it after a few seconds; dropping a
//! [`JanusServer`] kills it at once. The directory goes with it.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::api::{Connection, VIDEOROOM};

/// How long Janus may take to answer its API after starting.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopping Janus gets before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Where packaged Janus builds keep their plugins and transports, below
/// the binary's prefix (`/usr/bin/janus` → `/usr`).
const LIBRARY_DIRS: &[&str] = &["lib", "lib64", "lib/janus"];

/// Why Janus could not be had or run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "`{program}` was not found (looked in PATH and {fallback}); install Debian's `{package}` (apt-get install {package}), or run as root to have it installed"
    )]
    NotFound {
        program: String,
        package: String,
        fallback: String,
    },
    #[error("installing `{package}` with apt-get failed: {output}")]
    Install { package: String, output: String },
    #[error(
        "cannot find Janus's {what} for {program} (looked for {file} under {looked}); is Debian's `janus` installed whole?"
    )]
    Library {
        what: &'static str,
        program: String,
        file: &'static str,
        looked: String,
    },
    #[error("cannot prepare Janus's directory {dir}: {error}")]
    Directory { dir: String, error: io::Error },
    #[error("cannot start {program}: {error}")]
    Spawn { program: String, error: io::Error },
    #[error("Janus exited ({status}) before it was ready; its log ends:\n{log}")]
    Exited { status: String, log: String },
    #[error(
        "Janus did not answer at {url} within {START_TIMEOUT:?} ({reason}); its log ends:\n{log}"
    )]
    NotReady {
        url: String,
        reason: String,
        log: String,
    },
}

/// Find `program` on `PATH` (and in the sbin directories, where `ip` lives
/// and a user's `PATH` may not look). When it is missing and this process is
/// root on a system with apt, install `package` — updating the package lists
/// first when apt cannot find it — saying so through `say`.
pub fn find_or_install(
    program: &str,
    package: &str,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, HarnessError> {
    if let Some(path) = find(program) {
        return Ok(path);
    }
    // SAFETY: geteuid reads the caller's effective user id; it cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = find("apt-get");
    let not_found = || HarnessError::NotFound {
        program: program.into(),
        package: package.into(),
        fallback: FALLBACK_DIRS.join(", "),
    };
    let Some(apt) = apt.filter(|_| root) else {
        return Err(not_found());
    };
    say(&format!("installing Debian's {package} with apt-get…"));
    let install = || {
        Command::new(&apt)
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
    };
    let failed = |output: io::Result<std::process::Output>| -> Option<String> {
        match output {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(tail(&String::from_utf8_lossy(&o.stderr), 2000)),
            Err(e) => Some(e.to_string()),
        }
    };
    if let Some(first) = failed(install()) {
        // Most often: no package lists yet, or stale ones.
        say(&format!(
            "apt-get install {package} failed; running apt-get update first…"
        ));
        let update = Command::new(&apt)
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output();
        if let Some(e) = failed(update) {
            return Err(HarnessError::Install {
                package: package.into(),
                output: format!("{first}\napt-get update: {e}"),
            });
        }
        if let Some(e) = failed(install()) {
            return Err(HarnessError::Install {
                package: package.into(),
                output: e,
            });
        }
    }
    find(program).ok_or_else(not_found)
}

const FALLBACK_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// `program` on `PATH` or in the sbin directories, if it is there.
pub fn find(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to run Janus.
#[derive(Debug, Clone)]
pub struct JanusOptions {
    /// The `janus` binary.
    pub program: PathBuf,
    /// The only address Janus gathers ICE candidates on.
    pub ice_address: IpAddr,
    /// Pin Janus (all its threads) to these CPUs.
    pub cpus: Option<Vec<usize>>,
    /// Where Janus logs; by default `janus.log` in its directory, which
    /// goes when it stops.
    pub log: Option<PathBuf>,
}

impl JanusOptions {
    /// Janus at `program`, gathering on [`super::netns::ICE_ADDRESS`].
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            ice_address: IpAddr::V4(super::netns::ICE_ADDRESS),
            cpus: None,
            log: None,
        }
    }
}

/// A running Janus.
#[derive(Debug)]
pub struct JanusServer {
    child: Child,
    url: String,
    log: PathBuf,
    /// Removed when the server is dropped.
    dir: tempfile::TempDir,
}

impl JanusServer {
    /// Write the configuration, start Janus, and wait until its WebSocket
    /// API answers with the VideoRoom plugin loaded.
    pub async fn start(options: &JanusOptions) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("salon-janus-")
            .tempdir()
            .map_err(|error| HarnessError::Directory {
                dir: std::env::temp_dir().display().to_string(),
                error,
            })?;
        let port = free_port().map_err(|error| HarnessError::Directory {
            dir: "a free TCP port on 127.0.0.1".into(),
            error,
        })?;
        let plugin = library(&options.program, "plugins", "libjanus_videoroom.so")?;
        let transport = library(&options.program, "transports", "libjanus_websockets.so")?;
        write_config(dir.path(), port, options.ice_address, &plugin, &transport).map_err(
            |error| HarnessError::Directory {
                dir: dir.path().display().to_string(),
                error,
            },
        )?;

        let log = options
            .log
            .clone()
            .unwrap_or_else(|| dir.path().join("janus.log"));
        let log_file = std::fs::File::create(&log).map_err(|error| HarnessError::Directory {
            dir: log.display().to_string(),
            error,
        })?;
        let log_err = log_file
            .try_clone()
            .map_err(|error| HarnessError::Directory {
                dir: log.display().to_string(),
                error,
            })?;
        let mut command = Command::new(&options.program);
        command
            .arg("--config")
            .arg(dir.path().join("janus.jcfg"))
            .arg("--configs-folder")
            .arg(dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let cpus = cpu_set(options.cpus.as_deref());
        // SAFETY: between fork and exec the closure only makes two system
        // calls (prctl, sched_setaffinity) on data prepared before the fork;
        // it allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(set) = &cpus {
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|error| HarnessError::Spawn {
            program: options.program.display().to_string(),
            error,
        })?;
        let mut server = Self {
            child,
            url: format!("ws://127.0.0.1:{port}"),
            log,
            dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Janus's process, for `/proc/<pid>`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its WebSocket API.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where it logs.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The directory of its configuration and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The end of its log.
    pub fn log_tail(&self, bytes: usize) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        tail(&String::from_utf8_lossy(&text), bytes)
    }

    /// Ask Janus to shut down, kill it if it has not within a few seconds,
    /// and remove its directory.
    pub async fn stop(mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Drop kills what is left and reaps it.
    }

    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill sends a signal to our own child, which we have
            // not reaped (try_wait said it runs), so the PID is still ours.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HarnessError::Exited {
                    status: status.to_string(),
                    log: self.log_tail(4000),
                });
            }
            let reason = match self.probe().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(HarnessError::NotReady {
                    url: self.url.clone(),
                    reason,
                    log: self.log_tail(4000),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ask Janus for its `info`; ready once the VideoRoom plugin is loaded.
    async fn probe(&self) -> Result<(), String> {
        let mut conn = Connection::open(&self.url).await.map_err(|e| e.message)?;
        let info = conn
            .call(json!({"janus": "info"}), Duration::from_secs(2))
            .await
            .map_err(|e| e.message);
        conn.close().await;
        let info = info?;
        if info
            .plugins
            .as_ref()
            .is_some_and(|p| p.contains_key(VIDEOROOM))
        {
            Ok(())
        } else {
            Err("Janus runs without the VideoRoom plugin".into())
        }
    }
}

impl Drop for JanusServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// The packaged `file` in Janus's `kind` folder (`plugins`, `transports`),
/// looked for below the binary's prefix: `<prefix>/lib/janus/<kind>/`, or a
/// multiarch directory such as Debian's `<prefix>/lib/x86_64-linux-gnu/janus/<kind>/`.
fn library(
    program: &Path,
    kind: &'static str,
    file: &'static str,
) -> Result<PathBuf, HarnessError> {
    let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let prefix = program
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/usr"));
    let mut looked = Vec::new();
    for lib in LIBRARY_DIRS.iter().map(|d| prefix.join(d)) {
        let mut dirs = vec![lib.join("janus").join(kind), lib.join(kind)];
        if let Ok(entries) = std::fs::read_dir(&lib) {
            let mut arch: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path().join("janus").join(kind))
                .collect();
            arch.sort();
            dirs.extend(arch);
        }
        for dir in dirs {
            let candidate = dir.join(file);
            if candidate.is_file() {
                return Ok(candidate);
            }
            looked.push(dir);
        }
    }
    tracing::debug!("looked for {file} in {looked:?}");
    Err(HarnessError::Library {
        what: kind,
        program: program.display().to_string(),
        file,
        looked: prefix.join("lib*").display().to_string(),
    })
}

/// Write `janus.jcfg`, the WebSocket transport's and the VideoRoom plugin's
/// configuration, and the plugin and transport folders, into `dir`.
fn write_config(
    dir: &Path,
    port: u16,
    ice_address: IpAddr,
    plugin: &Path,
    transport: &Path,
) -> io::Result<()> {
    for (folder, library) in [
        ("plugins", Some(plugin)),
        ("transports", Some(transport)),
        ("events", None),
        ("loggers", None),
    ] {
        let folder = dir.join(folder);
        std::fs::create_dir(&folder)?;
        if let Some(library) = library {
            let name = library.file_name().unwrap_or(OsStr::new("library.so"));
            std::os::unix::fs::symlink(library, folder.join(name))?;
        }
    }
    std::fs::write(dir.join("janus.jcfg"), core_config(dir, ice_address))?;
    std::fs::write(
        dir.join("janus.transport.websockets.jcfg"),
        websockets_config(port),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), VIDEOROOM_CONFIG)?;
    Ok(())
}

/// `janus.jcfg`. Settings left out keep Janus's defaults (see the module
/// docs).
fn core_config(dir: &Path, ice_address: IpAddr) -> String {
    let folder = |name: &str| quote(&dir.join(name).display().to_string());
    let mut c = String::new();
    let _ = writeln!(c, "# Written by salon-loadtest for one run.");
    let _ = writeln!(c, "general: {{");
    let _ = writeln!(
        c,
        "\tconfigs_folder = {}",
        quote(&dir.display().to_string())
    );
    for (key, name) in [
        ("plugins_folder", "plugins"),
        ("transports_folder", "transports"),
        ("events_folder", "events"),
        ("loggers_folder", "loggers"),
    ] {
        let _ = writeln!(c, "\t{key} = {}", folder(name));
    }
    let _ = writeln!(c, "\tdebug_level = 4");
    let _ = writeln!(c, "\tdebug_timestamps = true");
    let _ = writeln!(c, "\tdebug_colors = false");
    let _ = writeln!(c, "\tinterface = {}", quote(&ice_address.to_string()));
    let _ = writeln!(c, "\tserver_name = \"salon-loadtest\"");
    let _ = writeln!(c, "}}");
    let _ = writeln!(c, "certificates: {{\n}}");
    let _ = writeln!(c, "media: {{\n\tipv6 = false\n}}");
    let _ = writeln!(c, "nat: {{");
    let _ = writeln!(c, "\tnice_debug = false");
    let _ = writeln!(c, "\tignore_mdns = true");
    let _ = writeln!(
        c,
        "\tice_enforce_list = {}",
        quote(&ice_address.to_string())
    );
    let _ = writeln!(c, "}}");
    let _ = writeln!(c, "plugins: {{\n}}\ntransports: {{\n}}\nloggers: {{\n}}");
    let _ = writeln!(c, "events: {{\n\tbroadcast = false\n}}");
    c
}

fn websockets_config(port: u16) -> String {
    format!(
        "# Written by salon-loadtest for one run.\n\
         general: {{\n\
         \tjson = \"compact\"\n\
         \tws = true\n\
         \tws_port = {port}\n\
         \tws_ip = \"127.0.0.1\"\n\
         \twss = false\n\
         }}\n\
         admin: {{\n\
         \tadmin_ws = false\n\
         \tadmin_wss = false\n\
         }}\n"
    )
}

/// No rooms: participants create theirs.
const VIDEOROOM_CONFIG: &str = "# Written by salon-loadtest for one run.\n\
general: {\n\
}\n";

/// A libconfig string.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A CPU set for `sched_setaffinity`, when there are CPUs to pin to.
fn cpu_set(cpus: Option<&[usize]>) -> Option<libc::cpu_set_t> {
    let cpus = cpus.filter(|c| !c.is_empty())?;
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: `cpu` is below CPU_SETSIZE, inside the set's bits.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
    }
    Some(set)
}

/// Parse a CPU list as `taskset -c` takes it: `0`, `0-1`, `0,2-3`.
pub fn parse_cpus(text: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("{text:?} is not a CPU list like 0, 0-1 or 0,2-3");
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let first: usize = first.parse().map_err(|_| bad())?;
        let last: usize = last.parse().map_err(|_| bad())?;
        if first > last || last >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The last `bytes` of `text`, on a character boundary.
fn tail(text: &str, bytes: usize) -> String {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_like_taskset() {
        assert_eq!(parse_cpus("0"), Ok(vec![0]));
        assert_eq!(parse_cpus("0-2"), Ok(vec![0, 1, 2]));
        assert_eq!(parse_cpus("3, 0-1,1"), Ok(vec![0, 1, 3]));
        for bad in ["", "a", "2-1", "-1", "0-99999"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_configuration_loads_only_what_the_run_needs() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("libjanus_videoroom.so");
        let transport = dir.path().join("libjanus_websockets.so");
        std::fs::write(&plugin, "").unwrap();
        std::fs::write(&transport, "").unwrap();
        let janus = dir.path().join("run");
        std::fs::create_dir(&janus).unwrap();
        write_config(
            &janus,
            8999,
            "127.0.0.2".parse().unwrap(),
            &plugin,
            &transport,
        )
        .unwrap();

        let core = std::fs::read_to_string(janus.join("janus.jcfg")).unwrap();
        assert!(core.contains("ice_enforce_list = \"127.0.0.2\""), "{core}");
        assert!(core.contains("interface = \"127.0.0.2\""), "{core}");
        assert!(core.contains("debug_level = 4"), "{core}");
        assert!(!core.contains("stun_server") && !core.contains("turn_server"));
        let ws = std::fs::read_to_string(janus.join("janus.transport.websockets.jcfg")).unwrap();
        assert!(
            ws.contains("ws_port = 8999") && ws.contains("ws_ip = \"127.0.0.1\""),
            "{ws}"
        );
        let listed = |folder: &str| -> Vec<String> {
            std::fs::read_dir(janus.join(folder))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(listed("plugins"), ["libjanus_videoroom.so"]);
        assert_eq!(listed("transports"), ["libjanus_websockets.so"]);
        assert!(listed("events").is_empty() && listed("loggers").is_empty());
    }

    #[test]
    fn strings_are_quoted_for_libconfig() {
        assert_eq!(quote(r#"/tmp/a "b"\c"#), r#""/tmp/a \"b\"\\c""#);
        assert_eq!(tail("héllo", 4), "llo");
    }
}
