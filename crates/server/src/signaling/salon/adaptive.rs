//! The adaptive-video messages of Salon's protocol: bandwidth profile,
//! priorities, switching tracks off and on, render dimensions, network
//! quality (`docs/protocol.md`, *Adaptive video*). The checks and the media
//! calls are the member's ([`crate::session`]); this is the wire.

use salon_signal::{ClientMessage, ServerMessage, codes};

use super::Session;
use crate::session::adaptive::{check_network_quality, check_render_dimensions};

impl Session {
    /// Handle one adaptive-video message; a refused one is answered with
    /// error 53004 and changes nothing.
    pub(super) fn on_adaptive(&mut self, message: ClientMessage) {
        let member = &self.member;
        let result = match message {
            ClientMessage::SetPublishPriority { track, .. } => {
                member.publishes("set_publish_priority", track)
            }
            ClientMessage::SetSubscribePriority { track, .. } => {
                member.receives_video("set_subscribe_priority", track)
            }
            ClientMessage::SwitchOff { track } => {
                member.switch("switch_off", track, false).map(|()| {
                    self.send(ServerMessage::TrackSwitchedOff {
                        track,
                        reason: "disabled-by-subscriber".into(),
                    })
                })
            }
            ClientMessage::SwitchOn { track } => member
                .switch("switch_on", track, true)
                .map(|()| self.send(ServerMessage::TrackSwitchedOn { track })),
            ClientMessage::SetRenderDimensions { track, dimensions } => dimensions
                .map_or(Ok(()), |d| check_render_dimensions(d.width, d.height))
                .and_then(|()| member.receives_video("set_render_dimensions", track)),
            ClientMessage::SetNetworkQuality { local, remote } => {
                check_network_quality(local, remote)
                    .map(|()| self.network_quality = (local, remote))
            }
            // Accepted; acted on when layer selection lands.
            _ => Ok(()),
        };
        if let Err(message) = result {
            self.error(codes::INVALID_MESSAGE, message);
        }
    }
}
