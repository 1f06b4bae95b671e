//! Salon's room core: who is in which room, what they publish, who receives
//! what, and when rooms and participants time out.
//!
//! # The contract
//!
//! [`Rooms`] is a sans-IO state machine in the manner of `str0m` and
//! `quinn-proto`. It owns no sockets, tasks, clocks or random number
//! generators. The caller feeds it:
//!
//! * **commands** — [`Rooms::create`], [`Rooms::complete`], [`Rooms::join`],
//!   [`Rooms::disconnect`], [`Rooms::publish`], [`Rooms::unpublish`],
//!   [`Rooms::set_track_enabled`], [`Rooms::subscribe`], [`Rooms::unsubscribe`],
//!   [`Rooms::shutdown`]; each takes the current time where time matters, and
//!   SIDs the caller made for anything new;
//! * **time** — [`Rooms::handle_timeout`] when [`Rooms::poll_timeout`] says so;
//!
//! and drains **events** with [`Rooms::poll_event`]: rooms created and ended,
//! participants connected and disconnected, tracks published, unpublished,
//! switched, subscribed and unsubscribed. A command either succeeds and
//! queues the events that describe what changed, or returns a [`RoomError`]
//! with Twilio's numeric code and changes nothing.
//!
//! ```text
//!   commands ──▶ ┌─────────┐ ──▶ events (store, signaling, callbacks)
//!   time     ──▶ │  Rooms  │ ──▶ next timeout
//!                └─────────┘
//! ```
//!
//! The rules it keeps: room types cap participants (go 2, peer-to-peer 10,
//! group-small 4, group 50 or the operator's ceiling); unique names are unique
//! among rooms in progress; a second connection with an identity replaces the
//! first (53205); a full room refuses (53105); a room nobody joins ends after
//! its unused-room timeout, a room everyone left ends after its empty-room
//! timeout; a participant is disconnected when its maximum duration runs out.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use salon_room::{Config, Event, Join, RoomRef, RoomRequest, Rooms};
//! use salon_sid::{ParticipantSid, RoomSid};
//!
//! let mut rooms = Rooms::new(Config::default());
//! let start = Instant::now();
//! let alice = ParticipantSid::random();
//! let admission = rooms
//!     .join(start, Join {
//!         room: RoomRef::Name("standup".into()),
//!         participant: alice,
//!         identity: "alice".into(),
//!         auto_subscribe: true,
//!         new_room: RoomSid::random(),
//!     })
//!     .unwrap();
//! assert!(admission.created, "joining a free name creates the room");
//!
//! rooms.disconnect(start, alice, salon_room::DisconnectReason::Left).unwrap();
//! // Five minutes later (the default empty-room timeout) the room ends.
//! let later = rooms.poll_timeout().unwrap();
//! assert_eq!(later, start + Duration::from_secs(300));
//! rooms.handle_timeout(later);
//! assert!(rooms.room(admission.room).is_none());
//! let events: Vec<Event> = std::iter::from_fn(|| rooms.poll_event()).collect();
//! assert!(matches!(events.last(), Some(Event::RoomEnded { .. })));
//! ```
//!
//! # What this crate must not know
//!
//! No wire formats (JSON, SDP, RTP), no storage, no transport. It speaks in
//! SIDs, names and durations. Front-ends (Salon's signaling, the REST API, a
//! future compatibility protocol) translate to and from it.

mod error;
mod event;
pub mod names;
mod rooms;
mod settings;

pub use error::RoomError;
pub use event::{
    DisconnectReason, EndReason, Event, MediaQuality, NetworkQualityDetail, PathQuality, TrackKind,
};
pub use rooms::{Admission, Join, Participant, Room, RoomRef, Rooms, Track};
pub use settings::{
    CallbackMethod, Config, RoomRequest, RoomSettings, RoomType, StatusCallback, VideoCodec, limits,
};
