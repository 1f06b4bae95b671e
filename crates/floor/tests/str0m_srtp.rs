//! The floor's SRTP against str0m's own: what one protects, the other
//! unprotects.
//!
//! str0m's `SrtpContext` is private, but the parts it is made of are public
//! in `str0m::crypto`: the crypto provider Salon uses (aws-lc-rs), its
//! AES-256-GCM cipher, the RFC 7714 IV (`AeadAes256Gcm::rtp_iv`) and the
//! AES-256 block function of its key derivation. These tests assemble them
//! the way `SrtpContext::protect_rtp` and `SrtpKey::derive` do (str0m 0.25,
//! `src/rtp/srtp.rs`) and check the floor agrees in both directions, with
//! rollover counters above zero and headers with extensions.

use salon_floor::srtp::{Context, KeyingMaterial, Profile, RtpHeader, TAG_LEN};
use str0m::crypto::{AeadAes256Gcm, CryptoProvider};

fn provider() -> CryptoProvider {
    str0m::crypto::from_feature_flags()
}

/// str0m's `SrtpKey::derive`: AES-256 ECB rounds over `salt || 0 0` with the
/// label XORed into octet 7 and the round counter in the last two.
fn str0m_derive(
    provider: &CryptoProvider,
    master: &[u8; 32],
    salt: &[u8; 12],
    label: u8,
    out: &mut [u8],
) {
    let mut input = [0u8; 16];
    input[..12].copy_from_slice(salt);
    input[7] ^= label;
    let mut round: u16 = 0;
    let mut i = 0;
    while i < out.len() {
        input[14..].copy_from_slice(&round.to_be_bytes());
        let mut block = [0u8; 32];
        provider
            .srtp_provider
            .srtp_aes_256_ecb_round(master, &input, &mut block);
        for b in block.iter().take(16) {
            if i == out.len() {
                break;
            }
            out[i] = *b;
            i += 1;
        }
        round += 1;
    }
}

/// str0m's RTP session key and salt for a master key and salt.
fn str0m_session(
    provider: &CryptoProvider,
    master: &[u8; 32],
    salt: &[u8; 12],
) -> ([u8; 32], [u8; 12]) {
    let mut key = [0u8; 32];
    let mut session_salt = [0u8; 12];
    str0m_derive(provider, master, salt, 0, &mut key);
    str0m_derive(provider, master, salt, 2, &mut session_salt);
    (key, session_salt)
}

/// str0m's `protect_rtp` for AEAD_AES_256_GCM.
fn str0m_protect(
    provider: &CryptoProvider,
    key: [u8; 32],
    salt: [u8; 12],
    packet: &[u8],
    header_len: usize,
    ssrc: u32,
    index: u64,
) -> Vec<u8> {
    let mut cipher = provider
        .srtp_provider
        .aead_aes_256_gcm()
        .create_cipher(key, true);
    let iv = AeadAes256Gcm::rtp_iv(salt, ssrc, (index >> 16) as u32, index as u16);
    let mut out = vec![0u8; packet.len() + AeadAes256Gcm::TAG_LEN];
    cipher
        .encrypt(
            &iv,
            &packet[..header_len],
            &packet[header_len..],
            &mut out[header_len..],
        )
        .expect("str0m encrypts");
    out[..header_len].copy_from_slice(&packet[..header_len]);
    out
}

/// str0m's `unprotect_rtp` for AEAD_AES_256_GCM.
fn str0m_unprotect(
    provider: &CryptoProvider,
    key: [u8; 32],
    salt: [u8; 12],
    srtp: &[u8],
    header_len: usize,
    ssrc: u32,
    index: u64,
) -> Option<Vec<u8>> {
    let mut cipher = provider
        .srtp_provider
        .aead_aes_256_gcm()
        .create_cipher(key, false);
    let iv = AeadAes256Gcm::rtp_iv(salt, ssrc, (index >> 16) as u32, index as u16);
    let (aad, input) = srtp.split_at(header_len);
    let mut out = vec![0u8; input.len() - AeadAes256Gcm::TAG_LEN];
    cipher.decrypt(&iv, &[aad], input, &mut out).ok()?;
    let mut packet = aad.to_vec();
    packet.extend_from_slice(&out);
    Some(packet)
}

/// RTP packets of several shapes: plain, with a one-byte-header extension
/// (as str0m writes mid, abs-send-time, TWCC), with CSRCs; several sizes.
fn packets() -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    for (k, size) in [0usize, 1, 100, 1100].into_iter().enumerate() {
        for (shape, index) in [(0, 7u64), (1, 0x1_2345), (2, 0x7_ffff_ffff)] {
            let mut p = vec![0u8; 12];
            RtpHeader::write(
                &mut p,
                k % 2 == 0,
                96 + k as u8,
                index as u16,
                90_000 * k as u32,
                0xabcd_0000 + k as u32,
            )
            .unwrap();
            match shape {
                1 => {
                    p[0] |= 0x10;
                    p.extend_from_slice(&[
                        0xbe, 0xde, 0, 2, 0x12, 0xaa, 0xbb, 0xcc, 0x30, 0x01, 0x02, 0,
                    ]);
                }
                2 => {
                    p[0] |= 0x02;
                    p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
                }
                _ => {}
            }
            p.extend((0..size).map(|i| (i * 31 + k) as u8));
            out.push((p, index));
        }
    }
    out
}

#[test]
fn what_str0m_protects_the_floor_unprotects() {
    let provider = provider();
    let master = [0x5au8; 32];
    let salt = [0xa5u8; 12];
    let (key, session_salt) = str0m_session(&provider, &master, &salt);
    let floor = Context::new(Profile::AeadAes256Gcm, &master, &salt).unwrap();

    for (packet, index) in packets() {
        let header = RtpHeader::parse(&packet).unwrap();
        let mut srtp = str0m_protect(
            &provider,
            key,
            session_salt,
            &packet,
            header.len,
            header.ssrc,
            index,
        );
        let n = floor
            .unprotect(&mut srtp, &header, index)
            .unwrap_or_else(|e| panic!("{} octets at index {index:#x}: {e}", packet.len()));
        assert_eq!(&srtp[..n], &packet[..]);
    }
}

#[test]
fn what_the_floor_protects_str0m_unprotects() {
    let provider = provider();
    let master: [u8; 32] = std::array::from_fn(|i| i as u8 ^ 0x3c);
    let salt: [u8; 12] = std::array::from_fn(|i| (i * 17) as u8);
    let (key, session_salt) = str0m_session(&provider, &master, &salt);
    let floor = Context::new(Profile::AeadAes256Gcm, &master, &salt).unwrap();

    for (packet, index) in packets() {
        let header = RtpHeader::parse(&packet).unwrap();
        // In place …
        let mut buf = packet.clone();
        buf.resize(packet.len() + TAG_LEN, 0);
        let n = floor.protect(&mut buf, packet.len(), index).unwrap();
        let plain = str0m_unprotect(
            &provider,
            key,
            session_salt,
            &buf[..n],
            header.len,
            header.ssrc,
            index,
        )
        .unwrap_or_else(|| panic!("{} octets at index {index:#x}", packet.len()));
        assert_eq!(plain, packet);
        // … and straight into another buffer, as the relay forwards.
        let mut out = vec![0u8; packet.len() + TAG_LEN];
        let m = floor
            .protect_into(&packet, &header, index, &mut out)
            .unwrap();
        assert_eq!(&out[..m], &buf[..n]);
        // A different index is a different IV: str0m refuses it.
        assert!(
            str0m_unprotect(
                &provider,
                key,
                session_salt,
                &buf[..n],
                header.len,
                header.ssrc,
                index ^ 0x1_0000
            )
            .is_none()
        );
    }
}

#[test]
fn a_dtls_exporter_layout_gives_the_same_keys_as_str0m_on_both_sides() {
    // str0m's SrtpKey::new takes [client key, server key, client salt,
    // server salt] and the "left" (client) or right half; so does the floor.
    let provider = provider();
    let material: Vec<u8> = (0..Profile::AeadAes256Gcm.keying_material_len())
        .map(|i| (i * 13 + 1) as u8)
        .collect();
    let keys = KeyingMaterial::split(Profile::AeadAes256Gcm, &material).unwrap();
    let client_master: [u8; 32] = material[..32].try_into().unwrap();
    let server_master: [u8; 32] = material[32..64].try_into().unwrap();
    let client_salt: [u8; 12] = material[64..76].try_into().unwrap();
    let server_salt: [u8; 12] = material[76..88].try_into().unwrap();

    let (packet, index) = packets().swap_remove(4);
    let header = RtpHeader::parse(&packet).unwrap();
    for (floor, master, salt) in [
        (
            keys.client(Profile::AeadAes256Gcm).unwrap(),
            client_master,
            client_salt,
        ),
        (
            keys.server(Profile::AeadAes256Gcm).unwrap(),
            server_master,
            server_salt,
        ),
    ] {
        let (key, session_salt) = str0m_session(&provider, &master, &salt);
        let mut srtp = str0m_protect(
            &provider,
            key,
            session_salt,
            &packet,
            header.len,
            header.ssrc,
            index,
        );
        let n = floor.unprotect(&mut srtp, &header, index).unwrap();
        assert_eq!(&srtp[..n], &packet[..]);
    }
}
