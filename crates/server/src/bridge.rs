//! The two links between the room core and the media server.
//!
//! * [`room_to_media`]: when the room core removes a participant, a track, a
//!   subscription or a whole room — for whatever reason: leaving, a REST
//!   kick, a completed room, a timeout — the media server drops the matching
//!   peer, forwarder, lane or room (and the room's worker placement).
//!   Teardown has this one path.
//! * [`media_to_room`]: when the media server gives a peer up (its network
//!   went silent, its session failed), the participant leaves the room.

use std::sync::Arc;

use salon_media::{GoneReason, Media, MediaEvent};
use salon_room::{DisconnectReason, Event};
use tokio::sync::mpsc;

use crate::service::RoomService;

pub async fn room_to_media(media: Media, mut events: mpsc::UnboundedReceiver<Arc<Event>>) {
    while let Some(event) = events.recv().await {
        match &*event {
            Event::ParticipantDisconnected {
                room, participant, ..
            } => media.remove(*room, *participant),
            Event::TrackUnpublished {
                room,
                participant,
                track,
            } => media.unpublish(*room, *participant, *track),
            Event::Unsubscribed {
                room,
                subscriber,
                track,
                ..
            } => media.unsubscribe(*room, *subscriber, *track),
            Event::RoomEnded { room, .. } => media.room_ended(*room),
            _ => {}
        }
    }
}

pub async fn media_to_room(rooms: RoomService, mut events: mpsc::UnboundedReceiver<MediaEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            MediaEvent::Connected { room, participant } => {
                tracing::debug!(%room, %participant, "media connected");
            }
            MediaEvent::Gone {
                participant,
                reason,
                ..
            } => {
                let reason = match reason {
                    GoneReason::Timeout => DisconnectReason::MediaTimeout,
                    GoneReason::Failed(_) => DisconnectReason::Failed,
                };
                // Already gone from the room is fine: the media server may
                // notice after the room did.
                let _ = rooms.disconnect(participant, reason).await;
            }
        }
    }
}
