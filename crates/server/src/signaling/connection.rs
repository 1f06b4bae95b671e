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
//!   for a frame over [`Wire::MAX_FRAME`]; 1008 when the session let the
//!   connection go because it could not keep up with the room.
//!
//! This module knows frames and queues, not rooms: what a message means is
//! the session's business. Which protocol the frames carry is a [`Wire`]:
//! Salon's own ([`SalonWire`]) or Twilio's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use salon_signal::{ClientMessage, ServerMessage};
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
/// The socket's read buffer. Messages are small; the buffer grows for a
/// large one and shrinks back. (tungstenite's default, 128 KiB, is filled
/// in full on the first read: 128 KiB of memory per session.)
const READ_BUFFER: usize = 4 * 1024;
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

/// A signaling protocol, as far as its socket is concerned: how a text
/// frame parses, and what the connection itself says to a client.
pub(super) trait Wire: 'static {
    type Message: Send + 'static;
    type Error: Send + 'static;
    /// WebSocket frames (and messages) larger than this are refused by the
    /// socket itself, which then closes with 1009; between the protocol's
    /// own message limit and this, the client gets a clear error instead
    /// and the session goes on.
    const MAX_FRAME: usize;
    fn parse(text: &str) -> Result<Self::Message, Self::Error>;
    /// The error for a binary frame: no protocol here uses them.
    fn binary() -> Self::Error;
    /// A refusal before a session exists, as a frame.
    fn refusal(code: u32, message: String) -> String;
    /// The answer to `message`, which is over the rate limit and will not be
    /// handled.
    fn rate_limited(message: Option<&Self::Message>, explanation: String) -> String;
}

/// Salon's own protocol (`salon-signal`).
pub(super) struct SalonWire;

impl Wire for SalonWire {
    type Message = ClientMessage;
    type Error = salon_signal::ProtocolError;
    const MAX_FRAME: usize = 2 * salon_signal::MAX_MESSAGE_BYTES;

    fn parse(text: &str) -> Result<ClientMessage, Self::Error> {
        ClientMessage::parse(text)
    }

    fn binary() -> Self::Error {
        salon_signal::ProtocolError::Invalid("binary frames are not part of the protocol".into())
    }

    fn refusal(code: u32, message: String) -> String {
        ServerMessage::Error {
            code,
            message,
            revision: None,
        }
        .to_json()
    }

    fn rate_limited(message: Option<&ClientMessage>, explanation: String) -> String {
        let revision = match message {
            Some(ClientMessage::Offer { revision, .. }) => Some(*revision),
            _ => None,
        };
        ServerMessage::Error {
            code: RATE_LIMITED,
            message: explanation,
            revision,
        }
        .to_json()
    }
}

/// The WebSocket settings of a signaling socket of protocol `W`.
pub(super) fn configure<W: Wire>(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .max_message_size(W::MAX_FRAME)
        .max_frame_size(W::MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        // A few of the largest messages.
        .max_write_buffer_size(4 * W::MAX_FRAME)
}

pub(super) enum Incoming<W: Wire> {
    Message(W::Message),
    Invalid(W::Error),
    /// The socket ended; `clean` when the client sent a close frame.
    Closed {
        clean: bool,
    },
}

/// A WebSocket attached to a session: parsed messages in, JSON out.
pub(super) struct Connection<W: Wire> {
    pub(super) incoming: mpsc::Receiver<Incoming<W>>,
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

impl<W: Wire> Connection<W> {
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
        let reader = Reader::<W> {
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
            W::MAX_FRAME,
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
    pub(super) fn send(&self, text: String) -> bool {
        match self.outgoing.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close.store(POLICY, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Send `text` and close: a last word before a session exists (a
    /// redirect).
    pub(super) async fn last_word(self, text: String) {
        let _ = self.outgoing.send(text).await;
    }

    /// Send an error and close: for refusals before a session exists.
    pub(super) async fn refuse(self, code: u32, message: String) {
        tracing::info!(code, message, "signaling connection refused");
        let _ = self.outgoing.send(W::refusal(code, message)).await;
    }
}

struct Reader<W: Wire> {
    stream: SplitStream<WebSocket>,
    incoming: mpsc::Sender<Incoming<W>>,
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

impl<W: Wire> Reader<W> {
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
                Some(Ok(Message::Text(text))) => match W::parse(text.as_str()) {
                    Ok(message) => Incoming::Message(message),
                    Err(e) => Incoming::Invalid(e),
                },
                Some(Ok(Message::Binary(_))) => Incoming::Invalid(W::binary()),
                // tungstenite answers pings itself; they still count.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    self.allowance.take(Instant::now());
                    continue;
                }
                Some(Ok(Message::Close(_))) => break End::Client { clean: true },
                Some(Err(e)) => {
                    if too_big(e) {
                        tracing::info!(
                            "signaling frame over {} bytes: closing with 1009",
                            W::MAX_FRAME
                        );
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
    fn refuse(&self, item: &Incoming<W>) {
        let message = match item {
            Incoming::Message(message) => Some(message),
            _ => None,
        };
        let explanation = format!(
            "Too many messages: at most {} a second (bursts of {}); this one was not handled",
            self.allowance.per_second, self.allowance.burst
        );
        if let Some(outgoing) = self.outgoing.upgrade() {
            // There is room: `wait_for_room` saw to it.
            let _ = outgoing.try_send(W::rate_limited(message, explanation));
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
    max_frame: usize,
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
        TOO_BIG => format!("message over {max_frame} bytes"),
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
