//! Offers and answers, and binding published and subscribed m-lines to
//! the room's forwarders.

use super::*;

impl Worker {
    pub(super) fn negotiate(
        &mut self,
        room: RoomSid,
        participant: ParticipantSid,
        sdp: &str,
        publish: &[PublishBinding],
        subscribe: &[SubscribeBinding],
        now: Instant,
    ) -> Result<String, MediaError> {
        let (offer, payload_types) = crate::sdp::read_offer(sdp)?;
        // Read as it came (errors name its lines), then, when the client
        // estimates its own downlink, without transport-wide sequence
        // numbers where it only receives.
        let offer = match self.setup.estimation {
            crate::Estimation::SendSide => offer,
            crate::Estimation::Receiver => {
                let stripped = crate::sdp::without_transport_cc(sdp, "recvonly");
                crate::sdp::read_offer(&stripped)?.0
            }
        };
        let (r, created) = match self.by_participant.get(&participant) {
            Some(r) => (*r, false),
            None => (self.create_peer(room, participant, now)?, true),
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Err(MediaError::Closed);
        };
        // A new peer knows no payload types yet: nothing to refuse.
        peer.payload_types.check(&payload_types)?;
        let accepted = catch_unwind(AssertUnwindSafe(|| peer.rtc.sdp_api().accept_offer(offer)));
        let answer = match accepted {
            Ok(Ok(answer)) => {
                peer.payload_types.keep(payload_types);
                answer
            }
            Ok(Err(e)) => {
                if created {
                    self.remove_peer(r, None);
                }
                return Err(MediaError::BadOffer(e.to_string()));
            }
            Err(_) => {
                self.setup.stats.peer_panics.fetch_add(1, Ordering::Relaxed);
                self.remove_peer(
                    r,
                    Some(GoneReason::Failed(
                        "the media session crashed applying an offer".into(),
                    )),
                );
                return Err(MediaError::BadOffer(
                    "the offer crashed the media session".into(),
                ));
            }
        };

        // An offer with new ICE credentials restarts ICE (RFC 8839 §4.4.1.1):
        // str0m answers with new credentials of its own, so the first
        // datagram from the client's new path names a new ufrag.
        self.follow_ice_restart(r);

        // Bind what the offer publishes.
        let sim_groups = crate::sdp::simulcast_ssrc_groups(sdp);
        let mut problems = Vec::new();
        let mut forwarders = Vec::new();
        {
            let Some(peer) = slot_peer(&mut self.slots, r) else {
                return Err(MediaError::Closed);
            };
            for binding in publish {
                let mid = Mid::from(binding.mid.as_str());
                let Some(media) = peer.rtc.media(mid) else {
                    problems.push(format!("m-line {} is not in the offer", binding.mid));
                    continue;
                };
                let video = media.kind() == StrMediaKind::Video;
                if video != (binding.kind == MediaKind::Video) {
                    problems.push(format!("m-line {} is not {:?}", binding.mid, binding.kind));
                    continue;
                }
                let negotiated: Vec<(u8, Codec)> = media
                    .remote_pts()
                    .iter()
                    .filter_map(|pt| codec_of(&peer.rtc, *pt).map(|c| (**pt, c)))
                    .collect();
                let codecs: Vec<(u8, Option<VideoCodec>)> = negotiated
                    .iter()
                    .map(|(pt, c)| (*pt, video_codec(*c)))
                    .filter(|(_, c)| !video || c.is_some())
                    .collect();
                let recorded: Vec<(u8, RecordedCodec)> = negotiated
                    .iter()
                    .filter_map(|(pt, c)| recorded_codec(*c).map(|r| (*pt, r)))
                    .collect();
                if codecs.is_empty() {
                    problems.push(format!(
                        "m-line {} offers no codec Salon forwards",
                        binding.mid
                    ));
                    continue;
                }
                // RID simulcast (`a=rid` / `a=simulcast:send`): one layer
                // per RID, in the offer's order.
                let rids: Vec<Rid> = match media.rids_rx() {
                    str0m::media::Rids::Specific(rids) => rids.clone(),
                    _ => Vec::new(),
                };
                // Or SSRC-group simulcast (`a=ssrc-group:SIM`, no RIDs): one
                // layer per SSRC, in the group's order.
                let ssrcs: &[u32] = sim_groups
                    .iter()
                    .find(|(m, _)| rids.is_empty() && *m == binding.mid)
                    .map_or(&[], |(_, ssrcs)| ssrcs);
                peer.published.retain(|(m, _)| *m != mid);
                peer.published.push((mid, binding.track));
                forwarders.push(
                    Forwarder::new(
                        binding.track,
                        r,
                        mid,
                        video,
                        PublisherCodecs::new(codecs).with_recorded(recorded),
                    )
                    .with_rids(&rids)
                    .with_ssrcs(ssrcs),
                );
            }
        }
        let new_tracks: Vec<TrackSid> = forwarders.iter().map(|f| f.track).collect();
        let room_state = self.rooms.entry(room).or_default();
        for mut f in forwarders {
            let speaker = &mut room_state.speaker;
            room_state.forwarders.retain(|existing| {
                let keep = existing.track != f.track;
                if let (false, Some(voice)) = (keep, existing.voice) {
                    speaker.remove(voice);
                }
                keep
            });
            if !f.video {
                f.voice = Some(room_state.speaker.add(participant, now));
            }
            room_state.forwarders.push(f);
        }
        // Subscriptions that arrived before these tracks' media existed.
        for track in new_tracks {
            self.attach_waiting(room, track);
        }

        // Bind what it subscribes.
        for binding in subscribe {
            let mid = Mid::from(binding.mid.as_str());
            if let Err(problem) = self.bind(room, r, mid, binding.track) {
                problems.push(problem);
            }
        }

        // Drain after the mutations (accepting the offer, configuring streams).
        let mut happenings = std::mem::take(&mut self.happenings);
        if let Some(peer) = slot_peer(&mut self.slots, r) {
            drain(peer, &self.setup, &mut self.tcp, &mut happenings);
        }
        self.act_on(r, &mut happenings, now);
        self.happenings = happenings;
        self.request_keyframes(room, now);

        if !problems.is_empty()
            && publish.len() + subscribe.len() == problems.len()
            && !(publish.is_empty() && subscribe.is_empty())
        {
            return Err(MediaError::NoCodec(problems.join("; ")));
        }
        for problem in problems {
            tracing::warn!(%participant, problem, "offer binding skipped");
        }
        self.open_data_channels(participant);
        // The offerer's codec preference decides what it sends; every
        // client, not only browsers, must find the candidates.
        let answer = codec_order::follow_offer(sdp, &answer.to_sdp_string());
        let answer = crate::sdp::mark_paused(&answer, &self.paused_rids(room, r));
        Ok(crate::sdp::finish_answer(&answer))
    }

    /// The RID layers of `publisher`'s tracks that are paused now, as (mid,
    /// RID): an answer marks them so (`~`), or the browser would take its
    /// unmarked list as "send every layer" again.
    fn paused_rids(&self, room: RoomSid, publisher: PeerRef) -> Vec<(String, String)> {
        let Some(state) = self.rooms.get(&room) else {
            return Vec::new();
        };
        let mut paused = Vec::new();
        for f in state.forwarders.iter().filter(|f| f.publisher == publisher) {
            let Some(pausing) = state.pausing.get(&f.track) else {
                continue;
            };
            for (i, layer) in f.layers.iter().enumerate() {
                if let (true, Some(rid)) = (pausing.is_paused(i), layer.rid) {
                    paused.push((f.mid.to_string(), rid.to_string()));
                }
            }
        }
        paused
    }

    /// Route the peer's current local ufrag to it, if an ICE restart
    /// changed it. The old one is forgotten: checks with it fail anyway.
    pub(super) fn follow_ice_restart(&mut self, r: PeerRef) {
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return;
        };
        let ufrag = peer.rtc.direct_api().local_ice_credentials().ufrag.clone();
        if ufrag == peer.ufrag {
            return;
        }
        let old = std::mem::replace(&mut peer.ufrag, ufrag);
        tracing::info!(room = %peer.room, participant = %peer.participant, "ICE restart");
        self.setup
            .stats
            .ice_restarts
            .fetch_add(1, Ordering::Relaxed);
        self.setup.routes.remove(&old);
        self.setup.routes.insert(
            &peer.ufrag,
            Route {
                worker: self.setup.index,
                peer: r,
            },
        );
    }

    /// Send `track` to `subscriber` on its m-line `mid`. If the track's
    /// media does not exist yet (its publisher's offer is still on its way:
    /// the room announces a track before its first packet), the binding
    /// waits in the room and is made when the track's forwarder is.
    pub(super) fn bind(
        &mut self,
        room: RoomSid,
        r: PeerRef,
        mid: Mid,
        track: TrackSid,
    ) -> Result<(), String> {
        let Some(room_state) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let Some(forwarder) = room_state.forwarders.iter().find(|f| f.track == track) else {
            room_state
                .waiting
                .retain(|(_, s, m)| !(*s == r && *m == mid));
            room_state.waiting.push((track, r, mid));
            if let Some(peer) = slot_peer(&mut self.slots, r) {
                peer.subscribed.retain(|(m, _)| *m != mid);
                peer.subscribed.push((mid, track));
            }
            return Ok(());
        };
        let (publisher, publisher_mid, video) =
            (forwarder.publisher, forwarder.mid, forwarder.video);
        let publisher_specs: Vec<(u8, Codec)> = {
            let Some(p) = self
                .slots
                .get(publisher.index as usize)
                .and_then(|s| s.peer.as_ref())
            else {
                return Ok(());
            };
            let pts: Vec<str0m::media::Pt> = p
                .rtc
                .media(publisher_mid)
                .map(|m| m.remote_pts().to_vec())
                .unwrap_or_default();
            pts.into_iter()
                .filter_map(|pt| codec_of(&p.rtc, pt).map(|c| (*pt, c)))
                .collect()
        };
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Ok(());
        };
        let Some(media) = peer.rtc.media(mid) else {
            return Err(format!("m-line {mid} is not in the offer"));
        };
        let subscriber_pts: Vec<(u8, Codec)> = media
            .remote_pts()
            .iter()
            .filter_map(|pt| codec_of(&peer.rtc, *pt).map(|c| (**pt, c)))
            .collect();
        let pt_map: Vec<(u8, u8)> = publisher_specs
            .iter()
            .filter_map(|(from, codec)| {
                subscriber_pts
                    .iter()
                    .find(|(_, c)| c == codec)
                    .map(|(to, _)| (*from, *to))
            })
            .collect();
        if pt_map.is_empty() {
            return Err(format!(
                "m-line {mid} has no codec in common with track {track}"
            ));
        }
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let Some(stream) = peer.rtc.direct_api().stream_tx_by_mid(mid, None) {
                // Forwarded media leaves as it arrives: the publisher already
                // paced it, and pacing again adds delay.
                stream.set_unpaced(true);
                // A NACK comes within a round trip: keep a second of sent
                // packets for retransmission, not str0m's three, which were
                // most of a subscriber's memory.
                stream.set_rtx_cache(RTX_PACKETS, RTX_HISTORY, Some(RTX_RATIO_CAP));
            }
        }));
        // A reused m-line: the track it carried before stops there, and the
        // new one continues its stream.
        let previous = peer
            .subscribed
            .iter()
            .find(|(m, t)| *m == mid && *t != track)
            .map(|(_, t)| *t);
        peer.subscribed.retain(|(m, _)| *m != mid);
        peer.subscribed.push((mid, track));
        if let Some(old) = previous {
            let mut retired = Vec::new();
            if let Some(room_state) = self.rooms.get_mut(&room) {
                for f in room_state.forwarders.iter_mut().filter(|f| f.track == old) {
                    retired.extend(f.take_lane(r, mid).map(|lane| (vec![lane], f.video)));
                }
            }
            for (lanes, video) in retired {
                self.retire(lanes, video);
            }
        }
        let Some(peer) = slot_peer(&mut self.slots, r) else {
            return Ok(());
        };
        let from = peer
            .continuations
            .iter()
            .position(|(m, _)| *m == mid)
            .map(|i| peer.continuations.remove(i).1);
        let lane = match from {
            Some(from) => Lane::continuing(r, mid, pt_map, video, from),
            // A fresh stream starts below 65536 so the subscriber's SRTP
            // rollover counter starts at zero.
            None => Lane::new(r, mid, pt_map, video, rand::random::<u16>() % 16_384 + 1),
        };
        if let Some(room_state) = self.rooms.get_mut(&room)
            && let Some(forwarder) = room_state.forwarders.iter_mut().find(|f| f.track == track)
        {
            forwarder.add_lane(lane);
        }
        Ok(())
    }

    /// Make the bindings that waited for `track`'s forwarder.
    pub(super) fn attach_waiting(&mut self, room: RoomSid, track: TrackSid) {
        let waiting: Vec<(PeerRef, Mid)> = match self.rooms.get_mut(&room) {
            Some(room_state) => {
                let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut room_state.waiting)
                    .into_iter()
                    .partition(|(t, _, _)| *t == track);
                room_state.waiting = rest;
                ready.into_iter().map(|(_, r, m)| (r, m)).collect()
            }
            None => return,
        };
        let now = Instant::now();
        for (r, mid) in waiting {
            if let Err(problem) = self.bind(room, r, mid, track) {
                tracing::warn!(%track, problem, "subscription could not be bound");
            }
        }
        self.request_keyframes(room, now);
    }
}

/// The codec behind payload type `pt` in this peer's negotiated config.
fn codec_of(rtc: &Rtc, pt: str0m::media::Pt) -> Option<Codec> {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.pt() == pt)
        .map(|p| p.spec().codec)
}

/// How a recording writes `codec`: the codecs Twilio records (Opus, G.711
/// μ-law, VP8, H.264) and G.711 A-law; not VP9.
fn recorded_codec(codec: Codec) -> Option<RecordedCodec> {
    match codec {
        Codec::Opus => Some(RecordedCodec::Opus),
        Codec::PCMU => Some(RecordedCodec::Pcmu),
        Codec::PCMA => Some(RecordedCodec::Pcma),
        Codec::Vp8 => Some(RecordedCodec::Vp8),
        Codec::H264 => Some(RecordedCodec::H264),
        _ => None,
    }
}

fn video_codec(codec: Codec) -> Option<VideoCodec> {
    match codec {
        Codec::Vp8 => Some(VideoCodec::Vp8),
        Codec::Vp9 => Some(VideoCodec::Vp9),
        Codec::H264 => Some(VideoCodec::H264),
        _ => None,
    }
}
