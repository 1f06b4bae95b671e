//! The HTTP front door: accepting connections and keeping each one bounded
//! in number and in time, before any request reaches the router.
//!
//! A server that faces the internet must not let a client hold resources by
//! doing nothing, slowly. So:
//!
//! - **A cap on connections** ([`HttpLimits::max_connections`]), HTTP and
//!   upgraded WebSockets alike, below the process's open-file limit so that
//!   the database, the media sockets and accepting itself always find a
//!   descriptor. When the cap comes near, the connections that have been
//!   waiting longest without a request in progress (idle keep-alives, and
//!   requests dribbled in byte by byte) are closed to make room, as nginx
//!   reuses keep-alive connections; when none can be closed, a newcomer is
//!   answered `503` (20503) and closed.
//! - **Deadlines for waiting.** A request head (request line and headers)
//!   must be complete within [`HttpLimits::header_timeout`] of the
//!   connection opening or of the head's first byte; a keep-alive connection
//!   with no request in progress is closed after [`HttpLimits::idle_timeout`];
//!   a request's body must arrive and its response be taken within
//!   [`HttpLimits::request_timeout`]. Upgraded connections (signaling)
//!   answer to signaling's timeouts, which it sets through [`SocketControl`].
//! - **Out of descriptors, no spinning.** If `accept` fails for want of file
//!   descriptors, idle connections are closed and accepting pauses briefly.
//! - **Twilio's error format even from the parser.** hyper answers a request
//!   it cannot parse (a head over [`MAX_HEAD_BYTES`], a malformed line) with
//!   a bare status line; [`ConnIo`] turns that answer into Twilio's JSON
//!   error body. URIs over [`MAX_URI_BYTES`] get `414` the same way.
//! - **Graceful shutdown**: no new connections; requests in progress finish
//!   within [`SHUTDOWN_GRACE`], idle connections close at once.
//!
//! ```text
//!  accept ──▶ slot (semaphore permit, held by the socket itself)
//!     │           └─ none left: close idle connections / answer 503
//!     ▼
//!  ConnIo (deadlines, parse-error answers) ──▶ hyper http1 ──▶ Front ──▶ router
//!                                                 │ 101
//!                                                 └──▶ WebSocket keeps ConnIo and its slot
//! ```
//!
//! Each connection's phase (idle, receiving a head, busy with a request,
//! flushing its response, upgraded) is kept in a [`ConnState`] that its own
//! task writes and the accept loop reads when it must choose whom to close.
//! Only a connection waiting for a request (idle, or receiving a head) is
//! ever closed to make room or timed out by the front door.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::rest::error::ApiError;

/// The longest request head (request line and headers) hyper buffers; a
/// longer one is answered `431`. Browsers' largest heads (long cookies) stay
/// well under it; it bounds what an idle connection can make us hold.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// The longest request target accepted; a longer one is answered `414`.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// How long requests in progress may take to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Descriptors kept out of the connection cap's reach by default: standard
/// streams, the runtime's, the database's (pool, WAL, watcher), the media
/// workers' sockets (about 30 to 50 in all), and the newcomers over the cap
/// being refused ([`REFUSING`]).
const RESERVED_FDS: usize = 80 + REFUSING;

/// Most connections being refused (answered 503) at once; past that, a
/// newcomer over the cap is simply closed.
const REFUSING: usize = 16;

/// How long a newcomer waits for a slot being freed.
const ADMIT_WAIT: Duration = Duration::from_millis(500);

/// How long a refused connection is given to read its 503.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Limits of the HTTP front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once (HTTP and WebSocket).
    pub max_connections: usize,
    /// Time for a request head to arrive, from the connection opening or
    /// from the head's first byte.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after
    /// this long.
    pub idle_timeout: Duration,
    /// Time for a request's body to arrive and its response to be taken,
    /// from the end of its head: a client reading its answer a byte at a
    /// time holds nothing for longer.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            header_timeout: Duration::from_secs(10),
            // Longer than the usual proxy's upstream keep-alive (nginx: 60 s),
            // so that a proxy rarely reuses a connection we are closing.
            idle_timeout: Duration::from_secs(75),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// The open-file limit (soft), or `None` if it cannot be read.
pub fn open_files_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// Raise the open-file limit's soft value to its hard one (Linux's default
/// soft limit, 1024, is a historical `select()` constraint nothing here
/// has). Returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit through a
    // valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
            limit = raised;
        }
    }
    Ok(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

/// The most connections the open-file limit leaves room for: the limit
/// less [`RESERVED_FDS`] and an eighth of itself. At most 10,000 (a node's
/// worth of signaling sessions and more); at least 16.
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some(limit) => max_connections_for(limit),
        None => 1000,
    }
}

/// What [`default_max_connections`] gives for an open-file limit.
pub fn max_connections_for(open_files: usize) -> usize {
    open_files
        .saturating_sub(RESERVED_FDS + open_files / 8)
        .clamp(16, 10_000)
}

/// Accept connections on `listener` and serve `router` on them until
/// `shutdown` resolves; then let requests in progress finish (at most
/// [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let door = FrontDoor::new(limits);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: while none is free, newcomers wait in the kernel's
        // queue, where they cost no descriptor.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = door.slot() => slot,
        };
        let accepted = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break None,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => break Some(accepted),
            }
        };
        match accepted {
            None => break,
            Some(Ok((stream, peer))) => match slot {
                Some(slot) => door.admit(stream, peer, slot, &router, &stopped, &mut connections),
                None => door.refuse(stream, peer),
            },
            Some(Err(e)) => door.accept_failed(e).await,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "HTTP requests still in progress after the shutdown grace; closing them"
        );
    }
}

// ---- the accept loop --------------------------------------------------------

/// What the accept loop knows about every HTTP connection it serves.
struct FrontDoor {
    limits: HttpLimits,
    /// One permit per connection, held by its socket (so an upgraded
    /// WebSocket keeps its slot until it closes).
    slots: Arc<Semaphore>,
    /// Connections still speaking HTTP, by id (upgraded ones leave).
    open: Arc<Mutex<HashMap<u64, Arc<ConnState>>>>,
    /// Connections asked to close to make room that have not closed yet:
    /// their slots are as good as free.
    leaving: Arc<AtomicUsize>,
    /// Connections being answered 503.
    refusing: Arc<Semaphore>,
    next_id: AtomicU64,
    last_complaint: Mutex<Option<Instant>>,
}

impl FrontDoor {
    fn new(limits: HttpLimits) -> Self {
        let max = limits.max_connections.max(1);
        Self {
            limits,
            slots: Arc::new(Semaphore::new(max)),
            open: Arc::default(),
            leaving: Arc::default(),
            refusing: Arc::new(Semaphore::new(REFUSING)),
            next_id: AtomicU64::new(0),
            last_complaint: Mutex::new(None),
        }
    }

    /// Free slots the accept loop keeps in hand: when fewer are left, it
    /// closes waiting connections, so that a newcomer (a health check, a
    /// participant joining) rarely finds the door shut.
    fn spare(&self) -> usize {
        (self.limits.max_connections / 16).clamp(1, 64)
    }

    /// A slot for the next connection: at once if one is free, soon if a
    /// waiting connection is closing to make room, else none (the next
    /// connection is refused).
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let free = self.slots.available_permits() + self.leaving.load(Ordering::Relaxed);
        if free <= self.spare() {
            self.close_idle(self.spare() + 1 - free);
        }
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        if self.leaving.load(Ordering::Relaxed) == 0 {
            return None;
        }
        tokio::time::timeout(ADMIT_WAIT, self.slots.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    fn admit(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        router: &Router,
        stopped: &watch::Receiver<bool>,
        connections: &mut JoinSet<()>,
    ) {
        let _ = stream.set_nodelay(true);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // A peer that takes nothing of what we send for a request's time is
        // gone, as far as the kernel is concerned too.
        let state = Arc::new(ConnState::new(self.limits.request_timeout));
        let front = Front {
            router: router.clone(),
            state: state.clone(),
            peer,
        };
        lock(&self.open).insert(id, state.clone());
        let io = ConnIo::new(stream, state.clone(), self.limits, slot);
        let open = self.open.clone();
        let leaving = self.leaving.clone();
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .max_header_size(MAX_HEAD_BYTES)
                .max_buf_size(2 * MAX_HEAD_BYTES)
                // ConnIo keeps the time; hyper's own header timer would also
                // cut idle keep-alive connections at the header deadline.
                .header_read_timeout(None)
                .keep_alive(true);
            let mut connection = Box::pin(
                builder
                    .serve_connection(TokioIo::new(io), front)
                    .with_upgrades(),
            );
            let mut stopping = false;
            loop {
                tokio::select! {
                    // The connection first: asked to close to make room, it
                    // reads what has arrived before judging whether it is
                    // still only waiting (a request that arrived makes it
                    // busy, and it stays).
                    biased;
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "HTTP connection ended");
                        }
                        break;
                    }
                    // Closing to make room: only if it is still waiting.
                    () = state.evicted.notified() => {
                        if state.phase().is_waiting() {
                            tracing::debug!(%peer, "closed a waiting HTTP connection to make room");
                            break;
                        }
                        state.leaving.store(false, Ordering::Relaxed);
                        leaving.fetch_sub(1, Ordering::Relaxed);
                    }
                    _ = stopped.wait_for(|stop| *stop), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            lock(&open).remove(&id);
            // Closes the socket (unless upgraded) and gives its slot back.
            drop(connection);
            if state.leaving.swap(false, Ordering::Relaxed) {
                leaving.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }

    /// Ask up to `wanted` connections that are waiting (idle, or a head
    /// arriving) to close, those waiting longest first.
    fn close_idle(&self, wanted: usize) {
        let open = lock(&self.open);
        let mut waiting: Vec<(u64, &Arc<ConnState>)> = open
            .values()
            .filter(|s| s.phase().is_waiting() && !s.leaving.load(Ordering::Relaxed))
            .map(|s| (s.since.load(Ordering::Relaxed), s))
            .collect();
        let wanted = wanted.min(waiting.len());
        if wanted == 0 {
            return;
        }
        if wanted < waiting.len() {
            waiting.select_nth_unstable_by_key(wanted - 1, |(since, _)| *since);
        }
        for (_, state) in &waiting[..wanted] {
            state.leaving.store(true, Ordering::Relaxed);
            self.leaving.fetch_add(1, Ordering::Relaxed);
            state.evicted.notify_one();
        }
    }

    /// Answer 503 and close, without holding a slot: in a task of its own,
    /// bounded in number and in time.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr) {
        self.complain(format_args!(
            "connection limit reached ({} connections): refusing new connections",
            self.limits.max_connections
        ));
        let Ok(refusing) = self.refusing.clone().try_acquire_owned() else {
            return; // dropping the stream closes it
        };
        tokio::spawn(async move {
            let _refusing = refusing;
            answer_refusal(stream, peer).await;
        });
    }

    async fn accept_failed(&self, e: io::Error) {
        let out_of_descriptors = matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !out_of_descriptors {
            // The peer gave up before we accepted (ECONNABORTED…): nothing
            // to do but accept the next.
            tracing::debug!(error = %e, "accept failed");
            return;
        }
        self.complain(format_args!(
            "cannot accept connections: {e}; closing idle ones"
        ));
        self.close_idle(self.spare());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Log a warning at most once a second: under attack, the log must not
    /// become the next thing to fill.
    fn complain(&self, message: std::fmt::Arguments<'_>) {
        let mut last = lock(&self.last_complaint);
        let now = Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1)) {
            *last = Some(now);
            tracing::warn!("{message}");
        }
    }
}

/// Answer 503 (20503) to a connection over the limit, and close it.
async fn answer_refusal(mut stream: TcpStream, peer: SocketAddr) {
    let answer = error_response(&ApiError::unavailable(
        "Too many connections: the server is at its connection limit, try again shortly",
    ));
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes: closing with unread
        // data would reset the connection, and the client might never see
        // the answer.
        let mut sink = [0u8; 1024];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
    tracing::debug!(%peer, "refused a connection over the limit");
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- one connection ---------------------------------------------------------

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Between requests, no byte of the next one yet.
    Idle = 0,
    /// The first byte of a request head arrived (or the connection just
    /// opened); the head is not complete.
    Head = 1,
    /// A request is being handled and its response written.
    Busy = 2,
    /// hyper has the whole response; it is being flushed to the socket.
    Flushing = 3,
    /// Handed over to a WebSocket.
    Upgraded = 4,
}

impl Phase {
    fn is_waiting(self) -> bool {
        matches!(self, Phase::Idle | Phase::Head)
    }
}

/// One connection's phase and its start, shared between the connection's
/// task (which changes them) and the accept loop (which reads them).
pub struct ConnState {
    phase: AtomicU8,
    /// When the phase began, in milliseconds since [`epoch`].
    since: AtomicU64,
    /// Set to close the connection to make room.
    evicted: Notify,
    /// Asked to close to make room, not closed yet.
    leaving: AtomicBool,
    /// Close with a reset rather than a FIN (see [`SocketControl`]).
    reset_on_close: AtomicBool,
    /// `TCP_USER_TIMEOUT` asked for, in milliseconds; 0 for none.
    unacknowledged_ms: AtomicU32,
}

impl ConnState {
    fn new(unacknowledged: Duration) -> Self {
        Self {
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(millis(Instant::now())),
            evicted: Notify::new(),
            leaving: AtomicBool::new(false),
            reset_on_close: AtomicBool::new(false),
            unacknowledged_ms: AtomicU32::new(
                u32::try_from(unacknowledged.as_millis()).unwrap_or(u32::MAX),
            ),
        }
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Idle,
            1 => Phase::Head,
            2 => Phase::Busy,
            3 => Phase::Flushing,
            _ => Phase::Upgraded,
        }
    }

    fn enter(&self, phase: Phase) {
        self.since.store(millis(Instant::now()), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn since(&self) -> Instant {
        epoch() + Duration::from_millis(self.since.load(Ordering::Relaxed))
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX)
}

/// What whoever ends up holding an accepted socket (the signaling
/// WebSocket) may ask of it, for peers that stop reading. Found in every
/// request's extensions.
#[derive(Clone)]
pub struct SocketControl(Arc<ConnState>);

impl SocketControl {
    /// From now on, closing the socket resets the connection (RST instead
    /// of FIN): the kernel drops what it still holds for the peer at once,
    /// rather than keeping it (up to megabytes) while it tries to deliver it.
    pub fn reset_on_close(&self) {
        self.0.reset_on_close.store(true, Ordering::Relaxed);
    }

    /// Have the kernel give the connection up when data it sent stays
    /// unacknowledged, or the peer's window stays shut, for `timeout`
    /// (`TCP_USER_TIMEOUT`): a peer that stopped reading is cut off even
    /// when everything we sent it fits in the kernel's buffers, where no
    /// write of ours would ever block. Applied at the socket's next read or
    /// write.
    pub fn give_up_unacknowledged_after(&self, timeout: Duration) {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self.0.unacknowledged_ms.store(ms, Ordering::Relaxed);
    }
}

/// The socket of one connection, as hyper (and, after an upgrade, the
/// WebSocket) sees it: it enforces the waiting deadlines on reads, turns
/// hyper's bare parse-error answers into Twilio's, and holds the
/// connection's slot until it is dropped.
struct ConnIo {
    stream: TcpStream,
    state: Arc<ConnState>,
    limits: HttpLimits,
    deadline: Option<Pin<Box<Sleep>>>,
    /// What is left to write of our own answer to a request hyper could not
    /// parse.
    answer: Option<(Vec<u8>, usize)>,
    /// The `TCP_USER_TIMEOUT` set on the socket, in milliseconds.
    unacknowledged_ms: u32,
    _slot: OwnedSemaphorePermit,
}

impl ConnIo {
    fn new(
        stream: TcpStream,
        state: Arc<ConnState>,
        limits: HttpLimits,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            stream,
            state,
            limits,
            deadline: None,
            answer: None,
            unacknowledged_ms: 0,
            _slot: slot,
        }
    }

    /// Whether the current wait has outlived its deadline; arms the timer
    /// (so the task wakes at the deadline) when it has not.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let limit = match self.state.phase() {
            Phase::Idle => self.limits.idle_timeout,
            Phase::Head => self.limits.header_timeout,
            Phase::Busy | Phase::Flushing => self.limits.request_timeout,
            Phase::Upgraded => return false,
        };
        let at = self.state.since() + limit;
        let sleep = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        sleep.as_mut().poll(cx).is_ready()
    }

    fn timed_out(&self) -> io::Error {
        let what = match self.state.phase() {
            Phase::Idle => "idle connection",
            Phase::Head => "request head not received in time",
            _ => {
                // The peer is not taking its answer: reset, so the kernel
                // drops what it holds for it rather than keep trying.
                self.state.reset_on_close.store(true, Ordering::Relaxed);
                "request not completed in time"
            }
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }

    /// Apply socket options asked for through [`SocketControl`].
    fn apply_options(&mut self) {
        let wanted = self.state.unacknowledged_ms.load(Ordering::Relaxed);
        if wanted != self.unacknowledged_ms {
            self.unacknowledged_ms = wanted;
            let value = libc::c_uint::from(wanted);
            // SAFETY: setsockopt reads one c_uint through a valid pointer;
            // the descriptor is the live socket this struct owns.
            let failed = unsafe {
                libc::setsockopt(
                    self.stream.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_USER_TIMEOUT,
                    (&raw const value).cast(),
                    std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
                )
            } != 0;
            if failed {
                tracing::debug!(error = %io::Error::last_os_error(), "cannot set TCP_USER_TIMEOUT");
            }
        }
    }

    /// Write what is left of our own answer.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.answer {
            if *written == bytes.len() {
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.apply_options();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.state.phase() == Phase::Idle {
                    this.state.enter(Phase::Head);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(this.timed_out())),
            other => other,
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.apply_options();
        // Outside a request, hyper writes only its automatic answer to a
        // request it could not parse: a status line and no body. Answer in
        // Twilio's format instead (and swallow whatever hyper writes next).
        if this.state.phase().is_waiting() {
            if this.answer.is_none() {
                this.answer = Some((parse_error_answer(buf), 0));
            }
            ready!(this.poll_answer(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(this.timed_out())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_answer(cx))?;
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        // hyper writes out everything it buffered before it flushes: once
        // the response's body is done, this flush ends the request.
        if self.state.phase() == Phase::Flushing {
            self.state.enter(Phase::Idle);
            // hyper reads again only when the socket has something: the
            // idle deadline must wake the task by itself.
            let _ = self.expired(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_answer(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.state.reset_on_close.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

/// Our answer in place of hyper's bare one, which starts `HTTP/1.1 NNN`.
fn parse_error_answer(hyper_answer: &[u8]) -> Vec<u8> {
    let status = hyper_answer
        .get(9..12)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let error = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::new(
            status,
            20431,
            format!(
                "Request header fields too large: the request line and headers may take at most {} KiB",
                MAX_HEAD_BYTES / 1024
            ),
        ),
        StatusCode::URI_TOO_LONG => uri_too_long(),
        other => ApiError::new(
            other,
            20400,
            "Bad request: the request line or a header is not valid HTTP/1.1",
        ),
    };
    error_response(&error)
}

fn uri_too_long() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        20414,
        format!(
            "URI too long: the request target may take at most {} KiB",
            MAX_URI_BYTES / 1024
        ),
    )
}

/// A complete HTTP/1.1 response carrying `error`, closing the connection.
fn error_response(error: &ApiError) -> Vec<u8> {
    let body = error.body();
    let mut out = format!(
        "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        error.status,
        body.len()
    );
    if error.status == StatusCode::SERVICE_UNAVAILABLE {
        out.push_str("retry-after: 1\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The hyper service of one connection: notes the phase, hands the request
/// (with the peer's address and a [`SocketControl`]) to the router, and
/// notes when the response has been written.
struct Front {
    router: Router,
    state: Arc<ConnState>,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        self.state.enter(Phase::Busy);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request
            .extensions_mut()
            .insert(SocketControl(self.state.clone()));
        let too_long = request
            .uri()
            .path_and_query()
            .is_some_and(|target| target.as_str().len() > MAX_URI_BYTES);
        let router = self.router.clone();
        let state = self.state.clone();
        Box::pin(async move {
            let response = if too_long {
                uri_too_long().into_response()
            } else {
                match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                state.enter(Phase::Upgraded);
            }
            Ok(response.map(|body| Tracked {
                body,
                _done: RequestDone(state),
            }))
        })
    }
}

/// A response body that tells the connection when hyper is done with it.
/// hyper drops a body once it has buffered its last bytes (or gives up on
/// it), before writing them out: the connection becomes idle at the next
/// flush (see [`ConnIo::poll_flush`]).
struct Tracked {
    body: Body,
    _done: RequestDone,
}

struct RequestDone(Arc<ConnState>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        if self.0.phase() == Phase::Busy {
            self.0.enter(Phase::Flushing);
        }
    }
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(max_connections_for(256), 128);
        assert_eq!(max_connections_for(1024), 800);
        assert_eq!(max_connections_for(1 << 20), 10_000);
        assert_eq!(max_connections_for(20), 16, "a floor, however low");
    }

    #[test]
    fn parser_answers_carry_twilio_bodies() {
        let answer = parse_error_answer(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n");
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.contains("connection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], 20431);
        assert_eq!(json["status"], 431);
        assert_eq!(
            json["more_info"],
            "https://www.twilio.com/docs/errors/20431"
        );
        let answer = String::from_utf8(parse_error_answer(b"garbage")).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
    }
}
