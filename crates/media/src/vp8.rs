//! The VP8 payload descriptor (RFC 7741 §4.2), as far as simulcast
//! forwarding needs it: the picture ID and TL0PICIDX, so a lane can
//! renumber them to run on continuously across a layer switch (str0m writes
//! the new values as it serializes the packet: a `Vp8Patch`, no copy of the
//! payload), and a keyframe's width and height (RFC 6386 §9.1), so the
//! forwarder knows each layer's resolution.
//!
//! Every simulcast layer numbers its pictures on its own. A subscriber
//! switched from one layer to another would see the picture ID jump, and
//! Chromium's VP8 reference finder drops frames it cannot place; so a lane
//! offsets both numbers from the first keyframe it forwards of a new
//! layer (see [`crate::forward::Lane`]).
//!
//! Cost: a parse reads at most the first 16 bytes of the payload, does not
//! allocate and does not fail: what it does not recognise it leaves out.

/// The picture ID is 15 bits wide (M=1) or 7 bits.
pub const PICTURE_ID_MODULUS: u16 = 1 << 15;

/// What the forwarder reads from one VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// The picture ID and where it is: (value, 15 bits wide, offset).
    pub picture_id: Option<(u16, bool, u8)>,
    /// TL0PICIDX and its offset.
    pub tl0: Option<(u8, u8)>,
    /// The packet begins a keyframe.
    pub keyframe: bool,
    /// A keyframe's width and height (0 when the packet begins a keyframe
    /// but is too short to carry them).
    pub size: (u16, u16),
}

impl Descriptor {
    /// Read the descriptor at the start of `payload`; `None` when it is
    /// too short to be one.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let first = *payload.first()?;
        let mut d = Descriptor::default();
        let mut at = 1usize;
        if first & 0x80 != 0 {
            let x = *payload.get(at)?;
            at += 1;
            if x & 0x80 != 0 {
                let high = *payload.get(at)?;
                if high & 0x80 != 0 {
                    let low = *payload.get(at + 1)?;
                    let value = (u16::from(high & 0x7f) << 8) | u16::from(low);
                    d.picture_id = Some((value, true, at as u8));
                    at += 2;
                } else {
                    d.picture_id = Some((u16::from(high), false, at as u8));
                    at += 1;
                }
            }
            if x & 0x40 != 0 {
                d.tl0 = Some((*payload.get(at)?, at as u8));
                at += 1;
            }
            if x & 0x30 != 0 {
                at += 1; // TID/Y/KEYIDX
            }
        }
        let start = first & 0x10 != 0;
        let partition = first & 0x07;
        if start && partition == 0 && payload.get(at).is_some_and(|tag| tag & 0x01 == 0) {
            d.keyframe = true;
            // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width
            // and height, little-endian, each with 2 bits of scaling.
            if let Some(header) = payload.get(at + 3..at + 10)
                && header[..3] == [0x9d, 0x01, 0x2a]
            {
                let width = u16::from_le_bytes([header[3], header[4]]) & 0x3fff;
                let height = u16::from_le_bytes([header[5], header[6]]) & 0x3fff;
                d.size = (width, height);
            }
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X=1, S=1; I, L, T; 15-bit picture ID 0x1234; TL0PICIDX 7; TID byte;
    /// a keyframe tag and a 320×180 header.
    const KEY: [u8; 15] = [
        0x90, 0xe0, 0x92, 0x34, 0x07, 0x20, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4,
    ];

    #[test]
    fn a_keyframe_descriptor_gives_its_fields_and_size() {
        let mut key = KEY.to_vec();
        key.push(0x00);
        let d = Descriptor::parse(&key).unwrap();
        assert_eq!(d.picture_id, Some((0x1234, true, 2)));
        assert_eq!(d.tl0, Some((7, 4)));
        assert!(d.keyframe);
        assert_eq!(d.size, (320, 180));
    }

    #[test]
    fn short_and_odd_payloads_do_not_panic() {
        assert_eq!(Descriptor::parse(&[]), None);
        assert_eq!(Descriptor::parse(&[0x80]), None);
        assert_eq!(Descriptor::parse(&[0x90, 0x80, 0x85]), None);
        let d = Descriptor::parse(&[0x10, 0x00]).unwrap();
        assert!(d.keyframe);
        assert_eq!(d.size, (0, 0));
        let delta = Descriptor::parse(&[0x90, 0x80, 0x05, 0x01]).unwrap();
        assert_eq!(delta.picture_id, Some((5, false, 2)));
        assert!(!delta.keyframe);
    }
}
