//! The order of codecs in an answer: the offerer's.
//!
//! str0m answers each m-line with the codecs it shares with the offer, in
//! the order the `Rtc` was configured with (Opus; VP8, H.264, VP9). A
//! browser sends with the first codec of the answer, so a publisher that
//! prefers H.264 or VP9 (`RTCRtpTransceiver.setCodecPreferences`, what
//! twilio-video's `preferredVideoCodecs` does) would still send VP8, and
//! one that prefers PCMU would still send Opus. RFC 3264 §6.1 recommends
//! that an answerer keep the offer's order unless it has a reason not to;
//! an SFU that forwards whatever it receives has none. So each answered
//! m-line's format list is rewritten to follow the formats' order in the
//! offered m-line with the same `a=mid`.
//!
//! Text in, text out, no I/O: the answer's payload types and their
//! attributes are str0m's; only their order on the `m=` line changes.
//! A section without a mid, or whose mid the offer does not have, is left
//! as it is. Costs one pass over each SDP per negotiation, never per packet.

use std::collections::HashMap;

/// `answer` with each m-line's formats in the order of the offer's m-line
/// of the same mid.
pub(crate) fn follow_offer(offer: &str, answer: &str) -> String {
    let offered: HashMap<&str, Vec<&str>> = sections(offer)
        .filter_map(|section| Some((mid(&section)?, formats(section[0])?)))
        .collect();
    let mut out = String::with_capacity(answer.len());
    for section in sections(answer) {
        let reordered = mid(&section)
            .and_then(|mid| offered.get(mid))
            .and_then(|order| reorder(section[0], order));
        for (i, line) in section.iter().enumerate() {
            match (&reordered, i) {
                (Some(m_line), 0) => out.push_str(m_line),
                _ => out.push_str(line),
            }
            out.push_str("\r\n");
        }
    }
    out
}

/// The SDP's lines, grouped: the session part first, then one group per
/// `m=` section (its `m=` line first).
fn sections(sdp: &str) -> impl Iterator<Item = Vec<&str>> {
    let mut groups: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.lines().filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            groups.push(Vec::new());
        }
        if let Some(group) = groups.last_mut() {
            group.push(line);
        }
    }
    groups.into_iter().filter(|g| !g.is_empty())
}

fn mid<'a>(section: &[&'a str]) -> Option<&'a str> {
    if !section.first()?.starts_with("m=") {
        return None;
    }
    section.iter().find_map(|l| l.strip_prefix("a=mid:"))
}

/// The formats of an `m=` line (`m=video 9 UDP/TLS/RTP/SAVPF 96 97 …`).
fn formats(m_line: &str) -> Option<Vec<&str>> {
    let fields: Vec<&str> = m_line.split(' ').collect();
    (fields.len() > 3).then(|| fields[3..].to_vec())
}

/// The `m=` line with its formats sorted by their index in `order`; formats
/// the offer did not list keep their place after the others. None when
/// nothing would change.
fn reorder(m_line: &str, order: &[&str]) -> Option<String> {
    let fields: Vec<&str> = m_line.split(' ').collect();
    if fields.len() <= 4 {
        return None;
    }
    let mut formats = fields[3..].to_vec();
    let rank = |f: &&str| order.iter().position(|o| o == f).unwrap_or(order.len());
    formats.sort_by_key(rank);
    if formats == fields[3..] {
        return None;
    }
    Some([&fields[..3], &formats[..]].concat().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
        o=- 1 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0 111 8\r\n\
        a=mid:0\r\n\
        a=sendonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 108 109 96 97 98 99\r\n\
        a=mid:1\r\n\
        a=sendonly\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        a=mid:2\r\n";

    const ANSWER: &str = "v=0\r\n\
        o=- 3 4 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n\
        a=mid:0\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=recvonly\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 108 109 98 99\r\n\
        a=mid:1\r\n\
        a=recvonly\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        a=mid:2\r\n";

    fn m_lines(sdp: &str) -> Vec<&str> {
        sdp.lines().filter(|l| l.starts_with("m=")).collect()
    }

    #[test]
    fn a_publisher_that_prefers_h264_and_pcmu_is_answered_in_that_order() {
        let answer = follow_offer(OFFER, ANSWER);
        assert_eq!(
            m_lines(&answer),
            [
                "m=audio 9 UDP/TLS/RTP/SAVPF 0 111 8",
                "m=video 9 UDP/TLS/RTP/SAVPF 108 109 96 97 98 99",
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            ]
        );
        // Everything but the m= lines is untouched.
        let rest = |sdp: &str| -> Vec<String> {
            sdp.lines()
                .filter(|l| !l.starts_with("m="))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(rest(&answer), rest(ANSWER));
        assert!(answer.ends_with("\r\n"));
    }

    #[test]
    fn an_answer_already_in_order_comes_back_unchanged() {
        let answer = follow_offer(OFFER, &follow_offer(OFFER, ANSWER));
        assert_eq!(answer, follow_offer(OFFER, ANSWER));
    }

    #[test]
    fn formats_the_offer_lacks_and_unknown_mids_keep_their_place() {
        let answer = ANSWER
            .replace("108 109 98 99", "108 109 98 99 35")
            .replace("a=mid:0", "a=mid:9");
        let out = follow_offer(OFFER, &answer);
        assert_eq!(
            m_lines(&out),
            [
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8",
                "m=video 9 UDP/TLS/RTP/SAVPF 108 109 96 97 98 99 35",
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            ]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for (offer, answer) in [
            ("", ""),
            ("m=", "m="),
            ("m=video\r\na=mid:", "m=video 9\r\na=mid:"),
            (OFFER, "m=video 9 X 1 2\r\na=mid:1\r\nm=audio"),
        ] {
            let _ = follow_offer(offer, answer);
        }
    }
}
