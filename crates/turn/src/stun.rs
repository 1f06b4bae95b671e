//! STUN messages (RFC 8489) and TURN channel data (RFC 8656 §12): reading
//! and writing, nothing else. Reading borrows the datagram (no copies, one
//! small fixed array of attribute positions); writing appends to a buffer
//! the caller reuses. Does not know allocations, sockets or credentials
//! beyond computing and checking MESSAGE-INTEGRITY with a given key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER: usize = 20;
/// Attributes kept per message; a message with more is refused (no client
/// needs more than a dozen).
const MAX_ATTRIBUTES: usize = 24;
const FINGERPRINT_XOR: u32 = 0x5354_554e;
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Methods Salon's TURN server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Binding,
    Allocate,
    Refresh,
    Send,
    Data,
    CreatePermission,
    ChannelBind,
    Other(u16),
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Binding => 0x001,
            Method::Allocate => 0x003,
            Method::Refresh => 0x004,
            Method::Send => 0x006,
            Method::Data => 0x007,
            Method::CreatePermission => 0x008,
            Method::ChannelBind => 0x009,
            Method::Other(code) => code,
        }
    }

    fn from_code(code: u16) -> Self {
        match code {
            0x001 => Method::Binding,
            0x003 => Method::Allocate,
            0x004 => Method::Refresh,
            0x006 => Method::Send,
            0x007 => Method::Data,
            0x008 => Method::CreatePermission,
            0x009 => Method::ChannelBind,
            other => Method::Other(other),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0x0000,
            Class::Indication => 0x0010,
            Class::Success => 0x0100,
            Class::Error => 0x0110,
        }
    }
}

/// Attribute types (RFC 8489 §18.3, RFC 8656 §18).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
}

/// Why a datagram is not a STUN message we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("shorter than a STUN header")]
    Short,
    #[error("not a STUN message (first bits or magic cookie)")]
    NotStun,
    #[error("length field disagrees with the datagram")]
    Length,
    #[error("attribute runs past the end")]
    Attribute,
    #[error("more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    #[error("FINGERPRINT does not match")]
    Fingerprint,
}

/// A STUN message read from a datagram (or a TCP frame). Attributes after
/// MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as the RFC says.
#[derive(Debug)]
pub struct Message<'a> {
    pub method: Method,
    pub class: Class,
    pub transaction: [u8; 12],
    raw: &'a [u8],
    attributes: [(u16, u16, u16); MAX_ATTRIBUTES],
    count: usize,
    /// Offset of the MESSAGE-INTEGRITY attribute's header.
    integrity_at: Option<usize>,
}

/// Whether `bytes` starts like a STUN message (first two bits zero and the
/// magic cookie); channel data starts with 0b01.
pub fn is_stun(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER
        && bytes[0] & 0xC0 == 0
        && u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) == MAGIC_COOKIE
}

/// The length of the STUN message or channel-data frame at the start of a
/// TCP stream (RFC 8656 §12.5: channel data is padded to 4 bytes over TCP),
/// once its first four bytes are there.
pub fn frame_len(head: [u8; 4]) -> usize {
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    if head[0] & 0xC0 == 0x40 {
        4 + len.next_multiple_of(4)
    } else {
        HEADER + len
    }
}

impl<'a> Message<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() < HEADER {
            return Err(ParseError::Short);
        }
        if !is_stun(bytes) {
            return Err(ParseError::NotStun);
        }
        let length = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if length % 4 != 0 || HEADER + length != bytes.len() {
            return Err(ParseError::Length);
        }
        let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
        let class = match kind & 0x0110 {
            0x0000 => Class::Request,
            0x0010 => Class::Indication,
            0x0100 => Class::Success,
            _ => Class::Error,
        };
        let code = (kind & 0x000F) | ((kind & 0x00E0) >> 1) | ((kind & 0x3E00) >> 2);
        let mut transaction = [0; 12];
        transaction.copy_from_slice(&bytes[8..20]);
        let mut message = Message {
            method: Method::from_code(code),
            class,
            transaction,
            raw: bytes,
            attributes: [(0, 0, 0); MAX_ATTRIBUTES],
            count: 0,
            integrity_at: None,
        };
        let mut at = HEADER;
        while at < bytes.len() {
            if at + 4 > bytes.len() {
                return Err(ParseError::Attribute);
            }
            let kind = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
            let value = at + 4;
            if value + len > bytes.len() {
                return Err(ParseError::Attribute);
            }
            if kind == attr::FINGERPRINT {
                if len != 4 || value + 4 != bytes.len() {
                    return Err(ParseError::Attribute);
                }
                let expected = CRC32.checksum(&bytes[..at]) ^ FINGERPRINT_XOR;
                let got = u32::from_be_bytes([
                    bytes[value],
                    bytes[value + 1],
                    bytes[value + 2],
                    bytes[value + 3],
                ]);
                if got != expected {
                    return Err(ParseError::Fingerprint);
                }
            } else if message.integrity_at.is_none() {
                if kind == attr::MESSAGE_INTEGRITY {
                    message.integrity_at = Some(at);
                }
                if message.count == MAX_ATTRIBUTES {
                    return Err(ParseError::TooManyAttributes);
                }
                // Both fit in u16: the message is at most 20 + 65535 bytes.
                message.attributes[message.count] = (kind, value as u16, len as u16);
                message.count += 1;
            }
            at = value + len.next_multiple_of(4);
        }
        Ok(message)
    }

    /// The first attribute of this type.
    pub fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.attributes[..self.count]
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|&(_, at, len)| &self.raw[at as usize..at as usize + len as usize])
    }

    /// Every attribute of this type (CreatePermission may carry several
    /// XOR-PEER-ADDRESSes).
    pub fn all(&self, kind: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.attributes[..self.count]
            .iter()
            .filter(move |(k, _, _)| *k == kind)
            .map(|&(_, at, len)| &self.raw[at as usize..at as usize + len as usize])
    }

    /// Comprehension-required attributes (below 0x8000) this server does
    /// not know, for 420 Unknown Attribute.
    pub fn unknown_required(&self) -> Vec<u16> {
        use attr::*;
        const KNOWN: &[u16] = &[
            MAPPED_ADDRESS,
            USERNAME,
            MESSAGE_INTEGRITY,
            ERROR_CODE,
            UNKNOWN_ATTRIBUTES,
            CHANNEL_NUMBER,
            LIFETIME,
            XOR_PEER_ADDRESS,
            DATA,
            REALM,
            NONCE,
            XOR_RELAYED_ADDRESS,
            REQUESTED_ADDRESS_FAMILY,
            EVEN_PORT,
            REQUESTED_TRANSPORT,
            DONT_FRAGMENT,
            MESSAGE_INTEGRITY_SHA256,
            USERHASH,
            XOR_MAPPED_ADDRESS,
            RESERVATION_TOKEN,
        ];
        self.attributes[..self.count]
            .iter()
            .map(|(k, _, _)| *k)
            .filter(|k| *k < 0x8000 && !KNOWN.contains(k))
            .collect()
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    /// Whether MESSAGE-INTEGRITY is present and right for `key` (RFC 8489
    /// §14.5: HMAC-SHA1 over the message up to the attribute, with the
    /// length field counting up to its end).
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else {
            return false;
        };
        let Some(value) = self.get(attr::MESSAGE_INTEGRITY) else {
            return false;
        };
        if value.len() != 20 {
            return false;
        }
        let length = (at + 24 - HEADER) as u16;
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(&self.raw[..2]);
        mac.update(&length.to_be_bytes());
        mac.update(&self.raw[4..at]);
        mac.verify_slice(value).is_ok()
    }

    /// An XOR-*-ADDRESS attribute of this message, decoded.
    pub fn xor_address(&self, kind: u16) -> Option<SocketAddr> {
        decode_xor_address(self.get(kind)?, &self.transaction)
    }

    pub fn u32_attr(&self, kind: u16) -> Option<u32> {
        let v = self.get(kind)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    pub fn text(&self, kind: u16) -> Option<&'a str> {
        std::str::from_utf8(self.get(kind)?).ok()
    }

    /// The ERROR-CODE of an error response.
    pub fn error_code(&self) -> Option<u16> {
        let v = self.get(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        Some(u16::from(v[2] & 0x7) * 100 + u16::from(v[3]))
    }
}

/// Decode an XOR-MAPPED/PEER/RELAYED-ADDRESS value.
pub fn decode_xor_address(v: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match (v[1], v.len()) {
        (0x01, 8) => {
            let mut ip = [0; 4];
            for i in 0..4 {
                ip[i] = v[4 + i] ^ cookie[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (0x02, 20) => {
            let mut ip = [0; 16];
            for i in 0..16 {
                let mask = if i < 4 { cookie[i] } else { transaction[i - 4] };
                ip[i] = v[4 + i] ^ mask;
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// Writes one STUN message into a reused buffer: `new`, attributes, then
/// `finish` (which may add MESSAGE-INTEGRITY and FINGERPRINT).
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    transaction: [u8; 12],
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut Vec<u8>, method: Method, class: Class, transaction: [u8; 12]) -> Self {
        buf.clear();
        let m = method.code();
        let kind = (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | class.bits();
        buf.extend_from_slice(&kind.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction);
        Writer { buf, transaction }
    }

    pub fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(&kind.to_be_bytes());
        // Values are bounded by what we write: addresses, short texts, and
        // DATA taken from a datagram of at most 64 KiB minus headers.
        self.buf
            .extend_from_slice(&(value.len().min(u16::MAX as usize) as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        let pad = value.len().next_multiple_of(4) - value.len();
        self.buf.extend_from_slice(&[0; 3][..pad]);
        self
    }

    pub fn u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_be_bytes())
    }

    pub fn xor_address(&mut self, kind: u16, addr: SocketAddr) -> &mut Self {
        let cookie = MAGIC_COOKIE.to_be_bytes();
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let mut v = [0u8; 20];
        v[2..4].copy_from_slice(&port.to_be_bytes());
        let len = match addr.ip() {
            IpAddr::V4(ip) => {
                v[1] = 0x01;
                for (i, b) in ip.octets().iter().enumerate() {
                    v[4 + i] = b ^ cookie[i];
                }
                8
            }
            IpAddr::V6(ip) => {
                v[1] = 0x02;
                for (i, b) in ip.octets().iter().enumerate() {
                    let mask = if i < 4 {
                        cookie[i]
                    } else {
                        self.transaction[i - 4]
                    };
                    v[4 + i] = b ^ mask;
                }
                20
            }
        };
        self.attr(kind, &v[..len])
    }

    pub fn error(&mut self, code: u16, reason: &str) -> &mut Self {
        let mut v = Vec::with_capacity(4 + reason.len());
        v.extend_from_slice(&[0, 0, (code / 100) as u8, (code % 100) as u8]);
        v.extend_from_slice(reason.as_bytes());
        self.attr(attr::ERROR_CODE, &v)
    }

    fn set_length(&mut self, extra: usize) {
        let len = (self.buf.len() + extra - HEADER) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Add MESSAGE-INTEGRITY with `key` (when given) and FINGERPRINT.
    pub fn finish(mut self, key: Option<&[u8]>) {
        if let Some(key) = key {
            self.set_length(24);
            let mut mac =
                <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(self.buf);
            let tag = mac.finalize().into_bytes();
            self.attr(attr::MESSAGE_INTEGRITY, &tag);
        }
        self.set_length(8);
        let crc = CRC32.checksum(self.buf) ^ FINGERPRINT_XOR;
        self.attr(attr::FINGERPRINT, &crc.to_be_bytes());
        self.set_length(0);
    }
}

/// The long-term credential key (RFC 8489 §9.2.2): MD5(username:realm:password).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    use md5::Digest;
    let mut md5 = md5::Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// Channel data (RFC 8656 §12.4): a channel number in 0x4000..=0x4FFF, a
/// length, the application data.
pub fn parse_channel_data(bytes: &[u8]) -> Option<(u16, &[u8])> {
    if bytes.len() < 4 {
        return None;
    }
    let channel = u16::from_be_bytes([bytes[0], bytes[1]]);
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    if !(0x4000..=0x4FFF).contains(&channel) || 4 + len > bytes.len() {
        return None;
    }
    Some((channel, &bytes[4..4 + len]))
}

/// Write a channel-data frame; `pad` rounds it to 4 bytes (over TCP).
pub fn write_channel_data(buf: &mut Vec<u8>, channel: u16, data: &[u8], pad: bool) {
    buf.clear();
    buf.extend_from_slice(&channel.to_be_bytes());
    buf.extend_from_slice(&(data.len() as u16).to_be_bytes());
    buf.extend_from_slice(data);
    if pad {
        buf.resize(buf.len().next_multiple_of(4), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_written_reads_back_with_its_integrity() {
        let mut buf = Vec::new();
        let peer: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let mut w = Writer::new(&mut buf, Method::ChannelBind, Class::Request, [7; 12]);
        w.u32(attr::CHANNEL_NUMBER, 0x4001 << 16)
            .xor_address(attr::XOR_PEER_ADDRESS, peer)
            .attr(attr::USERNAME, b"1700000000:alice");
        w.finish(Some(b"key"));
        let m = Message::parse(&buf).unwrap();
        assert_eq!(m.method, Method::ChannelBind);
        assert_eq!(m.class, Class::Request);
        assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(peer));
        assert_eq!(m.text(attr::USERNAME), Some("1700000000:alice"));
        assert!(m.verify_integrity(b"key"));
        assert!(!m.verify_integrity(b"other"));
    }

    #[test]
    fn a_changed_byte_fails_the_fingerprint() {
        let mut buf = Vec::new();
        let w = Writer::new(&mut buf, Method::Binding, Class::Request, [1; 12]);
        w.finish(None);
        buf[10] ^= 1;
        assert_eq!(Message::parse(&buf).unwrap_err(), ParseError::Fingerprint);
    }

    #[test]
    fn truncated_and_overlong_attributes_are_refused() {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, Method::Allocate, Class::Request, [1; 12]);
        w.attr(attr::USERNAME, b"abcd");
        buf[2..4].copy_from_slice(&8u16.to_be_bytes());
        assert!(Message::parse(&buf).is_ok());
        buf[22..24].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(Message::parse(&buf).unwrap_err(), ParseError::Attribute);
        assert_eq!(Message::parse(&buf[..19]).unwrap_err(), ParseError::Short);
    }

    #[test]
    fn the_long_term_key_is_md5_of_user_realm_password() {
        let key = long_term_key("alice", "salon", "secret");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "bdea92d43f657256872b3b937d6de5fb");
    }

    #[test]
    fn channel_data_round_trips_and_pads_over_tcp() {
        let mut buf = Vec::new();
        write_channel_data(&mut buf, 0x4002, b"hello", true);
        assert_eq!(buf.len(), 12);
        assert_eq!(frame_len([buf[0], buf[1], buf[2], buf[3]]), 12);
        assert_eq!(parse_channel_data(&buf), Some((0x4002, &b"hello"[..])));
        assert_eq!(parse_channel_data(&[0x30, 0, 0, 0]), None);
    }
}
