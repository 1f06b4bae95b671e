//! The floor's control messages: a participant joins a room with its keys
//! and its SSRCs, and leaves. They stand in for signaling, ICE and DTLS,
//! which the floor does not measure, and travel on the relay's one UDP
//! port, from the socket the participant's media will use: the relay learns
//! the participant's address from the join, as an SFU learns it from ICE.
//!
//! A control datagram starts with [`MAGIC`], which no RTP packet can (its
//! first two bits would be version 1). All integers are big-endian.
//!
//! ```text
//! 0..4   "FLR1"
//! 4      type: 'J' join, 'A' accepted, 'R' refused, 'L' leave, 'B' left
//! 5..9   request id, chosen by the participant, echoed in the reply
//!
//! join   9..11  SRTP protection profile (RFC 7714 §14.2: 0x0007, 0x0008)
//!        11     room name length n (1–64), then n octets of room name
//!        +1     number k of SSRCs the participant sends (0–4), then k × 4 octets
//!        rest   the profile's keying material, laid out as a DTLS-SRTP
//!               exporter gives it (RFC 5764 §4.2): client key, server key,
//!               client salt, server salt
//! refused 9..11 the reason (see [`Refusal`])
//! ```
//!
//! A join from an address that already joined replaces that participant
//! (a retried join is harmless); a leave from an unknown address is
//! answered all the same. The keys travel in the clear: the relay binds
//! loopback addresses only.

use crate::srtp::Profile;

/// The first four octets of every control message.
pub const MAGIC: [u8; 4] = *b"FLR1";
/// Longest room name.
pub const MAX_ROOM_LEN: usize = 64;
/// Most SSRCs one participant sends (Salon's clients: audio and video).
pub const MAX_STREAMS: usize = 4;
/// Longest control message.
pub const MAX_LEN: usize = 9 + 2 + 1 + MAX_ROOM_LEN + 1 + 4 * MAX_STREAMS + 2 * (32 + 12);

const JOIN: u8 = b'J';
const ACCEPTED: u8 = b'A';
const REFUSED: u8 = b'R';
const LEAVE: u8 = b'L';
const LEFT: u8 = b'B';

/// Whether a datagram is a control message (rather than media or noise).
pub fn is_control(datagram: &[u8]) -> bool {
    datagram.starts_with(&MAGIC)
}

/// One control message, borrowing from the datagram it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Join(Join<'a>),
    Accepted { request: u32 },
    Refused { request: u32, reason: Refusal },
    Leave { request: u32 },
    Left { request: u32 },
}

/// A participant's request to join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join<'a> {
    pub request: u32,
    pub profile: Profile,
    /// Any octets; participants with the same room name share a room.
    pub room: &'a [u8],
    ssrcs: [u32; MAX_STREAMS],
    streams: usize,
    /// [`Profile::keying_material_len`] octets.
    pub keying_material: &'a [u8],
}

impl<'a> Join<'a> {
    /// A join; `None` when the room name, the SSRCs or the keying material
    /// do not fit the limits and the profile.
    pub fn new(
        request: u32,
        profile: Profile,
        room: &'a [u8],
        ssrcs: &[u32],
        keying_material: &'a [u8],
    ) -> Option<Self> {
        if room.is_empty()
            || room.len() > MAX_ROOM_LEN
            || ssrcs.len() > MAX_STREAMS
            || keying_material.len() != profile.keying_material_len()
        {
            return None;
        }
        let mut all = [0; MAX_STREAMS];
        all[..ssrcs.len()].copy_from_slice(ssrcs);
        Some(Self {
            request,
            profile,
            room,
            ssrcs: all,
            streams: ssrcs.len(),
            keying_material,
        })
    }

    /// The SSRCs the participant sends.
    pub fn ssrcs(&self) -> &[u32] {
        &self.ssrcs[..self.streams]
    }
}

/// Why the relay refused a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the join message is malformed")]
    Malformed,
    #[error("the relay does not speak that SRTP profile")]
    Profile,
    #[error("another participant of the room sends one of these SSRCs")]
    SsrcInUse,
    #[error("the relay is full")]
    Full,
    #[error("refused (reason {0})")]
    Other(u16),
}

impl Refusal {
    pub fn code(self) -> u16 {
        match self {
            Refusal::Malformed => 1,
            Refusal::Profile => 2,
            Refusal::SsrcInUse => 3,
            Refusal::Full => 4,
            Refusal::Other(code) => code,
        }
    }

    fn from_code(code: u16) -> Self {
        match code {
            1 => Refusal::Malformed,
            2 => Refusal::Profile,
            3 => Refusal::SsrcInUse,
            4 => Refusal::Full,
            other => Refusal::Other(other),
        }
    }
}

/// Why a control message could not be read. When the request id could be
/// read, it is here, so a join can be refused rather than ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    pub request: Option<u32>,
    pub reason: Refusal,
}

/// Reads fields from the front of a datagram, never past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl<'a> Message<'a> {
    /// Read a control message. Trailing octets after a reply or a leave are
    /// ignored; a join must end exactly with its keying material.
    pub fn parse(datagram: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let malformed = |request| ParseError {
            request,
            reason: Refusal::Malformed,
        };
        let mut r = Reader(datagram);
        if r.take(4) != Some(&MAGIC[..]) {
            return Err(malformed(None));
        }
        let (Some(kind), Some(request)) = (r.u8(), r.u32()) else {
            return Err(malformed(None));
        };
        let message = match kind {
            JOIN => {
                let bad = malformed(Some(request));
                let profile = r.u16().ok_or(bad)?;
                let profile = Profile::from_id(profile).ok_or(ParseError {
                    request: Some(request),
                    reason: Refusal::Profile,
                })?;
                let room_len = usize::from(r.u8().ok_or(bad)?);
                let room = r.take(room_len).ok_or(bad)?;
                let streams = usize::from(r.u8().ok_or(bad)?);
                if streams > MAX_STREAMS {
                    return Err(bad);
                }
                let mut ssrcs = [0; MAX_STREAMS];
                for ssrc in ssrcs.iter_mut().take(streams) {
                    *ssrc = r.u32().ok_or(bad)?;
                }
                let keying_material = r.0;
                let join = Join::new(request, profile, room, &ssrcs[..streams], keying_material)
                    .ok_or(bad)?;
                Message::Join(join)
            }
            ACCEPTED => Message::Accepted { request },
            REFUSED => Message::Refused {
                request,
                reason: Refusal::from_code(r.u16().ok_or(malformed(Some(request)))?),
            },
            LEAVE => Message::Leave { request },
            LEFT => Message::Left { request },
            _ => return Err(malformed(Some(request))),
        };
        Ok(message)
    }

    /// Write the message at the start of `out`; returns its length, or
    /// `None` when `out` is too short ([`MAX_LEN`] always suffices).
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let mut w = Writer { out, at: 0 };
        w.put(&MAGIC)?;
        let (kind, request) = match self {
            Message::Join(j) => (JOIN, j.request),
            Message::Accepted { request } => (ACCEPTED, *request),
            Message::Refused { request, .. } => (REFUSED, *request),
            Message::Leave { request } => (LEAVE, *request),
            Message::Left { request } => (LEFT, *request),
        };
        w.put(&[kind])?;
        w.put(&request.to_be_bytes())?;
        match self {
            Message::Join(j) => {
                w.put(&j.profile.id().to_be_bytes())?;
                w.put(&[j.room.len() as u8])?;
                w.put(j.room)?;
                w.put(&[j.streams as u8])?;
                for ssrc in j.ssrcs() {
                    w.put(&ssrc.to_be_bytes())?;
                }
                w.put(j.keying_material)?;
            }
            Message::Refused { reason, .. } => w.put(&reason.code().to_be_bytes())?,
            _ => {}
        }
        Some(w.at)
    }
}

struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at + bytes.len();
        self.out.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message<'_>) {
        let mut buf = [0u8; MAX_LEN];
        let n = message.write(&mut buf).unwrap();
        assert!(is_control(&buf[..n]));
        assert_eq!(Message::parse(&buf[..n]), Ok(message));
        // Every prefix is refused, never misread or panicked on. (Replies
        // and leaves without their request id are malformed; the shortest
        // complete ones are just that long.)
        for cut in 0..n {
            let parsed = Message::parse(&buf[..cut]);
            assert!(parsed.is_err(), "{message:?} cut at {cut}: {parsed:?}");
        }
    }

    #[test]
    fn every_message_reads_back_what_was_written() {
        let keys = [7u8; 88];
        let join = Join::new(42, Profile::SALON, b"standup", &[1, 2], &keys).unwrap();
        assert_eq!(join.ssrcs(), &[1, 2]);
        round_trip(Message::Join(join));
        let keys = [7u8; 56];
        let join = Join::new(1, Profile::AeadAes128Gcm, b"r", &[], &keys).unwrap();
        round_trip(Message::Join(join));
        round_trip(Message::Accepted { request: 1 });
        round_trip(Message::Refused {
            request: 2,
            reason: Refusal::SsrcInUse,
        });
        round_trip(Message::Leave { request: 3 });
        round_trip(Message::Left { request: 4 });
    }

    #[test]
    fn a_join_outside_the_limits_cannot_be_made() {
        let keys = [0u8; 88];
        assert!(Join::new(1, Profile::SALON, b"", &[], &keys).is_none());
        assert!(Join::new(1, Profile::SALON, &[b'x'; 65], &[], &keys).is_none());
        assert!(Join::new(1, Profile::SALON, b"r", &[1, 2, 3, 4, 5], &keys).is_none());
        assert!(Join::new(1, Profile::AeadAes128Gcm, b"r", &[], &keys).is_none());
        let longest = Join::new(1, Profile::SALON, &[b'x'; 64], &[1, 2, 3, 4], &keys).unwrap();
        let mut buf = [0u8; MAX_LEN];
        assert_eq!(Message::Join(longest).write(&mut buf), Some(MAX_LEN));
        assert_eq!(Message::Join(longest).write(&mut buf[..MAX_LEN - 1]), None);
    }

    #[test]
    fn bad_joins_are_refused_with_their_request_id() {
        let keys = [0u8; 88];
        let join = Join::new(9, Profile::SALON, b"room", &[5], &keys).unwrap();
        let mut buf = [0u8; MAX_LEN];
        let n = Message::Join(join).write(&mut buf).unwrap();

        // An unknown profile (AES128_CM_SHA1_80 is 0x0001).
        let mut other = buf;
        other[9..11].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(
            Message::parse(&other[..n]),
            Err(ParseError {
                request: Some(9),
                reason: Refusal::Profile
            })
        );
        // Keying material one octet too long.
        assert_eq!(
            Message::parse(&buf[..n + 1]).unwrap_err(),
            ParseError {
                request: Some(9),
                reason: Refusal::Malformed
            }
        );
        // Too many SSRCs.
        let mut many = buf;
        many[9 + 2 + 1 + 4] = 5;
        assert_eq!(Message::parse(&many[..n]).unwrap_err().request, Some(9));
        // An unknown type.
        let mut odd = buf;
        odd[4] = b'?';
        assert_eq!(Message::parse(&odd[..n]).unwrap_err().request, Some(9));
    }

    #[test]
    fn noise_is_not_control() {
        assert!(!is_control(&[0x80, 96, 0, 1]));
        assert!(!is_control(b"FLR"));
        assert!(Message::parse(b"FLR2J\0\0\0\x01").is_err());
        assert_eq!(Message::parse(b"FLR1").unwrap_err().request, None);
    }
}
