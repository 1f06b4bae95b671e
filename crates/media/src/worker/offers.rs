//! Offers the server makes: `sendonly` m-lines for subscriptions (their
//! `a=msid` naming the id the client binds the track by), `inactive` for
//! subscriptions that ended, and the data-channel section, for clients of
//! protocols where the server offers (Twilio's). One offer is outstanding
//! at a time; its answer binds the new m-lines to their tracks.
//!
//! An inactive m-line is reused for a new subscription of its kind when the
//! caller asks (`OfferedTrack::reuse`): it turns `sendonly` again and keeps
//! its `a=msid` (str0m cannot rewrite one), so the new track takes the old
//! id, and the SDP stops growing with every subscription a room has seen.
//! An m-line the client took over to send on (the official SDK recycles
//! receive-only transceivers for its own tracks) is no longer inactive and
//! is not reused.

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
        stop: &[String],
    ) -> Result<Option<crate::Offer>, MediaError> {
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
        let state = |peer: &Peer, mid: Mid| peer.rtc.media(mid).map(|m| (m.direction(), m.kind()));
        let stopped: Vec<Mid> = peer
            .lines
            .iter()
            .filter(|(m, id)| {
                stop.contains(id) && state(peer, *m).is_some_and(|(d, _)| d != Direction::Inactive)
            })
            .map(|(m, _)| *m)
            .collect();
        // Each offered track: the inactive m-line it reuses, if any, and
        // the id its m-line carries.
        let mut plan: Vec<(Option<Mid>, &OfferedTrack, String)> = Vec::new();
        for track in add {
            let kind = str0m_kind(track.kind);
            let reused = track.reuse.as_ref().and_then(|id| {
                peer.lines
                    .iter()
                    .find(|(m, l)| {
                        l == id
                            && !stopped.contains(m)
                            && !plan.iter().any(|(p, _, _)| *p == Some(*m))
                            && state(peer, *m) == Some((Direction::Inactive, kind))
                    })
                    .map(|(m, l)| (*m, l.clone()))
            });
            match reused {
                Some((mid, id)) => plan.push((Some(mid), track, id)),
                None => plan.push((None, track, track.id.clone())),
            }
        }
        let needs_sctp = !peer.sctp_up && !peer.sctp_offered;
        let made = catch_unwind(AssertUnwindSafe(|| {
            let mut changes = peer.rtc.sdp_api();
            let mut bindings = Vec::new();
            let mut added = Vec::new();
            for (reused, track, id) in &plan {
                let mid = match reused {
                    Some(mid) => {
                        changes.set_direction(*mid, Direction::SendOnly);
                        *mid
                    }
                    None => {
                        let mid = changes.add_media(
                            str0m_kind(track.kind),
                            Direction::SendOnly,
                            Some(track.stream.clone()),
                            Some(id.clone()),
                            None,
                        );
                        added.push((mid, id.clone()));
                        mid
                    }
                };
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
                .map(|(offer, pending)| (offer, pending, bindings, added))
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
        let Some((offer, pending, bindings, added)) = made else {
            return Ok(None);
        };
        peer.sctp_offered |= needs_sctp;
        peer.lines.extend(added);
        peer.offer = Some(ServerOffer { pending, bindings });
        let mut sdp = offer.to_sdp_string();
        if self.setup.estimation == crate::Estimation::Receiver {
            // What the client answers for these m-lines is what str0m
            // writes on them: no transport-wide sequence numbers, so the
            // client reports its own estimate (REMB).
            sdp = crate::sdp::without_transport_cc(&sdp, "sendonly");
        }
        Ok(Some(crate::Offer {
            sdp: crate::sdp::finish_answer(&sdp),
            ids: plan.into_iter().map(|(_, t, id)| (t.track, id)).collect(),
        }))
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

fn str0m_kind(kind: MediaKind) -> StrMediaKind {
    match kind {
        MediaKind::Audio => StrMediaKind::Audio,
        MediaKind::Video => StrMediaKind::Video,
    }
}
