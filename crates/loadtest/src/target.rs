//! The target boundary: how a participant joins the server under test, and
//! what the runner reads from it.
//!
//! The plan, the runner and the report know only these traits. A target
//! turns a [`ParticipantPlan`] into a running participant (for Salon:
//! a `salon-client` session; for Janus: a publisher and a subscriber handle
//! in its VideoRoom plugin, with a media session each), and
//! each participant offers a [`Meter`] that returns cumulative
//! [`Counters`] at any moment, with the same meaning whatever the server:
//! per published track what was sent, per subscribed track what arrived,
//! what was missing by RTP sequence number, and every packet's one-way
//! latency from the send time its payload carries.
//!
//! Counters are cumulative since the participant joined; the runner takes
//! differences, so a target never resets anything.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::histogram::Latencies;
use crate::plan::ParticipantPlan;

/// The server under test.
pub trait Target: Send + Sync + 'static {
    type Participant: Participant;

    /// What kind of server this is, for reports: `"salon"`, `"janus"`.
    fn kind(&self) -> &'static str;

    /// Where it is, for reports.
    fn url(&self) -> &str;

    /// Join `plan.room` as `plan.identity`, publish the plan's tracks, and
    /// subscribe to every track in the room that this participant does not
    /// publish. Returns once the server admitted the participant; media may
    /// still be connecting ([`ParticipantEvent::MediaConnected`]).
    fn join(
        &self,
        plan: &ParticipantPlan,
    ) -> impl Future<Output = Result<Self::Participant, TargetError>> + Send;
}

/// A participant that joined.
pub trait Participant: Send + 'static {
    /// Reads this participant's counters while it runs (and after it ended).
    fn meter(&self) -> Arc<dyn Meter>;

    /// The next thing that happened; `None` once the session is over and
    /// every event was read.
    fn next_event(&mut self) -> impl Future<Output = Option<ParticipantEvent>> + Send;

    /// Leave the room and close the media session.
    fn leave(self) -> impl Future<Output = ()> + Send;
}

/// Reads a participant's cumulative counters.
pub trait Meter: Send + Sync {
    fn sample(&self) -> Counters;
}

/// What the runner needs to hear about while a participant runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParticipantEvent {
    /// ICE and DTLS are up.
    MediaConnected,
    /// A request failed; the session goes on.
    Error { code: u32, message: String },
    /// The session is over before the runner ended it.
    Disconnected { code: Option<u32>, message: String },
    /// The server stopped forwarding a subscribed video track (`off`:
    /// Twilio's `trackSwitchedOff`, for bandwidth) or forwards it again
    /// (`trackSwitchedOn`). `track` is named as in [`ReceivedTrack::track`];
    /// `reason` is Twilio's for a switch-off (`network-congestion`,
    /// `max-bandwidth-reached`, …).
    TrackSwitched {
        track: String,
        off: bool,
        reason: Option<String>,
    },
    /// Anything else (room events): ignored by the runner.
    Other,
}

/// A refusal or failure, with the server's (Twilio) code when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{}{message}", code.map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct TargetError {
    pub code: Option<u32>,
    pub message: String,
}

/// Kind of a media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

/// A participant's counters at one moment, cumulative.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub sent: Vec<SentTrack>,
    pub received: Vec<ReceivedTrack>,
}

/// One published track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTrack {
    /// The name the participant published it under.
    pub name: String,
    /// The server's id for it, once the server confirmed it. Subscribers'
    /// [`ReceivedTrack::track`] names the same id.
    pub track: Option<String>,
    pub kind: MediaKind,
    /// RTP packets and payload bytes sent.
    pub packets: u64,
    pub bytes: u64,
}

/// One subscribed track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedTrack {
    /// The server's id for the track.
    pub track: String,
    pub kind: MediaKind,
    /// RTP packets (each sequence number once) and payload bytes received.
    pub packets: u64,
    pub bytes: u64,
    /// Sequence numbers between the lowest and highest seen.
    pub expected: u64,
    /// Expected minus received (a late packet fills its gap again).
    pub lost: u64,
    /// Packets without a valid send-time probe.
    pub foreign: u64,
    /// One-way latency of every probed packet, in microseconds.
    pub latency: Latencies,
    /// From the subscription to its first packet.
    pub first_packet_after: Option<Duration>,
    /// Video: the size the last keyframe announced (the simulcast layer
    /// received), 0 when unknown.
    pub width: u16,
    pub height: u16,
    /// When the last packet arrived.
    pub last_packet_at: Option<std::time::Instant>,
}

impl Counters {
    /// What happened after `earlier` (the same participant's counters, taken
    /// before). Tracks absent from `earlier` count in full.
    pub fn since(&self, earlier: &Counters) -> Counters {
        let sent = self
            .sent
            .iter()
            .map(
                |now| match earlier.sent.iter().find(|e| e.name == now.name) {
                    Some(before) => SentTrack {
                        packets: now.packets.saturating_sub(before.packets),
                        bytes: now.bytes.saturating_sub(before.bytes),
                        ..now.clone()
                    },
                    None => now.clone(),
                },
            )
            .collect();
        let received = self
            .received
            .iter()
            .map(
                |now| match earlier.received.iter().find(|e| e.track == now.track) {
                    Some(before) => ReceivedTrack {
                        packets: now.packets.saturating_sub(before.packets),
                        bytes: now.bytes.saturating_sub(before.bytes),
                        expected: now.expected.saturating_sub(before.expected),
                        lost: now.lost.saturating_sub(before.lost),
                        foreign: now.foreign.saturating_sub(before.foreign),
                        latency: now.latency.since(&before.latency),
                        ..now.clone()
                    },
                    None => now.clone(),
                },
            )
            .collect();
        Counters { sent, received }
    }
}
