//! The adaptive-video messages of Salon's protocol: bandwidth profile,
//! priorities, switching tracks off and on, render dimensions, network
//! quality (`docs/protocol.md`, *Adaptive video*). The checks and the media
//! calls are the member's ([`crate::session`]); this is the wire.

use salon_media::ProfileUpdate;
use salon_media::allocation::{Mode, Priority, SwitchOffMode};
use salon_signal::{BandwidthMode, ClientMessage, TrackSwitchOffMode, codes};

use super::Session;
use crate::session::adaptive::check_network_quality;

impl Session {
    /// Handle one adaptive-video message; a refused one is answered with
    /// error 53004 and changes nothing.
    pub(super) fn on_adaptive(&mut self, message: ClientMessage) {
        let member = &self.member;
        let result = match message {
            ClientMessage::SetPublishPriority { track, priority } => {
                member.set_publish_priority(track, media_priority(priority))
            }
            ClientMessage::SetSubscribePriority { track, priority } => {
                member.set_subscribe_priority(track, priority.map(media_priority))
            }
            // Answered by the media server's allocation, through the room.
            ClientMessage::SwitchOff { track } => member.switch("switch_off", track, false),
            ClientMessage::SwitchOn { track } => member.switch("switch_on", track, true),
            ClientMessage::SetBandwidthProfile {
                mode,
                max_subscription_bitrate,
                dominant_speaker_priority,
                track_switch_off_mode,
                max_tracks,
            } => {
                member.set_bandwidth_profile(ProfileUpdate {
                    mode: mode.map(media_mode),
                    max_subscription_bitrate,
                    dominant_speaker_priority: dominant_speaker_priority.map(media_priority),
                    track_switch_off_mode: track_switch_off_mode.map(media_switch_off_mode),
                    max_tracks: max_tracks.map(|n| n as usize),
                });
                Ok(())
            }
            ClientMessage::SetRenderDimensions { track, dimensions } => member
                .set_render_dimensions(
                    "set_render_dimensions",
                    track,
                    dimensions.map(|d| (d.width, d.height)),
                ),
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

fn media_mode(mode: BandwidthMode) -> Mode {
    match mode {
        BandwidthMode::Grid => Mode::Grid,
        BandwidthMode::Collaboration => Mode::Collaboration,
        BandwidthMode::Presentation => Mode::Presentation,
    }
}

fn media_priority(priority: salon_signal::Priority) -> Priority {
    match priority {
        salon_signal::Priority::Low => Priority::Low,
        salon_signal::Priority::Standard => Priority::Standard,
        salon_signal::Priority::High => Priority::High,
    }
}

fn media_switch_off_mode(mode: TrackSwitchOffMode) -> SwitchOffMode {
    match mode {
        TrackSwitchOffMode::Detected => SwitchOffMode::Detected,
        TrackSwitchOffMode::Predicted => SwitchOffMode::Predicted,
        TrackSwitchOffMode::Disabled => SwitchOffMode::Disabled,
    }
}
