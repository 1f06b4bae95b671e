//! Creating and removing peers.

use super::*;

impl Worker {
    pub(super) fn earliest_deadline(&self) -> Instant {
        let far = Instant::now() + HOUSEKEEPING;
        self.slots
            .iter()
            .filter_map(|s| s.peer.as_ref())
            .filter(|p| p.gone.is_none())
            .map(|p| p.deadline)
            .min()
            .map_or(far, |d| d.min(far))
    }

    pub(super) fn create_peer(
        &mut self,
        room: RoomSid,
        participant: ParticipantSid,
        now: Instant,
    ) -> Result<PeerRef, MediaError> {
        let candidates = self.setup.candidates.clone();
        let ice_tcp = self.setup.ice_tcp;
        // Without its own estimation str0m paces nothing (its null pacer).
        let send_side =
            (self.setup.estimation == crate::Estimation::SendSide).then_some(Bitrate::kbps(1_500));
        let mut rtc = catch_unwind(move || {
            let mut rtc = Rtc::builder()
                .set_crypto_provider(crate::dtls::provider())
                .set_ice_lite(true)
                .set_rtp_mode(true)
                .clear_codecs()
                .enable_opus(true, false)
                .enable_pcmu(true, false)
                .enable_pcma(true, false)
                .enable_vp8(true)
                .enable_h264(true)
                .enable_vp9(true)
                .enable_bwe(send_side)
                .set_stats_interval(Some(crate::quality::INTERVAL))
                .build(now);
            for addr in &candidates {
                if let Ok(candidate) = Candidate::host(*addr, "udp") {
                    rtc.add_local_candidate(candidate);
                }
            }
            // RFC 6544: passive, the client connects. After the UDP ones,
            // and at a lower priority (str0m's host/TCP type preference), so
            // a client that has both prefers UDP.
            for addr in candidates.iter().filter(|_| ice_tcp) {
                let tcp = Candidate::builder()
                    .tcp()
                    .host(*addr)
                    .tcptype(str0m::net::TcpType::Passive)
                    .build();
                if let Ok(candidate) = tcp {
                    rtc.add_local_candidate(candidate);
                }
            }
            rtc
        })
        .map_err(|_| MediaError::BadOffer("the media session could not be created".into()))?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag.clone();
        let peer = Peer {
            room,
            participant,
            ufrag: ufrag.clone(),
            rtc,
            payload_types: Default::default(),
            deadline: now,
            created: now,
            last_heard: now,
            connected: false,
            interrupted: false,
            gone: None,
            published: Vec::new(),
            subscribed: Vec::new(),
            continuations: Vec::new(),
            channels: Vec::new(),
            sctp_up: false,
            signaling: Vec::new(),
            inbox: None,
            pending_data: VecDeque::new(),
            written: false,
            sabotaged: false,
            quality: NetworkQuality::new(now),
            priorities: Vec::new(),
            render: Vec::new(),
            estimate: None,
            loss: Default::default(),
            allocator: Allocator::new(self.profiles.remove(&participant).unwrap_or_default())
                .receiver_estimates(self.setup.estimation == crate::Estimation::Receiver),
            totals: Vec::new(),
            offer: None,
            lines: Vec::new(),
            sctp_offered: false,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    peer: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.peer = Some(peer);
        let r = PeerRef {
            index,
            generation: slot.generation,
        };
        self.by_participant.insert(participant, r);
        self.rooms.entry(room).or_default().peers.push(r);
        self.setup.routes.insert(
            &ufrag,
            Route {
                worker: self.setup.index,
                peer: r,
            },
        );
        self.setup.stats.peers.fetch_add(1, Ordering::Relaxed);
        self.setup.load[self.setup.index].fetch_add(1, Ordering::Relaxed);
        Ok(r)
    }

    /// Drop a peer and everything bound to it. With a reason, the control
    /// plane is told.
    pub(super) fn remove_peer(&mut self, r: PeerRef, reason: Option<GoneReason>) {
        let Some(slot) = self.slots.get_mut(r.index as usize) else {
            return;
        };
        if slot.generation != r.generation {
            return;
        }
        let Some(peer) = slot.peer.take() else { return };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(r.index);
        self.by_participant.remove(&peer.participant);
        self.setup.routes.remove(&peer.ufrag);
        self.close_links_of(r);
        self.setup.stats.peers.fetch_sub(1, Ordering::Relaxed);
        self.setup.load[self.setup.index].fetch_sub(1, Ordering::Relaxed);
        let mut retired = Vec::new();
        if let Some(room) = self.rooms.get_mut(&peer.room) {
            room.peers.retain(|p| *p != r);
            // Its tracks stop: the lanes to their subscribers end.
            let speaker = &mut room.speaker;
            room.forwarders.retain_mut(|f| {
                if f.publisher != r {
                    return true;
                }
                if let Some(voice) = f.voice {
                    speaker.remove(voice);
                }
                retired.push((std::mem::take(&mut f.lanes), f.video));
                false
            });
            // Its subscriptions end.
            for f in &mut room.forwarders {
                f.take_subscriber(r);
            }
            room.waiting.retain(|(_, s, _)| *s != r);
            room.data_tracks
                .retain(|_, (publisher, _)| *publisher != peer.participant);
            for subscribers in room.data_subscribers.values_mut() {
                subscribers.retain(|s| *s != peer.participant);
            }
            room.data_subscribers.retain(|_, s| !s.is_empty());
            if room.is_empty() {
                self.rooms.remove(&peer.room);
            }
        }
        for (lanes, video) in retired {
            self.retire(lanes, video);
        }
        if let Some(reason) = reason {
            tracing::info!(room = %peer.room, participant = %peer.participant, ?reason, "media peer gone");
            let _ = self.setup.events.send(MediaEvent::Gone {
                room: peer.room,
                participant: peer.participant,
                reason,
            });
        }
        // Dropping an Rtc whose internals panicked must not take us down.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(peer)));
    }

    /// Lanes that ended: remember on each subscriber's m-line where the
    /// stream left off, so a track later bound to that m-line continues it.
    pub(super) fn retire(&mut self, lanes: Vec<Lane>, video: bool) {
        for lane in lanes {
            let Some(from) = lane.continuation(video) else {
                continue;
            };
            if let Some(peer) = slot_peer(&mut self.slots, lane.subscriber) {
                peer.continuations.retain(|(m, _)| *m != lane.mid);
                peer.continuations.push((lane.mid, from));
            }
        }
    }
}
