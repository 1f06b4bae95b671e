//! SDP at Salon's edge: reading a client's offer, finishing str0m's answer,
//! and listing what an offer's m-sections are.
//!
//! str0m parses offers and writes answers. Three things about that are
//! Salon's business, and live here so they can be tested without a socket:
//!
//! - **Every client reads the answer's candidates.** str0m writes the
//!   server's ICE candidates only in the first m-section, the BUNDLE tag,
//!   which is all RFC 9143 needs. Stacks that take candidates per m-section
//!   (aiortc reads them from the *last* m-section of the shared transport)
//!   then have none and never start ICE. [`finish_answer`] repeats them in
//!   every bundled m-section that is not rejected, ends each list with
//!   `a=end-of-candidates` (the server gathers nothing later, RFC 8840), and
//!   removes `a=ice-options:trickle`: the server never trickles.
//! - **A parse error says where, not a pointer.** str0m's parser reports a
//!   position as a memory address; [`read_offer`] turns it into a line
//!   number and the line's beginning.
//! - **One payload type means one thing.** An offer that describes a
//!   payload type twice, differently (two sections mapping 102 to codecs
//!   or parameters that differ, or two `a=rtpmap:102` lines in one), is
//!   refused: str0m 0.25 asserts while answering such an offer, which the
//!   `sdp_offer` fuzz target found. RFC 8843 §7.5.1 forbids it in a bundle
//!   anyway, and no browser sends it. Nor may a later offer change what an
//!   earlier one made a payload type, as str0m understood it
//!   ([`PayloadTypes`]).
//! - **What an offer declares can be checked against its SDP.**
//!   [`media_sections`] lists each m-section's media, `mid`, direction and
//!   whether it is rejected, so the signaling layer can refuse a `publish`
//!   entry that names no sending m-line before anything is published.
//!
//! All of it is control-plane work: once per offer, on text a few kilobytes
//! long. Nothing here runs per packet.

use std::collections::HashMap;

use str0m::change::SdpOffer;

use crate::MediaError;

/// The direction an m-section declares (RFC 8866 §6.7; `sendrecv` when it
/// declares none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Whether the side that wrote the SDP sends on this m-section.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote the SDP receives on this m-section.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Its name in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One m-section of an SDP, as far as signaling needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection<'a> {
    /// The media type of the `m=` line: `audio`, `video`, `application`, …
    pub media: &'a str,
    /// Its `a=mid`, if it has one.
    pub mid: Option<&'a str>,
    pub direction: Direction,
    /// Port 0 without `a=bundle-only`: a stopped transceiver or a rejected
    /// section, carrying nothing.
    pub rejected: bool,
}

/// The m-sections of `sdp`, in order. Lenient: it reads any text and
/// returns what looks like m-sections, so the caller can say what is
/// missing; whether the SDP is valid is str0m's call.
pub fn media_sections(sdp: &str) -> Vec<MediaSection<'_>> {
    let lines: Vec<&str> = lines(sdp).collect();
    let (_, sections) = split_sections(&lines);
    sections
        .iter()
        .map(|section| {
            let mut fields = section[0].trim_start_matches("m=").split_whitespace();
            let media = fields.next().unwrap_or("");
            let port_zero = fields.next().is_some_and(port_is_zero);
            let attribute = |name: &str| section[1..].contains(&name);
            let direction = if attribute("a=sendonly") {
                Direction::SendOnly
            } else if attribute("a=recvonly") {
                Direction::RecvOnly
            } else if attribute("a=inactive") {
                Direction::Inactive
            } else {
                Direction::SendRecv
            };
            MediaSection {
                media,
                mid: mid_of(section),
                direction,
                rejected: port_zero && !attribute("a=bundle-only"),
            }
        })
        .collect()
}

/// The SSRCs of each m-section's `a=ssrc-group:SIM` line (SSRC-group
/// simulcast, what libwebrtc sends when its offer is munged for it, as
/// twilio-video does): (mid, SSRCs in the line's order, lowest layer
/// first). str0m ignores SIM groups; the forwarder treats the SSRCs as
/// layers. Sections without a mid or with fewer than two SSRCs are left
/// out; at most 4 SSRCs are kept.
pub fn simulcast_ssrc_groups(sdp: &str) -> Vec<(String, Vec<u32>)> {
    let lines: Vec<&str> = lines(sdp).collect();
    let (_, sections) = split_sections(&lines);
    sections
        .iter()
        .filter_map(|section| {
            let mid = mid_of(section)?;
            let ssrcs: Vec<u32> = section[1..]
                .iter()
                .find_map(|l| l.strip_prefix("a=ssrc-group:SIM "))?
                .split_whitespace()
                .map_while(|s| s.parse().ok())
                .take(4)
                .collect();
            (ssrcs.len() > 1).then(|| (mid.to_owned(), ssrcs))
        })
        .collect()
}

/// Parse a client's offer. A parse error names the line it stopped at; a
/// payload type described twice, differently, names both lines. Also what
/// the offer says each payload type is, for [`PayloadTypes::keep`], as
/// str0m understood it: str0m's parser skips the rest of a section's
/// attributes after a line it does not know (`x=…`, a bare `a`, an empty
/// `a=`), so the text can say more than str0m heard (an `fmtp` after such a
/// line), and a later offer would then remap a payload type str0m locked
/// without the check seeing it (found by the `sdp_offer` fuzz target).
/// Reading str0m's own rendering of the offer keeps the two in step.
pub(crate) fn read_offer(sdp: &str) -> Result<(SdpOffer, PayloadTypes), MediaError> {
    let offer = SdpOffer::from_sdp_string(sdp)
        .map_err(|e| MediaError::BadOffer(locate(sdp, &e.to_string())))?;
    one_meaning_per_payload_type(sdp).map_err(MediaError::BadOffer)?;
    let understood = one_meaning_per_payload_type(&offer.to_sdp_string())
        .map_err(|e| MediaError::BadOffer(format!("{e} (as the server reads the offer)")))?;
    Ok((offer, understood))
}

/// What a peer's offers have said each payload type is. RFC 3264 §8.3.2:
/// a payload type's mapping must not change for the duration of the
/// session, and str0m 0.25 asserts when a later offer remaps one it has
/// locked (found by the `sdp_offer` fuzz target, after the one-offer case
/// below was refused).
#[derive(Debug, Default)]
pub(crate) struct PayloadTypes(HashMap<u16, Description>);

impl PayloadTypes {
    /// Refuse `offer` if it says a payload type is something other than
    /// what an earlier offer of this peer said.
    pub(crate) fn check(&self, offer: &PayloadTypes) -> Result<(), MediaError> {
        for (pt, now) in &offer.0 {
            if let Some(before) = self.0.get(pt).filter(|b| !b.same(now)) {
                let (_, was) = before.said();
                let (_, is) = now.said();
                return Err(MediaError::BadOffer(format!(
                    "payload type {pt} was {:?} in an earlier offer and cannot change; this one says {:?}",
                    excerpt(&was),
                    excerpt(&is)
                )));
            }
        }
        Ok(())
    }

    /// Remember what an accepted offer said.
    pub(crate) fn keep(&mut self, offer: PayloadTypes) {
        for (pt, description) in offer.0 {
            self.0.entry(pt).or_insert(description);
        }
    }
}

/// Refuse an SDP in which one payload type has two descriptions: its
/// `a=rtpmap` (codec, clock rate, channels) or its `a=fmtp` parameters
/// differ between two sections or within one, a missing `fmtp` being a
/// description of its own. Compared as str0m reads them: ignoring case,
/// spaces, and the order of `fmtp` parameters.
fn one_meaning_per_payload_type(sdp: &str) -> Result<PayloadTypes, String> {
    let mut offer: HashMap<u16, Description> = HashMap::new();
    let mut section: HashMap<u16, Description> = HashMap::new();
    for (index, raw) in sdp.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with("m=") {
            close_section(&mut offer, &mut section)?;
            continue;
        }
        let (rtpmap, rest) = if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            (false, rest)
        } else {
            continue;
        };
        let (pt, value) = rest.split_once(' ').unwrap_or((rest, ""));
        // As str0m reads it: `0102` and `+102` are 102. A number that does
        // not fit means nothing to str0m.
        let Ok(pt) = pt.parse::<u16>() else {
            continue;
        };
        let said = if rtpmap {
            value.trim().to_ascii_lowercase()
        } else {
            let mut params: Vec<String> = value
                .split(';')
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect();
            params.sort();
            params.join(";")
        };
        let description = section.entry(pt).or_insert_with(|| Description {
            line: index + 1,
            ..Description::default()
        });
        let slot = if rtpmap {
            &mut description.rtpmap
        } else {
            &mut description.fmtp
        };
        match slot {
            Some(before) if *before != said => {
                let first = (description.line, before.clone());
                return Err(described_twice(pt, first, (index + 1, said)));
            }
            _ => *slot = Some(said),
        }
    }
    close_section(&mut offer, &mut section)?;
    Ok(PayloadTypes(offer))
}

/// What one section says of a payload type, and the line where it starts
/// saying it.
#[derive(Debug, Default)]
struct Description {
    line: usize,
    rtpmap: Option<String>,
    fmtp: Option<String>,
}

impl Description {
    fn same(&self, other: &Description) -> bool {
        self.rtpmap == other.rtpmap && self.fmtp == other.fmtp
    }

    /// Where, and what it says, as one text.
    fn said(&self) -> (usize, String) {
        let rtpmap = self.rtpmap.as_deref().unwrap_or("no rtpmap");
        let fmtp = self.fmtp.as_deref().unwrap_or("no fmtp");
        (self.line, format!("{rtpmap}, {fmtp}"))
    }
}

/// Add what a section said of its payload types to what the offer said so
/// far, refusing a second meaning.
fn close_section(
    offer: &mut HashMap<u16, Description>,
    section: &mut HashMap<u16, Description>,
) -> Result<(), String> {
    for (pt, description) in section.drain() {
        match offer.get(&pt) {
            Some(first) if !first.same(&description) => {
                return Err(described_twice(pt, first.said(), description.said()));
            }
            Some(_) => {}
            None => {
                offer.insert(pt, description);
            }
        }
    }
    Ok(())
}

/// The refusal: where each description starts, and what it says.
fn described_twice(pt: u16, first: (usize, String), second: (usize, String)) -> String {
    format!(
        "payload type {pt} is described two ways: {:?} from line {} and {:?} from line {}",
        excerpt(&first.1),
        first.0,
        excerpt(&second.1),
        second.0
    )
}

/// `answer` with the RIDs in `paused` ((mid, RID) pairs) marked paused
/// (`~`, RFC 8853 §5.1) in their m-section's `a=simulcast` line.
///
/// Why: the RID layers a publisher sends are the answer's to say. Applying
/// an answer, libwebrtc sets each encoding's `active` from it
/// (`UpdateSimulcastLayerStatusInSender`): an unmarked layer is sent again.
/// Salon pauses layers nobody receives ([`crate::pausing`]), so every
/// renegotiation's answer must carry the pause, or each one would undo it
/// until the next `layers` message.
pub fn mark_paused(answer: &str, paused: &[(String, String)]) -> String {
    if paused.is_empty() {
        return answer.to_owned();
    }
    let eol = if answer.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut mid: Option<&str> = None;
    let mut out = String::with_capacity(answer.len() + 8 * paused.len());
    for line in lines(answer) {
        if line.starts_with("m=") {
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m);
        }
        let here = |rid: &str| {
            paused
                .iter()
                .any(|(m, r)| Some(m.as_str()) == mid && r == rid)
        };
        match line.strip_prefix("a=simulcast:") {
            // The a=mid line comes before a=simulcast in what str0m writes.
            Some(rest) if mid.is_some() => {
                out.push_str("a=simulcast:");
                out.push_str(&mark_streams(rest, here));
            }
            _ => out.push_str(line),
        }
        out.push_str(eol);
    }
    out
}

/// An `a=simulcast` value (`recv q;h;f`, `send 1,2;3 recv 4`) with `~` on
/// each RID of the `recv` list that `paused` says, once.
fn mark_streams(value: &str, paused: impl Fn(&str) -> bool) -> String {
    let mut words = Vec::new();
    let mut receiving = false;
    for word in value.split(' ') {
        match word {
            "recv" | "send" => {
                receiving = word == "recv";
                words.push(word.to_owned());
            }
            list if receiving => {
                let streams: Vec<String> = list
                    .split(';')
                    .map(|stream| {
                        stream
                            .split(',')
                            .map(|rid| {
                                if !rid.starts_with('~') && paused(rid) {
                                    format!("~{rid}")
                                } else {
                                    rid.to_owned()
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                words.push(streams.join(";"));
            }
            other => words.push(other.to_owned()),
        }
    }
    words.join(" ")
}

/// Finish str0m's answer for every kind of client: the server's candidates
/// and `a=end-of-candidates` in each bundled, non-rejected m-section, and
/// no `trickle` ICE option.
pub fn finish_answer(answer: &str) -> String {
    let lines: Vec<&str> = lines(answer).collect();
    let (session, sections) = split_sections(&lines);
    let bundle: Option<Vec<&str>> = session.iter().find_map(|l| {
        l.strip_prefix("a=group:BUNDLE")
            .map(|mids| mids.split_whitespace().collect())
    });
    let mut candidates: Vec<&str> = Vec::new();
    for line in &lines {
        if line.starts_with("a=candidate:") && !candidates.contains(line) {
            candidates.push(line);
        }
    }

    let mut out = String::with_capacity(answer.len() + 200 * sections.len());
    let mut push = |line: &str| {
        out.push_str(line);
        out.push_str("\r\n");
    };
    for line in session {
        if let Some(kept) = without_trickle(line) {
            push(kept.as_ref());
        }
    }
    for section in sections {
        let rejected = section[0]
            .split_whitespace()
            .nth(1)
            .is_some_and(port_is_zero)
            && !section.contains(&"a=bundle-only");
        let bundled = match (&bundle, mid_of(section)) {
            (Some(mids), Some(mid)) => mids.contains(&mid),
            (Some(_), None) => false,
            (None, _) => true,
        };
        let mut wanted = bundled && !rejected;
        for line in section.iter() {
            if line.starts_with("a=candidate:") || *line == "a=end-of-candidates" {
                continue;
            }
            // The transport's candidates go where str0m writes them in the
            // first section: before the ICE credentials.
            if wanted && line.starts_with("a=ice-ufrag:") {
                candidates.iter().for_each(|c| push(c));
                push("a=end-of-candidates");
                wanted = false;
            }
            if let Some(kept) = without_trickle(line) {
                push(kept.as_ref());
            }
        }
        if wanted {
            candidates.iter().for_each(|c| push(c));
            push("a=end-of-candidates");
        }
    }
    out
}

/// The RTP header extension that carries transport-wide sequence numbers
/// (the ones TWCC feedback reports on).
pub const TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// `sdp` without the transport-wide sequence number extension in its
/// m-sections of direction `direction` (`recvonly` in a client's offer,
/// `sendonly` in the server's): the m-lines the server sends on. What the
/// server forwards there then carries no transport-wide sequence number,
/// so Chromium estimates what it receives itself and reports it in REMB
/// ([`crate::Estimation::Receiver`]) instead of sending TWCC feedback no
/// one reads. Every other line is kept; lines end in CRLF.
pub fn without_transport_cc(sdp: &str, direction: &str) -> String {
    let lines: Vec<&str> = lines(sdp).collect();
    let (session, sections) = split_sections(&lines);
    let direction = format!("a={direction}");
    let mut out = String::with_capacity(sdp.len());
    let mut push = |line: &str| {
        out.push_str(line);
        out.push_str("\r\n");
    };
    session.iter().for_each(|l| push(l));
    for section in sections {
        let wanted = section.iter().any(|l| *l == direction);
        for line in section {
            let is_transport_cc = line
                .strip_prefix("a=extmap:")
                .and_then(|v| v.split_whitespace().nth(1))
                .is_some_and(|uri| uri == TRANSPORT_CC);
            if !(wanted && is_transport_cc) {
                push(line);
            }
        }
    }
    out
}

// ---- helpers ----------------------------------------------------------------

/// The lines of an SDP, without line endings. SDP ends lines with CRLF;
/// a bare LF is read too.
fn lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// The session-level lines, and each m-section (its `m=` line first).
fn split_sections<'l, 'a>(lines: &'l [&'a str]) -> (&'l [&'a str], Vec<&'l [&'a str]>) {
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("m="))
        .map(|(i, _)| i)
        .collect();
    let session = &lines[..starts.first().copied().unwrap_or(lines.len())];
    let sections = starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            &lines[start..end]
        })
        .collect();
    (session, sections)
}

fn mid_of<'a>(section: &[&'a str]) -> Option<&'a str> {
    section.iter().find_map(|l| l.strip_prefix("a=mid:"))
}

/// `0`, or `0/2` (a port with a count, RFC 8866 §5.14).
fn port_is_zero(port: &str) -> bool {
    port.split('/').next() == Some("0")
}

/// The line without the `trickle` ICE option; `None` when nothing is left
/// of it.
fn without_trickle(line: &str) -> Option<std::borrow::Cow<'_, str>> {
    let Some(options) = line.strip_prefix("a=ice-options:") else {
        return Some(line.into());
    };
    let kept: Vec<&str> = options
        .split_whitespace()
        .filter(|o| *o != "trickle")
        .collect();
    if kept.is_empty() {
        None
    } else if kept.len() == options.split_whitespace().count() {
        Some(line.into())
    } else {
        Some(format!("a=ice-options:{}", kept.join(" ")).into())
    }
}

/// Turn str0m's parse error into one a client can act on. Its position is
/// the address of the offending byte in `sdp` ("Parse error at
/// PointerOffset(0x55abcfd0dcf7)"): make it a line number and show that
/// line's start.
fn locate(sdp: &str, error: &str) -> String {
    let (head, rest) = error.split_once('\n').unwrap_or((error, ""));
    let detail: Vec<&str> = rest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {}", detail.join("; "))
    };
    let address = head.rsplit_once("Parse error at ").and_then(|(_, at)| {
        let at = at.trim();
        match at
            .strip_prefix("PointerOffset(0x")
            .and_then(|hex| hex.strip_suffix(')'))
        {
            Some(hex) => usize::from_str_radix(hex, 16).ok(),
            None => at.parse::<usize>().ok(),
        }
    });
    let start = sdp.as_ptr() as usize;
    match address.and_then(|a| a.checked_sub(start)) {
        Some(offset) if offset <= sdp.len() && sdp.is_char_boundary(offset) => {
            let line_start = sdp[..offset].rfind('\n').map_or(0, |i| i + 1);
            let number = sdp[..offset].matches('\n').count() + 1;
            let line = sdp[line_start..]
                .split(['\r', '\n'])
                .next()
                .unwrap_or_default();
            let excerpt = excerpt(line);
            format!("the SDP does not parse at line {number} ({excerpt:?}){detail}")
        }
        // Not the shape expected: keep the words, never the number.
        _ if address.is_some() => format!("the SDP does not parse{detail}"),
        _ => error.to_owned(),
    }
}

/// A line's beginning, to show in an error.
fn excerpt(line: &str) -> String {
    const MAX_EXCERPT: usize = 60;
    let mut excerpt: String = line.chars().take(MAX_EXCERPT).collect();
    if line.chars().nth(MAX_EXCERPT).is_some() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use str0m::change::SdpAnswer;
    use str0m::media::{Direction as StrDirection, MediaKind};
    use str0m::{Candidate, Rtc};

    use super::*;

    /// An answer the way the media worker makes one: an ICE-lite `Rtc`
    /// with one host candidate per address.
    fn answer_to(offer: &str, addresses: &[&str]) -> String {
        let mut server = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .build(Instant::now());
        for address in addresses {
            let address: SocketAddr = address.parse().unwrap();
            server.add_local_candidate(Candidate::host(address, "udp").unwrap());
        }
        let offer = SdpOffer::from_sdp_string(offer).unwrap();
        server
            .sdp_api()
            .accept_offer(offer)
            .unwrap()
            .to_sdp_string()
    }

    /// A client's offer: audio and video to send, one video to receive and
    /// a data channel — what a participant's first offers look like.
    fn client_offer() -> String {
        let mut client = Rtc::new(Instant::now());
        let mut api = client.sdp_api();
        api.add_media(MediaKind::Audio, StrDirection::SendOnly, None, None, None);
        api.add_media(MediaKind::Video, StrDirection::SendOnly, None, None, None);
        api.add_media(MediaKind::Video, StrDirection::RecvOnly, None, None, None);
        api.add_channel("chat".into());
        let (offer, _) = api.apply().unwrap();
        offer.to_sdp_string()
    }

    fn section_lines(sdp: &str) -> Vec<Vec<String>> {
        let lines: Vec<&str> = lines(sdp).collect();
        let (_, sections) = split_sections(&lines);
        sections
            .iter()
            .map(|s| s.iter().map(|l| l.to_string()).collect())
            .collect()
    }

    #[test]
    fn every_bundled_section_of_the_answer_carries_the_candidates_and_their_end() {
        let raw = answer_to(&client_offer(), &["127.0.0.1:5000", "192.0.2.7:5000"]);
        let raw_sections = section_lines(&raw);
        assert_eq!(raw_sections.len(), 4);
        assert!(
            raw_sections[1..]
                .iter()
                .all(|s| !s.iter().any(|l| l.starts_with("a=candidate:"))),
            "str0m writes candidates in the first section only; if that changed, so can this module:\n{raw}"
        );

        let answer = finish_answer(&raw);
        for section in section_lines(&answer) {
            let candidates: Vec<&String> = section
                .iter()
                .filter(|l| l.starts_with("a=candidate:"))
                .collect();
            assert_eq!(candidates.len(), 2, "{section:#?}");
            assert!(candidates[0].contains("127.0.0.1 5000 typ host"));
            assert!(candidates[1].contains("192.0.2.7 5000 typ host"));
            let ends = section.iter().filter(|l| *l == "a=end-of-candidates");
            assert_eq!(ends.count(), 1, "{section:#?}");
        }
        assert!(!answer.contains("trickle"), "{answer}");
        // Still an answer str0m (and so a str0m client) accepts.
        SdpAnswer::from_sdp_string(&answer).expect("the finished answer parses");
    }

    #[test]
    fn the_first_section_keeps_its_shape_and_nothing_else_changes() {
        let raw = answer_to(&client_offer(), &["127.0.0.1:5000"]);
        let answer = finish_answer(&raw);
        let kept: Vec<&str> = lines(&answer)
            .filter(|l| !l.starts_with("a=candidate:") && *l != "a=end-of-candidates")
            .collect();
        let expected: Vec<&str> = lines(&raw)
            .filter(|l| !l.starts_with("a=candidate:") && !l.starts_with("a=ice-options:"))
            .collect();
        assert_eq!(kept, expected);
        // In each section the candidates come right before the ICE
        // credentials, as str0m places them in the first.
        for section in section_lines(&answer) {
            let end = section
                .iter()
                .position(|l| l == "a=end-of-candidates")
                .unwrap();
            assert!(section[end + 1].starts_with("a=ice-ufrag:"), "{section:#?}");
        }
        assert!(answer.ends_with("\r\n") && !answer.contains("\r\n\r\n"));
    }

    #[test]
    fn rejected_and_unbundled_sections_get_no_candidates() {
        let answer = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            a=group:BUNDLE 0 2\r\na=ice-lite\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
            a=ice-ufrag:u\r\na=ice-pwd:p\r\na=ice-options:trickle\r\na=mid:0\r\na=recvonly\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=mid:1\r\na=inactive\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=mid:2\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=mid:3\r\na=sendonly\r\n";
        let finished = finish_answer(answer);
        let sections = section_lines(&finished);
        let has = |s: &Vec<String>| s.iter().any(|l| l.starts_with("a=candidate:"));
        assert!(has(&sections[0]));
        assert!(!has(&sections[1]), "port 0: rejected");
        assert!(has(&sections[2]));
        assert!(!has(&sections[3]), "not in the BUNDLE group");
        assert!(!finished.contains("a=ice-options"), "{finished}");
    }

    #[test]
    fn only_the_trickle_option_is_dropped() {
        assert_eq!(without_trickle("a=ice-options:trickle"), None);
        assert_eq!(
            without_trickle("a=ice-options:trickle renomination").as_deref(),
            Some("a=ice-options:renomination")
        );
        assert_eq!(
            without_trickle("a=ice-options:ice2").as_deref(),
            Some("a=ice-options:ice2")
        );
        assert_eq!(without_trickle("a=mid:0").as_deref(), Some("a=mid:0"));
    }

    #[test]
    fn media_sections_tell_what_each_m_line_is() {
        let offer = "v=0\r\ns=-\r\na=group:BUNDLE 0 1 2 3\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=inactive\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=bundle-only\r\na=recvonly\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";
        let sections = media_sections(offer);
        let summary: Vec<(&str, Option<&str>, Direction, bool)> = sections
            .iter()
            .map(|s| (s.media, s.mid, s.direction, s.rejected))
            .collect();
        assert_eq!(
            summary,
            [
                ("audio", Some("0"), Direction::SendOnly, false),
                ("video", Some("1"), Direction::SendRecv, false),
                ("video", Some("2"), Direction::Inactive, true),
                ("video", Some("3"), Direction::RecvOnly, false),
                ("application", Some("4"), Direction::SendRecv, false),
            ]
        );
        assert!(Direction::SendRecv.sends() && Direction::SendRecv.receives());
        assert!(Direction::SendOnly.sends() && !Direction::SendOnly.receives());
        assert!(!Direction::Inactive.sends() && !Direction::Inactive.receives());
        // Anything at all: no sections, no panic.
        assert!(media_sections("").is_empty());
        assert!(media_sections("m=\nm= 0/2\n\u{0}").len() == 2);
    }

    #[test]
    fn transport_cc_goes_only_from_the_sections_of_the_direction_asked() {
        let offer = client_offer();
        let has_transport_cc =
            |section: &Vec<String>| section.iter().any(|l| l.contains(TRANSPORT_CC));
        let before = section_lines(&offer);
        // str0m offers it in every media section.
        assert_eq!(before.iter().filter(|s| has_transport_cc(s)).count(), 3);
        let stripped = without_transport_cc(&offer, "recvonly");
        let after = section_lines(&stripped);
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            if b.iter().any(|l| l == "a=recvonly") {
                assert!(!has_transport_cc(a), "{a:?}");
                let kept: Vec<&String> = b.iter().filter(|l| !l.contains(TRANSPORT_CC)).collect();
                assert_eq!(a.iter().collect::<Vec<_>>(), kept);
            } else {
                assert_eq!(a, b, "other sections are untouched");
            }
        }
        // Line endings and the session part are kept; it still reads.
        assert_eq!(
            stripped.matches("\r\n").count(),
            stripped.matches('\n').count()
        );
        assert!(offer.starts_with(stripped.split("m=").next().unwrap()));
        read_offer(&stripped).unwrap();
        // A direction no section has changes nothing.
        assert_eq!(without_transport_cc(&offer, "inactive"), offer);
    }

    #[test]
    fn a_parse_error_names_the_line_not_an_address() {
        let offer = client_offer().replacen("s=-", "s is for session", 1);
        let Err(MediaError::BadOffer(message)) = read_offer(&offer).map(|_| ()) else {
            panic!("the offer parsed");
        };
        assert!(
            message.starts_with("the SDP does not parse at line 3 (\"s is for session\")"),
            "{message}"
        );
        assert!(
            !message.contains("0x") && !message.contains("Pointer"),
            "{message}"
        );

        let Err(MediaError::BadOffer(message)) = read_offer("").map(|_| ()) else {
            panic!("nothing parsed");
        };
        assert!(!message.contains("0x"), "{message}");
    }

    #[test]
    fn a_parse_error_of_another_shape_is_kept_and_an_address_outside_is_dropped() {
        assert_eq!(locate("v=0", "SDP parse: nonsense"), "SDP parse: nonsense");
        assert_eq!(
            locate(
                "v=0",
                "SDP parse: Parse error at PointerOffset(0x12)\nUnexpected `x`\nExpected `y`\n"
            ),
            "the SDP does not parse: Unexpected `x`; Expected `y`"
        );
    }

    #[test]
    fn ssrc_group_simulcast_is_read_per_m_section_in_the_groups_order() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ssrc:5 cname:x\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\n\
            a=ssrc-group:FID 11 21\r\na=ssrc-group:FID 12 22\r\na=ssrc-group:FID 13 23\r\n\
            a=ssrc-group:SIM 11 12 13\r\na=ssrc:11 cname:x\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=ssrc-group:SIM 7 x\r\n";
        assert_eq!(
            simulcast_ssrc_groups(sdp),
            vec![("1".to_owned(), vec![11, 12, 13])],
            "one SSRC is no simulcast"
        );
    }

    /// An offer of one audio and one video section, each with `extra`
    /// lines after its own codec.
    fn offer_with<S: AsRef<str>>(audio: &[S], video: &[S]) -> String {
        let section = |kind: &str, mid: u8, codec: &str, extra: &[S]| {
            let pt = codec.split_whitespace().next().unwrap_or_default();
            let mut lines = vec![
                format!("m={kind} 9 UDP/TLS/RTP/SAVPF {pt}"),
                "c=IN IP4 0.0.0.0".into(),
                "a=ice-ufrag:abcd".into(),
                "a=ice-pwd:abcdefghijklmnopqrstuvwx".into(),
                format!(
                    "a=fingerprint:sha-256 {}",
                    ["00:11:22:33:44:55:66:77"; 4].join(":")
                ),
                "a=setup:actpass".into(),
                format!("a=mid:{mid}"),
                "a=sendrecv".into(),
                "a=rtcp-mux".into(),
                format!("a=rtpmap:{codec}"),
            ];
            lines.extend(extra.iter().map(|l| l.as_ref().to_owned()));
            lines.join("\r\n")
        };
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n{}\r\n{}\r\n",
            section("audio", 0, "111 opus/48000/2", audio),
            section("video", 1, "96 VP8/90000", video)
        )
    }

    fn refusal(offer: &str) -> Option<String> {
        match read_offer(offer).map(|_| ()) {
            Ok(_) => None,
            Err(MediaError::BadOffer(message)) => Some(message),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_payload_type_described_two_ways_is_refused_naming_both_lines() {
        // What str0m 0.25 panicked on (found by the sdp_offer fuzz target):
        // 102 is H.264 in both sections, with parameters in one only. The
        // m= lines need not even list it.
        let h264 = "a=rtpmap:102 H264/90000";
        let fmtp = "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f";
        let message = refusal(&offer_with(&[h264], &[h264, fmtp])).expect("refused");
        assert_eq!(
            message,
            "payload type 102 is described two ways: \"h264/90000, no fmtp\" from line 16 and \
             \"h264/90000, packetization-mode=1;profile-level-id=42e01f\" from line 27"
        );
        // Other codecs, and two meanings within one section.
        assert!(refusal(&offer_with(&[h264], &["a=rtpmap:102 VP8/90000"])).is_some());
        assert!(refusal(&offer_with(&[h264], &["a=rtpmap:0102 VP8/90000"])).is_some());
        assert!(refusal(&offer_with(&[h264, "a=rtpmap:102 VP9/90000"], &[])).is_some());
        let rtx = |apt: u8| format!("a=fmtp:103 apt={apt}");
        let with_rtx = |apt| [h264, "a=rtpmap:103 rtx/90000", &rtx(apt)].map(str::to_owned);
        let (a, b) = (with_rtx(102), with_rtx(96));
        assert!(refusal(&offer_with(&a, &b)).is_some());

        // The same meaning in other words is one meaning: case, spaces and
        // the order of parameters, as str0m reads them.
        let same = [
            "a=rtpmap:102 h264/90000",
            "a=fmtp:102 profile-level-id=42E01F; packetization-mode=1",
        ];
        assert_eq!(refusal(&offer_with(&[h264, fmtp], &same)), None);
        assert_eq!(refusal(&offer_with(&a, &a)), None);
        // What browsers send: every payload type described once per kind,
        // identically in every section of that kind.
        assert_eq!(refusal(&client_offer()), None);
    }

    #[test]
    fn paused_rids_are_marked_in_their_sections_simulcast_line_only() {
        let answer = "v=0\r\ns=-\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:q recv\r\na=simulcast:recv q;h;f\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=simulcast:recv q;h;f\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=simulcast:send 1,2;3 recv a,b;c\r\n";
        let paused = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(m, r)| (m.to_string(), r.to_string()))
                .collect()
        };
        let marked = mark_paused(
            answer,
            &paused(&[("1", "h"), ("1", "f"), ("3", "b"), ("3", "c"), ("3", "2")]),
        );
        let simulcast: Vec<&str> = marked
            .lines()
            .filter(|l| l.starts_with("a=simulcast"))
            .collect();
        assert_eq!(
            simulcast,
            [
                "a=simulcast:recv q;~h;~f",
                "a=simulcast:recv q;h;f",
                "a=simulcast:send 1,2;3 recv a,~b;~c"
            ]
        );
        assert_eq!(marked.replace("~", ""), answer, "nothing else changes");
        // Marking again changes nothing; nothing paused is the answer as is.
        assert_eq!(mark_paused(&marked, &paused(&[("1", "h")])), marked);
        assert_eq!(mark_paused(answer, &[]), answer);
    }

    #[test]
    fn a_later_offer_cannot_change_what_a_payload_type_is() {
        let h264 = "a=rtpmap:102 H264/90000";
        let fmtp =
            |profile: &str| format!("a=fmtp:102 packetization-mode=1;profile-level-id={profile}");
        let types = |offer: &str| read_offer(offer).map(|(_, t)| t).expect("a good offer");
        let mut peer = PayloadTypes::default();
        let first = types(&offer_with(&[], &[h264.to_owned(), fmtp("42e01f")]));
        peer.check(&first).expect("nothing known yet");
        peer.keep(first);
        // The same again, new payload types beside it, or 102 left out:
        // all fine.
        for again in [
            offer_with(&[], &[h264.to_owned(), fmtp("42E01F")]),
            offer_with(
                &[],
                &[
                    h264.to_owned(),
                    fmtp("42e01f"),
                    "a=rtpmap:103 VP9/90000".into(),
                ],
            ),
            offer_with::<&str>(&[], &[]),
        ] {
            assert!(peer.check(&types(&again)).is_ok(), "{again}");
        }
        // What the fuzzer sent: a later offer with other parameters.
        let Err(MediaError::BadOffer(message)) = peer.check(&types(&offer_with(
            &[],
            &[h264.to_owned(), fmtp("42]e01f")],
        ))) else {
            panic!("a remapped payload type was accepted");
        };
        assert_eq!(
            message,
            "payload type 102 was \"h264/90000, packetization-mode=1;profile-level-id=42e01f\" in an earlier offer \
             and cannot change; this one says \"h264/90000, packetization-mode=1\"",
            "as str0m reads it: a profile-level-id that is not hex is left out"
        );
        // What str0m heard counts, not what the text says: it skips the
        // rest of a section's attributes after a line it does not know, so
        // an fmtp after a bare `a` was never heard, and 102 was H.264 with
        // no parameters. A later offer giving it some is refused (str0m
        // asserted on it: found by the fuzzer).
        let mut peer = PayloadTypes::default();
        let unheard = types(&offer_with(
            &[],
            &[h264.to_owned(), "a".into(), fmtp("42e01f")],
        ));
        peer.keep(unheard);
        assert!(
            peer.check(&types(&offer_with(&[], &[h264.to_owned(), fmtp("42e01f")])))
                .is_err(),
            "a payload type str0m heard without parameters was given some"
        );
        assert!(
            peer.check(&types(&offer_with(&[], &["a=rtpmap:102 VP8/90000"])))
                .is_err()
        );
    }
}
