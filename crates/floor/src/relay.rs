//! The relay's logic, without sockets: a datagram in, datagrams out.
//!
//! [`Relay::handle`] takes one received datagram and its source address and
//! writes what must be sent through a [`Transmit`], which lends it the
//! buffer to write each outgoing datagram into. There is no clock and no
//! timer: the floor does nothing but react to datagrams.
//!
//! For a media packet the work is the least forwarding can do:
//!
//! 1. find the sender by its address (a hash lookup) and the stream by its
//!    SSRC (one of at most four the sender declared),
//! 2. estimate the SRTP index and unprotect the packet in place with the
//!    sender's key (AES-GCM open), then advance the stream's index,
//! 3. for every other participant of the room: protect the same plaintext
//!    with that participant's key straight into the outgoing buffer (AES-GCM
//!    seal; only the header is copied) and hand it to the [`Transmit`].
//!
//! The packet keeps its SSRC, sequence number and timestamp (a relay does
//! not rewrite them; each subscriber's key differs, so no IV repeats), and
//! thus its SRTP index. RTCP is counted and dropped; anything that is not a
//! control message or SRTP from a participant is counted and dropped. No
//! allocation happens on this path: joins and leaves allocate, media does
//! not.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::control::{self, Join, MAX_STREAMS, Message, Refusal};
use crate::srtp::{self, Context, IndexEstimator, KeyingMaterial, RtpHeader};

/// Largest datagram the relay reads; longer ones are cut and then fail
/// authentication.
pub const MAX_DATAGRAM: usize = 2048;
/// What a [`Transmit`] buffer must hold: a datagram and a tag.
pub const MAX_OUTGOING: usize = MAX_DATAGRAM + srtp::TAG_LEN;
/// Most participants at once, by default.
pub const DEFAULT_MAX_PARTICIPANTS: usize = 4096;

/// Where the relay's outgoing datagrams go: a buffer to write one into,
/// then the order to send it.
pub trait Transmit {
    /// The buffer for the next datagram, at least [`MAX_OUTGOING`] long.
    /// Until [`Transmit::send`], the relay may ask again and get the same.
    fn buffer(&mut self) -> &mut [u8];
    /// Send the first `len` octets of the last buffer to `to`.
    fn send(&mut self, len: usize, to: SocketAddr);
}

/// What the relay did, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every datagram handed to [`Relay::handle`].
    pub datagrams: u64,
    /// SRTP packets from participants that authenticated.
    pub rtp_received: u64,
    /// SRTP packets handed to the [`Transmit`] for subscribers.
    pub rtp_forwarded: u64,
    pub control: u64,
    pub joins: u64,
    pub leaves: u64,
    pub refusals: u64,
    /// RTCP from participants: ignored.
    pub rtcp_ignored: u64,
    /// Neither control nor RTP, or an RTP header that does not parse.
    pub malformed: u64,
    /// RTP from an address that did not join.
    pub unknown_source: u64,
    /// RTP with an SSRC its sender did not declare.
    pub unknown_ssrc: u64,
    /// SRTP that failed authentication.
    pub unauthenticated: u64,
}

impl Stats {
    /// Datagrams dropped for any reason but being RTCP.
    pub fn dropped(&self) -> u64 {
        self.malformed + self.unknown_source + self.unknown_ssrc + self.unauthenticated
    }
}

/// One sender's stream: its SSRC and where its SRTP index is.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    index: IndexEstimator,
}

struct Participant {
    addr: SocketAddr,
    room: usize,
    /// Protects what the participant sends (the "client write" keys).
    uplink: Context,
    /// Protects what the participant receives (the "server write" keys).
    downlink: Context,
    streams: [Stream; MAX_STREAMS],
    stream_count: usize,
}

impl Participant {
    fn streams(&self) -> &[Stream] {
        &self.streams[..self.stream_count]
    }
}

struct Room {
    name: Vec<u8>,
    /// Participant slots.
    members: Vec<usize>,
}

/// The relay: participants by address, rooms of participants, counters.
pub struct Relay {
    participants: Vec<Option<Participant>>,
    free_participants: Vec<usize>,
    by_addr: HashMap<SocketAddr, usize>,
    rooms: Vec<Option<Room>>,
    free_rooms: Vec<usize>,
    room_by_name: HashMap<Vec<u8>, usize>,
    max_participants: usize,
    stats: Stats,
}

impl Default for Relay {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PARTICIPANTS)
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("participants", &self.by_addr.len())
            .field("rooms", &self.room_by_name.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Relay {
    /// A relay that admits at most `max_participants` at once.
    pub fn new(max_participants: usize) -> Self {
        Self {
            participants: Vec::new(),
            free_participants: Vec::new(),
            by_addr: HashMap::new(),
            rooms: Vec::new(),
            free_rooms: Vec::new(),
            room_by_name: HashMap::new(),
            max_participants,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Participants now.
    pub fn participants(&self) -> usize {
        self.by_addr.len()
    }

    /// Rooms with at least one participant now.
    pub fn rooms(&self) -> usize {
        self.room_by_name.len()
    }

    /// Handle one datagram received from `source`. `datagram` is the
    /// receive buffer: it is decrypted in place.
    pub fn handle(&mut self, source: SocketAddr, datagram: &mut [u8], tx: &mut impl Transmit) {
        self.stats.datagrams += 1;
        match datagram.first() {
            Some(b) if b >> 6 == 2 => self.media(source, datagram, tx),
            _ if control::is_control(datagram) => self.control(source, datagram, tx),
            _ => self.stats.malformed += 1,
        }
    }

    fn media(&mut self, source: SocketAddr, datagram: &mut [u8], tx: &mut impl Transmit) {
        if srtp::is_rtcp(datagram) {
            self.stats.rtcp_ignored += 1;
            return;
        }
        let Some(&slot) = self.by_addr.get(&source) else {
            self.stats.unknown_source += 1;
            return;
        };
        let Some(header) = RtpHeader::parse(datagram) else {
            self.stats.malformed += 1;
            return;
        };
        let Some(sender) = self.participants.get_mut(slot).and_then(Option::as_mut) else {
            self.stats.unknown_source += 1;
            return;
        };
        let count = sender.stream_count;
        let Some(stream) = sender.streams[..count]
            .iter_mut()
            .find(|s| s.ssrc == header.ssrc)
        else {
            self.stats.unknown_ssrc += 1;
            return;
        };
        let index = stream.index.estimate(header.sequence);
        let Ok(len) = sender.uplink.unprotect(datagram, &header, index) else {
            self.stats.unauthenticated += 1;
            return;
        };
        stream.index.update(index);
        self.stats.rtp_received += 1;

        let room = sender.room;
        let plain = &datagram[..len];
        let Some(room) = self.rooms.get(room).and_then(Option::as_ref) else {
            return;
        };
        for &member in &room.members {
            if member == slot {
                continue;
            }
            let Some(Some(receiver)) = self.participants.get(member) else {
                continue;
            };
            if let Ok(n) = receiver
                .downlink
                .protect_into(plain, &header, index, tx.buffer())
            {
                tx.send(n, receiver.addr);
                self.stats.rtp_forwarded += 1;
            }
        }
    }

    fn control(&mut self, source: SocketAddr, datagram: &[u8], tx: &mut impl Transmit) {
        self.stats.control += 1;
        let reply = match Message::parse(datagram) {
            Ok(Message::Join(join)) => {
                self.stats.joins += 1;
                match self.join(source, &join) {
                    Ok(()) => Message::Accepted {
                        request: join.request,
                    },
                    Err(reason) => Message::Refused {
                        request: join.request,
                        reason,
                    },
                }
            }
            Ok(Message::Leave { request }) => {
                self.stats.leaves += 1;
                self.remove(source);
                Message::Left { request }
            }
            // Replies are for participants, not for the relay.
            Ok(_) => {
                self.stats.malformed += 1;
                return;
            }
            Err(e) => match e.request {
                Some(request) => Message::Refused {
                    request,
                    reason: e.reason,
                },
                None => {
                    self.stats.malformed += 1;
                    return;
                }
            },
        };
        if matches!(reply, Message::Refused { .. }) {
            self.stats.refusals += 1;
        }
        if let Some(n) = reply.write(tx.buffer()) {
            tx.send(n, source);
        }
    }

    /// Admit (or re-admit) the participant at `source`.
    fn join(&mut self, source: SocketAddr, join: &Join<'_>) -> Result<(), Refusal> {
        let keys = KeyingMaterial::split(join.profile, join.keying_material)
            .map_err(|_| Refusal::Malformed)?;
        let uplink = keys.client(join.profile).map_err(|_| Refusal::Malformed)?;
        let downlink = keys.server(join.profile).map_err(|_| Refusal::Malformed)?;
        // A join from a known address replaces that participant: a retried
        // join, or the same socket starting over with new keys.
        self.remove(source);

        let ssrcs = join.ssrcs();
        let duplicate_within = ssrcs
            .iter()
            .enumerate()
            .any(|(i, s)| ssrcs[..i].contains(s));
        let room = self.room_by_name.get(join.room).copied();
        let taken = room
            .and_then(|r| self.rooms.get(r).and_then(Option::as_ref))
            .is_some_and(|r| {
                r.members.iter().any(|&m| {
                    self.participants[m]
                        .as_ref()
                        .is_some_and(|p| p.streams().iter().any(|s| ssrcs.contains(&s.ssrc)))
                })
            });
        if duplicate_within || taken {
            return Err(Refusal::SsrcInUse);
        }
        if self.by_addr.len() >= self.max_participants {
            return Err(Refusal::Full);
        }

        let room = match room {
            Some(r) => r,
            None => {
                let entry = Room {
                    name: join.room.to_vec(),
                    members: Vec::new(),
                };
                let r = match self.free_rooms.pop() {
                    Some(r) => {
                        self.rooms[r] = Some(entry);
                        r
                    }
                    None => {
                        self.rooms.push(Some(entry));
                        self.rooms.len() - 1
                    }
                };
                self.room_by_name.insert(join.room.to_vec(), r);
                r
            }
        };
        let mut streams = [Stream {
            ssrc: 0,
            index: IndexEstimator::new(),
        }; MAX_STREAMS];
        for (stream, &ssrc) in streams.iter_mut().zip(ssrcs) {
            stream.ssrc = ssrc;
        }
        let participant = Participant {
            addr: source,
            room,
            uplink,
            downlink,
            streams,
            stream_count: ssrcs.len(),
        };
        let slot = match self.free_participants.pop() {
            Some(s) => {
                self.participants[s] = Some(participant);
                s
            }
            None => {
                self.participants.push(Some(participant));
                self.participants.len() - 1
            }
        };
        self.by_addr.insert(source, slot);
        if let Some(r) = self.rooms[room].as_mut() {
            r.members.push(slot);
        }
        Ok(())
    }

    /// Forget the participant at `source`, and its room when it was the
    /// last one in it.
    fn remove(&mut self, source: SocketAddr) {
        let Some(slot) = self.by_addr.remove(&source) else {
            return;
        };
        let Some(participant) = self.participants.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.free_participants.push(slot);
        let room = participant.room;
        let Some(r) = self.rooms.get_mut(room).and_then(Option::as_mut) else {
            return;
        };
        r.members.retain(|&m| m != slot);
        if r.members.is_empty() {
            self.room_by_name.remove(&r.name);
            self.rooms[room] = None;
            self.free_rooms.push(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::{Profile, TAG_LEN};

    /// Collects what the relay sends.
    #[derive(Default)]
    struct Sent {
        buf: Vec<u8>,
        out: Vec<(SocketAddr, Vec<u8>)>,
    }

    impl Transmit for Sent {
        fn buffer(&mut self) -> &mut [u8] {
            self.buf.resize(MAX_OUTGOING, 0);
            &mut self.buf
        }

        fn send(&mut self, len: usize, to: SocketAddr) {
            self.out.push((to, self.buf[..len].to_vec()));
        }
    }

    /// A participant as the load tester plays one.
    struct Peer {
        addr: SocketAddr,
        material: Vec<u8>,
        up: Context,
        down: Context,
        ssrcs: Vec<u32>,
        seq: u16,
    }

    impl Peer {
        fn new(port: u16, ssrcs: &[u32]) -> Self {
            let material: Vec<u8> = (0..88u32)
                .map(|i| (i * 7 + u32::from(port)) as u8)
                .collect();
            let keys = KeyingMaterial::split(Profile::SALON, &material).unwrap();
            Self {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                up: keys.client(Profile::SALON).unwrap(),
                down: keys.server(Profile::SALON).unwrap(),
                material,
                ssrcs: ssrcs.to_vec(),
                seq: 100,
            }
        }

        fn join(&self, relay: &mut Relay, room: &str) -> Message<'static> {
            let join = Join::new(
                1,
                Profile::SALON,
                room.as_bytes(),
                &self.ssrcs,
                &self.material,
            )
            .unwrap();
            let mut buf = [0u8; control::MAX_LEN];
            let n = Message::Join(join).write(&mut buf).unwrap();
            let mut sent = Sent::default();
            relay.handle(self.addr, &mut buf[..n], &mut sent);
            assert_eq!(sent.out.len(), 1, "one reply");
            assert_eq!(sent.out[0].0, self.addr);
            match Message::parse(&sent.out[0].1).unwrap() {
                Message::Accepted { request } => Message::Accepted { request },
                Message::Refused { request, reason } => Message::Refused { request, reason },
                other => panic!("unexpected reply {other:?}"),
            }
        }

        /// An SRTP packet of the participant's first stream.
        fn packet(&mut self, payload: &[u8]) -> Vec<u8> {
            let mut buf = vec![0u8; 12 + payload.len() + TAG_LEN];
            RtpHeader::write(&mut buf, false, 96, self.seq, 9000, self.ssrcs[0]).unwrap();
            buf[12..12 + payload.len()].copy_from_slice(payload);
            let n = self
                .up
                .protect(&mut buf, 12 + payload.len(), u64::from(self.seq))
                .unwrap();
            self.seq = self.seq.wrapping_add(1);
            buf.truncate(n);
            buf
        }

        /// Decrypt what the relay sent this participant.
        fn open(&self, srtp: &[u8]) -> Vec<u8> {
            let mut buf = srtp.to_vec();
            let header = RtpHeader::parse(&buf).unwrap();
            let index = IndexEstimator::new().estimate(header.sequence);
            let n = self.down.unprotect(&mut buf, &header, index).unwrap();
            buf[header.len..n].to_vec()
        }
    }

    fn send(relay: &mut Relay, from: SocketAddr, datagram: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut sent = Sent::default();
        let mut buf = datagram.to_vec();
        relay.handle(from, &mut buf, &mut sent);
        sent.out
    }

    #[test]
    fn a_packet_reaches_every_other_participant_of_its_room_under_their_own_keys() {
        let mut relay = Relay::default();
        let mut alice = Peer::new(1000, &[11, 12]);
        let bob = Peer::new(1001, &[21]);
        let carol = Peer::new(1002, &[31]);
        let dave = Peer::new(1003, &[41]);
        for (p, room) in [(&alice, "a"), (&bob, "a"), (&carol, "a"), (&dave, "b")] {
            assert_eq!(p.join(&mut relay, room), Message::Accepted { request: 1 });
        }
        assert_eq!((relay.participants(), relay.rooms()), (4, 2));

        let packet = alice.packet(b"hello");
        let out = send(&mut relay, alice.addr, &packet);
        let to: Vec<SocketAddr> = out.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            to,
            vec![bob.addr, carol.addr],
            "not back to Alice, not to Dave's room"
        );
        assert_ne!(out[0].1, out[1].1, "each under its own key");
        assert_eq!(bob.open(&out[0].1), b"hello");
        assert_eq!(carol.open(&out[1].1), b"hello");
        assert_eq!(&out[0].1[..12], &packet[..12], "the header is unchanged");
        let stats = relay.stats();
        assert_eq!((stats.rtp_received, stats.rtp_forwarded), (1, 2));
    }

    #[test]
    fn garbage_and_strangers_are_dropped_and_counted() {
        let mut relay = Relay::default();
        let mut alice = Peer::new(1000, &[11]);
        let bob = Peer::new(1001, &[21]);
        alice.join(&mut relay, "a");
        bob.join(&mut relay, "a");
        let packet = alice.packet(b"media");

        // From an address that never joined.
        assert!(send(&mut relay, SocketAddr::from(([127, 0, 0, 1], 9)), &packet).is_empty());
        // Tampered.
        let mut bad = packet.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(send(&mut relay, alice.addr, &bad).is_empty());
        // An SSRC Alice did not declare.
        let mut other = packet.clone();
        other[8..12].copy_from_slice(&99u32.to_be_bytes());
        assert!(send(&mut relay, alice.addr, &other).is_empty());
        // RTCP, noise, nothing, a truncated header, a reply sent to the relay.
        assert!(send(&mut relay, alice.addr, &[0x80, 200, 0, 1, 0, 0, 0, 11]).is_empty());
        assert!(send(&mut relay, alice.addr, b"\x17\x03\x03 hello").is_empty());
        assert!(send(&mut relay, alice.addr, &[]).is_empty());
        assert!(send(&mut relay, alice.addr, &packet[..11]).is_empty());
        assert!(send(&mut relay, alice.addr, b"FLR1A\0\0\0\x01").is_empty());

        let s = relay.stats();
        assert_eq!(
            (
                s.unknown_source,
                s.unauthenticated,
                s.unknown_ssrc,
                s.rtcp_ignored
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(s.malformed, 4);
        assert_eq!(s.rtp_forwarded, 0);
        // And the real packet still goes through: failures moved nothing.
        assert_eq!(send(&mut relay, alice.addr, &packet).len(), 1);
    }

    #[test]
    fn every_prefix_and_every_bit_flip_of_a_packet_is_survived() {
        let mut relay = Relay::default();
        let mut alice = Peer::new(1000, &[11]);
        let bob = Peer::new(1001, &[21]);
        alice.join(&mut relay, "a");
        bob.join(&mut relay, "a");
        let packet = alice.packet(&[0x5a; 200]);
        for cut in 0..packet.len() {
            assert!(send(&mut relay, alice.addr, &packet[..cut]).is_empty());
        }
        for i in 0..packet.len() * 8 {
            let mut bad = packet.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let out = send(&mut relay, alice.addr, &bad);
            assert!(out.is_empty(), "bit {i} flipped and still forwarded");
        }
        assert_eq!(relay.stats().rtp_forwarded, 0);
        assert_eq!(send(&mut relay, alice.addr, &packet).len(), 1);
    }

    #[test]
    fn a_webinar_fans_out_from_the_one_publisher() {
        let mut relay = Relay::default();
        let mut host = Peer::new(2000, &[1, 2]);
        host.join(&mut relay, "webinar");
        let audience: Vec<Peer> = (0..10).map(|i| Peer::new(2001 + i, &[])).collect();
        for p in &audience {
            assert_eq!(
                p.join(&mut relay, "webinar"),
                Message::Accepted { request: 1 }
            );
        }
        let out = send(&mut relay, host.addr, &host.packet(b"slide 1"));
        assert_eq!(out.len(), 10);
        for (p, (to, srtp)) in audience.iter().zip(&out) {
            assert_eq!(*to, p.addr);
            assert_eq!(p.open(srtp), b"slide 1");
        }
    }

    #[test]
    fn ssrcs_are_unique_within_a_room() {
        let mut relay = Relay::default();
        Peer::new(1000, &[7, 8]).join(&mut relay, "a");
        let refused = Message::Refused {
            request: 1,
            reason: Refusal::SsrcInUse,
        };
        assert_eq!(Peer::new(1001, &[8]).join(&mut relay, "a"), refused);
        assert_eq!(Peer::new(1002, &[5, 5]).join(&mut relay, "a"), refused);
        // Another room may use them.
        assert_eq!(
            Peer::new(1003, &[8]).join(&mut relay, "b"),
            Message::Accepted { request: 1 }
        );
        assert_eq!(relay.stats().refusals, 2);
    }

    #[test]
    fn leaving_frees_the_slot_the_room_and_the_ssrcs() {
        let mut relay = Relay::new(2);
        let alice = Peer::new(1000, &[7]);
        let bob = Peer::new(1001, &[8]);
        alice.join(&mut relay, "a");
        bob.join(&mut relay, "b");
        assert_eq!(
            Peer::new(1002, &[9]).join(&mut relay, "a"),
            Message::Refused {
                request: 1,
                reason: Refusal::Full
            }
        );
        let mut leave = [0u8; 16];
        let n = Message::Leave { request: 5 }.write(&mut leave).unwrap();
        let out = send(&mut relay, alice.addr, &leave[..n]);
        assert_eq!(Message::parse(&out[0].1), Ok(Message::Left { request: 5 }));
        assert_eq!((relay.participants(), relay.rooms()), (1, 1));
        // A leave from a stranger is answered too.
        assert_eq!(send(&mut relay, alice.addr, &leave[..n]).len(), 1);
        // The SSRC and the place are free again.
        assert_eq!(
            Peer::new(1002, &[7]).join(&mut relay, "a"),
            Message::Accepted { request: 1 }
        );
    }

    #[test]
    fn a_second_join_from_the_same_address_replaces_the_first() {
        let mut relay = Relay::default();
        let mut alice = Peer::new(1000, &[7]);
        let bob = Peer::new(1001, &[8]);
        alice.join(&mut relay, "a");
        bob.join(&mut relay, "a");
        // Retried: same SSRC, same address, no refusal, still one participant.
        assert_eq!(
            alice.join(&mut relay, "a"),
            Message::Accepted { request: 1 }
        );
        assert_eq!(relay.participants(), 2);
        // Moved to another room: Bob no longer hears Alice.
        alice.join(&mut relay, "elsewhere");
        assert!(send(&mut relay, alice.addr, &alice.packet(b"x")).is_empty());
        assert_eq!(relay.rooms(), 2);
    }

    #[test]
    fn a_malformed_join_is_refused_and_admits_nobody() {
        let mut relay = Relay::default();
        let alice = Peer::new(1000, &[7]);
        let join = Join::new(3, Profile::SALON, b"a", &[7], &alice.material).unwrap();
        let mut buf = [0u8; control::MAX_LEN];
        let n = Message::Join(join).write(&mut buf).unwrap();
        let out = send(&mut relay, alice.addr, &buf[..n - 1]);
        assert_eq!(
            Message::parse(&out[0].1),
            Ok(Message::Refused {
                request: 3,
                reason: Refusal::Malformed
            })
        );
        assert_eq!(relay.participants(), 0);
    }

    #[test]
    fn the_index_survives_a_sequence_number_wrap() {
        let mut relay = Relay::default();
        let mut alice = Peer::new(1000, &[7]);
        let bob = Peer::new(1001, &[8]);
        alice.join(&mut relay, "a");
        bob.join(&mut relay, "a");
        let mut bob_index = IndexEstimator::new();
        alice.seq = 65_530;
        for n in 0..12u64 {
            let index = 65_530 + n;
            // Alice protects with her true index (ROC 1 after the wrap).
            let mut buf = vec![0u8; 12 + 4 + TAG_LEN];
            RtpHeader::write(&mut buf, false, 96, index as u16, 0, 7).unwrap();
            let len = alice.up.protect(&mut buf, 16, index).unwrap();
            let out = send(&mut relay, alice.addr, &buf[..len]);
            assert_eq!(out.len(), 1, "packet {n}");
            let mut srtp = out[0].1.clone();
            let header = RtpHeader::parse(&srtp).unwrap();
            let i = bob_index.estimate(header.sequence);
            assert_eq!(i, index);
            assert!(bob.down.unprotect(&mut srtp, &header, i).is_ok());
            bob_index.update(i);
        }
    }
}
