//! Draining a peer's `Rtc`: sending what it transmits and noting what
//! happened for the worker to act on.

use super::data::flush_pending;
use super::*;
use crate::quality::{Direction, PathSample};

/// Drain `peer`'s `Rtc` to its next timeout: send what it transmits, note
/// what happened. Under `catch_unwind` like every other call into it.
pub(super) fn drain(
    peer: &mut Peer,
    setup: &Setup,
    links: &mut super::tcp::Links,
    happenings: &mut Vec<Happening>,
) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        drain_inner(peer, setup, links, happenings)
    }));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => fail(peer, reason),
        Err(_) => {
            setup.stats.peer_panics.fetch_add(1, Ordering::Relaxed);
            fail(peer, "the media session crashed while sending".into());
        }
    }
}

pub(super) fn drain_inner(
    peer: &mut Peer,
    setup: &Setup,
    links: &mut super::tcp::Links,
    happenings: &mut Vec<Happening>,
) -> Result<(), String> {
    // str0m's pacer releases one queued packet per `Timeout` and then asks
    // for another at once; answering here, instead of in the next turn of
    // the worker loop, sends a burst (a video frame to a subscriber) in one
    // go. Bounded, so a peer with a deep queue cannot starve the others.
    let mut turns = 0;
    loop {
        let output = peer.rtc.poll_output().map_err(|e| e.to_string())?;
        match output {
            Output::Timeout(at) => {
                let now = Instant::now();
                if at <= now && turns < IMMEDIATE_TURNS {
                    turns += 1;
                    peer.rtc
                        .handle_input(Input::Timeout(now))
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                peer.deadline = at;
                return Ok(());
            }
            Output::Transmit(t) => {
                let sent = match t.proto {
                    Protocol::Udp => setup.outbound.send(t.source, t.destination, &t.contents),
                    Protocol::Tcp => links.send(t.source, t.destination, &t.contents),
                    _ => false,
                };
                if sent {
                    setup.stats.datagrams_out.fetch_add(1, Ordering::Relaxed);
                    setup
                        .stats
                        .bytes_out
                        .fetch_add(t.contents.len() as u64, Ordering::Relaxed);
                } else {
                    setup.stats.send_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            Output::Event(event) => on_event(peer, setup, event, happenings),
        }
    }
}

pub(super) fn on_event(
    peer: &mut Peer,
    setup: &Setup,
    event: Event,
    happenings: &mut Vec<Happening>,
) {
    match event {
        Event::Connected => {
            peer.connected = true;
            let _ = setup.events.send(MediaEvent::Connected {
                room: peer.room,
                participant: peer.participant,
            });
        }
        // The client's consent checks stopped: its network went away. It
        // is kept for the session timeout, to come back on the same path
        // or with an ICE restart (the housekeeping gives it up then).
        Event::IceConnectionStateChange(IceConnectionState::Disconnected)
            if peer.gone.is_none() && peer.connected && !peer.interrupted =>
        {
            interrupted(peer, setup);
        }
        Event::RtpPacket(packet) => {
            // Browsers send the RID extension only until the SSRC is
            // acknowledged: the stream str0m mapped it to knows the RID.
            let stream = peer
                .rtc
                .direct_api()
                .stream_rx(&packet.header.ssrc)
                .map(|s| (s.mid(), s.rid()));
            let (mid, rid) = match stream {
                Some((mid, rid)) => (Some(mid), rid),
                None => (None, None),
            };
            if let Some(track) = mid.and_then(|m| {
                peer.published
                    .iter()
                    .find(|(pm, _)| *pm == m)
                    .map(|(_, t)| *t)
            }) {
                happenings.push(Happening::Rtp {
                    track,
                    rid,
                    packet: Box::new(packet),
                });
            }
        }
        Event::KeyframeRequest(request) => {
            happenings.push(Happening::KeyframeRequest { mid: request.mid })
        }
        Event::ChannelOpen(id, label) => {
            if !peer.sctp_up {
                peer.sctp_up = true;
                happenings.push(Happening::SctpUp);
            }
            match peer.channels.iter_mut().find(|(cid, _, _)| *cid == id) {
                Some(entry) => entry.2 = true,
                None => peer.channels.push((id, label, true)),
            }
            flush_pending(peer, id);
        }
        Event::ChannelData(data) => {
            happenings.push(Happening::Data {
                label_of: data.id,
                binary: data.binary,
                data: data.data,
            });
        }
        Event::ChannelClose(id) => peer.channels.retain(|(cid, _, _)| *cid != id),
        Event::EgressBitrateEstimate(str0m::bwe::BweKind::Twcc {
            estimate,
            can_probe,
        }) => {
            peer.estimate = Some((estimate.as_u64(), can_probe));
        }
        // The client's receive-side estimate of everything it receives
        // (Chromium sends one REMB naming every SSRC).
        Event::EgressBitrateEstimate(str0m::bwe::BweKind::Remb { estimate, .. })
            if setup.estimation == crate::Estimation::Receiver =>
        {
            setup
                .stats
                .receiver_estimates
                .fetch_add(1, Ordering::Relaxed);
            peer.estimate = Some((estimate.as_u64(), false));
        }
        Event::MediaIngressStats(s) => {
            let jitter = (s.jitter > 0).then_some(s.jitter);
            record_stats(peer, s.mid, true, s.packets, s.bytes, s.loss, s.rtt, jitter);
        }
        Event::MediaEgressStats(s) => {
            let jitter = s.remote.as_ref().map(|r| r.jitter);
            let sent = record_stats(
                peer, s.mid, false, s.packets, s.bytes, s.loss, s.rtt, jitter,
            );
            if let Some((packets, bytes)) = sent
                && setup.estimation == crate::Estimation::Receiver
            {
                peer.loss.record(s.timestamp, packets, bytes, s.loss);
            }
        }
        _ => {}
    }
}

/// Fold one stream's stats event (totals since it began) into the peer's
/// network quality as one interval's sample, and say how many packets and
/// bytes that interval held. `jitter` is in RTP timestamp units.
#[allow(clippy::too_many_arguments)]
fn record_stats(
    peer: &mut Peer,
    mid: Mid,
    incoming: bool,
    packets: u64,
    bytes: u64,
    loss: Option<f32>,
    rtt: Option<Duration>,
    jitter: Option<u32>,
) -> Option<(u64, u64)> {
    let kind = peer.rtc.media(mid).map(|m| m.kind())?;
    let (kind, clock) = if kind == StrMediaKind::Video {
        (MediaKind::Video, 90_000.0)
    } else {
        (MediaKind::Audio, 48_000.0)
    };
    let (last_packets, last_bytes) = match peer
        .totals
        .iter_mut()
        .find(|(m, i, _, _)| *m == mid && *i == incoming)
    {
        Some(entry) => {
            let last = (entry.2, entry.3);
            (entry.2, entry.3) = (packets, bytes);
            last
        }
        None => {
            peer.totals.push((mid, incoming, packets, bytes));
            (0, 0)
        }
    };
    let interval = crate::quality::INTERVAL.as_secs_f64();
    let delta = (
        packets.saturating_sub(last_packets),
        bytes.saturating_sub(last_bytes),
    );
    let sample = PathSample {
        active: true,
        packets: delta.0,
        loss: loss.map(f64::from),
        rtt,
        jitter: jitter.map(|j| Duration::from_secs_f64(f64::from(j) / clock)),
        bitrate: Some((delta.1 as f64 * 8.0 / interval) as u64),
        available: None,
        wanted: None,
    };
    // What the server receives is what the participant sends.
    let direction = if incoming {
        Direction::Send
    } else {
        Direction::Recv
    };
    peer.quality.record(kind, direction, sample);
    Some(delta)
}
