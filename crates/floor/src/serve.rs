//! The socket loops around the [`Relay`]: one thread, one UDP socket.
//!
//! [`Mode::Plain`] is the floor proper: one `recvfrom` per datagram
//! received and one `sendto` per datagram sent, the syscall pattern Salon's
//! media server has today. [`Mode::Batched`] (Linux) reads up to 32
//! datagrams per `recvmmsg` and sends up to 64 per `sendmmsg`: what the
//! same work costs when the syscalls are amortised.
//!
//! The socket has a 200 ms receive timeout so the loop notices a stop
//! request while idle; under load it never waits that long, and checking
//! the flag costs one relaxed atomic load per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::relay::{MAX_DATAGRAM, MAX_OUTGOING, Relay, Stats, Transmit};

/// How often an idle loop looks at its stop flag.
const IDLE_WAKEUP: Duration = Duration::from_millis(200);

/// Which syscalls carry the datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `recvfrom` and `sendto`, one datagram each: the floor.
    #[default]
    Plain,
    /// `recvmmsg` and `sendmmsg`, many datagrams each (Linux only).
    Batched,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Plain => "recvfrom/sendto",
            Mode::Batched => "recvmmsg/sendmmsg",
        })
    }
}

/// What the socket loop counted, besides the relay's own [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Receive syscalls that returned datagrams.
    pub receive_calls: u64,
    /// Send syscalls made.
    pub send_calls: u64,
    /// Datagrams the kernel refused to send.
    pub send_errors: u64,
}

/// Why the relay would not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "{0} is not a loopback address: the floor's control messages carry SRTP keys in the clear, so it serves this machine only"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot bind UDP {addr}: {error}")]
    Io { addr: SocketAddr, error: io::Error },
    #[error("the batched mode needs Linux (recvmmsg, sendmmsg)")]
    Unsupported,
}

/// Bind the relay's socket on a loopback address, blocking, with the idle
/// wakeup. Refuses any other address.
pub fn bind(addr: SocketAddr) -> Result<UdpSocket, BindError> {
    if !addr.ip().is_loopback() {
        return Err(BindError::NotLoopback(addr));
    }
    let io = |error| BindError::Io { addr, error };
    let socket = UdpSocket::bind(addr).map_err(io)?;
    socket.set_read_timeout(Some(IDLE_WAKEUP)).map_err(io)?;
    Ok(socket)
}

/// Serve on `socket` on this thread until `stop` is set or the socket
/// fails.
pub fn serve(
    socket: &UdpSocket,
    relay: &mut Relay,
    mode: Mode,
    stop: &AtomicBool,
) -> io::Result<SocketStats> {
    match mode {
        Mode::Plain => serve_plain(socket, relay, stop),
        #[cfg(target_os = "linux")]
        Mode::Batched => crate::mmsg::serve(socket, relay, stop),
        #[cfg(not(target_os = "linux"))]
        Mode::Batched => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            BindError::Unsupported.to_string(),
        )),
    }
}

/// Errors after which the loop goes on: a timeout (time to look at the
/// stop flag), a signal, an ICMP error about an earlier datagram.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    )
}

fn serve_plain(
    socket: &UdpSocket,
    relay: &mut Relay,
    stop: &AtomicBool,
) -> io::Result<SocketStats> {
    let mut rx = vec![0u8; MAX_DATAGRAM];
    let mut tx = Direct {
        socket,
        buf: vec![0u8; MAX_OUTGOING],
        stats: SocketStats::default(),
    };
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut rx) {
            Ok((n, source)) => {
                tx.stats.receive_calls += 1;
                relay.handle(source, &mut rx[..n], &mut tx);
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tx.stats)
}

/// Sends each datagram as soon as it is written.
struct Direct<'s> {
    socket: &'s UdpSocket,
    buf: Vec<u8>,
    stats: SocketStats,
}

impl Transmit for Direct<'_> {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    fn send(&mut self, len: usize, to: SocketAddr) {
        self.stats.send_calls += 1;
        if self.socket.send_to(&self.buf[..len], to).is_err() {
            self.stats.send_errors += 1;
        }
    }
}

/// A relay serving on its own thread, for tests and for embedding.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<(Stats, SocketStats)>>,
}

/// Bind `addr` (loopback) and serve on a new thread.
pub fn spawn(addr: SocketAddr, mode: Mode) -> Result<Running, BindError> {
    if mode == Mode::Batched && !cfg!(target_os = "linux") {
        return Err(BindError::Unsupported);
    }
    let socket = bind(addr)?;
    let addr = socket
        .local_addr()
        .map_err(|error| BindError::Io { addr, error })?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("salon-floor".into())
        .spawn(move || {
            let mut relay = Relay::default();
            let sockets = serve(&socket, &mut relay, mode, &flag)?;
            Ok((relay.stats(), sockets))
        })
        .map_err(|error| BindError::Io { addr, error })?;
    Ok(Running { addr, stop, thread })
}

impl Running {
    /// Where participants send their joins and media.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and return what the relay counted.
    pub fn stop(self) -> io::Result<(Stats, SocketStats)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the relay thread panicked"))?
    }
}

/// A stop flag that SIGINT and SIGTERM raise (Unix): a relay process serves
/// until then, and can still report its counters. Installs the handlers.
pub fn stop_on_signals() -> io::Result<&'static AtomicBool> {
    static STOP: AtomicBool = AtomicBool::new(false);
    #[cfg(unix)]
    {
        extern "C" fn raise(_: libc::c_int) {
            STOP.store(true, Ordering::Relaxed);
        }
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe. The loop sees the flag within its idle
            // wakeup (a receive interrupted by the signal returns early).
            let previous =
                unsafe { libc::signal(signal, raise as *const () as libc::sighandler_t) };
            if previous == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(&STOP)
}

/// Pin the calling thread to one CPU (Linux), as `taskset -c CPU` would.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // CPU_SET indexes a fixed-size mask: refuse what it cannot hold.
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond the affinity mask"),
            ));
        }
        // SAFETY: `set` is a plain bitmask, zeroed, then one bit set within
        // its bounds; sched_setaffinity reads it and nothing else.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "pinning to a CPU needs Linux",
        ))
    }
}
