//! Input: the socket, hand-overs from other workers, commands, str0m
//! timeouts, and the periodic liveness check.

use super::*;

impl Worker {
    /// Read the socket until it is dry or the round budget is spent, and
    /// handle or hand over each datagram. Whether it may hold more.
    pub(super) fn receive(&mut self) -> bool {
        let Some(mut inbound) = self.inbound.take() else {
            return false;
        };
        let mut more = true;
        for _ in 0..RECEIVE_ROUNDS {
            let count = match inbound.receive() {
                Ok(Some(count)) => count,
                Ok(None) => {
                    more = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!(worker = self.setup.index, error = %e, "media socket receive failed");
                    more = false;
                    break;
                }
            };
            for (source, destination, contents) in inbound.datagrams(count) {
                let stats = &self.setup.stats;
                stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes_in
                    .fetch_add(contents.len() as u64, Ordering::Relaxed);
                match self.router.route(source, contents) {
                    Destination::Here(peer) => {
                        self.on_datagram(peer, Protocol::Udp, source, destination, contents);
                    }
                    Destination::There(route) => {
                        self.hand_over(route, source, destination, contents)
                    }
                    Destination::Nowhere => {
                        // A plain Binding request is the media port's to
                        // answer (crate::stun); anything else is dropped.
                        let mut reply = [0u8; crate::stun::BINDING_RESPONSE_MAX];
                        match crate::stun::binding_response(contents, source, &mut reply) {
                            Some(n) if self.binding_answers.allow(Instant::now()) => {
                                self.setup.outbound.send(destination, source, &reply[..n]);
                                stats.stun_answers.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                stats.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            self.flush_written(Instant::now());
        }
        self.inbound = Some(inbound);
        more
    }

    /// Give a datagram this worker read to the worker of its peer.
    pub(super) fn hand_over(
        &mut self,
        route: Route,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let Some(queue) = self.setup.handoff_to.get(route.worker) else {
            return;
        };
        let handoff = Handoff {
            peer: route.peer,
            source,
            destination,
            buf: self.setup.pool.copy_of(contents),
        };
        match queue.try_send(handoff) {
            Ok(()) => {
                self.setup
                    .demux_stats
                    .handed_over
                    .fetch_add(1, Ordering::Relaxed);
                self.wake[route.worker] = true;
            }
            Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                self.setup.stats.dropped.fetch_add(1, Ordering::Relaxed);
                self.setup
                    .demux_stats
                    .overflow
                    .fetch_add(1, Ordering::Relaxed);
                self.setup.pool.put(h.buf);
            }
        }
    }

    /// Handle datagrams other workers read for this one's peers. Whether
    /// more are waiting.
    pub(super) fn take_handoffs(&mut self) -> bool {
        for _ in 0..BATCH {
            let Ok(handoff) = self.setup.handoffs.try_recv() else {
                return false;
            };
            self.on_datagram(
                handoff.peer,
                Protocol::Udp,
                handoff.source,
                handoff.destination,
                &handoff.buf,
            );
            self.setup.pool.put(handoff.buf);
        }
        self.flush_written(Instant::now());
        true
    }

    /// Carry out commands from the control plane. Whether more are waiting.
    pub(super) fn take_commands(&mut self) -> bool {
        for _ in 0..BATCH {
            let Ok(command) = self.setup.commands.try_recv() else {
                return false;
            };
            self.on_command(command);
        }
        true
    }

    pub(super) fn wake_others(&mut self) {
        for (worker, wake) in self.wake.iter_mut().enumerate() {
            if std::mem::take(wake)
                && let Some(waker) = self.setup.wakers.get(worker)
            {
                let _ = waker.wake();
            }
        }
    }

    /// Feed one datagram (or ICE-TCP frame) to peer `r`. Whether the peer
    /// was there to take it.
    pub(super) fn on_datagram(
        &mut self,
        r: PeerRef,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let now = Instant::now();
        let mut happenings = std::mem::take(&mut self.happenings);
        let handled = match slot_peer(&mut self.slots, r) {
            Some(peer) if peer.gone.is_none() => {
                peer.last_heard = now;
                let outcome = guarded(peer, &self.setup.stats, |peer| {
                    if peer.sabotaged {
                        panic!("sabotaged for a test");
                    }
                    let Ok(contents) = contents.try_into() else {
                        return Ok(false); // not a datagram str0m recognises: ignore
                    };
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto,
                            source,
                            destination,
                            contents,
                        },
                    );
                    if !peer.rtc.accepts(&input) {
                        return Ok(false);
                    }
                    peer.rtc.handle_input(input).map_err(|e| e.to_string())?;
                    Ok(true)
                });
                match outcome {
                    Ok(accepted) => {
                        if accepted && peer.interrupted {
                            restored(peer, &self.setup);
                        }
                        drain(peer, &self.setup, &mut self.tcp, &mut happenings)
                    }
                    Err(reason) => fail(peer, reason),
                }
                true
            }
            _ => false,
        };
        if !handled {
            self.setup.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.act_on(r, &mut happenings, now);
        self.happenings = happenings;
        handled
    }

    pub(super) fn fire_timeouts(&mut self, now: Instant) {
        let mut happenings = std::mem::take(&mut self.happenings);
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let r = PeerRef {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(peer) = slot.peer.as_mut() else {
                continue;
            };
            if peer.gone.is_some() || peer.deadline > now {
                continue;
            }
            match guarded(peer, &self.setup.stats, |peer| {
                peer.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => drain(peer, &self.setup, &mut self.tcp, &mut happenings),
                Err(reason) => fail(peer, reason),
            }
            self.act_on(r, &mut happenings, now);
        }
        self.happenings = happenings;
    }

    /// Release what was written to subscribers during this batch: one
    /// `Timeout(now)` per subscriber, however many packets it got.
    pub(super) fn flush_written(&mut self, now: Instant) {
        if self.written.is_empty() {
            return;
        }
        let written = std::mem::take(&mut self.written);
        let mut happenings = std::mem::take(&mut self.happenings);
        for r in &written {
            let Some(peer) = slot_peer(&mut self.slots, *r) else {
                continue;
            };
            peer.written = false;
            if peer.gone.is_some() {
                continue;
            }
            match guarded(peer, &self.setup.stats, |p| {
                p.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => drain(peer, &self.setup, &mut self.tcp, &mut happenings),
                Err(reason) => fail(peer, reason),
            }
            self.act_on(*r, &mut happenings, now);
        }
        self.happenings = happenings;
        self.written = written;
        self.written.clear();
    }

    pub(super) fn housekeeping(&mut self, now: Instant) {
        let mut leaving = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let r = PeerRef {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(peer) = slot.peer.as_mut() else {
                continue;
            };
            if let Some(reason) = peer.gone.take() {
                leaving.push((r, reason));
            } else if !peer.rtc.is_alive() {
                leaving.push((r, GoneReason::Failed("the media session closed".into())));
            } else if (peer.connected
                && now.saturating_duration_since(peer.last_heard) > self.setup.peer_timeout)
                || (!peer.connected
                    && now.saturating_duration_since(peer.created) > self.setup.connect_timeout)
            {
                // Silent for the session timeout since connected, or never
                // connected at all.
                leaving.push((r, GoneReason::Timeout));
            } else if peer.connected
                && !peer.interrupted
                && now.saturating_duration_since(peer.last_heard) > self.setup.silence
            {
                interrupted(peer, &self.setup);
            }
        }
        for (r, reason) in leaving {
            self.remove_peer(r, Some(reason));
        }
        self.tick_speakers(now);
        self.tick_quality(now);
        self.allocate_all(now);
        self.tick_pausing(now);
    }
}
