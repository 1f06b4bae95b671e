//! Dominant speaker detection from RFC 6464 audio levels, with Twilio's
//! behaviour: the speaker holds the floor until someone else clearly takes
//! it; coughs, short noises and "mm-hm"s do not move it, and neither does
//! silence.
//!
//! # The contract
//!
//! One [`DominantSpeaker`] exists per room. It is sans-IO: no sockets, no
//! clock, no `str0m` types.
//!
//! * [`DominantSpeaker::add`] registers an audio track and returns its
//!   [`Voice`], a small `Copy` handle; `K` is what is reported (the
//!   participant's SID, say). [`DominantSpeaker::remove`] ends it.
//! * [`DominantSpeaker::observe`] takes one packet's audio level (0..=127,
//!   −dBov, from the RFC 6464 header extension) and its voice-activity flag
//!   when the sender sets one. This is the packet path: it costs a bounds
//!   check and a few additions — no allocation, no hashing, no time.
//! * [`DominantSpeaker::tick`] closes the current frame of levels and decides,
//!   every [`TICK`] ([`DominantSpeaker::poll_timeout`] says when). It
//!   returns a [`SpeakerChange`] when the dominant speaker changes —
//!   including to nobody, when the holder's track is removed.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use salon_media::speaker::{DominantSpeaker, TICK};
//!
//! let t0 = Instant::now();
//! let mut room = DominantSpeaker::new();
//! let alice = room.add("alice", t0);
//! let _bob = room.add("bob", t0);
//! let mut now = t0;
//! let mut floor = None;
//! for _ in 0..10 {
//!     // Ten 20 ms packets of speech at −20 dBov per tick.
//!     (0..10).for_each(|_| room.observe(alice, 20, Some(true)));
//!     now += TICK;
//!     if let Some(change) = room.tick(now) {
//!         floor = change.dominant;
//!     }
//! }
//! assert_eq!(floor, Some("alice"));
//! ```
//!
//! # The algorithm
//!
//! A level is turned into *loudness above the speaker's own noise*: each
//! voice tracks its noise floor as the quietest packet of the last
//! [`FLOOR_FRAMES`] frames that the sender did not flag as voice (minimum
//! statistics; Jitsi's
//! `DominantSpeakerIdentification` tracks a per-speaker minimum level the
//! same way), never taken as quieter than [`QUIETEST_FLOOR`] so a perfectly
//! silent microphone is no advantage. A packet is *voiced* when the sender's
//! voice-activity flag (if present) says so and it stands [`VOICE_MARGIN`]
//! above the floor. (Browsers set the flag from their own voice activity
//! detector. For a sender that does not, noise that starts suddenly counts
//! as speech until the floor has caught up with it, up to
//! `FLOOR_FRAMES × TICK`; steady noise never does.)
//!
//! Per frame a voice gets a score — the mean over its packets of the voiced
//! loudness (0 for unvoiced ones) — smoothed with a time constant of
//! [`SUSTAIN`] into its *sustained* loudness.
//!
//! A voice is *in a turn* while its voiced frames are separated by pauses
//! shorter than [`MAX_PAUSE`] (the gaps between words); it *qualifies* once
//! the turn holds [`MIN_TURN`] of voiced frames. A cough, a laugh or a
//! short reply is shorter than that, and never qualifies.
//!
//! At each tick, the best qualified challenger (highest sustained loudness)
//! takes the floor when nobody holds it, when the holder is not in a turn
//! any more (they stopped; someone else has been talking for a second), or
//! when its sustained loudness is [`DOMINANCE`] times the holder's (they
//! talk over the holder, clearly louder, for a while). Nothing else moves
//! the floor: in silence it stays with the last speaker, as in Twilio, whose
//! `room.dominantSpeaker` becomes `null` only when that participant leaves.
//! Jitsi's detector (after Volfin and Cohen) compares speakers over
//! immediate, medium and long windows every 300 ms; this one keeps two
//! (the turn, the sustained loudness) and decides every [`TICK`].
//!
//! # Cost
//!
//! [`DominantSpeaker::observe`]: O(1), per packet. [`DominantSpeaker::tick`]:
//! O(voices), 5 times a second. Memory: about 100 bytes per voice plus
//! the key; removed voices' slots are reused.

use std::time::{Duration, Instant};

/// How often [`DominantSpeaker::tick`] wants to run: one frame of levels
/// (ten 20 ms Opus packets).
pub const TICK: Duration = Duration::from_millis(200);
/// Frames over which a voice's noise floor is the quietest packet
/// (16 × 200 ms = 3.2 s).
pub const FLOOR_FRAMES: usize = 16;
/// The quietest noise floor assumed, −dBov: microphones quieter than
/// −70 dBov are treated as −70 dBov.
pub const QUIETEST_FLOOR: u8 = 70;
/// How far above its floor a packet must be to count as speech, dB.
pub const VOICE_MARGIN: u8 = 8;
/// The time constant of the sustained loudness.
pub const SUSTAIN: Duration = Duration::from_secs(2);
/// The longest pause inside a turn (between words, for breath).
pub const MAX_PAUSE: Duration = Duration::from_millis(500);
/// The speech a turn needs before it may take the floor.
pub const MIN_TURN: Duration = Duration::from_secs(1);
/// How much louder (sustained) a challenger must be to take the floor from
/// a holder who is still talking.
pub const DOMINANCE: f32 = 1.5;

/// Audio levels run from 0 (0 dBov, loudest) to 127 (−127 dBov, silence).
const SILENCE: u8 = 127;

/// A registered audio track. `Copy`; a handle to a removed voice is ignored
/// (its slot's generation moved on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Voice {
    index: u32,
    generation: u32,
}

/// The dominant speaker changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerChange<K> {
    /// The new dominant speaker; `None` when the holder left and nobody has
    /// taken the floor yet.
    pub dominant: Option<K>,
}

/// Dominant speaker detection for one room. See the module docs.
#[derive(Debug)]
pub struct DominantSpeaker<K> {
    slots: Vec<Slot<K>>,
    free: Vec<u32>,
    holder: Option<u32>,
    /// The holder's key changed without a report yet (it left).
    unreported: bool,
    /// The key last reported, to report only changes of key.
    reported: Option<K>,
    last_tick: Option<Instant>,
    voices: usize,
}

#[derive(Debug)]
struct Slot<K> {
    key: Option<K>,
    generation: u32,
    /// The current frame, filled per packet.
    packets: u32,
    voiced: u32,
    loudness_sum: u32,
    quietest: u8,
    /// The quietest packet not flagged as voice of recent frames, as
    /// loudness, for the noise floor.
    minima: [u8; FLOOR_FRAMES],
    minima_len: u8,
    minima_next: u8,
    /// Loudness of the noise floor: 127 − its level.
    floor: u8,
    sustained: f32,
    /// When the current turn started, if in one.
    turn_start: Option<Instant>,
    turn_voiced: Duration,
    last_voiced: Option<Instant>,
}

impl<K> Slot<K> {
    fn new(key: K, generation: u32) -> Self {
        Self {
            key: Some(key),
            generation,
            packets: 0,
            voiced: 0,
            loudness_sum: 0,
            quietest: u8::MAX,
            minima: [0; FLOOR_FRAMES],
            minima_len: 0,
            minima_next: 0,
            floor: SILENCE - QUIETEST_FLOOR,
            sustained: 0.0,
            turn_start: None,
            turn_voiced: Duration::ZERO,
            last_voiced: None,
        }
    }

    fn qualifies(&self) -> bool {
        self.turn_start.is_some() && self.turn_voiced >= MIN_TURN
    }

    /// Close the frame of `dt` ending at `now`.
    fn close_frame(&mut self, now: Instant, dt: Duration) {
        let score = if self.packets > 0 {
            self.loudness_sum as f32 / self.packets as f32
        } else {
            0.0
        };
        let alpha = dt.as_secs_f32() / (SUSTAIN.as_secs_f32() + dt.as_secs_f32());
        self.sustained += alpha * (score - self.sustained);

        let voiced_frame = self.packets > 0 && self.voiced * 2 >= self.packets;
        if voiced_frame {
            let paused = self
                .last_voiced
                .is_none_or(|at| now.saturating_duration_since(at) > MAX_PAUSE + dt);
            if self.turn_start.is_none() || paused {
                self.turn_start = Some(now);
                self.turn_voiced = Duration::ZERO;
            }
            self.turn_voiced += dt;
            self.last_voiced = Some(now);
        } else if self
            .last_voiced
            .is_none_or(|at| now.saturating_duration_since(at) >= MAX_PAUSE)
        {
            self.turn_start = None;
            self.turn_voiced = Duration::ZERO;
        }

        if self.quietest != u8::MAX {
            self.minima[usize::from(self.minima_next)] = self.quietest;
            self.minima_next = (self.minima_next + 1) % FLOOR_FRAMES as u8;
            self.minima_len = (self.minima_len + 1).min(FLOOR_FRAMES as u8);
            let quietest = self.minima[..usize::from(self.minima_len)]
                .iter()
                .copied()
                .min()
                .unwrap_or(0);
            self.floor = quietest.max(SILENCE - QUIETEST_FLOOR);
        }
        self.packets = 0;
        self.voiced = 0;
        self.loudness_sum = 0;
        self.quietest = u8::MAX;
    }
}

impl<K> Default for DominantSpeaker<K> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            holder: None,
            unreported: false,
            reported: None,
            last_tick: None,
            voices: 0,
        }
    }
}

impl<K: Clone + Eq> DominantSpeaker<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register an audio track whose speaker is reported as `key`. Two
    /// voices may share a key (a participant with two microphones); the
    /// floor moves between them without a report.
    pub fn add(&mut self, key: K, now: Instant) -> Voice {
        if self.last_tick.is_none() {
            self.last_tick = Some(now);
        }
        self.voices += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            let generation = slot.generation;
            *slot = Slot::new(key, generation);
            return Voice { index, generation };
        }
        let index = self.slots.len() as u32;
        self.slots.push(Slot::new(key, 0));
        Voice {
            index,
            generation: 0,
        }
    }

    /// The track is gone. If it held the floor, the floor is empty until
    /// someone takes it; the next [`Self::tick`] reports the change.
    pub fn remove(&mut self, voice: Voice) {
        let Some(slot) = self.slot_mut(voice) else {
            return;
        };
        slot.key = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(voice.index);
        self.voices -= 1;
        if self.holder == Some(voice.index) {
            self.holder = None;
            self.unreported = true;
        }
    }

    /// One packet's audio level: 0..=127 −dBov (values above 127 are taken
    /// as silence) and the voice-activity flag if the sender sets one.
    /// O(1), no allocation: runs on the packet path.
    pub fn observe(&mut self, voice: Voice, level: u8, voice_activity: Option<bool>) {
        let Some(slot) = self.slot_mut(voice) else {
            return;
        };
        let loudness = SILENCE - level.min(SILENCE);
        let above = loudness.saturating_sub(slot.floor);
        slot.packets = slot.packets.saturating_add(1);
        if voice_activity != Some(true) {
            // Only what the sender does not call voice is evidence of noise.
            slot.quietest = slot.quietest.min(loudness);
        }
        if voice_activity.unwrap_or(true) && above >= VOICE_MARGIN {
            slot.voiced = slot.voiced.saturating_add(1);
            slot.loudness_sum = slot.loudness_sum.saturating_add(u32::from(above));
        }
    }

    /// Close the frame and decide. Call every [`TICK`]; a late call counts
    /// the frame as long as it was.
    pub fn tick(&mut self, now: Instant) -> Option<SpeakerChange<K>> {
        let since = self.last_tick.unwrap_or(now);
        self.last_tick = Some(now);
        let dt = now.saturating_duration_since(since);
        if dt.is_zero() {
            return None;
        }
        for slot in self.slots.iter_mut().filter(|s| s.key.is_some()) {
            slot.close_frame(now, dt);
        }

        let challenger = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, s)| s.key.is_some() && Some(*i as u32) != self.holder && s.qualifies())
            .max_by(|(_, a), (_, b)| a.sustained.total_cmp(&b.sustained))
            .map(|(i, s)| (i as u32, s.sustained));
        if let Some((index, loudness)) = challenger {
            let takes = match self.holder.map(|h| &self.slots[h as usize]) {
                None => true,
                Some(holder) if holder.turn_start.is_none() => true,
                Some(holder) => loudness >= DOMINANCE * holder.sustained,
            };
            if takes {
                self.holder = Some(index);
                self.unreported = true;
            }
        }

        if !self.unreported {
            return None;
        }
        self.unreported = false;
        let dominant = self.dominant().cloned();
        if dominant == self.reported {
            return None;
        }
        self.reported = dominant.clone();
        Some(SpeakerChange { dominant })
    }

    /// When [`Self::tick`] should run next: `None` while there is no voice.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.voices == 0 {
            return None;
        }
        self.last_tick.map(|t| t + TICK)
    }

    /// Who holds the floor now.
    pub fn dominant(&self) -> Option<&K> {
        self.holder
            .and_then(|h| self.slots.get(h as usize))
            .and_then(|s| s.key.as_ref())
    }

    fn slot_mut(&mut self, voice: Voice) -> Option<&mut Slot<K>> {
        self.slots
            .get_mut(voice.index as usize)
            .filter(|s| s.generation == voice.generation && s.key.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKET: Duration = Duration::from_millis(20);
    const SEC: Duration = Duration::from_secs(1);

    /// What one participant's microphone sends in a 20 ms slot.
    #[derive(Clone, Copy)]
    enum Sound {
        /// Nothing (muted, or DTX between packets).
        Nothing,
        /// Digital silence, as Chrome sends it.
        Silence,
        /// Room noise without a voice-activity flag: a steady level.
        Noise(u8),
        /// Speech at this level, with the flag set.
        Speech(u8),
        /// A cough: very loud, flagged as voice.
        Cough,
        /// A steady tone flagged as voice (a test's fake microphone).
        Tone(u8),
    }

    /// A room of voices and a fake clock, fed 20 ms packets.
    struct Room {
        detector: DominantSpeaker<&'static str>,
        voices: Vec<(&'static str, Voice)>,
        now: Instant,
        next_tick: Instant,
        changes: Vec<(Duration, Option<&'static str>)>,
        start: Instant,
    }

    impl Room {
        fn new(names: &[&'static str]) -> Self {
            let now = Instant::now();
            let mut detector = DominantSpeaker::new();
            let voices = names.iter().map(|n| (*n, detector.add(*n, now))).collect();
            Self {
                detector,
                voices,
                now,
                next_tick: now + TICK,
                changes: Vec::new(),
                start: now,
            }
        }

        /// Play `pattern(name, time)` for `duration`.
        fn play(&mut self, duration: Duration, pattern: impl Fn(&str, Duration) -> Sound) {
            let end = self.now + duration;
            while self.now < end {
                let at = self.now - self.start;
                for (name, voice) in &self.voices {
                    match pattern(name, at) {
                        Sound::Nothing => {}
                        Sound::Silence => self.detector.observe(*voice, 127, Some(false)),
                        Sound::Noise(level) => self.detector.observe(*voice, level, None),
                        Sound::Speech(level) => {
                            // Words of 400 ms, 100 ms pauses.
                            if at.as_millis() % 500 < 400 {
                                self.detector.observe(*voice, level, Some(true));
                            } else {
                                self.detector.observe(*voice, 127, Some(false));
                            }
                        }
                        Sound::Cough => self.detector.observe(*voice, 5, Some(true)),
                        Sound::Tone(level) => self.detector.observe(*voice, level, Some(true)),
                    }
                }
                self.now += PACKET;
                if self.now >= self.next_tick {
                    if let Some(change) = self.detector.tick(self.now) {
                        self.changes.push((self.now - self.start, change.dominant));
                    }
                    self.next_tick = self.detector.poll_timeout().unwrap_or(self.now + TICK);
                }
            }
        }

        fn dominant(&self) -> Option<&'static str> {
            self.detector.dominant().copied()
        }
    }

    fn only(speaker: &'static str, level: u8) -> impl Fn(&str, Duration) -> Sound {
        move |name, _| {
            if name == speaker {
                Sound::Speech(level)
            } else {
                Sound::Silence
            }
        }
    }

    #[test]
    fn one_speaker_takes_the_floor_after_a_second_of_speech() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 25));
        assert_eq!(room.changes.len(), 1);
        let (at, who) = room.changes[0];
        assert_eq!(who, Some("alice"));
        assert!(at >= MIN_TURN && at <= 2 * SEC, "took the floor at {at:?}");
    }

    #[test]
    fn a_cough_does_not_take_the_floor_from_a_speaker_or_from_silence() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 25));
        // Bob coughs (400 ms) while Alice talks, then again in silence.
        room.play(4 * SEC, |name, at| match name {
            "alice" => Sound::Speech(25),
            _ if at.as_millis() % 2000 < 400 => Sound::Cough,
            _ => Sound::Silence,
        });
        room.play(4 * SEC, |name, at| match name {
            "bob" if at.as_millis() % 2000 < 400 => Sound::Cough,
            _ => Sound::Silence,
        });
        assert_eq!(room.dominant(), Some("alice"));
        assert_eq!(room.changes.len(), 1);
    }

    #[test]
    fn short_replies_while_someone_talks_do_not_move_the_floor() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 30));
        // "Mm-hm", "yes": 600 ms replies every 2 s, as loud as Alice.
        room.play(10 * SEC, |name, at| match name {
            "alice" => Sound::Speech(30),
            _ if at.as_millis() % 2000 < 600 => Sound::Speech(30),
            _ => Sound::Silence,
        });
        assert_eq!(room.dominant(), Some("alice"));
    }

    #[test]
    fn the_floor_follows_turns_of_conversation() {
        let mut room = Room::new(&["alice", "bob", "carol"]);
        room.play(5 * SEC, only("alice", 25));
        room.play(500 * Duration::from_millis(1), |_, _| Sound::Silence);
        room.play(5 * SEC, only("bob", 35)); // a quieter speaker still takes a free floor
        room.play(5 * SEC, only("carol", 25));
        room.play(5 * SEC, only("alice", 25));
        let who: Vec<_> = room.changes.iter().map(|(_, w)| *w).collect();
        assert_eq!(
            who,
            [Some("alice"), Some("bob"), Some("carol"), Some("alice")]
        );
        // Each hand-over takes about a second of the new speaker's speech.
        for window in room.changes.windows(2) {
            let gap = window[1].0 - window[0].0;
            assert!(gap > 4 * SEC && gap < 7 * SEC, "{gap:?}");
        }
    }

    #[test]
    fn silence_leaves_the_floor_with_the_last_speaker() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 25));
        room.play(60 * SEC, |_, _| Sound::Silence);
        room.play(60 * SEC, |_, _| Sound::Nothing);
        assert_eq!(room.dominant(), Some("alice"));
        assert_eq!(room.changes.len(), 1);
    }

    #[test]
    fn someone_clearly_louder_for_a_while_takes_the_floor_over_the_speaker() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 45));
        // Bob talks over Alice, 20 dB louder, for several seconds.
        room.play(5 * SEC, |name, _| match name {
            "alice" => Sound::Speech(45),
            _ => Sound::Speech(25),
        });
        assert_eq!(room.dominant(), Some("bob"));
        // Speaking over each other equally loud changes nothing.
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 30));
        room.play(20 * SEC, |_, _| Sound::Speech(30));
        assert_eq!(room.dominant(), Some("alice"));
    }

    #[test]
    fn steady_room_noise_without_a_voice_flag_is_not_speech() {
        // A microphone in a noisy room, from a sender that sets no
        // voice-activity flag: −40 dBov all the time.
        let mut room = Room::new(&["alice", "fan"]);
        room.play(3 * SEC, |name, _| match name {
            "fan" => Sound::Noise(40),
            _ => Sound::Speech(25),
        });
        room.play(20 * SEC, |name, _| match name {
            "fan" => Sound::Noise(40),
            _ => Sound::Silence,
        });
        assert_eq!(room.dominant(), Some("alice"));
        assert_eq!(room.changes.len(), 1);
    }

    #[test]
    fn a_steady_tone_the_sender_calls_voice_is_speech() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, |name, _| match name {
            "bob" => Sound::Tone(30),
            _ => Sound::Nothing,
        });
        assert_eq!(room.dominant(), Some("bob"));
    }

    #[test]
    fn absurd_levels_are_clamped_to_silence() {
        let mut room = Room::new(&["alice", "bob"]);
        let bob = room.voices[1].1;
        for _ in 0..500 {
            room.detector.observe(bob, 255, Some(true));
            room.detector.observe(bob, 200, None);
        }
        room.play(3 * SEC, only("alice", 25));
        assert_eq!(room.dominant(), Some("alice"));
    }

    #[test]
    fn when_the_speaker_leaves_the_floor_is_empty_until_someone_speaks() {
        let mut room = Room::new(&["alice", "bob"]);
        room.play(3 * SEC, only("alice", 25));
        let alice = room.voices[0].1;
        room.detector.remove(alice);
        room.voices.remove(0);
        room.detector.observe(alice, 10, Some(true)); // a stale handle: ignored
        room.play(TICK, |_, _| Sound::Silence);
        assert_eq!(room.changes.last(), Some(&(room.now - room.start, None)));
        room.play(3 * SEC, only("bob", 25));
        assert_eq!(room.dominant(), Some("bob"));
    }

    #[test]
    fn a_reused_slot_does_not_inherit_the_old_voice() {
        let now = Instant::now();
        let mut detector = DominantSpeaker::new();
        let alice = detector.add("alice", now);
        detector.remove(alice);
        let bob = detector.add("bob", now);
        assert_ne!(alice, bob);
        for _ in 0..100 {
            detector.observe(alice, 10, Some(true));
        }
        assert_eq!(detector.tick(now + TICK), None);
        assert_eq!(detector.poll_timeout(), Some(now + 2 * TICK));
        detector.remove(bob);
        assert_eq!(detector.poll_timeout(), None);
    }
}
