//! A private network namespace in which Janus can do ICE on loopback.
//!
//! Janus gathers ICE candidates on every interface that is up and running
//! **except loopback ones**: `janus_ice_setup_local` (`src/ice.c`) skips
//! every interface flagged `IFF_LOOPBACK`, and libnice, left to itself, does
//! the same. On a machine where the load tester may talk to loopback
//! addresses only, a stock Janus therefore has no candidate it may use.
//!
//! [`isolate`] moves the calling thread into a network namespace of its own
//! and gives it what Janus needs: `lo` up, and a veth pair
//! ([`INTERFACE`] and its peer) that is up and holds the loopback address
//! [`ICE_ADDRESS`] (`127.0.0.2/32`). Janus gathers that address (the
//! interface is not flagged loopback), and the clients bind **the same
//! address**: libnice pins each of its sockets to the interface it gathered
//! on (`IP_UNICAST_IF`), so a reply to `127.0.0.1` — whose route is `lo` —
//! is refused with `EINVAL`, while a destination on the pinned interface
//! itself is local. Datagrams to a local address go through the namespace's
//! loopback device whichever interface holds the address — the veth pair
//! carries nothing, it only makes the address gatherable — so Janus's media
//! takes the same kernel path as Salon's on the host's `lo`, and nothing
//! leaves the machine. The namespace disappears with the last process in
//! it: nothing is left behind on the host, and other processes on the
//! machine do not see it.
//!
//! Namespaces belong to threads: `isolate` moves the calling thread, and the
//! threads and processes it starts afterwards follow. Call it before an
//! async runtime starts its threads (the `salon` binary does so before it
//! builds its runtime), or on a thread of its own that then runs a
//! current-thread runtime. As root it needs `CAP_SYS_ADMIN`; otherwise it
//! creates a user namespace too (which needs a process with one thread and
//! unprivileged user namespaces). It runs `ip` from iproute2, which must
//! exist before the network is gone ([`super::server::find_or_install`]).

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The address Janus gathers its ICE candidates on.
pub const ICE_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The interface that holds [`ICE_ADDRESS`].
pub const INTERFACE: &str = "salonjanus0";
/// Its veth peer, which only has to be up for the pair to be.
const PEER: &str = "salonjanus1";
/// How long the pair may take to report a carrier.
const LINK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the namespace could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "cannot create a private network namespace ({0}): run as root, or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
    )]
    Unshare(io::Error),
    #[error("cannot map this user into the new user namespace ({file}): {error}")]
    UserMap {
        file: &'static str,
        error: io::Error,
    },
    #[error("`{command}` failed in the new network namespace: {output}")]
    Ip { command: String, output: String },
    #[error("{INTERFACE} did not come up within {LINK_TIMEOUT:?}")]
    LinkDown,
}

/// Move the calling thread into a new network namespace with `lo` up and
/// [`ICE_ADDRESS`] on [`INTERFACE`]. `ip` is the iproute2 binary.
pub fn isolate(ip: &Path) -> Result<(), NetnsError> {
    // SAFETY: geteuid, getuid and getgid read the caller's credentials and
    // cannot fail.
    let (euid, uid, gid) = unsafe { (libc::geteuid(), libc::getuid(), libc::getgid()) };
    if euid == 0 {
        unshare(libc::CLONE_NEWNET)?;
    } else {
        unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET)?;
        // Become root inside the user namespace, which owns the network
        // namespace: enough to configure it, nothing outside.
        let write = |file: &'static str, text: String| {
            std::fs::write(format!("/proc/thread-self/{file}"), text)
                .map_err(|error| NetnsError::UserMap { file, error })
        };
        write("setgroups", "deny".into())?;
        write("uid_map", format!("0 {uid} 1"))?;
        write("gid_map", format!("0 {gid} 1"))?;
    }
    let address = format!("{ICE_ADDRESS}/32");
    for args in [
        &["link", "set", "lo", "up"][..],
        &[
            "link", "add", INTERFACE, "type", "veth", "peer", "name", PEER,
        ],
        &["address", "add", &address, "dev", INTERFACE],
        &["link", "set", PEER, "up"],
        &["link", "set", INTERFACE, "up"],
    ] {
        run(ip, args)?;
    }
    // Janus only gathers on interfaces that are up *and running*; a veth
    // pair runs once both ends have a carrier.
    let deadline = Instant::now() + LINK_TIMEOUT;
    while !running(INTERFACE) {
        if Instant::now() >= deadline {
            return Err(NetnsError::LinkDown);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn unshare(flags: libc::c_int) -> Result<(), NetnsError> {
    // SAFETY: unshare takes flags and touches no memory of ours.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(NetnsError::Unshare(io::Error::last_os_error()))
    }
}

fn run(ip: &Path, args: &[&str]) -> Result<(), NetnsError> {
    let command = format!("ip {}", args.join(" "));
    let output = Command::new(ip)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Ip {
            command: command.clone(),
            output: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Ip {
            command,
            output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Whether `name` is up and running, as `getifaddrs` — which Janus asks —
/// reports it.
fn running(name: &str) -> bool {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that we only read
    // and then free with freeifaddrs, exactly once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return false;
        }
        let mut found = false;
        let mut at = list;
        while !at.is_null() {
            let entry = &*at;
            if !entry.ifa_name.is_null()
                && std::ffi::CStr::from_ptr(entry.ifa_name).to_bytes() == name.as_bytes()
            {
                let flags = entry.ifa_flags;
                let want = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_uint;
                found |= flags & want == want;
            }
            at = entry.ifa_next;
        }
        libc::freeifaddrs(list);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_loopback_is_running() {
        assert!(running("lo"));
        assert!(!running("no-such-interface"));
    }
}
