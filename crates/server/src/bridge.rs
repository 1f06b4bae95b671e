//! The two links between the room core and the media server.
//!
//! * [`room_to_media`]: when the room core removes a participant, a track, a
//!   subscription or a whole room — for whatever reason: leaving, a REST
//!   kick, a completed room, a timeout — the media server drops the matching
//!   peer, forwarder, lane or room (and the room's worker placement), and
//!   who is reconnecting forgets it. Teardown has this one path.
//! * [`media_to_room`]: when the media server gives a peer up (its network
//!   went silent, its session failed or was closed), the participant leaves
//!   the room — after [`MEDIA_GONE_GRACE`], so that a client that closes its
//!   media first and then says `leave` (browsers and aiortc close the peer
//!   connection, whose DTLS close reaches the media server first, then the
//!   WebSocket) is counted as having left, not failed. A peer whose media
//!   went silent is not gone yet: it is kept for the session timeout, and
//!   the room's sessions are told it is reconnecting ([`crate::session::Presence`]) until
//!   it is heard from again.

use std::sync::Arc;
use std::time::Duration;

use salon_media::quality::{MediaQualityStats, NetworkQualityStats, PathStats};
use salon_media::{GoneReason, Media, MediaEvent, RecordingEvent};
use salon_room::{DisconnectReason, Event, MediaQuality, NetworkQualityDetail, PathQuality};
use tokio::sync::mpsc;

use crate::service::RoomService;
use crate::session::{Cause, Notice};
use crate::signaling::Signaling;

pub async fn room_to_media(
    media: Media,
    signaling: Arc<Signaling>,
    mut events: mpsc::UnboundedReceiver<Arc<Event>>,
) {
    while let Some(event) = events.recv().await {
        match &*event {
            Event::ParticipantDisconnected {
                room, participant, ..
            } => {
                media.remove(*room, *participant);
                signaling.presence().forget(*room, Some(*participant));
            }
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
            Event::RoomEnded { room, .. } => {
                media.room_ended(*room);
                signaling.presence().forget(*room, None);
            }
            _ => {}
        }
    }
}

/// How long a participant whose media the media server gave up stays in
/// its room, waiting for its signaling to say why. Its media is gone
/// already; only the reason recorded (and reported in metrics) waits.
pub const MEDIA_GONE_GRACE: Duration = Duration::from_secs(2);

/// Recording reports go on to the recording controller (`recordings`).
pub async fn media_to_room(
    rooms: RoomService,
    signaling: Arc<Signaling>,
    mut events: mpsc::UnboundedReceiver<MediaEvent>,
    recordings: mpsc::UnboundedSender<RecordingEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            MediaEvent::Connected { room, participant } => {
                tracing::debug!(%room, %participant, "media connected");
            }
            MediaEvent::Interrupted { room, participant }
            | MediaEvent::Restored { room, participant } => {
                let reconnecting = matches!(event, MediaEvent::Interrupted { .. });
                tracing::info!(%room, %participant, reconnecting, "media presence");
                signaling.presence().announce(Notice {
                    room,
                    participant,
                    cause: Cause::Media,
                    reconnecting,
                });
            }
            MediaEvent::Recording(report) => {
                let _ = recordings.send(report);
            }
            MediaEvent::NetworkQuality {
                participant, stats, ..
            } => {
                let level = stats.level.get();
                let detail = Box::new(quality_detail(&stats));
                let _ = rooms
                    .call(move |r, _| r.set_network_quality(participant, level, detail))
                    .await;
            }
            MediaEvent::Switched {
                participant,
                track,
                off,
                ..
            } => {
                let _ = rooms
                    .call(move |r, _| r.set_switched(participant, track, off))
                    .await;
            }
            MediaEvent::Layers {
                participant,
                track,
                layers,
                ..
            } => {
                let _ = rooms
                    .call(move |r, _| r.set_publisher_layers(participant, track, layers))
                    .await;
            }
            MediaEvent::DominantSpeaker { room, participant } => {
                let _ = rooms
                    .call(move |r, _| r.set_dominant_speaker(room, participant))
                    .await;
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
                let rooms = rooms.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(MEDIA_GONE_GRACE).await;
                    // Already gone from the room is fine: the client left
                    // meanwhile, or the room noticed first.
                    let _ = rooms.disconnect(participant, reason).await;
                });
            }
        }
    }
}

/// The media server's detailed network quality stats as the room core
/// carries them to the sessions.
fn quality_detail(stats: &NetworkQualityStats) -> NetworkQualityDetail {
    let path = |p: &PathStats| PathQuality {
        bandwidth_actual: p.bandwidth.and_then(|b| b.actual),
        bandwidth_available: p.bandwidth.and_then(|b| b.available),
        bandwidth_level: p.bandwidth.and_then(|b| b.level).map(|l| l.get()),
        fraction_lost_ppm: p
            .fraction_lost
            .map(|f| (f.fraction_lost.clamp(0.0, 1.0) * 1e6).round() as u32),
        fraction_lost_level: p.fraction_lost.and_then(|f| f.level).map(|l| l.get()),
        jitter: p.latency.and_then(|l| l.jitter),
        rtt: p.latency.and_then(|l| l.rtt),
        latency_level: p.latency.and_then(|l| l.level).map(|l| l.get()),
    };
    let media = |m: &MediaQualityStats| MediaQuality {
        send: m.send.get(),
        recv: m.recv.get(),
        send_stats: m.send_stats.as_ref().map(path),
        recv_stats: m.recv_stats.as_ref().map(path),
    };
    NetworkQualityDetail {
        audio: stats.audio.as_ref().map(media),
        video: stats.video.as_ref().map(media),
    }
}

#[cfg(test)]
mod tests {
    use salon_room::{Config, Join, RoomRef, Rooms};
    use salon_sid::{AccountSid, ParticipantSid, RoomSid};
    use salon_store::Store;

    use super::*;
    use crate::metrics::Metrics;

    async fn join(rooms: &RoomService, identity: &str) -> (RoomSid, ParticipantSid) {
        let participant = ParticipantSid::random();
        let admission = rooms
            .join(Join {
                room: RoomRef::Name("gone".into()),
                participant,
                identity: identity.into(),
                auto_subscribe: true,
                new_room: RoomSid::random(),
            })
            .await
            .unwrap();
        (admission.room, participant)
    }

    #[tokio::test]
    async fn silent_media_is_announced_as_reconnecting_until_it_is_heard_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let (rooms, _task) = RoomService::spawn(
            Rooms::new(Config::default()),
            store,
            AccountSid::random(),
            Arc::default(),
            Arc::new(Metrics::new()),
        );
        let signaling = Arc::new(Signaling::default());
        let mut notices = signaling.presence().watch();
        let (media_tx, media_events) = mpsc::unbounded_channel();
        let (reports, _) = mpsc::unbounded_channel();
        tokio::spawn(media_to_room(rooms, signaling, media_events, reports));
        let (room, participant) = (RoomSid::random(), ParticipantSid::random());
        media_tx
            .send(MediaEvent::Interrupted { room, participant })
            .unwrap();
        media_tx
            .send(MediaEvent::Restored { room, participant })
            .unwrap();
        for reconnecting in [true, false] {
            let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                notice,
                Notice {
                    room,
                    participant,
                    cause: Cause::Media,
                    reconnecting
                }
            );
        }
    }

    #[tokio::test]
    async fn a_client_that_closes_its_media_then_says_leave_has_left_not_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let (rooms, _task) = RoomService::spawn(
            Rooms::new(Config::default()),
            store.clone(),
            AccountSid::random(),
            Arc::default(),
            metrics.clone(),
        );
        let (media_tx, media_events) = mpsc::unbounded_channel();
        let (reports, _) = mpsc::unbounded_channel();
        tokio::spawn(media_to_room(
            rooms.clone(),
            Arc::new(Signaling::default()),
            media_events,
            reports,
        ));
        let (room, alice) = join(&rooms, "alice").await;
        let (_, bob) = join(&rooms, "bob").await;
        // Both close their media sessions (the DTLS close reaches the media
        // server first); Alice's `leave` follows a moment later, Bob never
        // says anything.
        for participant in [alice, bob] {
            media_tx
                .send(MediaEvent::Gone {
                    room,
                    participant,
                    reason: GoneReason::Failed("the media session closed".into()),
                })
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        rooms
            .disconnect(alice, DisconnectReason::Left)
            .await
            .unwrap();
        tokio::time::sleep(MEDIA_GONE_GRACE + Duration::from_millis(500)).await;
        let reason = |p| {
            let store = store.clone();
            async move {
                store
                    .participant(room, p)
                    .await
                    .unwrap()
                    .unwrap()
                    .end_reason
            }
        };
        assert_eq!(reason(alice).await.as_deref(), Some("left"));
        assert_eq!(reason(bob).await.as_deref(), Some("failed"));
        let text = metrics.render();
        for line in [
            r#"salon_participants_disconnected_total{reason="left"} 1"#,
            r#"salon_participants_disconnected_total{reason="failed"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
