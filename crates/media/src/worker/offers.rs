//! Offers the server makes: `sendonly` m-lines for subscriptions (their
//! `a=msid` naming the id the client binds the track by), `inactive` for
//! subscriptions that ended, and the data-channel section, for clients of
//! protocols where the server offers (Twilio's). One offer is outstanding
//! at a time; its answer binds the new m-lines to their tracks.

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::Direction;

use super::*;
use crate::OfferedTrack;

/// The server's offer waiting for its answer.
pub(super) struct ServerOffer {
    pending: SdpPendingOffer,
    /// New m-lines and the tracks they are to carry once answered.
    bindings: Vec<(Mid, TrackSid)>,
}

/// The label of the channel the first server offer opens, so that the
/// offer has a data-channel section (str0m adds one only with a channel).
const SCTP_LABEL: &str = "salon";

impl Worker {
    /// Offer `participant` the changes: new m-lines for `add`, `stop`'s
    /// m-lines inactive, and a data-channel section if it has none. `None`
    /// when nothing changes.
    pub(super) fn offer(
        &mut self,
        participant: ParticipantSid,
        add: &[OfferedTrack],
        stop: &[TrackSid],
    ) -> Result<Option<String>, MediaError> {
        let Some(r) = self.by_participant.get(&participant).copied() else {
            return Err(MediaError::BadOffer(
                "no media session yet: the client offers first".into(),
            ));
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Err(MediaError::Closed);
        };
        if peer.offer.is_some() {
            return Err(MediaError::BadOffer(
                "an offer of the server's is waiting for its answer".into(),
            ));
        }
        let stopped: Vec<Mid> = peer
            .subscribed
            .iter()
            .filter(|(_, t)| stop.contains(t))
            .map(|(m, _)| *m)
            .collect();
        let needs_sctp = !peer.sctp_up && !peer.sctp_offered;
        let made = catch_unwind(AssertUnwindSafe(|| {
            let mut changes = peer.rtc.sdp_api();
            let mut bindings = Vec::new();
            for track in add {
                let kind = match track.kind {
                    MediaKind::Audio => StrMediaKind::Audio,
                    MediaKind::Video => StrMediaKind::Video,
                };
                let mid = changes.add_media(
                    kind,
                    Direction::SendOnly,
                    Some(track.stream.clone()),
                    Some(track.id.clone()),
                    None,
                );
                bindings.push((mid, track.track));
            }
            for mid in &stopped {
                changes.set_direction(*mid, Direction::Inactive);
            }
            if needs_sctp {
                changes.add_channel(SCTP_LABEL.into());
            }
            changes
                .apply()
                .map(|(offer, pending)| (offer, pending, bindings))
        }));
        let made = match made {
            Ok(made) => made,
            Err(_) => {
                self.setup.stats.peer_panics.fetch_add(1, Ordering::Relaxed);
                let reason = "the media session crashed making an offer";
                self.remove_peer(r, Some(GoneReason::Failed(reason.into())));
                return Err(MediaError::BadOffer(reason.into()));
            }
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Err(MediaError::Closed);
        };
        peer.subscribed.retain(|(m, _)| !stopped.contains(m));
        let Some((offer, pending, bindings)) = made else {
            return Ok(None);
        };
        peer.sctp_offered |= needs_sctp;
        peer.offer = Some(ServerOffer { pending, bindings });
        Ok(Some(crate::sdp::finish_answer(&offer.to_sdp_string())))
    }

    /// Apply the answer to the outstanding offer and bind its new m-lines.
    pub(super) fn accept_answer(
        &mut self,
        participant: ParticipantSid,
        sdp: &str,
        now: Instant,
    ) -> Result<(), MediaError> {
        let answer = SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| MediaError::BadOffer(format!("the answer is not SDP: {e}")))?;
        let Some(r) = self.by_participant.get(&participant).copied() else {
            return Err(MediaError::Closed);
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Err(MediaError::Closed);
        };
        let Some(ServerOffer { pending, bindings }) = peer.offer.take() else {
            return Err(MediaError::BadOffer(
                "no offer is waiting for an answer".into(),
            ));
        };
        let room = peer.room;
        let accepted = catch_unwind(AssertUnwindSafe(|| {
            peer.rtc.sdp_api().accept_answer(pending, answer)
        }));
        match accepted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(MediaError::BadOffer(e.to_string())),
            Err(_) => {
                self.setup.stats.peer_panics.fetch_add(1, Ordering::Relaxed);
                let reason = "the media session crashed applying an answer";
                self.remove_peer(r, Some(GoneReason::Failed(reason.into())));
                return Err(MediaError::BadOffer(reason.into()));
            }
        }
        for (mid, track) in bindings {
            if let Err(problem) = self.bind(room, r, mid, track) {
                tracing::warn!(%participant, problem, "answered m-line not bound");
            }
        }
        let mut happenings = std::mem::take(&mut self.happenings);
        if let Some(peer) = slot_peer(&mut self.slots, r) {
            drain(peer, &self.setup, &mut self.tcp, &mut happenings);
        }
        self.act_on(r, &mut happenings, now);
        self.happenings = happenings;
        self.request_keyframes(room, now);
        self.open_data_channels(participant);
        Ok(())
    }
}
