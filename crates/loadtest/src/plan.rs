//! The load plan: how many rooms, who is in each, what they publish, when
//! they join, and how long the measurement lasts.
//!
//! A [`Plan`] is plain data, checked against hard limits by
//! [`Plan::validate`] (a load test must stay bounded in time and in count),
//! and expanded by [`Plan::participants`] into one [`ParticipantPlan`] per
//! participant, in join order, each with its offset from the start of the
//! run. It knows nothing about any server.
//!
//! Every room has the same shape: `publishers` participants that publish
//! (audio and/or video) **and** subscribe to every other publisher in the
//! room, and `subscribers` participants that publish nothing and subscribe
//! to every publisher. A meeting is `publishers: N, subscribers: 0`; a
//! webinar `publishers: 1, subscribers: N`.

use std::time::Duration;

use serde::Serialize;

/// Most participants in one run.
pub const MAX_PARTICIPANTS: u32 = 2000;
/// Most participants in one room.
pub const MAX_PER_ROOM: u32 = 500;
/// Longest measurement window.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Longest ramp.
pub const MAX_RAMP: Duration = Duration::from_secs(600);
/// Longest wait for media after the ramp.
pub const MAX_SETTLE: Duration = Duration::from_secs(60);

/// Opus-like audio: 50 packets per second (20 ms frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AudioShape {
    pub bitrate_bps: u32,
}

impl AudioShape {
    /// Packets per second, fixed by the 20 ms frame.
    pub const PACKETS_PER_SECOND: u32 = 50;
    /// Lowest bitrate: a packet must hold the 24-byte probe.
    pub const MIN_BITRATE: u32 = 10_000;
    pub const MAX_BITRATE: u32 = 512_000;
    /// A silent publisher's packets per second with Opus DTX, which
    /// twilio-video turns on by default: Chromium sent 4.75 a second from
    /// a silent microphone in `tests/e2e/codecs.test.mjs` (Opus itself
    /// asks for one every 400 ms; the encoder's hangover adds some).
    pub const DTX_PACKETS_PER_SECOND: u32 = 5;
    /// A DTX packet's payload: the probe, as a comfort-noise frame is a
    /// few bytes.
    pub const DTX_PACKET_BYTES: u32 = 24;
    /// The RFC 6464 level a speaker's packets carry (-dBov: 0 is the
    /// loudest, 127 silence), a voice at conversational loudness.
    pub const SPEAKING_LEVEL: u8 = 30;
}

/// What a publisher's audio carries when the plan names its speakers
/// ([`Plan::speakers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Voice {
    /// 50 packets a second with a speaking audio level (and voice
    /// activity), which the server's dominant-speaker detection hears.
    Speaking,
    /// Silence with Opus DTX: [`AudioShape::DTX_PACKETS_PER_SECOND`]
    /// small packets at level 127.
    Silent,
}

impl Default for AudioShape {
    fn default() -> Self {
        Self {
            bitrate_bps: 40_000,
        }
    }
}

/// VP8-like video: frames split into packets of at most 1100 bytes, a
/// keyframe (4× the size) every 3 s and on request.
///
/// With `simulcast`, the track is three RID layers instead of one stream
/// ([`VideoShape::layers`]): what libwebrtc sends for a 1280×720 camera,
/// each layer at the shape's frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VideoShape {
    /// One stream's bitrate; with simulcast, the full (top) layer's.
    pub bitrate_bps: u32,
    pub fps: u32,
    pub simulcast: bool,
}

/// One simulcast layer of a [`VideoShape`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerShape {
    pub rid: &'static str,
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u32,
}

impl VideoShape {
    pub const MIN_BITRATE: u32 = 16_000;
    pub const MAX_BITRATE: u32 = 20_000_000;
    pub const MAX_FPS: u32 = 60;

    /// The layers a publisher sends, lowest first: without simulcast one
    /// (`""`, 1280×720, the bitrate); with it libwebrtc's three for a
    /// 1280×720 camera — quarter (`q`, 320×180), half (`h`, 640×360) and
    /// full (`f`, 1280×720) — at 1/10, 1/3 and all of the bitrate, which
    /// from the default 1.5 Mbit/s are libwebrtc's 150, 500 and 1500
    /// kbit/s. Each layer's bitrate is at least 8 kbit/s (one small
    /// packet per frame still carries the probe).
    pub fn layers(&self) -> Vec<LayerShape> {
        if !self.simulcast {
            return vec![LayerShape {
                rid: "",
                width: 1280,
                height: 720,
                bitrate_bps: self.bitrate_bps,
            }];
        }
        let part = |d: u32| (self.bitrate_bps / d).max(8_000);
        vec![
            LayerShape {
                rid: "q",
                width: 320,
                height: 180,
                bitrate_bps: part(10),
            },
            LayerShape {
                rid: "h",
                width: 640,
                height: 360,
                bitrate_bps: part(3),
            },
            LayerShape {
                rid: "f",
                width: 1280,
                height: 720,
                bitrate_bps: self.bitrate_bps,
            },
        ]
    }
}

impl Default for VideoShape {
    fn default() -> Self {
        Self {
            bitrate_bps: 1_500_000,
            fps: 30,
            simulcast: false,
        }
    }
}

/// Twilio's `bandwidthProfile.video.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BandwidthMode {
    Grid,
    Collaboration,
    Presentation,
}

/// The bandwidth profile every subscribing participant sets after joining
/// (Twilio's `bandwidthProfile.video`): a downlink cap on the video it
/// receives, which the server's allocation must respect, and the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BandwidthProfile {
    /// `maxSubscriptionBitrate`, bits per second of video; `None`: no cap.
    pub max_subscription_bitrate_bps: Option<u64>,
    /// `None`: the server's default (`grid`).
    pub mode: Option<BandwidthMode>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub rooms: u32,
    /// Per room: participants that publish and subscribe.
    pub publishers: u32,
    /// Per room: participants that only subscribe.
    pub subscribers: u32,
    /// What each publisher sends; `None`: no such track.
    pub audio: Option<AudioShape>,
    pub video: Option<VideoShape>,
    /// Set by every participant that subscribes; `None`: none set.
    pub bandwidth_profile: Option<BandwidthProfile>,
    /// Every participant sends REMB, its own estimate of its downlink
    /// (`salon_client::remb`), as a browser does when the server does not
    /// negotiate transport-wide congestion control.
    pub remb: bool,
    /// Per room, how many publishers speak (the first ones to join); the
    /// others publish DTX silence ([`Voice`]). `None`: every publisher
    /// sends 50 packets a second and no audio level, as before speakers
    /// were modelled.
    pub speakers: Option<u32>,
    /// The size every subscriber renders each video track at, reported to
    /// the server as twilio-video's `contentPreferencesMode: 'auto'` does
    /// for its video elements; `None`: none reported.
    pub render: Option<(u32, u32)>,
    /// Joins are spread evenly over this long.
    #[serde(rename = "ramp_s", serialize_with = "seconds")]
    pub ramp: Duration,
    /// After the ramp, the longest wait for every subscription's media
    /// before the window starts anyway.
    #[serde(rename = "settle_s", serialize_with = "seconds")]
    pub settle: Duration,
    /// The measurement window.
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Duration,
    /// Rooms are named `<prefix>-<n>`, participants `<prefix>-<n>-p<k>`
    /// (publishers) and `<prefix>-<n>-s<k>` (subscribers).
    pub prefix: String,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What a participant does in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publishes the plan's tracks and subscribes to the other publishers.
    Publisher,
    /// Publishes nothing, subscribes to every publisher.
    Subscriber,
}

/// One participant of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantPlan {
    /// Position in join order, from 0.
    pub index: usize,
    pub room_index: u32,
    pub room: String,
    pub identity: String,
    pub role: Role,
    /// Tracks to publish (none for subscribers).
    pub audio: Option<AudioShape>,
    pub video: Option<VideoShape>,
    /// To set after joining (everyone subscribes).
    pub bandwidth_profile: Option<BandwidthProfile>,
    /// Send REMB ([`Plan::remb`]).
    pub remb: bool,
    /// With audio and named speakers: whether this publisher speaks.
    pub voice: Option<Voice>,
    /// Render dimensions to report for every video track received.
    pub render: Option<(u32, u32)>,
    /// When to join, from the start of the run.
    pub join_at: Duration,
}

/// Why a plan cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(String);

impl Plan {
    /// A meeting of `publishers` in each of `rooms` rooms, with the default
    /// media (40 kbit/s audio, 1.5 Mbit/s 30 fps video), a 2 s ramp and a
    /// 20 s window.
    pub fn meeting(rooms: u32, publishers: u32) -> Self {
        Self {
            rooms,
            publishers,
            subscribers: 0,
            audio: Some(AudioShape::default()),
            video: Some(VideoShape::default()),
            bandwidth_profile: None,
            remb: false,
            speakers: None,
            render: None,
            ramp: Duration::from_secs(2),
            settle: Duration::from_secs(10),
            duration: Duration::from_secs(20),
            prefix: "lt".into(),
        }
    }

    /// A webinar: one publisher and `subscribers` subscribers per room.
    pub fn webinar(rooms: u32, subscribers: u32) -> Self {
        Self {
            publishers: 1,
            subscribers,
            ..Self::meeting(rooms, 1)
        }
    }

    /// "meeting", "webinar" or "mixed", for reports.
    pub fn scenario(&self) -> &'static str {
        match (self.publishers, self.subscribers) {
            (_, 0) => "meeting",
            (1, _) => "webinar",
            _ => "mixed",
        }
    }

    /// Participants per room.
    pub fn per_room(&self) -> u32 {
        self.publishers.saturating_add(self.subscribers)
    }

    /// Participants in the whole run.
    pub fn total(&self) -> u32 {
        self.rooms.saturating_mul(self.per_room())
    }

    /// Tracks each publisher sends.
    pub fn tracks_per_publisher(&self) -> u32 {
        u32::from(self.audio.is_some()) + u32::from(self.video.is_some())
    }

    /// The video cap each subscriber sets, if any.
    pub fn video_cap(&self) -> Option<u64> {
        self.bandwidth_profile
            .and_then(|p| p.max_subscription_bitrate_bps)
            .filter(|&c| c > 0)
    }

    /// Subscriptions in a room with `publishers` and `subscribers` present:
    /// each publisher receives the others' tracks, each subscriber all.
    pub fn subscriptions_in_room(&self, publishers: u64, subscribers: u64) -> u64 {
        let tracks = u64::from(self.tracks_per_publisher());
        publishers * publishers.saturating_sub(1) * tracks + subscribers * publishers * tracks
    }

    /// Check the plan against the limits.
    pub fn validate(&self) -> Result<(), PlanError> {
        let fail = |m: String| Err(PlanError(m));
        if self.rooms == 0 {
            return fail("--rooms must be at least 1".into());
        }
        if self.publishers == 0 {
            return fail(
                "--publishers must be at least 1: without media there is nothing to measure".into(),
            );
        }
        if self.per_room() < 2 {
            return fail("a room needs at least two participants (publishers + subscribers), or nobody receives anything".into());
        }
        if self.per_room() > MAX_PER_ROOM {
            return fail(format!(
                "{} participants per room is more than this tool's limit of {MAX_PER_ROOM}",
                self.per_room()
            ));
        }
        if u64::from(self.rooms) * u64::from(self.per_room()) > u64::from(MAX_PARTICIPANTS) {
            return fail(format!(
                "{} rooms of {} is more than this tool's limit of {MAX_PARTICIPANTS} participants",
                self.rooms,
                self.per_room()
            ));
        }
        if self.audio.is_none() && self.video.is_none() {
            return fail("publishers need audio or video (or both)".into());
        }
        if let Some(a) = self.audio {
            if !(AudioShape::MIN_BITRATE..=AudioShape::MAX_BITRATE).contains(&a.bitrate_bps) {
                return fail(format!(
                    "audio bitrate {} bit/s is outside {}–{}",
                    a.bitrate_bps,
                    AudioShape::MIN_BITRATE,
                    AudioShape::MAX_BITRATE
                ));
            }
        }
        if let Some(v) = self.video {
            if !(VideoShape::MIN_BITRATE..=VideoShape::MAX_BITRATE).contains(&v.bitrate_bps) {
                return fail(format!(
                    "video bitrate {} bit/s is outside {}–{}",
                    v.bitrate_bps,
                    VideoShape::MIN_BITRATE,
                    VideoShape::MAX_BITRATE
                ));
            }
            if !(1..=VideoShape::MAX_FPS).contains(&v.fps) {
                return fail(format!(
                    "video frame rate {} is outside 1–{}",
                    v.fps,
                    VideoShape::MAX_FPS
                ));
            }
        }
        if let Some(n) = self.speakers {
            if n > self.publishers {
                return fail(format!(
                    "--speakers {n} is more than the {} publishers of a room",
                    self.publishers
                ));
            }
            if self.audio.is_none() {
                return fail("--speakers needs audio: the silent publish DTX audio".into());
            }
        }
        if let Some((w, h)) = self.render {
            let side = 1..=salon_signal::MAX_RENDER_SIDE;
            if !side.contains(&w) || !side.contains(&h) {
                return fail(format!(
                    "render dimensions {w}x{h}: each side must be 1–{}",
                    salon_signal::MAX_RENDER_SIDE
                ));
            }
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return fail(format!(
                "the duration must be more than 0 and at most {} s",
                MAX_DURATION.as_secs()
            ));
        }
        if self.ramp > MAX_RAMP {
            return fail(format!("the ramp may be at most {} s", MAX_RAMP.as_secs()));
        }
        if self.settle > MAX_SETTLE {
            return fail(format!(
                "the settle time may be at most {} s",
                MAX_SETTLE.as_secs()
            ));
        }
        let valid_prefix = !self.prefix.is_empty()
            && self.prefix.len() <= 64
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_prefix {
            return fail(format!(
                "name prefix {:?} must be 1–64 letters, digits, '-' or '_'",
                self.prefix
            ));
        }
        Ok(())
    }

    /// Everyone, in join order: rooms fill in turn (the first publisher of
    /// every room, then the second…), publishers before subscribers, so a
    /// subscriber always finds its room's publishers there. Joins are spread
    /// evenly from 0 to `ramp`.
    pub fn participants(&self) -> Vec<ParticipantPlan> {
        let total = self.total() as usize;
        let mut out = Vec::with_capacity(total);
        for slot in 0..self.per_room() {
            for room_index in 0..self.rooms {
                let index = out.len();
                let room = format!("{}-{room_index}", self.prefix);
                let (role, identity) = if slot < self.publishers {
                    (Role::Publisher, format!("{room}-p{slot}"))
                } else {
                    (
                        Role::Subscriber,
                        format!("{room}-s{}", slot - self.publishers),
                    )
                };
                let join_at = if total > 1 {
                    self.ramp.mul_f64(index as f64 / (total - 1) as f64)
                } else {
                    Duration::ZERO
                };
                let publishes = role == Role::Publisher;
                let voice = self.speakers.filter(|_| publishes).map(|n| {
                    if slot < n {
                        Voice::Speaking
                    } else {
                        Voice::Silent
                    }
                });
                out.push(ParticipantPlan {
                    index,
                    room_index,
                    room,
                    identity,
                    role,
                    audio: self.audio.filter(|_| publishes),
                    video: self.video.filter(|_| publishes),
                    bandwidth_profile: self.bandwidth_profile,
                    remb: self.remb,
                    voice: voice.filter(|_| self.audio.is_some()),
                    render: self.render,
                    join_at,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meeting_is_everyone_publishing_and_subscribing() {
        let plan = Plan::meeting(2, 4);
        plan.validate().unwrap();
        assert_eq!(plan.scenario(), "meeting");
        let people = plan.participants();
        assert_eq!(people.len(), 8);
        assert!(
            people
                .iter()
                .all(|p| p.role == Role::Publisher && p.video.is_some())
        );
        // Rooms fill in turn.
        let rooms: Vec<u32> = people.iter().map(|p| p.room_index).collect();
        assert_eq!(rooms, [0, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(people[0].identity, "lt-0-p0");
        assert_eq!(people[3].identity, "lt-1-p1");
        // 4 × 3 others × 2 tracks per room.
        assert_eq!(plan.subscriptions_in_room(4, 0), 24);
        // The ramp runs from 0 to its end.
        assert_eq!(people[0].join_at, Duration::ZERO);
        assert_eq!(people[7].join_at, Duration::from_secs(2));
    }

    #[test]
    fn named_speakers_are_each_rooms_first_publishers_and_the_rest_are_silent() {
        let plan = Plan {
            speakers: Some(2),
            render: Some((274, 154)),
            ..Plan::meeting(2, 5)
        };
        plan.validate().unwrap();
        let people = plan.participants();
        for room in 0..2 {
            let voices: Vec<_> = people
                .iter()
                .filter(|p| p.room_index == room)
                .map(|p| p.voice)
                .collect();
            let (s, q) = (Some(Voice::Speaking), Some(Voice::Silent));
            assert_eq!(voices, [s, s, q, q, q], "room {room}");
        }
        assert!(people.iter().all(|p| p.render == Some((274, 154))));
        // Without named speakers, nobody's voice is modelled.
        assert!(
            Plan::meeting(1, 3)
                .participants()
                .iter()
                .all(|p| p.voice.is_none())
        );
        // Subscribers publish nothing, so they have no voice.
        let webinar = Plan {
            speakers: Some(1),
            ..Plan::webinar(1, 3)
        };
        let people = webinar.participants();
        assert_eq!(people[0].voice, Some(Voice::Speaking));
        assert!(people[1..].iter().all(|p| p.voice.is_none()));
    }

    #[test]
    fn speakers_and_render_dimensions_are_checked() {
        let refused = |plan: Plan| plan.validate().unwrap_err().to_string();
        let too_many = refused(Plan {
            speakers: Some(5),
            ..Plan::meeting(1, 4)
        });
        assert!(
            too_many.contains("more than the 4 publishers"),
            "{too_many}"
        );
        let mute = refused(Plan {
            speakers: Some(1),
            audio: None,
            ..Plan::meeting(1, 4)
        });
        assert!(mute.contains("needs audio"), "{mute}");
        for render in [(0, 90), (160, 100_000)] {
            let bad = refused(Plan {
                render: Some(render),
                ..Plan::meeting(1, 4)
            });
            assert!(bad.contains("render dimensions"), "{bad}");
        }
    }

    #[test]
    fn a_webinar_puts_the_publisher_first() {
        let plan = Plan::webinar(1, 10);
        plan.validate().unwrap();
        assert_eq!(plan.scenario(), "webinar");
        let people = plan.participants();
        assert_eq!(people[0].role, Role::Publisher);
        assert!(
            people[1..]
                .iter()
                .all(|p| p.role == Role::Subscriber && p.audio.is_none() && p.video.is_none())
        );
        assert_eq!(people[10].identity, "lt-0-s9");
        assert_eq!(plan.subscriptions_in_room(1, 10), 20);
    }

    #[test]
    fn simulcast_is_libwebrtcs_three_layers_of_a_720p_camera() {
        let video = VideoShape {
            simulcast: true,
            ..VideoShape::default()
        };
        let layers: Vec<(&str, u16, u32)> = video
            .layers()
            .iter()
            .map(|l| (l.rid, l.width, l.bitrate_bps))
            .collect();
        assert_eq!(
            layers,
            [
                ("q", 320, 150_000),
                ("h", 640, 500_000),
                ("f", 1280, 1_500_000)
            ]
        );
        assert_eq!(VideoShape::default().layers().len(), 1);
        let small = VideoShape {
            bitrate_bps: 30_000,
            fps: 5,
            simulcast: true,
        };
        assert_eq!(small.layers()[0].bitrate_bps, 8_000);
    }

    #[test]
    fn the_limits_hold() {
        let ok = Plan::meeting(1, 3);
        for (plan, why) in [
            (
                Plan {
                    rooms: 0,
                    ..ok.clone()
                },
                "rooms",
            ),
            (
                Plan {
                    publishers: 0,
                    subscribers: 5,
                    ..ok.clone()
                },
                "publishers",
            ),
            (
                Plan {
                    publishers: 1,
                    subscribers: 0,
                    ..ok.clone()
                },
                "two participants",
            ),
            (
                Plan {
                    rooms: 100,
                    publishers: 30,
                    ..ok.clone()
                },
                "limit of 2000",
            ),
            (
                Plan {
                    audio: None,
                    video: None,
                    ..ok.clone()
                },
                "audio or video",
            ),
            (
                Plan {
                    duration: Duration::ZERO,
                    ..ok.clone()
                },
                "duration",
            ),
            (
                Plan {
                    ramp: Duration::from_secs(3600),
                    ..ok.clone()
                },
                "ramp",
            ),
            (
                Plan {
                    video: Some(VideoShape {
                        bitrate_bps: 1_000,
                        fps: 30,
                        simulcast: false,
                    }),
                    ..ok.clone()
                },
                "video bitrate",
            ),
            (
                Plan {
                    video: Some(VideoShape {
                        bitrate_bps: 100_000,
                        fps: 0,
                        simulcast: false,
                    }),
                    ..ok.clone()
                },
                "frame rate",
            ),
            (
                Plan {
                    prefix: "a b".into(),
                    ..ok.clone()
                },
                "prefix",
            ),
        ] {
            let e = plan.validate().unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
