//! Forwarding: RTP from publishers to subscribers through the room's
//! forwarders, and keyframe requests upstream.

use super::*;
use crate::forward::{Outgoing, PacketMeta};
use str0m::rtp::{Vp8Descriptor, Vp8Patch};

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
                Happening::Rtp { track, rid, packet } => {
                    self.forward(room_sid, track, rid, &packet)
                }
                Happening::KeyframeRequest { mid } => {
                    if let Some(room) = self.rooms.get_mut(&room_sid) {
                        for f in &mut room.forwarders {
                            f.keyframe_for(source, mid);
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
    pub(super) fn forward(
        &mut self,
        room_sid: RoomSid,
        track: TrackSid,
        rid: Option<Rid>,
        packet: &RtpPacket,
    ) {
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
        let Some(meta) = forwarder.observe(
            rid,
            *packet.header.ssrc,
            Some(packet.timestamp),
            packet.header.marker,
            *packet.seq_no,
            packet.header.timestamp,
            *packet.header.payload_type,
            &packet.payload,
        ) else {
            return; // a RID the offer did not announce
        };
        // A recording keeps one layer: the largest.
        if !self.recorders.is_empty() && meta.layer == forwarder.top_layer() {
            let codec = forwarder.codecs.recorded_codec(meta.pt);
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
        // str0m's parse of the VP8 descriptor, made once per packet and
        // only if a lane renumbers it.
        let mut descriptor: Option<Option<Vp8Descriptor>> = None;
        for lane in &mut forwarder.lanes {
            let Some(out) = lane.admit(&meta) else {
                continue;
            };
            let patch = renumber(&meta, &out, || {
                *descriptor.get_or_insert_with(|| Vp8Descriptor::parse(&packet.payload).ok())
            });
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
                    let mut rtp = RtpWrite::new(
                        out.pt.into(),
                        out.seq.into(),
                        out.time,
                        packet.timestamp,
                        packet.payload.clone(),
                    )
                    .marker(packet.header.marker)
                    .ext_vals(exts.clone())
                    .nackable(true);
                    if let Some(patch) = patch {
                        rtp = rtp.vp8_patch(patch);
                    }
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
        // (publisher, m-line, RID, SSRC): one request per layer wanted.
        let mut wanted: Vec<(PeerRef, Mid, Option<Rid>, Option<u32>)> = Vec::new();
        for f in &mut room.forwarders {
            if !f.poll_keyframe_request(now) {
                continue;
            }
            let layers = f.requested_layers();
            for (i, layer) in f.layers.iter().enumerate() {
                if layers & (1 << i) != 0 || f.layers.len() == 1 {
                    wanted.push((f.publisher, f.mid, layer.rid, layer.ssrc));
                }
            }
        }
        let mut ignored = Vec::new();
        for (publisher, mid, rid, ssrc) in wanted {
            let Some(peer) = slot_peer(&mut self.slots, publisher) else {
                continue;
            };
            let outcome = guarded(peer, &self.setup.stats, |p| {
                let mut api = p.rtc.direct_api();
                let stream = match ssrc {
                    Some(ssrc) => api.stream_rx(&ssrc.into()),
                    None => api.stream_rx_by_mid(mid, rid),
                };
                if let Some(stream) = stream {
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

/// The VP8 picture ID and TL0PICIDX a lane renumbered, as a patch str0m
/// applies while it serializes the packet (no copy of the payload); `None`
/// when they go out as they came.
fn renumber(
    meta: &PacketMeta,
    out: &Outgoing,
    descriptor: impl FnOnce() -> Option<Vp8Descriptor>,
) -> Option<Vp8Patch> {
    let ours = meta.vp8?;
    let picture_id = out
        .picture_id
        .filter(|id| ours.picture_id.map(|p| p.0) != Some(*id));
    let tl0 = out.tl0.filter(|t| ours.tl0.map(|p| p.0) != Some(*t));
    if picture_id.is_none() && tl0.is_none() {
        return None;
    }
    let mut patch = descriptor()?.patch();
    if let Some(id) = picture_id {
        // A 7-bit picture ID stays 7 bits.
        let id = if ours.picture_id.is_some_and(|p| !p.1) {
            id & 0x7f
        } else {
            id
        };
        patch = patch.picture_id(id);
    }
    if let Some(t) = tl0 {
        patch = patch.tl0_pic_idx(t);
    }
    patch.build().ok()
}
