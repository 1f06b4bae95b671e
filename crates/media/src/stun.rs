//! Just enough STUN (RFC 5389) to route a first datagram: recognise a STUN
//! message and read its USERNAME. Full STUN handling (integrity, responses)
//! is str0m's job once the datagram reaches its peer.
//!
//! One answer is the media port's own: a plain Binding request (no
//! USERNAME, so no ICE peer's) gets a Binding success with the sender's
//! address, as any STUN server gives ([`binding_response`]). That tells a
//! client its address as the media port sees it, and lets `salon turn
//! check` prove that its relay reaches the media port.

/// RFC 5389 §6: the magic cookie in every STUN header.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER_LEN: usize = 20;
const USERNAME: u16 = 0x0006;

/// Whether `datagram` looks like a STUN message (RFC 7983 demultiplexing:
/// first byte 0–3, plus the magic cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// The local ICE ufrag a STUN request is addressed to: the part of its
/// USERNAME (`"<receiver ufrag>:<sender ufrag>"`, RFC 8445 §7.2.2) before
/// the colon.
pub fn recipient_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    for (kind, value) in attributes(datagram) {
        let value = value?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
    }
    None
}

/// The attributes of a STUN message (known to be one), in order: each
/// type, and its value unless it runs past the datagram.
fn attributes(datagram: &[u8]) -> impl Iterator<Item = (u16, Option<&[u8]>)> {
    let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = (HEADER_LEN + declared).min(datagram.len());
    let mut at = HEADER_LEN;
    std::iter::from_fn(move || {
        if at + 4 > end {
            return None;
        }
        let kind = u16::from_be_bytes([datagram[at], datagram[at + 1]]);
        let len = usize::from(u16::from_be_bytes([datagram[at + 2], datagram[at + 3]]));
        let value = datagram.get(at + 4..at + 4 + len);
        // Attributes are padded to a multiple of four bytes.
        at += 4 + len.div_ceil(4) * 4;
        Some((kind, value))
    })
}

/// Longest answer [`binding_response`] writes (an IPv6 address).
pub const BINDING_RESPONSE_MAX: usize = 44;
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
const BINDING_SUCCESS: [u8; 2] = [0x01, 0x01];
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// If `datagram` is a plain Binding request (a STUN request without a
/// USERNAME), the Binding success response telling `source` its address,
/// written into `out`; its length.
pub fn binding_response(
    datagram: &[u8],
    source: std::net::SocketAddr,
    out: &mut [u8; BINDING_RESPONSE_MAX],
) -> Option<usize> {
    if !is_stun(datagram)
        || datagram[..2] != BINDING_REQUEST
        || attributes(datagram).any(|(kind, _)| kind == USERNAME)
    {
        return None;
    }
    let port = source.port() ^ 0x2112;
    // The address XOR the cookie (and, for IPv6, the transaction ID).
    let mut address = [0u8; 16];
    let (family, address) = match source.ip() {
        std::net::IpAddr::V4(ip) => {
            address[..4].copy_from_slice(&ip.octets());
            (1, &mut address[..4])
        }
        std::net::IpAddr::V6(ip) => {
            address.copy_from_slice(&ip.octets());
            (2, &mut address[..])
        }
    };
    for (byte, key) in address
        .iter_mut()
        .zip(MAGIC_COOKIE.iter().chain(&datagram[8..20]))
    {
        *byte ^= key;
    }
    let value_len = 4 + address.len();
    let len = HEADER_LEN + 4 + value_len;
    out[..2].copy_from_slice(&BINDING_SUCCESS);
    out[2..4].copy_from_slice(&((4 + value_len) as u16).to_be_bytes());
    // The cookie and the transaction ID, as the request had them.
    out[4..20].copy_from_slice(&datagram[4..20]);
    out[20..22].copy_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out[22..24].copy_from_slice(&(value_len as u16).to_be_bytes());
    out[24] = 0;
    out[25] = family;
    out[26..28].copy_from_slice(&port.to_be_bytes());
    out[28..len].copy_from_slice(address);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        // A PRIORITY attribute first, to check skipping.
        attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attr.extend_from_slice(&USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut message = vec![0x00, 0x01];
        message.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&attr);
        message
    }

    #[test]
    fn a_plain_binding_request_is_answered_with_the_senders_address() {
        let mut request = vec![0x00, 0x01, 0x00, 0x00];
        request.extend_from_slice(&MAGIC_COOKIE);
        request.extend_from_slice(&[7; 12]);
        let mut out = [0u8; BINDING_RESPONSE_MAX];
        let v4: std::net::SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let n = binding_response(&request, v4, &mut out).unwrap();
        assert_eq!(n, 32);
        assert_eq!(out[..4], [0x01, 0x01, 0x00, 0x0C]);
        assert_eq!(out[4..20], request[4..20], "the cookie and transaction ID");
        // XOR-MAPPED-ADDRESS: family 1, port and address XOR the cookie.
        assert_eq!(
            out[20..28],
            [0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0x2E, 0xB2]
        );
        assert_eq!(out[28..32], [198 ^ 0x21, 51 ^ 0x12, 100 ^ 0xA4, 7 ^ 0x42]);
        let v6: std::net::SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        assert_eq!(binding_response(&request, v6, &mut out), Some(44));
        assert_eq!(out[25], 2);
        assert_eq!(out[43], 1 ^ 7, "the last byte XOR the transaction ID's");

        // An ICE check (with USERNAME) is its peer's to answer; a response,
        // an indication or garbage is not answered.
        assert_eq!(
            binding_response(&binding_request("srvfrag:clifrag"), v4, &mut out),
            None
        );
        let mut response = request.clone();
        response[1] = 0x01;
        response[0] = 0x01;
        assert_eq!(binding_response(&response, v4, &mut out), None);
        assert_eq!(binding_response(&request[..19], v4, &mut out), None);
        assert_eq!(binding_response(&[0x80; 40], v4, &mut out), None);
    }

    #[test]
    fn the_recipient_ufrag_is_read_from_username() {
        assert_eq!(
            recipient_ufrag(&binding_request("srvfrag:clifrag")),
            Some("srvfrag")
        );
        assert_eq!(recipient_ufrag(&binding_request("abc:d")), Some("abc"));
        assert_eq!(recipient_ufrag(&binding_request(":x")), None);
    }

    #[test]
    fn non_stun_and_truncated_messages_are_not_routed() {
        assert!(!is_stun(&[0x80, 0x60, 0, 0]));
        assert!(!is_stun(&[0x16; 40]), "DTLS");
        let mut request = binding_request("srvfrag:clifrag");
        request[4] = 0;
        assert!(!is_stun(&request), "wrong cookie");
        let request = binding_request("srvfrag:clifrag");
        for cut in 0..request.len() {
            let _ = recipient_ufrag(&request[..cut]);
        }
        // A length that points past the end.
        let mut request = binding_request("srvfrag:clifrag");
        let n = request.len();
        request[n - 20 + 2] = 0xff;
        let _ = recipient_ufrag(&request);
    }
}
