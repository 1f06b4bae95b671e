//! Does this RTP packet start a keyframe?
//!
//! A new subscriber's decoder can only start at a keyframe, so the forwarder
//! holds video back from it until one begins. These checks read only the
//! payload descriptor and the first bytes of the codec header; they never
//! fail, they answer `false` for anything they do not recognise.

/// The video codecs the forwarder understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
}

/// Whether `payload` (an RTP payload, no header) is the first packet of a
/// keyframe in `codec`.
pub fn starts_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8(payload),
        VideoCodec::Vp9 => vp9(payload),
        VideoCodec::H264 => h264(payload),
    }
}

/// RFC 7741 §4.2–4.3: the packet starts a partition (S=1) of partition 0
/// (PID=0), and the VP8 frame tag after the descriptor has P=0 (key frame).
fn vp8(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&x) = payload.get(at) else {
            return false;
        };
        at += 1;
        if x & 0x80 != 0 {
            // I: picture ID, one byte or two when its M bit is set.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // T or K: TID/Y/KEYIDX
        }
    }
    payload.get(at).is_some_and(|tag| tag & 0x01 == 0)
}

/// draft-ietf-payload-vp9 §4.2: B=1 (beginning of a frame) and P=0 (not
/// inter-picture predicted), in the base spatial layer.
fn vp9(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let picture_id = first & 0x80 != 0;
    let predicted = first & 0x40 != 0;
    let layers = first & 0x20 != 0;
    let begins = first & 0x08 != 0;
    if predicted || !begins {
        return false;
    }
    if !layers {
        return true;
    }
    let mut at = 1;
    if picture_id {
        let Some(&pid) = payload.get(at) else {
            return false;
        };
        at += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    // Layer indices: TID(3) U(1) SID(3) D(1). Only the base spatial layer
    // starts a decodable picture.
    payload.get(at).is_some_and(|l| (l >> 1) & 0x07 == 0)
}

/// RFC 6184: an IDR slice (type 5) or a sequence parameter set (type 7, sent
/// before the IDR) as a single NAL unit, inside a STAP-A, or at the start of
/// an FU-A.
fn h264(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let is_key = |nal_type: u8| nal_type == IDR || nal_type == SPS;
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1f {
        STAP_A => {
            let mut at = 1;
            while at + 2 < payload.len() {
                let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                let Some(&nal) = payload.get(at + 2) else {
                    return false;
                };
                if is_key(nal & 0x1f) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        nal_type => is_key(nal_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes_are_recognised_with_and_without_extensions() {
        // Minimal descriptor: S=1, PID=0; frame tag P=0.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x10, 0x00, 0x9d, 0x01, 0x2a]
        ));
        // Interframe: P=1.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x10, 0x01]));
        // Not the start of the frame.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x00, 0x00]));
        // Partition 1.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x11, 0x00]));
        // X=1, I=1 with a 15-bit picture ID, L=1, T=1: 5 descriptor bytes.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x00]
        ));
        assert!(!starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x01]
        ));
        // X=1, I=1 with a 7-bit picture ID.
        assert!(starts_keyframe(VideoCodec::Vp8, &[0x90, 0x80, 0x05, 0x00]));
    }

    #[test]
    fn h264_keyframes_in_single_stap_a_and_fu_a_packets() {
        assert!(starts_keyframe(VideoCodec::H264, &[0x65, 0x88])); // IDR
        assert!(starts_keyframe(VideoCodec::H264, &[0x67, 0x42])); // SPS
        assert!(!starts_keyframe(VideoCodec::H264, &[0x41, 0x9a])); // non-IDR slice
        // STAP-A holding SPS (2 bytes) then PPS.
        assert!(starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]
        ));
        assert!(!starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x68, 0xce]
        ));
        // FU-A start of an IDR, and its continuation.
        assert!(starts_keyframe(VideoCodec::H264, &[0x7c, 0x85, 0x88]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x7c, 0x05, 0x88]));
    }

    #[test]
    fn vp9_keyframes_need_beginning_and_no_prediction() {
        assert!(starts_keyframe(VideoCodec::Vp9, &[0x08]));
        assert!(
            !starts_keyframe(VideoCodec::Vp9, &[0x48]),
            "inter-predicted"
        );
        assert!(
            !starts_keyframe(VideoCodec::Vp9, &[0x00]),
            "not the beginning"
        );
        // I=1 (7-bit pid), L=1, base spatial layer.
        assert!(starts_keyframe(VideoCodec::Vp9, &[0xa8, 0x01, 0x00, 0x00]));
        // Spatial layer 1.
        assert!(!starts_keyframe(VideoCodec::Vp9, &[0xa8, 0x01, 0x02, 0x00]));
    }

    #[test]
    fn garbage_is_never_a_keyframe_and_never_panics() {
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
            assert!(!starts_keyframe(codec, &[]));
            for len in 0..8 {
                for byte in [0x00u8, 0x90, 0xff, 0x78, 0x7c, 0xa8] {
                    let _ = starts_keyframe(codec, &vec![byte; len]);
                }
            }
        }
        // A STAP-A whose sizes overrun the packet.
        assert!(!starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0xff, 0xff, 0x41]
        ));
    }
}
