//! Any SDP offer a client sends, with any m-line bindings, through the real
//! media server: a `Media` with one worker on loopback, driven through
//! `Media::negotiate` exactly as the signaling session drives it. That
//! covers str0m's SDP parser (which the worker calls outside any
//! `catch_unwind`: a panic there would take the whole worker down),
//! applying the offer to a fresh or an existing peer (renegotiation), and
//! Salon's own handling of the result: publish bindings and their codecs,
//! subscribe bindings and payload-type mapping between two peers,
//! subscriptions waiting for their track, and the answer.
//!
//! The input is text: one or more offers, each starting with a line
//!
//! ```text
//! @A pub=0:audio:1 pub=1:video:2 sub=2:3
//! ```
//!
//! (participant A or B; `pub=<mid>:<audio|video>:<track>` publishes track
//! `<track>` (a digit) on m-line `<mid>`, `sub=<mid>:<track>` receives it
//! there), followed by the SDP. Input without such a line is one offer from
//! A with no bindings. Both participants are in one room; everything is
//! removed after each input.
//!
//! Must hold: no panic (in the worker either: libFuzzer's panic hook aborts
//! before `catch_unwind` can hide it); an offer is answered or refused with
//! 53403 or 53404, never "the media server has stopped"; an answer is SDP
//! that str0m reads back.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use libfuzzer_sys::fuzz_target;
use salon_media::{
    Media, MediaConfig, MediaError, MediaEvent, MediaKind, PublishBinding, SubscribeBinding,
};
use salon_sid::{ParticipantSid, RoomSid, TrackSid};
use tokio::sync::mpsc;

struct Server {
    runtime: tokio::runtime::Runtime,
    media: Media,
    events: std::sync::Mutex<mpsc::UnboundedReceiver<MediaEvent>>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (events_tx, events) = mpsc::unbounded_channel();
        let config = MediaConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 1,
            ..MediaConfig::default()
        };
        Server {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime"),
            media: Media::start(config, events_tx).expect("the media server starts"),
            events: std::sync::Mutex::new(events),
        }
    })
}

struct Offer<'a> {
    who: usize,
    publish: Vec<PublishBinding>,
    subscribe: Vec<SubscribeBinding>,
    sdp: &'a str,
}

fn track(digit: &str) -> Option<TrackSid> {
    let n: u8 = digit.parse().ok().filter(|n| *n < 10)?;
    Some(TrackSid::from_bytes([n + 1; 16]))
}

/// `@A pub=0:audio:1 sub=2:3` (unknown words are ignored).
fn directives(line: &str) -> (usize, Vec<PublishBinding>, Vec<SubscribeBinding>) {
    let mut words = line.split_whitespace();
    let who = usize::from(words.next() == Some("@B"));
    let (mut publish, mut subscribe) = (Vec::new(), Vec::new());
    for word in words {
        let fields: Vec<&str> = word.split([':', '=']).collect();
        match fields[..] {
            ["pub", mid, kind, t] => {
                let kind = match kind {
                    "audio" => MediaKind::Audio,
                    "video" => MediaKind::Video,
                    _ => continue,
                };
                if let Some(track) = track(t) {
                    publish.push(PublishBinding {
                        mid: mid.to_owned(),
                        track,
                        kind,
                    });
                }
            }
            ["sub", mid, t] => {
                if let Some(track) = track(t) {
                    subscribe.push(SubscribeBinding {
                        mid: mid.to_owned(),
                        track,
                    });
                }
            }
            _ => {}
        }
    }
    (who, publish, subscribe)
}

/// The offers of an input, at most four.
fn offers(text: &str) -> Vec<Offer<'_>> {
    if !text.starts_with('@') {
        return vec![Offer {
            who: 0,
            publish: Vec::new(),
            subscribe: Vec::new(),
            sdp: text,
        }];
    }
    // A section runs from its `@` line to the next one; the SDP keeps its
    // last line ending.
    let mut starts = vec![0];
    starts.extend(text.match_indices("\n@").map(|(i, _)| i + 1));
    starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            let section = &text[start..end];
            let (line, sdp) = section.split_once('\n').unwrap_or((section, ""));
            let (who, publish, subscribe) = directives(line);
            Offer {
                who,
                publish,
                subscribe,
                sdp,
            }
        })
        .take(4)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let server = server();
    // Fresh SIDs for every input: nothing carries over.
    static INPUTS: AtomicU32 = AtomicU32::new(0);
    let n = INPUTS.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let sid = |kind: u8| {
        let mut bytes = [kind; 16];
        bytes[12..].copy_from_slice(&n);
        bytes
    };
    let room = RoomSid::from_bytes(sid(0));
    let participants = [
        ParticipantSid::from_bytes(sid(1)),
        ParticipantSid::from_bytes(sid(2)),
    ];

    for offer in offers(text) {
        let result = server.runtime.block_on(server.media.negotiate(
            room,
            participants[offer.who],
            offer.sdp.to_owned(),
            offer.publish,
            offer.subscribe,
        ));
        match result {
            Ok(answer) => {
                if let Err(e) = str0m::change::SdpAnswer::from_sdp_string(&answer) {
                    panic!("the answer does not parse ({e}):\n{answer}");
                }
            }
            Err(e @ (MediaError::BadOffer(_) | MediaError::NoCodec(_))) => {
                assert!(matches!(e.code(), 53403 | 53404));
            }
            Err(e @ MediaError::Closed) => panic!("{e}"),
        }
    }

    for participant in participants {
        server.media.remove(room, participant);
    }
    server.media.room_ended(room);
    let mut events = server.events.lock().unwrap_or_else(|p| p.into_inner());
    while events.try_recv().is_ok() {}
});
