//! The official Twilio helper libraries for the tests that run them:
//! where `tests/interop/setup` installs them, and whether it did.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use super::repo_root;

pub fn interop_dir() -> PathBuf {
    repo_root().join("tests/interop")
}

pub fn venv_python() -> PathBuf {
    if cfg!(windows) {
        interop_dir().join(".venv/Scripts/python.exe")
    } else {
        interop_dir().join(".venv/bin/python")
    }
}

/// Which interpreter runs a script, and whether its library is installed.
#[derive(Clone, Copy)]
pub enum Runtime {
    Node,
    Python,
}

impl Runtime {
    pub fn program(self) -> PathBuf {
        match self {
            Runtime::Node => PathBuf::from("node"),
            Runtime::Python => venv_python(),
        }
    }

    /// `None` when ready, else what is missing.
    pub fn missing(self) -> Option<String> {
        match self {
            Runtime::Node => {
                let module = interop_dir().join("node_modules/twilio/package.json");
                if !module.is_file() {
                    return Some(format!("{} is missing", module.display()));
                }
                match Command::new("node").arg("--version").output() {
                    Ok(out) if out.status.success() => None,
                    _ => Some("`node` is not on PATH".to_owned()),
                }
            }
            Runtime::Python => {
                let python = venv_python();
                (!python.is_file()).then(|| format!("{} is missing", python.display()))
            }
        }
    }
}

/// Whether to go on: true when the libraries are installed. Otherwise skip
/// (return false), or fail when `SALON_INTEROP=required`.
pub fn installed(runtime: Runtime, test: &str) -> bool {
    let Some(missing) = runtime.missing() else {
        return true;
    };
    let required = std::env::var("SALON_INTEROP").is_ok_and(|v| v == "required");
    assert!(
        !required,
        "{test}: the Twilio helper libraries are not installed ({missing}) and SALON_INTEROP=required: run tests/interop/setup"
    );
    // Written to the process's stderr directly, not through eprintln!, which
    // the test harness captures: the skip must show without --nocapture.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: run tests/interop/setup to install the Twilio helper libraries ({missing})"
    );
    false
}
