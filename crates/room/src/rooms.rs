//! [`Rooms`]: every room in progress on this server, and the rules they keep.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use salon_sid::{ParticipantSid, RoomSid, TrackSid};

use crate::error::RoomError;
use crate::event::{DisconnectReason, EndReason, Event, NetworkQualityDetail, TrackKind};
use crate::names;
use crate::settings::{Config, RoomRequest, RoomSettings};

/// How a joiner names the room it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRef {
    /// A room SID: joins only that room, and only while it is in progress.
    Sid(RoomSid),
    /// A unique name: joins the room of that name in progress, or creates one
    /// (ad-hoc creation) when there is none and the configuration allows it.
    Name(String),
}

impl RoomRef {
    /// `RM…` SIDs are SIDs; anything else is a name.
    pub fn parse(text: &str) -> Self {
        match text.parse() {
            Ok(sid) => RoomRef::Sid(sid),
            Err(_) => RoomRef::Name(text.to_owned()),
        }
    }
}

/// A request to join a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub room: RoomRef,
    /// SID for the new participant (the caller makes it; the core does no I/O,
    /// randomness included).
    pub participant: ParticipantSid,
    pub identity: String,
    /// Subscribe to every track of every other participant, now and later.
    pub auto_subscribe: bool,
    /// SID for the room if this join creates it ad hoc.
    pub new_room: RoomSid,
}

/// The outcome of a successful [`Rooms::join`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub room: RoomSid,
    /// Whether the join created the room.
    pub created: bool,
    /// The older connection with the same identity that this join replaced.
    pub replaced: Option<ParticipantSid>,
}

/// A track a participant publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    sid: TrackSid,
    name: String,
    kind: TrackKind,
    enabled: bool,
    /// The publisher's priority: `low`, `standard` (until it says) or `high`.
    priority: &'static str,
}

impl Track {
    pub fn sid(&self) -> TrackSid {
        self.sid
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> TrackKind {
        self.kind
    }
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    pub fn priority(&self) -> &'static str {
        self.priority
    }
}

/// One connection of one identity to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    sid: ParticipantSid,
    identity: String,
    connected_at: Instant,
    deadline: Instant,
    auto_subscribe: bool,
    tracks: Vec<Track>,
    /// Tracks of others this participant receives, with their publishers.
    subscriptions: Vec<(TrackSid, ParticipantSid)>,
    /// The network quality level (0–5) last measured and its detail, if
    /// measured yet.
    network_quality: Option<(u8, NetworkQualityDetail)>,
}

impl Participant {
    /// The network quality level (0–5) last measured and its detail, for
    /// a joiner to start from (changes come as
    /// [`Event::NetworkQualityChanged`]).
    pub fn network_quality(&self) -> Option<(u8, NetworkQualityDetail)> {
        self.network_quality
    }
    pub fn sid(&self) -> ParticipantSid {
        self.sid
    }
    pub fn identity(&self) -> &str {
        &self.identity
    }
    pub fn connected_at(&self) -> Instant {
        self.connected_at
    }
    /// When `max_participant_duration` runs out for this participant.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
    pub fn auto_subscribe(&self) -> bool {
        self.auto_subscribe
    }
    /// Published tracks, in publication order.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }
    pub fn track(&self, sid: TrackSid) -> Option<&Track> {
        self.tracks.iter().find(|t| t.sid == sid)
    }
    /// Whether this participant receives `track`.
    pub fn is_subscribed(&self, track: TrackSid) -> bool {
        self.subscriptions.iter().any(|(t, _)| *t == track)
    }
    /// Tracks this participant receives, with their publishers.
    pub fn subscriptions(&self) -> impl Iterator<Item = (TrackSid, ParticipantSid)> + '_ {
        self.subscriptions.iter().copied()
    }
}

/// A room in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    sid: RoomSid,
    name: String,
    settings: RoomSettings,
    created_at: Instant,
    /// In join order. Rooms hold at most a few hundred participants, so a
    /// vector searched linearly beats a map here.
    participants: Vec<Participant>,
    /// Whether anyone has ever joined: decides which timeout applies when
    /// the room is empty.
    ever_joined: bool,
    /// The armed empty- or unused-room timer, if the room is empty.
    empty_since_deadline: Option<Instant>,
    /// Whether some track of the room is being recorded (as the recording
    /// controller last said).
    recording: bool,
    /// The dominant speaker the media server last named.
    dominant_speaker: Option<ParticipantSid>,
}

impl Room {
    pub fn sid(&self) -> RoomSid {
        self.sid
    }
    /// The unique name (the SID when none was given).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }
    pub fn created_at(&self) -> Instant {
        self.created_at
    }
    /// Whether some track of the room is being recorded.
    pub fn recording(&self) -> bool {
        self.recording
    }
    /// The dominant speaker, if one was named and is still here.
    pub fn dominant_speaker(&self) -> Option<ParticipantSid> {
        self.dominant_speaker
            .filter(|p| self.participant(*p).is_some())
    }
    /// Connected participants, in join order.
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }
    pub fn participant(&self, sid: ParticipantSid) -> Option<&Participant> {
        self.participants.iter().find(|p| p.sid == sid)
    }
    pub fn participant_by_identity(&self, identity: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.identity == identity)
    }
    /// When the room will end for being empty or unused, if it is empty.
    pub fn closes_at(&self) -> Option<Instant> {
        self.empty_since_deadline
    }
    /// The publisher of `track`, if anyone in this room publishes it.
    pub fn publisher_of(&self, track: TrackSid) -> Option<&Participant> {
        self.participants.iter().find(|p| p.track(track).is_some())
    }

    fn index_of(&self, sid: ParticipantSid) -> Option<usize> {
        self.participants.iter().position(|p| p.sid == sid)
    }
}

/// What a timer is for. Ordered so the timer set is deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The room's empty- or unused-room timeout.
    Room(RoomSid),
    /// A participant's `max_participant_duration`.
    Participant(ParticipantSid),
}

/// The room `participant` is in, and its index there. A free function over
/// the two fields it needs, so callers can still push to `events` while they
/// hold the room.
fn locate<'a>(
    where_is: &HashMap<ParticipantSid, RoomSid>,
    rooms: &'a mut BTreeMap<RoomSid, Room>,
    participant: ParticipantSid,
) -> Result<(RoomSid, &'a mut Room, usize), RoomError> {
    let not_found = || RoomError::ParticipantNotFound(participant);
    let room_sid = *where_is.get(&participant).ok_or_else(not_found)?;
    let room = rooms.get_mut(&room_sid).ok_or_else(not_found)?;
    let index = room.index_of(participant).ok_or_else(not_found)?;
    Ok((room_sid, room, index))
}

/// Every room in progress on this server. See the crate docs for the contract.
#[derive(Debug)]
pub struct Rooms {
    config: Config,
    rooms: BTreeMap<RoomSid, Room>,
    by_name: HashMap<String, RoomSid>,
    where_is: HashMap<ParticipantSid, RoomSid>,
    timers: BTreeSet<(Instant, Timer)>,
    events: VecDeque<Event>,
}

impl Rooms {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            rooms: BTreeMap::new(),
            by_name: HashMap::new(),
            where_is: HashMap::new(),
            timers: BTreeSet::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- queries -------------------------------------------------------

    /// A room in progress, by SID.
    pub fn room(&self, sid: RoomSid) -> Option<&Room> {
        self.rooms.get(&sid)
    }

    /// A room in progress, by unique name.
    pub fn room_by_name(&self, name: &str) -> Option<&Room> {
        self.by_name.get(name).and_then(|sid| self.rooms.get(sid))
    }

    /// Every room in progress, in SID order.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }

    /// A connected participant and its room.
    pub fn participant(&self, sid: ParticipantSid) -> Option<(&Room, &Participant)> {
        let room = self.rooms.get(self.where_is.get(&sid)?)?;
        Some((room, room.participant(sid)?))
    }

    /// How many participants are connected, across all rooms.
    pub fn participant_count(&self) -> usize {
        self.where_is.len()
    }

    // ---- time ----------------------------------------------------------

    /// When [`Rooms::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Fire every timer due at `now`: end empty and unused rooms, disconnect
    /// participants whose maximum duration ran out.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Room(sid) => {
                    let Some(room) = self.rooms.get_mut(&sid) else {
                        continue;
                    };
                    room.empty_since_deadline = None;
                    let reason = if room.ever_joined {
                        EndReason::EmptyRoomTimeout
                    } else {
                        EndReason::UnusedRoomTimeout
                    };
                    self.end_room(now, sid, reason);
                }
                Timer::Participant(sid) => {
                    self.remove_participant(now, sid, DisconnectReason::MaxDurationExceeded);
                }
            }
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- rooms ---------------------------------------------------------

    /// Create a room. Fails with 53113 if its unique name is already taken
    /// by a room in progress, or with the code of the first bad setting.
    pub fn create(
        &mut self,
        now: Instant,
        sid: RoomSid,
        request: &RoomRequest,
    ) -> Result<&Room, RoomError> {
        let settings = self.config.settle(request)?;
        let name = match request.unique_name.as_deref() {
            None | Some("") => sid.to_string(),
            Some(name) => {
                names::check(name).map_err(RoomError::room_name)?;
                // A name that is another room's SID would make REST paths
                // (which accept either) ambiguous.
                if RoomSid::has_prefix(name) && name.parse::<RoomSid>().is_ok_and(|s| s != sid) {
                    return Err(RoomError::RoomNameInvalid);
                }
                name.to_owned()
            }
        };
        if self.by_name.contains_key(&name) || self.rooms.contains_key(&sid) {
            return Err(RoomError::RoomExists(names::excerpt(&name)));
        }
        let closes_at = now + settings.unused_room_timeout;
        self.timers.insert((closes_at, Timer::Room(sid)));
        self.by_name.insert(name.clone(), sid);
        self.events.push_back(Event::RoomCreated {
            room: sid,
            name: name.clone(),
            settings: settings.clone(),
        });
        let room = Room {
            sid,
            name,
            settings,
            created_at: now,
            participants: Vec::new(),
            ever_joined: false,
            empty_since_deadline: Some(closes_at),
            recording: false,
            dominant_speaker: None,
        };
        Ok(self.rooms.entry(sid).or_insert(room))
    }

    /// End a room now: everyone in it is disconnected with 53118.
    pub fn complete(&mut self, now: Instant, sid: RoomSid) -> Result<(), RoomError> {
        if !self.rooms.contains_key(&sid) {
            return Err(RoomError::RoomNotFound(sid.to_string()));
        }
        self.end_room(now, sid, EndReason::Completed);
        Ok(())
    }

    /// End every room, for a graceful shutdown.
    pub fn shutdown(&mut self, now: Instant) {
        let sids: Vec<RoomSid> = self.rooms.keys().copied().collect();
        for sid in sids {
            self.end_room(now, sid, EndReason::Shutdown);
        }
    }

    fn end_room(&mut self, now: Instant, sid: RoomSid, reason: EndReason) {
        let participant_reason = match reason {
            EndReason::Shutdown | EndReason::NodeFailed => DisconnectReason::Shutdown,
            _ => DisconnectReason::RoomCompleted,
        };
        let members: Vec<ParticipantSid> = match self.rooms.get(&sid) {
            Some(room) => room.participants.iter().map(|p| p.sid).collect(),
            None => return,
        };
        for participant in members {
            self.remove_participant(now, participant, participant_reason);
        }
        let Some(room) = self.rooms.remove(&sid) else {
            return;
        };
        if let Some(at) = room.empty_since_deadline {
            self.timers.remove(&(at, Timer::Room(sid)));
        }
        self.by_name.remove(&room.name);
        self.events
            .push_back(Event::RoomEnded { room: sid, reason });
    }

    // ---- participants --------------------------------------------------

    /// Admit a participant. A room named by SID must be in progress (53106);
    /// a room named by name is created if missing and ad-hoc creation is on.
    /// An older connection with the same identity is disconnected (53205)
    /// before the capacity check, so a reconnecting user is never locked out
    /// of a full room by their own stale connection.
    pub fn join(&mut self, now: Instant, join: Join) -> Result<Admission, RoomError> {
        names::check(&join.identity).map_err(RoomError::identity)?;
        if self.where_is.contains_key(&join.participant) {
            return Err(RoomError::AlreadyConnected(join.participant));
        }
        let (room_sid, created) = match &join.room {
            RoomRef::Sid(sid) if self.rooms.contains_key(sid) => (*sid, false),
            RoomRef::Sid(sid) => return Err(RoomError::RoomNotFound(sid.to_string())),
            RoomRef::Name(name) => match self.by_name.get(name) {
                Some(sid) => (*sid, false),
                None if self.config.ad_hoc_rooms => {
                    let request = RoomRequest {
                        unique_name: Some(name.clone()),
                        status_callback: self.config.ad_hoc_status_callback.clone(),
                        ..RoomRequest::default()
                    };
                    if name.is_empty() {
                        return Err(RoomError::RoomNameInvalid);
                    }
                    (self.create(now, join.new_room, &request)?.sid, true)
                }
                None => return Err(RoomError::RoomNotFound(names::excerpt(name))),
            },
        };

        let replaced = self.rooms[&room_sid]
            .participant_by_identity(&join.identity)
            .map(|p| p.sid);
        if let Some(old) = replaced {
            self.remove_participant(now, old, DisconnectReason::DuplicateIdentity);
        }

        let room = self
            .rooms
            .get_mut(&room_sid)
            .ok_or(RoomError::RoomNotFound(room_sid.to_string()))?;
        let max_participants = room.settings.max_participants;
        if room.participants.len() >= max_participants as usize {
            return Err(RoomError::RoomFull {
                room: room_sid,
                max_participants,
            });
        }
        if let Some(at) = room.empty_since_deadline.take() {
            self.timers.remove(&(at, Timer::Room(room_sid)));
        }
        room.ever_joined = true;
        let deadline = now + room.settings.max_participant_duration;
        let mut participant = Participant {
            sid: join.participant,
            identity: join.identity.clone(),
            connected_at: now,
            deadline,
            auto_subscribe: join.auto_subscribe,
            tracks: Vec::new(),
            subscriptions: Vec::new(),
            network_quality: None,
        };
        self.events.push_back(Event::ParticipantConnected {
            room: room_sid,
            participant: join.participant,
            identity: join.identity,
        });
        if join.auto_subscribe {
            for publisher in &room.participants {
                for track in &publisher.tracks {
                    participant.subscriptions.push((track.sid, publisher.sid));
                    self.events.push_back(Event::Subscribed {
                        room: room_sid,
                        subscriber: join.participant,
                        publisher: publisher.sid,
                        track: track.sid,
                    });
                }
            }
        }
        room.participants.push(participant);
        self.where_is.insert(join.participant, room_sid);
        self.timers
            .insert((deadline, Timer::Participant(join.participant)));
        Ok(Admission {
            room: room_sid,
            created,
            replaced,
        })
    }

    /// Remove a participant from its room, for `reason`.
    pub fn disconnect(
        &mut self,
        now: Instant,
        participant: ParticipantSid,
        reason: DisconnectReason,
    ) -> Result<(), RoomError> {
        if self.remove_participant(now, participant, reason) {
            Ok(())
        } else {
            Err(RoomError::ParticipantNotFound(participant))
        }
    }

    fn remove_participant(
        &mut self,
        now: Instant,
        sid: ParticipantSid,
        reason: DisconnectReason,
    ) -> bool {
        let Some(room_sid) = self.where_is.remove(&sid) else {
            return false;
        };
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return false;
        };
        let Some(index) = room.index_of(sid) else {
            return false;
        };
        let gone = room.participants.remove(index);
        self.timers
            .remove(&(gone.deadline, Timer::Participant(sid)));
        // Subscriptions to the leaver's tracks end with it (implied by the event).
        for other in &mut room.participants {
            other
                .subscriptions
                .retain(|(_, publisher)| *publisher != sid);
        }
        if room.participants.is_empty() {
            let at = now + room.settings.empty_room_timeout;
            room.empty_since_deadline = Some(at);
            self.timers.insert((at, Timer::Room(room_sid)));
        }
        self.events.push_back(Event::ParticipantDisconnected {
            room: room_sid,
            participant: sid,
            identity: gone.identity,
            reason,
        });
        true
    }

    // ---- tracks --------------------------------------------------------

    /// Publish a track. Everyone else in the room who subscribes
    /// automatically is subscribed to it.
    pub fn publish(
        &mut self,
        participant: ParticipantSid,
        track: TrackSid,
        name: &str,
        kind: TrackKind,
        enabled: bool,
    ) -> Result<(), RoomError> {
        names::check(name).map_err(RoomError::track_name)?;
        let (room_sid, room, index) = locate(&self.where_is, &mut self.rooms, participant)?;
        if room.publisher_of(track).is_some() {
            return Err(RoomError::TrackExists(track));
        }
        let publisher = &mut room.participants[index];
        if publisher.tracks.iter().any(|t| t.name == name) {
            return Err(RoomError::TrackNameDuplicated(names::excerpt(name)));
        }
        publisher.tracks.push(Track {
            sid: track,
            name: name.to_owned(),
            kind,
            enabled,
            priority: "standard",
        });
        self.events.push_back(Event::TrackPublished {
            room: room_sid,
            participant,
            track,
            name: name.to_owned(),
            kind,
            enabled,
        });
        for other in &mut room.participants {
            if other.sid != participant && other.auto_subscribe {
                other.subscriptions.push((track, participant));
                self.events.push_back(Event::Subscribed {
                    room: room_sid,
                    subscriber: other.sid,
                    publisher: participant,
                    track,
                });
            }
        }
        Ok(())
    }

    /// Stop publishing a track; its subscriptions end first.
    pub fn unpublish(
        &mut self,
        participant: ParticipantSid,
        track: TrackSid,
    ) -> Result<(), RoomError> {
        let (room_sid, room, index) = locate(&self.where_is, &mut self.rooms, participant)?;
        let publisher = &mut room.participants[index];
        let position = publisher
            .tracks
            .iter()
            .position(|t| t.sid == track)
            .ok_or(RoomError::TrackNotFound(track))?;
        publisher.tracks.remove(position);
        for other in &mut room.participants {
            if let Some(i) = other.subscriptions.iter().position(|(t, _)| *t == track) {
                other.subscriptions.remove(i);
                self.events.push_back(Event::Unsubscribed {
                    room: room_sid,
                    subscriber: other.sid,
                    publisher: participant,
                    track,
                });
            }
        }
        self.events.push_back(Event::TrackUnpublished {
            room: room_sid,
            participant,
            track,
        });
        Ok(())
    }

    /// The media server found a new dominant speaker in `room` (`None`:
    /// the last one left). Ignored for a room not in progress or a
    /// participant not in it.
    pub fn set_dominant_speaker(&mut self, room: RoomSid, participant: Option<ParticipantSid>) {
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        if participant.is_some_and(|p| state.participant(p).is_none()) {
            return;
        }
        state.dominant_speaker = participant;
        self.events
            .push_back(Event::DominantSpeakerChanged { room, participant });
    }

    /// The media server decided which simulcast layers of `participant`'s
    /// video `track` it should send. Ignored unless it still publishes the
    /// track.
    pub fn set_publisher_layers(
        &mut self,
        participant: ParticipantSid,
        track: TrackSid,
        layers: Vec<(Option<String>, bool)>,
    ) {
        let Some(room) = self.where_is.get(&participant).copied() else {
            return;
        };
        let publishes = self
            .rooms
            .get(&room)
            .and_then(|r| r.participant(participant))
            .is_some_and(|p| p.tracks.iter().any(|t| t.sid == track));
        if publishes {
            self.events.push_back(Event::PublisherLayers {
                room,
                participant,
                track,
                layers,
            });
        }
    }

    /// The media server switched a video track `subscriber` receives off
    /// (`off`: Twilio's `switchOffReason`) or on again. Ignored unless it
    /// still receives the track.
    pub fn set_switched(
        &mut self,
        subscriber: ParticipantSid,
        track: TrackSid,
        off: Option<&'static str>,
    ) {
        let Some(room) = self.where_is.get(&subscriber).copied() else {
            return;
        };
        let receives = self
            .rooms
            .get(&room)
            .and_then(|r| r.participant(subscriber))
            .is_some_and(|p| p.is_subscribed(track));
        if receives {
            self.events.push_back(Event::SubscriptionSwitched {
                room,
                subscriber,
                track,
                off,
            });
        }
    }

    /// A publisher set the priority (`low`, `standard`, `high`) of one of
    /// its tracks. Ignored unless it publishes the track.
    pub fn set_track_priority(
        &mut self,
        participant: ParticipantSid,
        track: TrackSid,
        priority: &'static str,
    ) {
        let Some(room) = self.where_is.get(&participant).copied() else {
            return;
        };
        let published = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.participants.iter_mut().find(|p| p.sid == participant))
            .and_then(|p| p.tracks.iter_mut().find(|t| t.sid == track));
        if let Some(published) = published {
            published.priority = priority;
            self.events.push_back(Event::TrackPriorityChanged {
                room,
                participant,
                track,
                priority,
            });
        }
    }

    /// The media server reported a participant's network quality: its
    /// level (0–5) and what is behind it. Ignored for one not in a room.
    pub fn set_network_quality(
        &mut self,
        participant: ParticipantSid,
        level: u8,
        detail: Box<NetworkQualityDetail>,
    ) {
        let Some(room) = self.where_is.get(&participant).copied() else {
            return;
        };
        if let Some(p) = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.participants.iter_mut().find(|p| p.sid == participant))
        {
            p.network_quality = Some((level, *detail));
        }
        self.events.push_back(Event::NetworkQualityChanged {
            room,
            participant,
            level,
            detail,
        });
    }

    /// Enable or disable (mute) a published track. No event if unchanged.
    pub fn set_track_enabled(
        &mut self,
        participant: ParticipantSid,
        track: TrackSid,
        enabled: bool,
    ) -> Result<(), RoomError> {
        let (room_sid, room, index) = locate(&self.where_is, &mut self.rooms, participant)?;
        let published = room.participants[index]
            .tracks
            .iter_mut()
            .find(|t| t.sid == track)
            .ok_or(RoomError::TrackNotFound(track))?;
        if published.enabled != enabled {
            published.enabled = enabled;
            self.events.push_back(Event::TrackSwitched {
                room: room_sid,
                participant,
                track,
                enabled,
            });
        }
        Ok(())
    }

    /// Note whether some track of `room` is being recorded (the recording
    /// controller decides); a change is announced to the room.
    pub fn set_recording(&mut self, room: RoomSid, recording: bool) -> Result<(), RoomError> {
        let r = self
            .rooms
            .get_mut(&room)
            .ok_or_else(|| RoomError::RoomNotFound(room.to_string()))?;
        if r.recording != recording {
            r.recording = recording;
            self.events
                .push_back(Event::RecordingChanged { room, recording });
        }
        Ok(())
    }

    /// Subscribe to another participant's track in the same room. Idempotent.
    pub fn subscribe(
        &mut self,
        subscriber: ParticipantSid,
        track: TrackSid,
    ) -> Result<(), RoomError> {
        let (room_sid, room, index) = locate(&self.where_is, &mut self.rooms, subscriber)?;
        let publisher = match room.publisher_of(track) {
            Some(p) if p.sid != subscriber => p.sid,
            _ => return Err(RoomError::TrackNotFound(track)),
        };
        let who = &mut room.participants[index];
        if !who.is_subscribed(track) {
            who.subscriptions.push((track, publisher));
            self.events.push_back(Event::Subscribed {
                room: room_sid,
                subscriber,
                publisher,
                track,
            });
        }
        Ok(())
    }

    /// Stop receiving a track. Idempotent.
    pub fn unsubscribe(
        &mut self,
        subscriber: ParticipantSid,
        track: TrackSid,
    ) -> Result<(), RoomError> {
        let (room_sid, room, index) = locate(&self.where_is, &mut self.rooms, subscriber)?;
        let who = &mut room.participants[index];
        if let Some(i) = who.subscriptions.iter().position(|(t, _)| *t == track) {
            let (_, publisher) = who.subscriptions.remove(i);
            self.events.push_back(Event::Unsubscribed {
                room: room_sid,
                subscriber,
                publisher,
                track,
            });
        }
        Ok(())
    }

    /// Check every internal index against the rooms themselves. For tests,
    /// including property tests that drive random operation sequences.
    #[doc(hidden)]
    pub fn assert_consistent(&self) {
        let mut participants = 0;
        let mut expected_timers = BTreeSet::new();
        for (sid, room) in &self.rooms {
            assert_eq!(*sid, room.sid);
            assert_eq!(self.by_name.get(&room.name), Some(sid), "name index");
            assert!(
                room.participants.len() <= room.settings.max_participants as usize,
                "capacity"
            );
            assert_eq!(
                room.participants.is_empty(),
                room.empty_since_deadline.is_some(),
                "room timer"
            );
            if let Some(at) = room.empty_since_deadline {
                expected_timers.insert((at, Timer::Room(*sid)));
            }
            for (i, p) in room.participants.iter().enumerate() {
                participants += 1;
                assert_eq!(self.where_is.get(&p.sid), Some(sid), "participant index");
                assert!(
                    room.participants[..i]
                        .iter()
                        .all(|q| q.identity != p.identity),
                    "identities are unique within a room"
                );
                expected_timers.insert((p.deadline, Timer::Participant(p.sid)));
                for (track, publisher) in &p.subscriptions {
                    let owner = room.publisher_of(*track).map(|o| o.sid);
                    assert_eq!(
                        owner,
                        Some(*publisher),
                        "subscriptions point at live tracks"
                    );
                    assert_ne!(*publisher, p.sid, "nobody subscribes to themselves");
                }
            }
        }
        assert_eq!(self.by_name.len(), self.rooms.len(), "no stale names");
        assert_eq!(self.where_is.len(), participants, "no stale participants");
        assert_eq!(self.timers, expected_timers, "timers match state");
    }
}
