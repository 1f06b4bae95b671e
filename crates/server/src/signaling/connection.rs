//! The transport under a signaling session: one WebSocket, a reader task and
//! a writer task, and the rules that keep them bounded.
//!
//! ```text
//!  socket ─▶ reader: parse, count against the rate, wait for room ─▶ incoming ─▶ Session
//!               └─ over the rate: error 20429 ─┐
//!  socket ◀─ writer: each frame within send_timeout, then close ◀─ outgoing ◀─ Session
//! ```
//!
//! - **A client that stops reading is cut off.** A frame the socket does not
//!   take within [`SignalingConfig::send_timeout`] ends the connection: its
//!   socket is reset, so the kernel drops what it still held for the client
//!   at once; both tasks end; the session hears `Closed { clean: false }`
//!   (it detaches, and the client may resume). When everything sent fits in
//!   the kernel's buffers, so that no write blocks, the kernel itself gives
//!   the connection up after twice that (`TCP_USER_TIMEOUT`).
//! - **A burst is not a client that stops reading.** The reader takes the
//!   next message off the socket only when the outgoing queue has room for
//!   half its length, so a thousand messages in one write are answered at
//!   the pace the client reads its answers; they never overflow the queue.
//! - **Floods are refused, clearly.** A session may send
//!   [`SignalingConfig::messages_per_second`] on average, in bursts of
//!   [`BURST_SECONDS`] worth. A message over the limit is not handled: it is
//!   answered with error 20429 (naming the offer's revision, for an offer).
//! - **Every close says why**: code 1000 after the session's last word; 1009
//!   for a frame over [`MAX_FRAME`]; 1008 when the session let the
//!   connection go because it could not keep up with the room.
//!
//! This module knows frames and queues, not rooms: what a message means is
//! the session's business.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use salon_signal::{ClientMessage, ProtocolError, ServerMessage};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::SignalingConfig;
use crate::http::SocketControl;

/// Messages queued for a client's socket before the session lets it go.
const OUTGOING_QUEUE: usize = 512;
/// Free room in the outgoing queue the reader waits for before it takes the
/// next message: what one message's answers (and the room's news meanwhile)
/// may need.
const HEADROOM: usize = OUTGOING_QUEUE / 2;
/// Parsed messages waiting for the session.
const INCOMING_QUEUE: usize = 64;
/// WebSocket frames (and messages) larger than this are refused by the
/// socket itself, which then closes with 1009; between
/// [`salon_signal::MAX_MESSAGE_BYTES`] and this, the client gets a clear
/// 53004 instead and the session goes on.
pub(super) const MAX_FRAME: usize = 2 * salon_signal::MAX_MESSAGE_BYTES;
/// The socket's read buffer. Messages are small; the buffer grows for a
/// large one and shrinks back. (tungstenite's default, 128 KiB, is filled
/// in full on the first read: 128 KiB of memory per session.)
const READ_BUFFER: usize = 4 * 1024;
/// Most bytes buffered for writing: a few of the largest messages.
const MAX_WRITE_BUFFER: usize = 4 * MAX_FRAME;
/// A rate limit allows bursts of this many seconds' worth of messages.
pub const BURST_SECONDS: u32 = 10;
/// How long the closing handshake may take once our close frame is out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The error code for a message over the rate limit: Twilio's "Too many
/// requests".
pub const RATE_LIMITED: u32 = 20429;

/// WebSocket close codes (RFC 6455 §7.4.1).
const NORMAL: u16 = 1000;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;

/// The WebSocket settings of a signaling socket.
pub(super) fn configure(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

pub(super) enum Incoming {
    Message(ClientMessage),
    Invalid(ProtocolError),
    /// The socket ended; `clean` when the client sent a close frame.
    Closed {
        clean: bool,
    },
}

/// A WebSocket attached to a session: parsed messages in, JSON out.
pub(super) struct Connection {
    pub(super) incoming: mpsc::Receiver<Incoming>,
    pub(super) outgoing: mpsc::Sender<String>,
    /// The close code the writer ends with.
    close: Arc<AtomicU16>,
}

/// How the writer is doing, for the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Open,
    /// Our close frame is out: the reader waits for the client's, briefly.
    Closing,
    /// The socket is dead or was reset: nothing more to read.
    Gone,
}

impl Connection {
    pub(super) fn spawn(
        socket: WebSocket,
        config: &SignalingConfig,
        control: Option<SocketControl>,
    ) -> Self {
        if let Some(control) = &control {
            // A backstop for a client that stops reading while all we send
            // fits in the kernel's buffers: no write of ours blocks, so the
            // writer's own deadline never comes, but the kernel sees the
            // window stay shut.
            control.give_up_unacknowledged_after(2 * config.send_timeout);
        }
        let (sink, stream) = socket.split();
        let (incoming_tx, incoming) = mpsc::channel(INCOMING_QUEUE);
        let (outgoing, outgoing_rx) = mpsc::channel::<String>(OUTGOING_QUEUE);
        let (writer_tx, writer) = watch::channel(Writer::Open);
        let close = Arc::new(AtomicU16::new(NORMAL));
        let reader = Reader {
            stream,
            incoming: incoming_tx,
            // Weak: the queue closes (and the writer finishes) when the
            // session lets go, whatever the reader is doing.
            outgoing: outgoing.downgrade(),
            writer,
            allowance: Allowance::new(config.messages_per_second),
            close: close.clone(),
        };
        tokio::spawn(reader.run());
        tokio::spawn(write(
            sink,
            outgoing_rx,
            config.send_timeout,
            close.clone(),
            writer_tx,
            control,
        ));
        Self {
            incoming,
            outgoing,
            close,
        }
    }

    /// Queue a message; false when the queue is full: the client cannot keep
    /// up, and the session should let this connection go (it then closes
    /// with 1008 once what is queued is sent).
    pub(super) fn send(&self, message: &ServerMessage) -> bool {
        match self.outgoing.try_send(message.to_json()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close.store(POLICY, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Send an error and close: for refusals before a session exists.
    pub(super) async fn refuse(self, code: u32, message: String) {
        tracing::info!(code, message, "signaling connection refused");
        let _ = self
            .outgoing
            .send(
                ServerMessage::Error {
                    code,
                    message,
                    revision: None,
                }
                .to_json(),
            )
            .await;
    }
}

struct Reader {
    stream: SplitStream<WebSocket>,
    incoming: mpsc::Sender<Incoming>,
    outgoing: mpsc::WeakSender<String>,
    writer: watch::Receiver<Writer>,
    allowance: Allowance,
    close: Arc<AtomicU16>,
}

/// Why the reader stopped.
enum End {
    /// The client closed (`clean`: with a close frame) or the socket broke.
    Client { clean: bool },
    /// The session let the connection go.
    Released,
    /// The writer gave up on the socket.
    WriterGone,
}

impl Reader {
    async fn run(mut self) {
        let end = loop {
            if let Some(end) = self.wait_for_room().await {
                break end;
            }
            let frame = tokio::select! {
                frame = self.stream.next() => frame,
                () = self.incoming.closed() => break End::Released,
                state = self.writer.wait_for(|w| *w != Writer::Open) => break writer_end(state.map(|w| *w)),
            };
            let item = match frame {
                Some(Ok(Message::Text(text))) => match ClientMessage::parse(text.as_str()) {
                    Ok(message) => Incoming::Message(message),
                    Err(e) => Incoming::Invalid(e),
                },
                Some(Ok(Message::Binary(_))) => Incoming::Invalid(ProtocolError::Invalid(
                    "binary frames are not part of the protocol".into(),
                )),
                // tungstenite answers pings itself; they still count.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    self.allowance.take(Instant::now());
                    continue;
                }
                Some(Ok(Message::Close(_))) => break End::Client { clean: true },
                Some(Err(e)) => {
                    if too_big(e) {
                        tracing::info!("signaling frame over {MAX_FRAME} bytes: closing with 1009");
                        self.close.store(TOO_BIG, Ordering::Relaxed);
                    }
                    break End::Client { clean: false };
                }
                None => break End::Client { clean: false },
            };
            if !self.allowance.take(Instant::now()) {
                self.refuse(&item);
                continue;
            }
            if self.incoming.send(item).await.is_err() {
                break End::Released;
            }
        };
        match end {
            End::Client { clean } => {
                let _ = self.incoming.send(Incoming::Closed { clean }).await;
            }
            End::WriterGone => {
                let _ = self.incoming.send(Incoming::Closed { clean: false }).await;
            }
            End::Released => self.finish().await,
        }
    }

    /// Wait until the outgoing queue has [`HEADROOM`] free; the end of the
    /// connection if it ends meanwhile.
    async fn wait_for_room(&mut self) -> Option<End> {
        let Some(outgoing) = self.outgoing.upgrade() else {
            return Some(End::Released);
        };
        tokio::select! {
            room = outgoing.reserve_many(HEADROOM) => room.err().map(|_| End::Released),
            state = self.writer.wait_for(|w| *w != Writer::Open) => Some(writer_end(state.map(|w| *w))),
        }
    }

    /// Answer a message over the rate limit, without handling it.
    fn refuse(&self, item: &Incoming) {
        let revision = match item {
            Incoming::Message(ClientMessage::Offer { revision, .. }) => Some(*revision),
            _ => None,
        };
        let refusal = ServerMessage::Error {
            code: RATE_LIMITED,
            message: format!(
                "Too many messages: at most {} a second (bursts of {}); this one was not handled",
                self.allowance.per_second, self.allowance.burst
            ),
            revision,
        };
        if let Some(outgoing) = self.outgoing.upgrade() {
            // There is room: `wait_for_room` saw to it.
            let _ = outgoing.try_send(refusal.to_json());
        }
    }

    /// The session let go: once the writer has sent our close frame, read
    /// (and drop) what the client still sends until its own close frame, so
    /// that closing the socket with unread data does not reset it before
    /// the client has read our last words.
    async fn finish(mut self) {
        if self.writer.wait_for(|w| *w != Writer::Open).await.is_err()
            || *self.writer.borrow() == Writer::Gone
        {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(frame)) = self.stream.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// The reader's end once the writer is no longer open: it closes only when
/// the session lets go, unless the socket failed under it.
fn writer_end(state: Result<Writer, watch::error::RecvError>) -> End {
    match state {
        Ok(Writer::Open | Writer::Closing) => End::Released,
        Ok(Writer::Gone) | Err(_) => End::WriterGone,
    }
}

/// Whether a read error is a frame or message over the socket's limit.
fn too_big(error: axum::Error) -> bool {
    matches!(
        error
            .into_inner()
            .downcast::<tungstenite::Error>()
            .as_deref(),
        Ok(tungstenite::Error::Capacity(_))
    )
}

async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<String>,
    send_timeout: Duration,
    close: Arc<AtomicU16>,
    state: watch::Sender<Writer>,
    control: Option<SocketControl>,
) {
    while let Some(text) = outgoing.recv().await {
        match tokio::time::timeout(send_timeout, sink.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                let _ = state.send(Writer::Gone);
                return;
            }
            Err(_) => {
                tracing::info!(
                    "signaling client took no data for {} s: resetting its connection",
                    send_timeout.as_secs_f32()
                );
                if let Some(control) = control {
                    control.reset_on_close();
                }
                let _ = state.send(Writer::Gone);
                return;
            }
        }
    }
    let code = close.load(Ordering::Relaxed);
    let reason = match code {
        TOO_BIG => format!("message over {MAX_FRAME} bytes"),
        POLICY => "not reading fast enough: resume the session".to_owned(),
        _ => String::new(),
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let sent = tokio::time::timeout(send_timeout, sink.send(Message::Close(Some(frame)))).await;
    let _ = state.send(match sent {
        Ok(Ok(())) => Writer::Closing,
        _ => Writer::Gone,
    });
}

/// A token bucket: `per_second` on average, up to `burst` at once.
/// `per_second` 0 allows everything.
struct Allowance {
    per_second: u32,
    burst: u32,
    tokens: f64,
    at: Instant,
}

impl Allowance {
    fn new(per_second: u32) -> Self {
        let burst = per_second.saturating_mul(BURST_SECONDS);
        Self {
            per_second,
            burst,
            tokens: f64::from(burst),
            at: Instant::now(),
        }
    }

    /// Take one token; false when none is left.
    fn take(&mut self, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens =
            (self.tokens + elapsed * f64::from(self.per_second)).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_a_burst_then_a_steady_rate() {
        let start = Instant::now();
        let mut allowance = Allowance::new(5);
        let taken = (0..100).filter(|_| allowance.take(start)).count();
        assert_eq!(taken, 50, "ten seconds' worth at once");
        let later = start + Duration::from_secs(2);
        let taken = (0..100).filter(|_| allowance.take(later)).count();
        assert_eq!(taken, 10, "then five a second");
        let mut unlimited = Allowance::new(0);
        assert!((0..10_000).all(|_| unlimited.take(start)));
    }
}
