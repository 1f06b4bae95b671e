//! A bare str0m answerer on loopback that plays the SFU for one client: it
//! is ICE-lite and in RTP mode like Salon's media server, answers the
//! client's offers, and loops the client's published tracks back into the
//! client's own subscriptions, so one session both sends and measures.

#![allow(dead_code)] // each test binary uses a different part

use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

enum Command {
    Answer(String, oneshot::Sender<String>),
    Route { from: Mid, to: Mid, drop_every: u64 },
    RequestKeyframe(Mid),
    OpenChannel(String),
}

/// Tells the running answerer what to do.
#[derive(Clone)]
pub struct Answerer {
    commands: mpsc::UnboundedSender<Command>,
}

impl Answerer {
    /// Bind on loopback and start answering.
    pub async fn spawn() -> Answerer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let (commands, rx) = mpsc::unbounded_channel();
        let engine = Engine {
            rtc,
            socket,
            routes: Vec::new(),
            echo_on: None,
            commands: rx,
        };
        tokio::spawn(engine.run());
        Answerer { commands }
    }

    /// Answer an offer (first or re-offer).
    pub async fn answer(&self, offer_sdp: &str) -> String {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Answer(offer_sdp.to_string(), tx));
        rx.await.expect("an answer")
    }

    /// Forward RTP from the client's m-line `from` to its m-line `to`,
    /// dropping every `drop_every`-th packet (0: none).
    pub fn route(&self, from: &str, to: &str, drop_every: u64) {
        self.send(Command::Route {
            from: from.into(),
            to: to.into(),
            drop_every,
        });
    }

    /// Send a PLI for the client's m-line `mid`.
    pub fn request_keyframe(&self, mid: &str) {
        self.send(Command::RequestKeyframe(mid.into()));
    }

    /// Open a data channel labelled `label`, as the server does for a data
    /// subscription; data from the client's channels is echoed on it.
    pub fn open_channel(&self, label: &str) {
        self.send(Command::OpenChannel(label.to_string()));
    }

    fn send(&self, command: Command) {
        self.commands.send(command).expect("the answerer runs");
    }
}

struct Route {
    from: Mid,
    to: Mid,
    drop_every: u64,
    forwarded: u64,
}

struct Engine {
    rtc: Rtc,
    socket: UdpSocket,
    routes: Vec<Route>,
    echo_on: Option<ChannelId>,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Engine {
    async fn run(mut self) {
        let addr = self.socket.local_addr().unwrap();
        let mut buf = vec![0; 2000];
        loop {
            let timeout = self
                .drain()
                .min(Instant::now() + Duration::from_millis(100));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: addr, contents },
                    );
                    self.rtc.handle_input(input).unwrap();
                }
                () = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
                }
                command = self.commands.recv() => match command {
                    None => return,
                    Some(command) => self.on_command(command),
                },
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Answer(sdp, reply) => {
                let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                let answer = self.rtc.sdp_api().accept_offer(offer).unwrap();
                let _ = reply.send(answer.to_sdp_string());
            }
            Command::Route {
                from,
                to,
                drop_every,
            } => self.routes.push(Route {
                from,
                to,
                drop_every,
                forwarded: 0,
            }),
            Command::RequestKeyframe(mid) => {
                if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
                    rx.request_keyframe(KeyframeRequestKind::Pli);
                }
            }
            Command::OpenChannel(label) => {
                let mut api = self.rtc.sdp_api();
                self.echo_on = Some(api.add_channel(label));
                assert!(api.apply().is_none(), "SCTP exists: no renegotiation");
            }
        }
    }

    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::RtpPacket(p)) => {
                    let mid = p.header.ext_vals.mid.or_else(|| {
                        self.rtc
                            .direct_api()
                            .stream_rx(&p.header.ssrc)
                            .map(|s| s.mid())
                    });
                    let Some(route) = self.routes.iter_mut().find(|r| Some(r.from) == mid) else {
                        continue;
                    };
                    route.forwarded += 1;
                    if route.drop_every > 0 && route.forwarded % route.drop_every == 0 {
                        continue;
                    }
                    let to = route.to;
                    let write = RtpWrite::new(
                        p.header.payload_type,
                        p.seq_no,
                        p.header.timestamp,
                        p.timestamp,
                        p.payload.clone(),
                    )
                    .marker(p.header.marker)
                    .nackable(true);
                    if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(to, None) {
                        tx.write_rtp(write);
                    }
                }
                Output::Event(Event::ChannelData(d)) => {
                    if let Some(mut channel) = self.echo_on.and_then(|id| self.rtc.channel(id)) {
                        let _ = channel.write(true, &d.data);
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}
