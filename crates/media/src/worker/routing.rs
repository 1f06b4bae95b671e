//! Forwarding: RTP from publishers to subscribers through the room's
//! forwarders, and keyframe requests upstream.

use super::*;

impl Worker {
    /// Act on what draining `source` produced: forward RTP, relay data,
    /// pass keyframe requests upstream.
    pub(super) fn act_on(
        &mut self,
        source: PeerRef,
        happenings: &mut Vec<Happening>,
        now: Instant,
    ) {
        if happenings.is_empty() {
            return;
        }
        let Some(room_sid) = slot_peer(&mut self.slots, source).map(|p| p.room) else {
            happenings.clear();
            return;
        };
        for happening in happenings.drain(..) {
            match happening {
                Happening::Rtp { track, packet } => self.forward(room_sid, track, &packet),
                Happening::KeyframeRequest { mid } => {
                    if let Some(room) = self.rooms.get_mut(&room_sid) {
                        for f in &mut room.forwarders {
                            if f.lanes
                                .iter()
                                .any(|l| l.subscriber == source && l.mid == mid)
                            {
                                f.subscriber_wants_keyframe();
                            }
                        }
                    }
                    self.request_keyframes(room_sid, now);
                }
                Happening::Data {
                    label_of,
                    binary,
                    data,
                } => self.relay_data(room_sid, source, label_of, binary, &data),
                Happening::SctpUp => {
                    if let Some(participant) =
                        slot_peer(&mut self.slots, source).map(|p| p.participant)
                    {
                        self.open_data_channels(participant);
                    }
                }
            }
        }
        self.request_keyframes(room_sid, now);
    }

    /// Write one incoming packet to every lane of its track. The writes are
    /// released by [`Worker::flush_written`] at the end of the batch.
    pub(super) fn forward(&mut self, room_sid: RoomSid, track: TrackSid, packet: &RtpPacket) {
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return;
        };
        let Some(forwarder) = room.forwarders.iter_mut().find(|f| f.track == track) else {
            return;
        };
        self.setup.stats.rtp_in.fetch_add(1, Ordering::Relaxed);
        if let (Some(voice), Some(level)) = (forwarder.voice, packet.header.ext_vals.audio_level) {
            // RFC 6464 levels are −dBov: str0m reads them as 0 to −127.
            let level = level.unsigned_abs().min(127);
            room.speaker
                .observe(voice, level, packet.header.ext_vals.voice_activity);
        }
        let meta = forwarder.meta(
            *packet.seq_no,
            packet.header.timestamp,
            *packet.header.payload_type,
            &packet.payload,
        );
        if !self.recorders.is_empty() {
            let codec = forwarder.codecs.video_codec(meta.pt);
            if self.recorders.packet(track, codec, packet) {
                forwarder.subscriber_wants_keyframe();
            }
        }
        let exts = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let slots = &mut self.slots;
        let mut forwarded = 0u64;
        for lane in &mut forwarder.lanes {
            let Some(out) = lane.admit(&meta) else {
                continue;
            };
            let Some(slot) = slots.get_mut(lane.subscriber.index as usize) else {
                continue;
            };
            if slot.generation != lane.subscriber.generation {
                continue;
            }
            let Some(subscriber) = slot.peer.as_mut() else {
                continue;
            };
            if subscriber.gone.is_some() {
                continue;
            }
            let mid = lane.mid;
            let write = guarded(subscriber, &self.setup.stats, |s| {
                let mut api = s.rtc.direct_api();
                if let Some(stream) = api.stream_tx_by_mid(mid, None) {
                    let rtp = RtpWrite::new(
                        out.pt.into(),
                        out.seq.into(),
                        out.time,
                        packet.timestamp,
                        packet.payload.clone(),
                    )
                    .marker(packet.header.marker)
                    .ext_vals(exts.clone())
                    .nackable(true);
                    stream.write_rtp(rtp);
                    return Ok(true);
                }
                Ok(false)
            });
            match write {
                Ok(false) => {}
                Ok(true) => {
                    forwarded += 1;
                    if !subscriber.written {
                        subscriber.written = true;
                        self.written.push(lane.subscriber);
                    }
                }
                Err(reason) => fail(subscriber, reason),
            }
        }
        self.setup
            .stats
            .rtp_forwarded
            .fetch_add(forwarded, Ordering::Relaxed);
    }

    /// Send the keyframe requests the room's forwarders want now.
    pub(super) fn request_keyframes(&mut self, room_sid: RoomSid, now: Instant) {
        let Some(room) = self.rooms.get_mut(&room_sid) else {
            return;
        };
        let wanted: Vec<(PeerRef, Mid)> = room
            .forwarders
            .iter_mut()
            .filter_map(|f| f.poll_keyframe_request(now).then_some((f.publisher, f.mid)))
            .collect();
        let mut ignored = Vec::new();
        for (publisher, mid) in wanted {
            let Some(peer) = slot_peer(&mut self.slots, publisher) else {
                continue;
            };
            let outcome = guarded(peer, &self.setup.stats, |p| {
                if let Some(stream) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
                    stream.request_keyframe(KeyframeRequestKind::Pli);
                }
                Ok(())
            });
            match outcome {
                Ok(()) => drain(peer, &self.setup, &mut self.tcp, &mut ignored),
                Err(reason) => fail(peer, reason),
            }
            // Media that arrived during this drain is dropped rather than
            // recursing; the publisher is mid-stream and loses nothing the
            // receivers cannot recover with NACK.
            ignored.clear();
        }
    }
}
