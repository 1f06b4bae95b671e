//! Commands from the control plane.

use super::*;

impl Worker {
    pub(super) fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Negotiate {
                room,
                participant,
                sdp,
                publish,
                subscribe,
                reply,
            } => {
                let result = self.negotiate(room, participant, &sdp, &publish, &subscribe, now);
                let _ = reply.send(result);
            }
            Command::Offer {
                participant,
                add,
                stop,
                reply,
            } => {
                let _ = reply.send(self.offer(participant, &add, &stop));
            }
            Command::AcceptAnswer {
                participant,
                sdp,
                reply,
            } => {
                let _ = reply.send(self.accept_answer(participant, &sdp, now));
            }
            Command::AdoptTcp(adopted) => self.adopt_tcp(*adopted),
            Command::Unpublish { participant, track } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let mut retired = Vec::new();
                if let Some(peer) = slot_peer(&mut self.slots, r) {
                    peer.published.retain(|(_, t)| *t != track);
                    let room = peer.room;
                    if let Some(room) = self.rooms.get_mut(&room) {
                        let speaker = &mut room.speaker;
                        room.forwarders.retain_mut(|f| {
                            if f.track != track {
                                return true;
                            }
                            if let Some(voice) = f.voice {
                                speaker.remove(voice);
                            }
                            retired.push((std::mem::take(&mut f.lanes), f.video));
                            false
                        });
                        room.data_tracks.remove(&track);
                        room.data_subscribers.remove(&track);
                        room.waiting.retain(|(t, _, _)| *t != track);
                    }
                }
                for (lanes, video) in retired {
                    self.retire(lanes, video);
                }
            }
            Command::Unsubscribe { participant, track } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let Some(peer) = slot_peer(&mut self.slots, r) else {
                    return;
                };
                peer.subscribed.retain(|(_, t)| *t != track);
                let room = peer.room;
                let mut retired = Vec::new();
                if let Some(room) = self.rooms.get_mut(&room) {
                    for f in room.forwarders.iter_mut().filter(|f| f.track == track) {
                        retired.push((f.take_subscriber(r), f.video));
                    }
                    if let Some(subscribers) = room.data_subscribers.get_mut(&track) {
                        subscribers.retain(|s| *s != participant);
                    }
                    room.waiting.retain(|(t, s, _)| !(*t == track && *s == r));
                }
                for (lanes, video) in retired {
                    self.retire(lanes, video);
                }
            }
            Command::PublishData {
                room,
                participant,
                label,
                track,
            } => {
                self.rooms
                    .entry(room)
                    .or_default()
                    .data_tracks
                    .insert(track, (participant, label));
            }
            Command::SubscribeData {
                room,
                participant,
                track,
            } => {
                let subscribers = self
                    .rooms
                    .entry(room)
                    .or_default()
                    .data_subscribers
                    .entry(track)
                    .or_default();
                if !subscribers.contains(&participant) {
                    subscribers.push(participant);
                }
                self.open_data_channels(participant);
            }
            Command::OpenSignaling {
                participant,
                labels,
                inbox,
            } => self.open_signaling(participant, labels, inbox),
            Command::Signal {
                participant,
                label,
                text,
            } => self.signal(participant, &label, &text),
            Command::Record(spec) => self.recorders.start(spec, &self.setup.events),
            Command::StopRecording { track } => self.recorders.stop(track),
            Command::PauseRecording { track, paused } => self.recorders.pause(track, paused),
            Command::RoomEnded { room } => {
                self.recorders.room_ended(room);
                let peers: Vec<PeerRef> = self
                    .rooms
                    .get(&room)
                    .map(|r| r.peers.clone())
                    .unwrap_or_default();
                for r in peers {
                    self.remove_peer(r, None);
                }
                self.rooms.remove(&room);
            }
            Command::Remove { participant } => {
                if let Some(r) = self.by_participant.get(&participant).copied() {
                    self.remove_peer(r, None);
                }
            }
            Command::Switch {
                participant,
                track,
                on,
            } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let Some(room) = slot_peer(&mut self.slots, r).map(|p| p.room) else {
                    return;
                };
                if let Some(room_state) = self.rooms.get_mut(&room) {
                    for f in room_state
                        .forwarders
                        .iter_mut()
                        .filter(|f| f.track == track)
                    {
                        f.switch(r, on);
                    }
                }
                self.allocate(r, now);
                self.request_keyframes(room, now);
            }
            Command::Render {
                participant,
                track,
                dimensions,
            } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let Some(peer) = slot_peer(&mut self.slots, r) else {
                    return;
                };
                peer.render.retain(|(t, _)| *t != track);
                if let Some(dimensions) = dimensions {
                    // Bounded: one entry per track, at most a room's worth.
                    if peer.render.len() >= MAX_RENDER_ENTRIES {
                        peer.render.remove(0);
                    }
                    peer.render.push((track, dimensions));
                }
                self.allocate(r, now);
            }
            Command::Priority {
                participant,
                track,
                subscriber,
                priority,
            } => {
                let Some(r) = self.by_participant.get(&participant).copied() else {
                    return;
                };
                let Some(peer) = slot_peer(&mut self.slots, r) else {
                    return;
                };
                let room = peer.room;
                if subscriber {
                    peer.priorities.retain(|(t, _)| *t != track);
                    peer.priorities.extend(priority.map(|p| (track, p)));
                    self.allocate(r, now);
                    return;
                }
                if let (Some(state), Some(priority)) = (self.rooms.get_mut(&room), priority) {
                    for f in state.forwarders.iter_mut().filter(|f| f.track == track) {
                        f.priority = priority;
                    }
                }
                let peers = self
                    .rooms
                    .get(&room)
                    .map(|s| s.peers.clone())
                    .unwrap_or_default();
                for p in peers {
                    self.allocate(p, now);
                }
            }
            Command::Profile {
                participant,
                update,
            } => match self.by_participant.get(&participant).copied() {
                Some(r) => {
                    if let Some(peer) = slot_peer(&mut self.slots, r) {
                        let profile = update.apply(*peer.allocator.profile());
                        peer.allocator.set_profile(profile);
                    }
                    self.allocate(r, now);
                }
                None => {
                    let profile = self.profiles.entry(participant).or_default();
                    *profile = update.apply(*profile);
                }
            },
            Command::Sabotage { participant } => {
                if let Some(r) = self.by_participant.get(&participant).copied()
                    && let Some(peer) = slot_peer(&mut self.slots, r)
                {
                    peer.sabotaged = true;
                }
            }
        }
    }
}
