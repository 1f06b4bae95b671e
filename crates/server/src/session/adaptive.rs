//! Adaptive video on a member's behalf, wire-free: switching a received
//! video track off and on, and the checks every adaptive request passes
//! (a track of the right kind and relation, render dimensions, network
//! quality verbosity). A refused request changes nothing; its error is
//! Twilio's 53004 with a message naming the request.

use salon_room::TrackKind;
use salon_sid::TrackSid;
use salon_signal::MAX_RENDER_SIDE;

use super::Member;

impl Member {
    /// Stop (`on: false`) or resume forwarding `track` to this member,
    /// keeping the subscription. `what` names the request in the error.
    pub fn switch(&self, what: &str, track: TrackSid, on: bool) -> Result<(), String> {
        self.receives_video(what, track)?;
        self.state.media.switch(self.room, self.me, track, on);
        Ok(())
    }

    /// Set the priority of a track this member publishes.
    pub fn set_publish_priority(
        &self,
        track: TrackSid,
        priority: salon_media::allocation::Priority,
    ) -> Result<(), String> {
        self.publishes("set_publish_priority", track)?;
        let media = &self.state.media;
        media.set_publish_priority(self.room, self.me, track, priority);
        let (me, word) = (self.me, priority.as_str());
        let rooms = self.state.rooms.clone();
        // Tell the others (through the room, like every change they see).
        tokio::spawn(async move {
            let _ = rooms
                .call(move |r, _| r.set_track_priority(me, track, word))
                .await;
        });
        Ok(())
    }

    /// Set this member's own priority for a video track it receives.
    pub fn set_subscribe_priority(
        &self,
        track: TrackSid,
        priority: Option<salon_media::allocation::Priority>,
    ) -> Result<(), String> {
        self.receives_video("set_subscribe_priority", track)?;
        let media = &self.state.media;
        media.set_subscribe_priority(self.room, self.me, track, priority);
        Ok(())
    }

    /// Set the size this member renders a video track it receives at
    /// (`None`: no limit); the media allocation picks the layer.
    pub fn set_render_dimensions(
        &self,
        what: &str,
        track: TrackSid,
        dimensions: Option<(u32, u32)>,
    ) -> Result<(), String> {
        if let Some((width, height)) = dimensions {
            check_render_dimensions(width, height)?;
        }
        self.receives_video(what, track)?;
        let dimensions = dimensions.map(|(w, h)| salon_media::allocation::Dimensions::new(w, h));
        let media = &self.state.media;
        media.set_render_dimensions(self.room, self.me, track, dimensions);
        Ok(())
    }

    /// Change this member's bandwidth profile (what it receives).
    pub fn set_bandwidth_profile(&self, update: salon_media::ProfileUpdate) {
        self.state.media.set_profile(self.room, self.me, update);
    }

    /// Whether `track` is a video track this member receives.
    pub fn receives_video(&self, what: &str, track: TrackSid) -> Result<(), String> {
        if self.kind_of(&track) == Some(TrackKind::Video) && self.is_subscribed(&track) {
            Ok(())
        } else {
            Err(format!(
                "{what}: track {track} is not a video track you are subscribed to"
            ))
        }
    }

    /// Whether this member publishes `track`.
    pub fn publishes(&self, what: &str, track: TrackSid) -> Result<(), String> {
        if self.tracks.get(&track).is_some_and(|(p, _)| *p == self.me) {
            Ok(())
        } else {
            Err(format!("{what}: track {track} is not one you publish"))
        }
    }
}

/// Render dimensions a client may ask for: each side 1 to
/// [`MAX_RENDER_SIDE`].
pub fn check_render_dimensions(width: u32, height: u32) -> Result<(), String> {
    let side = 1..=MAX_RENDER_SIDE;
    if side.contains(&width) && side.contains(&height) {
        Ok(())
    } else {
        Err(format!(
            "set_render_dimensions: each side must be 1 to {MAX_RENDER_SIDE} pixels (got {width}x{height})"
        ))
    }
}

/// Twilio's network quality verbosity: 0 to 3.
pub fn check_network_quality(local: u8, remote: u8) -> Result<(), String> {
    if local <= 3 && remote <= 3 {
        Ok(())
    } else {
        Err(format!(
            "set_network_quality: verbosity must be 0, 1, 2 or 3 (got local {local}, remote {remote})"
        ))
    }
}
