//! What a client's offer declares must be true of its SDP.

use salon_media::sdp::MediaSection;
use salon_room::TrackKind;
use salon_signal::{MAX_MID_BYTES, valid_mid};

/// One m-line an offer says it uses: for publishing (`sending`) a track of
/// `kind`, or for receiving a track whose kind is `kind` when known.
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    pub mid: &'a str,
    pub kind: Option<TrackKind>,
    pub sending: bool,
}

/// Check an offer's declarations against its m-lines (`docs/protocol.md`,
/// *Offers*): each declared `mid` is well formed, declared once, and names
/// a live m-line of the right media and direction, sending to publish and
/// receiving to subscribe; and the first offer answered (`!negotiated`)
/// has a data channel.
pub fn check_offer<'a>(
    sections: &[MediaSection<'_>],
    declarations: impl IntoIterator<Item = Declared<'a>>,
    negotiated: bool,
) -> Result<(), String> {
    let mut declared: Vec<&str> = Vec::new();
    for Declared { mid, kind, sending } in declarations {
        if !valid_mid(mid) {
            let mid = crate::rest::params::excerpt(mid);
            return Err(format!(
                "invalid mid '{mid}': 1 to {MAX_MID_BYTES} letters, digits, '-' or '_'"
            ));
        }
        if declared.contains(&mid) {
            return Err(format!("mid {mid} is declared twice"));
        }
        declared.push(mid);
        if kind == Some(TrackKind::Data) {
            // Data is not carried by an m-line: refused entry by entry.
            continue;
        }
        let Some(section) = sections.iter().find(|s| s.mid == Some(mid)) else {
            return Err(format!("mid {mid} is not an m-line of the offer's SDP"));
        };
        let what = if sending { "publishes" } else { "subscribes" };
        if section.rejected {
            return Err(format!(
                "m-line {mid} has port 0 (stopped) but the offer {what} on it"
            ));
        }
        let media_ok = match kind {
            Some(TrackKind::Audio) => section.media == "audio",
            Some(TrackKind::Video) => section.media == "video",
            Some(TrackKind::Data) | None => matches!(section.media, "audio" | "video"),
        };
        if !media_ok {
            let kind = kind.map_or("audio or video", |k| match k {
                TrackKind::Audio => "audio",
                TrackKind::Video => "video",
                TrackKind::Data => "data",
            });
            return Err(format!(
                "m-line {mid} is {}, but the offer {what} {kind} on it",
                section.media
            ));
        }
        let direction_ok = if sending {
            section.direction.sends()
        } else {
            section.direction.receives()
        };
        if !direction_ok {
            let needed = if sending { "sendonly" } else { "recvonly" };
            return Err(format!(
                "m-line {mid} is {}, but the offer {what} on it: make it {needed}",
                section.direction.as_str()
            ));
        }
    }
    if !negotiated
        && !sections
            .iter()
            .any(|s| s.media == "application" && !s.rejected)
    {
        return Err(
            "the first offer must have a data channel (an m=application section), so the server can open data channels to this client later".into(),
        );
    }
    Ok(())
}
