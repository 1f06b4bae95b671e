//! SRTP as Salon's media path does it: the AEAD AES-GCM transforms of
//! RFC 7714, computed with the `aws-lc-rs` primitives str0m's aws-lc-rs
//! backend uses, and nothing else.
//!
//! # Which profile
//!
//! Salon's clients and its SFU are both str0m 0.25 (`aws-lc-rs` feature), so
//! their DTLS handshake (dimpl) offers `SRTP_AEAD_AES_256_GCM`,
//! `SRTP_AEAD_AES_128_GCM` and `SRTP_AES128_CM_SHA1_80`, and the server
//! picks by its own preference, AES-256-GCM first. Every Salon peer
//! connection therefore runs [`Profile::AeadAes256Gcm`]; the floor uses it
//! by default ([`Profile::SALON`]) and also speaks AES-128-GCM.
//!
//! # What is here
//!
//! - [`Context`]: one direction of one participant's SRTP. Built from a
//!   master key and salt through the SRTP key derivation (RFC 3711 §4.3.1,
//!   the AES-CM PRF, AES-256 for 32-byte keys as RFC 6188 §4 and RFC 7714
//!   §11 specify), as str0m does with a DTLS exporter's output. It protects
//!   and unprotects RTP in place or into another buffer, allocating nothing.
//! - [`RtpHeader`]: the fields the transform needs (the header is the AEAD's
//!   associated data; SSRC and sequence number make the IV).
//! - [`IndexEstimator`]: the receiver's guess of a packet's 48-bit SRTP
//!   index (rollover counter and sequence number, RFC 3711 §3.3.1).
//!
//! RTCP is not implemented: the floor ignores it.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{self, EncryptingKey, EncryptionContext, UnboundCipherKey};

/// Length of the GCM authentication tag SRTP appends (RFC 7714 §7.2: 16 octets).
pub const TAG_LEN: usize = 16;
/// Length of a master salt and of a session salt (RFC 7714 §12: 96 bits).
pub const SALT_LEN: usize = 12;
/// Length of the fixed RTP header, without CSRCs or extension.
pub const RTP_HEADER_LEN: usize = 12;

/// An SRTP protection profile from RFC 7714.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `SRTP_AEAD_AES_128_GCM` (0x0007).
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008): what str0m negotiates for Salon.
    AeadAes256Gcm,
}

impl Profile {
    /// The profile every Salon peer connection runs.
    pub const SALON: Profile = Profile::AeadAes256Gcm;

    /// The DTLS-SRTP protection profile number (RFC 7714 §14.2).
    pub const fn id(self) -> u16 {
        match self {
            Profile::AeadAes128Gcm => 0x0007,
            Profile::AeadAes256Gcm => 0x0008,
        }
    }

    pub const fn from_id(id: u16) -> Option<Profile> {
        match id {
            0x0007 => Some(Profile::AeadAes128Gcm),
            0x0008 => Some(Profile::AeadAes256Gcm),
            _ => None,
        }
    }

    /// Length of the master key and of the session key.
    pub const fn key_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm => 16,
            Profile::AeadAes256Gcm => 32,
        }
    }

    /// Length of the keying material for both directions, as a DTLS-SRTP
    /// exporter produces it: two keys and two salts.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.key_len() + SALT_LEN)
    }

    /// The name DTLS-SRTP gives it.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Profile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Profile::AeadAes128Gcm => &aead::AES_128_GCM,
            Profile::AeadAes256Gcm => &aead::AES_256_GCM,
        }
    }

    fn prf(self) -> &'static cipher::Algorithm {
        match self {
            Profile::AeadAes128Gcm => &cipher::AES_128,
            Profile::AeadAes256Gcm => &cipher::AES_256,
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a packet or a key was refused. None of these is a bug: they are what
/// the network can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("a key or salt has the wrong length for the profile")]
    KeyLength,
    #[error("not an RTP packet (version, header length)")]
    NotRtp,
    #[error("the packet is shorter than its header and tag")]
    TooShort,
    #[error("the buffer has no room for the tag")]
    NoRoom,
    #[error("authentication failed")]
    Authentication,
}

/// The master keys and salts of both directions, in the order a DTLS-SRTP
/// exporter lays them out (RFC 5764 §4.2): client key, server key, client
/// salt, server salt. The participant plays the DTLS client (as a browser
/// does against an ICE-lite SFU): it protects with the client half and the
/// relay with the server half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyingMaterial<'a> {
    pub client_key: &'a [u8],
    pub server_key: &'a [u8],
    pub client_salt: &'a [u8],
    pub server_salt: &'a [u8],
}

impl<'a> KeyingMaterial<'a> {
    /// Split `material` ([`Profile::keying_material_len`] bytes).
    pub fn split(profile: Profile, material: &'a [u8]) -> Result<Self, SrtpError> {
        if material.len() != profile.keying_material_len() {
            return Err(SrtpError::KeyLength);
        }
        let k = profile.key_len();
        let (client_key, rest) = material.split_at(k);
        let (server_key, rest) = rest.split_at(k);
        let (client_salt, server_salt) = rest.split_at(SALT_LEN);
        Ok(Self {
            client_key,
            server_key,
            client_salt,
            server_salt,
        })
    }

    /// What protects packets from the participant.
    pub fn client(&self, profile: Profile) -> Result<Context, SrtpError> {
        Context::new(profile, self.client_key, self.client_salt)
    }

    /// What protects packets to the participant.
    pub fn server(&self, profile: Profile) -> Result<Context, SrtpError> {
        Context::new(profile, self.server_key, self.server_salt)
    }
}

/// One direction of SRTP: a session key, ready for AES-GCM, and a session
/// salt. Holding one costs a few hundred bytes; using one allocates nothing.
pub struct Context {
    profile: Profile,
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// SRTP key derivation labels (RFC 3711 §4.3.1). The floor derives the RTP
/// keys only: it ignores RTCP.
const LABEL_RTP_ENCRYPTION: u8 = 0x00;
const LABEL_RTP_SALT: u8 = 0x02;

impl Context {
    /// Derive the RTP session key and salt from a master key and salt.
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Result<Self, SrtpError> {
        if master_key.len() != profile.key_len() || master_salt.len() != SALT_LEN {
            return Err(SrtpError::KeyLength);
        }
        let mut key = [0u8; 32];
        let key = &mut key[..profile.key_len()];
        derive(
            profile.prf(),
            master_key,
            master_salt,
            LABEL_RTP_ENCRYPTION,
            key,
        )?;
        let mut salt = [0u8; SALT_LEN];
        derive(
            profile.prf(),
            master_key,
            master_salt,
            LABEL_RTP_SALT,
            &mut salt,
        )?;
        Self::from_session_keys(profile, key, &salt)
    }

    /// Use a session key and salt as they are (test vectors give these).
    pub fn from_session_keys(
        profile: Profile,
        session_key: &[u8],
        session_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        let salt: [u8; SALT_LEN] = session_salt.try_into().map_err(|_| SrtpError::KeyLength)?;
        if session_key.len() != profile.key_len() {
            return Err(SrtpError::KeyLength);
        }
        let key = UnboundKey::new(profile.aead(), session_key).map_err(|_| SrtpError::KeyLength)?;
        Ok(Self {
            profile,
            key: LessSafeKey::new(key),
            salt,
        })
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The IV of RFC 7714 §8.1: `00 00 || SSRC || ROC || SEQ`, XOR the salt.
    fn nonce(&self, ssrc: u32, index: u64) -> Nonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&((index >> 16) as u32).to_be_bytes());
        iv[10..12].copy_from_slice(&(index as u16).to_be_bytes());
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        Nonce::assume_unique_for_key(iv)
    }

    /// Protect the RTP packet in `buf[..len]` in place: the payload is
    /// encrypted and the tag written after it, so `buf` needs [`TAG_LEN`]
    /// bytes to spare. Returns the SRTP packet's length.
    pub fn protect(&self, buf: &mut [u8], len: usize, index: u64) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::TooShort)?;
        let header = RtpHeader::parse(packet).ok_or(SrtpError::NotRtp)?;
        if buf.len() < len + TAG_LEN {
            return Err(SrtpError::NoRoom);
        }
        let (head, rest) = buf.split_at_mut(header.len);
        let (payload, tail) = rest.split_at_mut(len - header.len);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(header.ssrc, index), Aad::from(&*head), payload)
            .map_err(|_| SrtpError::NoRoom)?;
        tail[..TAG_LEN].copy_from_slice(tag.as_ref());
        Ok(len + TAG_LEN)
    }

    /// Protect the RTP packet `plain` (whose header is `header`) into `out`,
    /// encrypting the payload straight from `plain` into `out`: forwarding
    /// one packet to many subscribers copies only its header. Returns the
    /// SRTP packet's length.
    pub fn protect_into(
        &self,
        plain: &[u8],
        header: &RtpHeader,
        index: u64,
        out: &mut [u8],
    ) -> Result<usize, SrtpError> {
        let len = plain.len();
        if header.len > len {
            return Err(SrtpError::TooShort);
        }
        let out = out.get_mut(..len + TAG_LEN).ok_or(SrtpError::NoRoom)?;
        let (head, payload) = plain.split_at(header.len);
        let (out_head, rest) = out.split_at_mut(header.len);
        let (out_payload, out_tag) = rest.split_at_mut(payload.len());
        out_head.copy_from_slice(head);
        self.key
            .seal_out_of_place_scatter(
                self.nonce(header.ssrc, index),
                Aad::from(head),
                payload,
                out_payload,
                &[],
                out_tag,
            )
            .map_err(|_| SrtpError::NoRoom)?;
        Ok(len + TAG_LEN)
    }

    /// Check and decrypt the SRTP packet filling `buf`, in place. `header`
    /// is its header ([`RtpHeader::parse`]). Returns the RTP packet's length
    /// (the tag is cut off). On failure `buf` may hold garbage.
    pub fn unprotect(
        &self,
        buf: &mut [u8],
        header: &RtpHeader,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let plain_len = buf
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&n| n >= header.len)
            .ok_or(SrtpError::TooShort)?;
        let (head, rest) = buf.split_at_mut(header.len);
        let (payload, tag) = rest.split_at_mut(plain_len - header.len);
        self.key
            .open_in_place_separate_tag(
                self.nonce(header.ssrc, index),
                Aad::from(&*head),
                tag,
                payload,
            )
            .map_err(|_| SrtpError::Authentication)?;
        Ok(plain_len)
    }
}

/// The AES-CM PRF of RFC 3711 §4.3.3 with a key derivation rate of zero:
/// the keystream of AES-CTR under the master key, starting from the master
/// salt (left-aligned in a 14-octet field, so a 12-octet GCM salt is padded
/// with zeros as str0m and libsrtp do) XOR the label at octet 7, counting
/// in the last two octets. One AES block at a time, as str0m computes it.
fn derive(
    prf: &'static cipher::Algorithm,
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    if master_salt.len() > 14 || out.len() > 16 * usize::from(u16::MAX) {
        return Err(SrtpError::KeyLength);
    }
    let unbound = UnboundCipherKey::new(prf, master_key).map_err(|_| SrtpError::KeyLength)?;
    let key = EncryptingKey::ecb(unbound).map_err(|_| SrtpError::KeyLength)?;
    let mut x = [0u8; 16];
    x[..master_salt.len()].copy_from_slice(master_salt);
    x[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = x;
        block[14..].copy_from_slice(&(i as u16).to_be_bytes());
        key.less_safe_encrypt(&mut block, EncryptionContext::None)
            .map_err(|_| SrtpError::KeyLength)?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

/// The parts of an RTP header (RFC 3550 §5.1) SRTP and the floor need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Length of the header: fixed part, CSRCs and extension. SRTP
    /// authenticates it and encrypts what follows.
    pub len: usize,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Parse the header at the start of `packet`: version 2, CSRCs and the
    /// extension within the packet. `None` for anything else.
    pub fn parse(packet: &[u8]) -> Option<RtpHeader> {
        let fixed = packet.get(..RTP_HEADER_LEN)?;
        if fixed[0] >> 6 != 2 {
            return None;
        }
        let csrcs = usize::from(fixed[0] & 0x0f);
        let mut len = RTP_HEADER_LEN + 4 * csrcs;
        if fixed[0] & 0x10 != 0 {
            // Extension: 16 bits of profile, 16 bits of length in words.
            let ext = packet.get(len..len + 4)?;
            len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if len > packet.len() {
            return None;
        }
        Some(RtpHeader {
            len,
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7f,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        })
    }

    /// Write a 12-byte header (no CSRCs, no extension) at the start of `out`.
    /// Returns its length, or `None` when `out` is shorter.
    pub fn write(
        out: &mut [u8],
        marker: bool,
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
    ) -> Option<usize> {
        let h = out.get_mut(..RTP_HEADER_LEN)?;
        h[0] = 0x80;
        h[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
        h[2..4].copy_from_slice(&sequence.to_be_bytes());
        h[4..8].copy_from_slice(&timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&ssrc.to_be_bytes());
        Some(RTP_HEADER_LEN)
    }
}

/// Whether a datagram that looks like RTP (version 2) is RTCP: its second
/// octet, marker bit included, is an RTCP packet type 192–223 (RFC 5761 §4).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223))
}

/// The receiver's side of RFC 3711 §3.3.1: which 48-bit index (rollover
/// counter × 2¹⁶ + sequence number) a packet has, guessed from its 16-bit
/// sequence number and the highest index authenticated so far. The guess is
/// the index nearest that highest one (the ROC − 1, ROC, ROC + 1 rule).
/// Only authenticated packets move the estimator forward
/// ([`IndexEstimator::update`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexEstimator {
    highest: Option<u64>,
}

impl IndexEstimator {
    /// A stream not heard yet: it starts with a rollover counter of zero.
    pub const fn new() -> Self {
        Self { highest: None }
    }

    /// A stream already under way, whose sender is near `index`. RFC 3711
    /// §3.3.1: a receiver joining an ongoing session must be told the
    /// rollover counter out of band.
    pub const fn near(index: u64) -> Self {
        Self {
            highest: Some(index),
        }
    }

    /// The highest index authenticated so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// The index of a packet with sequence number `sequence`.
    pub fn estimate(&self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            return u64::from(sequence);
        };
        let roc = highest >> 16;
        let s_l = highest as u16;
        let v = if s_l < 0x8000 {
            if sequence > s_l && sequence - s_l > 0x8000 {
                roc.saturating_sub(1)
            } else {
                roc
            }
        } else if s_l - 0x8000 > sequence {
            // The rollover counter is 32 bits; past it the index wraps.
            (roc + 1) & 0xffff_ffff
        } else {
            roc
        };
        (v << 16) | u64::from(sequence)
    }

    /// Record that the packet with `index` was authenticated.
    pub fn update(&mut self, index: u64) {
        if self.highest.is_none_or(|h| index > h) {
            self.highest = Some(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 7714 §16: the packet of the AES-GCM examples, a 12-octet header
    // (sequence number 0xf17b, SSRC 0x5501a0b2) and the 38 octets of
    // "Gallia est omnis divisa in partes tres", with a session key of
    // 00 01 02 … and the salt "Quid pro quo".
    const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                               20646976 69736120 696e2070 61727465 73207472 6573";
    const RFC7714_SALT: &str = "51756964 2070726f 2071756f";
    const RFC7714_KEY_128: &str = "00010203 04050607 08090a0b 0c0d0e0f";
    const RFC7714_KEY_256: &str = "00010203 04050607 08090a0b 0c0d0e0f
                                   10111213 14151617 18191a1b 1c1d1e1f";
    // RFC 7714 §16.1.1 (AEAD_AES_128_GCM).
    const RFC7714_SRTP_128: &str = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca
                                    be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1
                                    6a9152cf 765ee439 0cce";
    // RFC 7714 §16.2.1 (AEAD_AES_256_GCM).
    const RFC7714_SRTP_256: &str = "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa
                                    b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff
                                    d6b0f9bb 7878d7a7 6c13";

    fn rfc7714(profile: Profile, key: &str, protected: &str) {
        let ctx = Context::from_session_keys(profile, &hex(key), &hex(RFC7714_SALT)).unwrap();
        let plain = hex(RFC7714_RTP);
        let expected = hex(protected);
        // The examples are the first packet of the stream: ROC 0.
        let index = 0xf17b;

        let mut buf = plain.clone();
        buf.resize(plain.len() + TAG_LEN, 0);
        assert_eq!(
            ctx.protect(&mut buf, plain.len(), index),
            Ok(expected.len())
        );
        assert_eq!(buf, expected, "{profile} protect in place");

        let header = RtpHeader::parse(&plain).unwrap();
        let mut out = [0u8; 128];
        let n = ctx.protect_into(&plain, &header, index, &mut out).unwrap();
        assert_eq!(&out[..n], &expected[..], "{profile} protect into");

        let mut buf = expected.clone();
        let n = ctx.unprotect(&mut buf, &header, index).unwrap();
        assert_eq!(&buf[..n], &plain[..], "{profile} unprotect");
    }

    #[test]
    fn rfc_7714_aead_aes_128_gcm_vector() {
        rfc7714(Profile::AeadAes128Gcm, RFC7714_KEY_128, RFC7714_SRTP_128);
    }

    #[test]
    fn rfc_7714_aead_aes_256_gcm_vector() {
        rfc7714(Profile::AeadAes256Gcm, RFC7714_KEY_256, RFC7714_SRTP_256);
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_authentication() {
        let ctx = Context::from_session_keys(
            Profile::AeadAes256Gcm,
            &hex(RFC7714_KEY_256),
            &hex(RFC7714_SALT),
        )
        .unwrap();
        let good = hex(RFC7714_SRTP_256);
        let header = RtpHeader::parse(&good).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            let parsed = RtpHeader::parse(&bad).unwrap_or(header);
            assert_eq!(
                ctx.unprotect(&mut bad, &parsed, 0xf17b),
                Err(SrtpError::Authentication),
                "octet {i}"
            );
        }
        // The wrong rollover counter is the wrong IV.
        let mut buf = good.clone();
        assert_eq!(
            ctx.unprotect(&mut buf, &header, 0x1_f17b),
            Err(SrtpError::Authentication)
        );
        // Too short for a tag.
        let mut short = good[..header.len + TAG_LEN - 1].to_vec();
        assert_eq!(
            ctx.unprotect(&mut short, &header, 0xf17b),
            Err(SrtpError::TooShort)
        );
    }

    // RFC 3711 appendix B.3: the AES-128 PRF with a 14-octet master salt.
    #[test]
    fn rfc_3711_key_derivation_vector() {
        let key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
        let mut out = [0u8; 16];
        derive(&cipher::AES_128, &key, &salt, 0x00, &mut out).unwrap();
        assert_eq!(out[..], hex("C61E7A93744F39EE10734AFE3FF7A087")[..]);
        let mut out = [0u8; 14];
        derive(&cipher::AES_128, &key, &salt, 0x02, &mut out).unwrap();
        assert_eq!(out[..], hex("30CBBC08863D8C85D49DB34A9AE1")[..]);
        // The authentication key label spans two blocks.
        let mut out = [0u8; 20];
        derive(&cipher::AES_128, &key, &salt, 0x01, &mut out).unwrap();
        assert_eq!(out[..], hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")[..]);
    }

    // RFC 6188 §7.2: the AES-256 PRF.
    #[test]
    fn rfc_6188_aes_256_key_derivation_vector() {
        let key = hex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6");
        let salt = hex("3b04803de51ee7c96423ab5b78d2");
        let mut out = [0u8; 32];
        derive(&cipher::AES_256, &key, &salt, 0x00, &mut out).unwrap();
        assert_eq!(
            out[..],
            hex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")[..]
        );
        let mut out = [0u8; 14];
        derive(&cipher::AES_256, &key, &salt, 0x02, &mut out).unwrap();
        assert_eq!(out[..], hex("fa31791685ca444a9e07c6c64e93")[..]);
    }

    #[test]
    fn keying_material_splits_like_a_dtls_exporter() {
        let material: Vec<u8> = (0..88).collect();
        let k = KeyingMaterial::split(Profile::AeadAes256Gcm, &material).unwrap();
        assert_eq!(k.client_key, &material[0..32]);
        assert_eq!(k.server_key, &material[32..64]);
        assert_eq!(k.client_salt, &material[64..76]);
        assert_eq!(k.server_salt, &material[76..88]);
        assert_eq!(
            KeyingMaterial::split(Profile::AeadAes128Gcm, &material),
            Err(SrtpError::KeyLength)
        );
        assert_eq!(Profile::AeadAes128Gcm.keying_material_len(), 56);
    }

    #[test]
    fn the_two_directions_do_not_read_each_other() {
        let material: Vec<u8> = (0..88u8).map(|b| b.wrapping_mul(37)).collect();
        let k = KeyingMaterial::split(Profile::SALON, &material).unwrap();
        let (up, down) = (
            k.client(Profile::SALON).unwrap(),
            k.server(Profile::SALON).unwrap(),
        );
        let mut buf = [0u8; 64];
        let n = RtpHeader::write(&mut buf, true, 96, 7, 1234, 0xdead_beef).unwrap();
        buf[n..n + 10].copy_from_slice(b"0123456789");
        let len = up.protect(&mut buf, n + 10, 7).unwrap();
        let header = RtpHeader::parse(&buf[..len]).unwrap();
        let mut copy = buf;
        assert_eq!(
            down.unprotect(&mut copy[..len], &header, 7),
            Err(SrtpError::Authentication)
        );
        assert_eq!(up.unprotect(&mut buf[..len], &header, 7), Ok(n + 10));
        assert_eq!(&buf[n..n + 10], b"0123456789");
    }

    #[test]
    fn headers_with_csrcs_and_extensions_are_authenticated_whole() {
        // CC=2, X=1 with a one-word extension: 12 + 8 + 4 + 4 = 28 octets.
        let mut packet = vec![0x92, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        packet.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]);
        packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
        packet.extend_from_slice(b"payload");
        let header = RtpHeader::parse(&packet).unwrap();
        assert_eq!((header.len, header.sequence, header.ssrc), (28, 1, 3));
        assert!(!header.marker);
        assert_eq!(header.payload_type, 0x60);

        let ctx = Context::new(Profile::SALON, &[9; 32], &[7; 12]).unwrap();
        let clear = packet.clone();
        let len = packet.len();
        packet.resize(len + TAG_LEN, 0);
        ctx.protect(&mut packet, len, 1).unwrap();
        assert_eq!(&packet[..28], &clear[..28], "the header stays clear");
        assert_ne!(&packet[28..len], &clear[28..], "the payload does not");
        let mut tampered = packet.clone();
        tampered[25] ^= 1; // inside the extension
        assert_eq!(
            ctx.unprotect(&mut tampered, &header, 1),
            Err(SrtpError::Authentication)
        );
        assert_eq!(ctx.unprotect(&mut packet, &header, 1), Ok(len));
        assert_eq!(&packet[28..len], b"payload");
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(RtpHeader::parse(&[]), None);
        assert_eq!(RtpHeader::parse(&[0x80; 11]), None, "short");
        assert_eq!(RtpHeader::parse(&[0x40; 12]), None, "version 1");
        assert_eq!(RtpHeader::parse(&[0x8f; 12]), None, "15 CSRCs missing");
        let mut ext = vec![
            0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff,
        ];
        assert_eq!(RtpHeader::parse(&ext), None, "extension beyond the end");
        ext.truncate(14);
        assert_eq!(RtpHeader::parse(&ext), None, "truncated extension header");
        let ctx = Context::new(Profile::SALON, &[1; 32], &[2; 12]).unwrap();
        let mut buf = [0u8; 40];
        assert_eq!(ctx.protect(&mut buf, 20, 0), Err(SrtpError::NotRtp));
        RtpHeader::write(&mut buf, false, 96, 0, 0, 1).unwrap();
        assert_eq!(ctx.protect(&mut buf, 30, 0), Err(SrtpError::NoRoom));
        assert_eq!(ctx.protect(&mut buf, 41, 0), Err(SrtpError::TooShort));
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        assert_eq!(
            Context::new(Profile::AeadAes256Gcm, &[0; 16], &[0; 12]).err(),
            Some(SrtpError::KeyLength)
        );
        assert_eq!(
            Context::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 14]).err(),
            Some(SrtpError::KeyLength)
        );
        assert!(Context::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 12]).is_ok());
    }

    #[test]
    fn rtcp_is_told_apart_from_rtp() {
        assert!(is_rtcp(&[0x80, 200]), "sender report");
        assert!(is_rtcp(&[0x81, 205]), "transport feedback");
        assert!(!is_rtcp(&[0x80, 96]), "RTP, PT 96");
        assert!(!is_rtcp(&[0x80, 0x80 | 111]), "RTP with the marker, PT 111");
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn the_index_follows_the_sequence_number_across_wraps() {
        let mut e = IndexEstimator::new();
        assert_eq!(e.estimate(65_530), 65_530, "a new stream starts at ROC 0");
        let mut last = 0;
        for n in 0..70_000u64 {
            let index = 65_530 + n;
            let seq = index as u16;
            assert_eq!(e.estimate(seq), index, "packet {n}");
            e.update(index);
            last = index;
        }
        assert_eq!(last >> 16, 2);
        // A late packet from before the last wrap keeps its old ROC.
        let before_wrap = (2 << 16) - 3;
        assert_eq!(e.estimate(before_wrap as u16), before_wrap);
        // A late packet does not move the estimator back.
        e.update(before_wrap);
        assert_eq!(e.highest(), Some(last));
    }

    #[test]
    fn a_gap_of_less_than_half_the_sequence_space_is_bridged() {
        let mut e = IndexEstimator::near(0x3_fff0);
        assert_eq!(e.estimate(0x0010), 0x4_0010, "just past the wrap");
        assert_eq!(e.estimate(0xfff0), 0x3_fff0);
        e.update(0x4_0010);
        assert_eq!(e.estimate(0xffff), 0x3_ffff, "just before the wrap, late");
        // At ROC 0 there is no earlier rollover to go back to.
        let e = IndexEstimator::near(10);
        assert_eq!(e.estimate(0xfff0), 0xfff0);
    }
}
