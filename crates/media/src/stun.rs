//! Just enough STUN (RFC 5389) to route a first datagram: recognise a STUN
//! message and read its USERNAME. Full STUN handling (integrity, responses)
//! is str0m's job once the datagram reaches its peer.

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
    let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = (HEADER_LEN + declared).min(datagram.len());
    let mut at = HEADER_LEN;
    while at + 4 <= end {
        let kind = u16::from_be_bytes([datagram[at], datagram[at + 1]]);
        let len = usize::from(u16::from_be_bytes([datagram[at + 2], datagram[at + 3]]));
        let value = datagram.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        // Attributes are padded to a multiple of four bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
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
