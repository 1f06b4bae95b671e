//! The adaptive-video messages of a session: bandwidth profile, priorities,
//! switching tracks off and on, render dimensions, network quality.
//!
//! Each is checked here and refused with a clear error (53004, naming the
//! field) when it makes no sense; what is accepted is kept on the session
//! and, where the media server acts on it, passed on.

use salon_signal::{ClientMessage, MAX_RENDER_SIDE, ServerMessage, TrackKind, codes};

use super::Session;

/// What a participant asked for, kept for its session.
#[derive(Debug, Default)]
pub(super) struct Adaptive {
    /// Network quality verbosity (0–3) for the participant itself and for
    /// the others; both 0 until `set_network_quality`.
    pub network_quality: (u8, u8),
}

impl Session {
    /// Handle one of the adaptive-video messages (see the module docs).
    pub(super) fn on_adaptive(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::SetBandwidthProfile { .. } => {}
            ClientMessage::SetPublishPriority { track, .. } => {
                let mine = self
                    .tracks
                    .get(&track)
                    .is_some_and(|(publisher, _)| *publisher == self.me);
                if !mine {
                    self.error(
                        codes::INVALID_MESSAGE,
                        format!("set_publish_priority: track {track} is not one you publish"),
                    );
                }
            }
            ClientMessage::SetSubscribePriority { track, .. } => {
                self.check_received_video("set_subscribe_priority", track);
            }
            ClientMessage::SwitchOff { track } => self.switch(track, false),
            ClientMessage::SwitchOn { track } => self.switch(track, true),
            ClientMessage::SetRenderDimensions { track, dimensions } => {
                if let Some(d) = dimensions {
                    let side = 1..=MAX_RENDER_SIDE;
                    if !side.contains(&d.width) || !side.contains(&d.height) {
                        return self.error(
                            codes::INVALID_MESSAGE,
                            format!(
                                "set_render_dimensions: each side must be 1 to {MAX_RENDER_SIDE} pixels (got {}x{})",
                                d.width, d.height
                            ),
                        );
                    }
                }
                self.check_received_video("set_render_dimensions", track);
            }
            ClientMessage::SetNetworkQuality { local, remote } => {
                if local > 3 || remote > 3 {
                    return self.error(
                        codes::INVALID_MESSAGE,
                        format!(
                            "set_network_quality: verbosity must be 0, 1, 2 or 3 (got local {local}, remote {remote})"
                        ),
                    );
                }
                self.adaptive.network_quality = (local, remote);
            }
            _ => {}
        }
    }

    /// `switch_off` (`on: false`) or `switch_on`: tell the media server
    /// and answer with the event.
    fn switch(&mut self, track: salon_sid::TrackSid, on: bool) {
        let what = if on { "switch_on" } else { "switch_off" };
        if !self.check_received_video(what, track) {
            return;
        }
        self.state.media.switch(self.room.sid, self.me, track, on);
        self.send(if on {
            ServerMessage::TrackSwitchedOn { track }
        } else {
            ServerMessage::TrackSwitchedOff {
                track,
                reason: "disabled-by-subscriber".into(),
            }
        });
    }

    /// Whether `track` is a video track this participant receives; if not,
    /// say so (error 53004 naming the message).
    fn check_received_video(&mut self, what: &str, track: salon_sid::TrackSid) -> bool {
        let video = self
            .tracks
            .get(&track)
            .is_some_and(|(_, t)| t.kind == TrackKind::Video);
        if !video || !self.subscribed.contains(&track) {
            self.error(
                codes::INVALID_MESSAGE,
                format!("{what}: track {track} is not a video track you are subscribed to"),
            );
            return false;
        }
        true
    }
}
