//! Data tracks: relaying data-channel messages and opening channels to
//! subscribers. Signaling channels: channels the server opens for a
//! front-end's media signaling (Twilio's MSP), whose messages go to that
//! session instead of to other participants.
//!
//! A message on a channel that is neither a signaling channel the server
//! opened nor the channel of a data track the participant published (a
//! label nobody announced) goes nowhere.

use super::*;
use crate::{MAX_SIGNALING_CHANNELS, MAX_SIGNALING_MESSAGE};

impl Worker {
    pub(super) fn relay_data(
        &mut self,
        room_sid: RoomSid,
        source: PeerRef,
        channel: ChannelId,
        binary: bool,
        data: &[u8],
    ) {
        if let Some(peer) = slot_peer(&mut self.slots, source)
            && let Some((label, _)) = peer.signaling.iter().find(|(_, id)| *id == Some(channel))
        {
            if binary || data.len() > MAX_SIGNALING_MESSAGE {
                return;
            }
            let (Ok(text), Some(inbox)) = (std::str::from_utf8(data), &peer.inbox) else {
                return;
            };
            // A session that does not keep up loses messages, never
            // holds up the worker.
            let _ = inbox.try_send(SignalingMessage {
                label: label.clone(),
                text: text.to_owned(),
            });
            return;
        }
        let Some((publisher, label)) = slot_peer(&mut self.slots, source).and_then(|p| {
            let label = p
                .channels
                .iter()
                .find(|(id, _, _)| *id == channel)
                .map(|(_, l, _)| l.clone())?;
            Some((p.participant, label))
        }) else {
            return;
        };
        let Some(room) = self.rooms.get(&room_sid) else {
            return;
        };
        let Some(track) = room
            .data_tracks
            .iter()
            .find(|(_, (p, l))| *p == publisher && *l == label)
            .map(|(t, _)| *t)
        else {
            return;
        };
        let track_label = track.to_string();
        let subscribers = room
            .data_subscribers
            .get(&track)
            .cloned()
            .unwrap_or_default();
        for subscriber in subscribers {
            let Some(r) = self.by_participant.get(&subscriber).copied() else {
                continue;
            };
            let Some(peer) = slot_peer(&mut self.slots, r) else {
                continue;
            };
            let Some(&(id, _, open)) = peer.channels.iter().find(|(_, l, _)| *l == track_label)
            else {
                continue;
            };
            if !open {
                if peer.pending_data.len() < PENDING_DATA {
                    peer.pending_data.push_back((id, binary, data.to_vec()));
                }
                continue;
            }
            let outcome = guarded(peer, &self.setup.stats, |p| {
                if let Some(mut ch) = p.rtc.channel(id) {
                    let _ = ch.write(binary, data);
                }
                Ok(())
            });
            let mut ignored = Vec::new();
            match outcome {
                Ok(()) => drain(peer, &self.setup, &mut self.tcp, &mut ignored),
                Err(reason) => fail(peer, reason),
            }
        }
    }

    /// Open a data channel to `participant` for each data track it receives
    /// and has no channel for yet. Needs its peer with its SCTP association
    /// up; called again after each negotiation and when the association
    /// comes up, so a subscription that came first is served then.
    pub(super) fn open_data_channels(&mut self, participant: ParticipantSid) {
        let Some(r) = self.by_participant.get(&participant).copied() else {
            return;
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return;
        };
        let Some(room) = self.rooms.get(&peer.room) else {
            return;
        };
        // Signaling channels wait for the association: the client looks
        // for them only once it knows their labels, which it may learn
        // after it opened its own channels.
        let signaling: Vec<String> = peer
            .signaling
            .iter()
            .filter(|(_, id)| id.is_none() && peer.sctp_up)
            .map(|(label, _)| label.clone())
            .collect();
        for label in signaling {
            let config = ChannelConfig {
                label: label.clone(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: None,
                protocol: String::new(),
            };
            match guarded(peer, &self.setup.stats, |p| {
                Ok(p.rtc.direct_api().create_data_channel(config))
            }) {
                Ok(id) => {
                    peer.channels.push((id, label.clone(), false));
                    if let Some(entry) = peer.signaling.iter_mut().find(|(l, _)| *l == label) {
                        entry.1 = Some(id);
                    }
                }
                Err(reason) => return fail(peer, reason),
            }
        }
        let wanted: Vec<String> = room
            .data_subscribers
            .iter()
            .filter(|(_, subscribers)| subscribers.contains(&participant))
            .map(|(track, _)| track.to_string())
            .filter(|label| !peer.channels.iter().any(|(_, l, _)| l == label))
            .collect();
        if wanted.is_empty() {
            let mut ignored = Vec::new();
            drain(peer, &self.setup, &mut self.tcp, &mut ignored);
            return;
        }
        for label in wanted {
            let config = ChannelConfig {
                label: label.clone(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: None,
                protocol: String::new(),
            };
            match guarded(peer, &self.setup.stats, |p| {
                Ok(p.rtc.direct_api().create_data_channel(config))
            }) {
                Ok(id) => peer.channels.push((id, label, false)),
                Err(reason) => return fail(peer, reason),
            }
        }
        let mut ignored = Vec::new();
        drain(peer, &self.setup, &mut self.tcp, &mut ignored);
    }
}

impl Worker {
    /// Note the signaling channels `participant` is to have (see
    /// [`crate::Media::open_signaling`]) and open them if its SCTP
    /// association is up.
    pub(super) fn open_signaling(
        &mut self,
        participant: ParticipantSid,
        labels: Vec<String>,
        inbox: mpsc::Sender<SignalingMessage>,
    ) {
        let Some(r) = self.by_participant.get(&participant).copied() else {
            return;
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return;
        };
        peer.inbox = Some(inbox);
        for label in labels {
            if peer.signaling.len() >= MAX_SIGNALING_CHANNELS {
                break;
            }
            if !peer.signaling.iter().any(|(l, _)| *l == label) {
                peer.signaling.push((label, None));
            }
        }
        self.open_data_channels(participant);
    }

    /// Send `text` on `participant`'s signaling channel `label`, or keep it
    /// until the channel opens.
    pub(super) fn signal(&mut self, participant: ParticipantSid, label: &str, text: &str) {
        let Some(r) = self.by_participant.get(&participant).copied() else {
            return;
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return;
        };
        let Some(id) = peer
            .signaling
            .iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, id)| *id)
        else {
            return;
        };
        match peer.channels.iter().find(|(c, _, _)| *c == id) {
            Some((_, _, true)) => {}
            Some((_, _, false)) => {
                if peer.pending_data.len() < PENDING_DATA {
                    peer.pending_data
                        .push_back((id, false, text.as_bytes().to_vec()));
                }
                return;
            }
            // The client closed it.
            None => return,
        }
        let outcome = guarded(peer, &self.setup.stats, |p| {
            if let Some(mut channel) = p.rtc.channel(id) {
                let _ = channel.write(false, text.as_bytes());
            }
            Ok(())
        });
        let mut ignored = Vec::new();
        match outcome {
            Ok(()) => drain(peer, &self.setup, &mut self.tcp, &mut ignored),
            Err(reason) => fail(peer, reason),
        }
    }
}

/// Write what waited for channel `id` to open.
pub(super) fn flush_pending(peer: &mut Peer, id: ChannelId) {
    let waiting: Vec<(ChannelId, bool, Vec<u8>)> = {
        let (ready, rest): (VecDeque<_>, VecDeque<_>) =
            peer.pending_data.drain(..).partition(|(c, _, _)| *c == id);
        peer.pending_data = rest;
        ready.into_iter().collect()
    };
    for (_, binary, data) in waiting {
        if let Some(mut channel) = peer.rtc.channel(id) {
            let _ = channel.write(binary, &data);
        }
    }
}
