// The Room: what `connect()` resolves with. It reads every server message
// after `joined` and turns it into participant, publication and track
// changes and their events; it ends the session on disconnect().
//
// Owns: the RemoteParticipants, the mapping of server messages to events,
// the session's end (disconnect, server goodbye, unrecoverable failure) and
// getStats(). Must not: build SDP or speak WebSocket (PeerSession and
// Signaling do).
//
//   server message            what happens
//   ───────────────────────   ─────────────────────────────────────────────
//   participant_connected     participantConnected
//   track_published           trackPublished
//   subscribed (audio/video)  PeerSession adds a receiving m-line → next
//                             offer → answer → ontrack → trackSubscribed
//   subscribed (data)         the server's data channel → trackSubscribed
//   track_switched            trackEnabled / trackDisabled
//   recording                 recordingStarted / recordingStopped
//   unsubscribed              m-line stopped → trackUnsubscribed
//   track_unpublished         trackUnpublished
//   participant_disconnected  trackUnsubscribed… → participantDisconnected
//   track_switched_off/on     switchedOff/switchedOn → trackSwitchedOff/On
//   track_priority_changed    publishPriorityChanged → trackPublishPriorityChanged
//   dominant_speaker_changed  dominantSpeakerChanged
//   network_quality           participants' networkQualityLevelChanged
//   layers                    simulcast encodings paused or resumed
//   disconnected              disconnected(room, error)
//
// Rejoining (a cluster's node lost): when the node holding the room dies,
// its rooms are failed and the session cannot be resumed. The server says
// so (`disconnected` with reason `node-lost` in answer to the resume; or
// `shutdown` when the node drains), and the Room, unless rejoining is off
// (connect()'s `rejoin`; on by default when `joined` names a cluster
// node), joins the room of the same name again through the address
// connect() used, and stays the same object:
//
//   reconnecting(53001) ─▶ participantDisconnected (the old room's others)
//   join again, every REJOIN_RETRY_MS until REJOIN_WINDOW_MS passes
//   joined ─▶ sid, localParticipant.sid: the new ones
//          ─▶ participantConnected (the new room's others) … trackSubscribed
//          ─▶ the same LocalTracks published again: trackPublished
//          ─▶ reconnected
//   no join within the window ─▶ disconnected(53000, or the token's 2010x)

import { EventEmitter } from './events.js';
import { createTwilioError } from './errors.js';
import { Log } from './log.js';
import { DEFAULT_SESSION_TIMEOUT_MS, Reconnection } from './reconnect.js';
import { RemoteParticipant } from './participant.js';
import { RemoteAudioTrack, RemoteDataTrack, RemoteVideoTrack } from './track.js';

/** After a resume, how long an unanswered offer waits for its answer in the backlog. */
const RESEND_AFTER_RESUME_MS = 1_500;
/**
 * A rejoin (the room's node lost) keeps trying this long: a dead node's
 * rooms are failed within 10 s, and then a new room of the same name can
 * be made on a live node. As the Rust client's.
 */
const REJOIN_WINDOW_MS = 30_000;
/** Between rejoin attempts. */
const REJOIN_RETRY_MS = 500;
/**
 * The first offer (of connect(), or of a rejoin) waits this long at most
 * for the `subscribed` messages of tracks already in the room, so that it
 * carries them too: one round trip to the first remote frame instead of two.
 */
export const FIRST_OFFER_WAIT_MS = 150;

// RemoteParticipant events the Room re-emits with the participant appended.
const PARTICIPANT_EVENTS = [
  'trackDimensionsChanged', 'trackDisabled', 'trackEnabled', 'trackMessage', 'trackPublished',
  'trackStarted', 'trackSubscribed', 'trackSubscriptionFailed', 'trackUnpublished', 'trackUnsubscribed',
  'trackSwitchedOff', 'trackSwitchedOn', 'trackPublishPriorityChanged',
];

/**
 * A room you are connected to.
 *
 * Events: `participantConnected`(participant), `participantDisconnected`(participant),
 * `disconnected`(room, error?), `reconnecting`(error), `reconnected`(),
 * `participantReconnecting`(participant), `participantReconnected`(participant),
 * `trackSubscribed`(track, publication, participant), `trackUnsubscribed`(…),
 * `trackPublished`(publication, participant), `trackUnpublished`(…),
 * `trackEnabled`(publication, participant), `trackDisabled`(…),
 * `trackMessage`(data, track, participant), `trackStarted`(track, participant),
 * `trackSubscriptionFailed`(error, publication, participant),
 * `trackDimensionsChanged`(track, participant).
 */
export class Room extends EventEmitter {
  #signaling;
  #peer;
  /** Tracks connect() made: stopped when the room ends. */
  #ownedTracks;
  /** Data channels the server opened before its `subscribed` arrived, by label (track SID). */
  #earlyChannels = new Map();
  /** Data tracks we were told we are subscribed to, awaiting their channel. */
  #awaitedChannels = new Set();
  #resendTimer = null;
  #log;
  /** @type {Reconnection} */
  #reconnection;

  /** connect()'s adaptive options: dominantSpeaker, clientTrackSwitchOffControl, contentPreferencesMode. */
  #adaptive;
  /** How to join again when the room's node is lost (see the top of this file); null: never. */
  #rejoin;
  /** Subscriptions held while connect() is under way ({@link _holdSubscriptions}). */
  #held = null;
  /** A rejoin is looking for the room (until its `joined`). */
  #rejoining = false;
  /** Whether the server subscribes us to every track (connect()'s automaticSubscription). */
  #autoSubscribe;

  /**
   * @param {any} joined the server's `joined` message
   * @param {import('./participant.js').LocalParticipant} localParticipant
   * @param {import('./signaling.js').Signaling} signaling
   * @param {import('./peer.js').PeerSession} peer
   * @param {Array<{stop: () => void}>} ownedTracks
   * @param {Log} [log]
   * @param {{dominantSpeaker: boolean, clientTrackSwitchOffControl: string, contentPreferencesMode: string}} [adaptive]
   * @param {{autoSubscribe?: boolean, rejoin?: (() => Promise<{signaling: any, joined: any, peer: any}>)|null}} [session]
   *   `rejoin` opens a new session in the room of the same name (when the room's node is lost)
   */
  constructor(joined, localParticipant, signaling, peer, ownedTracks, log = new Log('Room'), adaptive = {
    dominantSpeaker: false, clientTrackSwitchOffControl: 'disabled', contentPreferencesMode: 'disabled',
  }, { autoSubscribe = true, rejoin = null } = {}) {
    super();
    this.#log = log.child(this);
    this.#adaptive = adaptive;
    this.#autoSubscribe = autoSubscribe;
    this.#rejoin = rejoin;
    /** @type {string} */
    this.sid = joined.room.sid;
    /** @type {string} */
    this.name = joined.room.name;
    /** @type {'connected'|'reconnecting'|'disconnected'} */
    this.state = 'connected';
    this.localParticipant = localParticipant;
    /** @type {Map<string, RemoteParticipant>} everyone else, by participant SID */
    this.participants = new Map();
    /** @type {RemoteParticipant|null} the loudest participant (connect() with `dominantSpeaker: true`) */
    this.dominantSpeaker = null;
    /** Whether some track of the room is being recorded (`recordingStarted` / `recordingStopped` on changes). */
    this.isRecording = joined.room.recording === true;
    this.mediaRegion = 'local';
    this.#ownedTracks = ownedTracks;
    for (const info of joined.participants) this.#add(new RemoteParticipant(info), false);
    this.#attach(signaling, peer, joined);
  }

  /**
   * Take `signaling` and `peer` as the room's session (at connect(), and
   * after a rejoin): the signaling socket and the media connection come
   * back on their own paths; the Reconnection (reconnect.js) says when
   * the room is reconnecting, back, or lost.
   */
  #attach(signaling, peer, joined) {
    this.#signaling = signaling;
    this.#peer = peer;
    const reconnection = new Reconnection({
      signaling,
      peer,
      sessionTimeoutMs: typeof joined.session_timeout === 'number' && joined.session_timeout > 0
        ? joined.session_timeout * 1000 : DEFAULT_SESSION_TIMEOUT_MS,
      log: this.#log.child('reconnect'),
    });
    this.#reconnection = reconnection;
    const current = () => this.#peer === peer;
    reconnection.on('reconnecting', (error) => {
      if (this.state !== 'connected' || !current()) return;
      this.state = 'reconnecting';
      this.localParticipant._reconnecting();
      this.emit('reconnecting', error);
    });
    reconnection.on('reconnected', () => {
      if (this.state !== 'reconnecting' || !current() || this.#rejoining) return;
      this.state = 'connected';
      this.localParticipant._reconnected();
      this.emit('reconnected');
    });
    reconnection.on('failed', (error) => {
      if (!current()) return;
      // The room's node is gone (the server said so): join again.
      if (this.#rejoin && error && error.nodeLost) this.#rejoinRoom(error);
      else this.#end(error);
    });
    peer.on('track', (sid, mediaStreamTrack) => current() && this.#onTrack(sid, mediaStreamTrack));
    peer.on('datachannel', (channel) => current() && this.#onDataChannel(channel));
    peer.on('subscriptionFailed', (sid, error) => current() && this.#publisherOf(sid)?._subscriptionFailed(sid, error));
    peer.on('failed', (error) => current() && this.#end(error));
  }

  /**
   * @internal twilio-video's private path to its signaling socket, which
   * Twilio's remotereconnection example uses to simulate a dropped
   * connection: `room._signaling._transport._twilioConnection._close({code, reason})`
   * drops the socket and resumes the session. Nothing else of the private
   * object is there.
   */
  get _signaling() {
    const signaling = this.#signaling;
    return { _transport: { _twilioConnection: { _close: () => signaling.drop() } } };
  }

  /** @internal Start reading server messages (after connect() has wired everything). */
  /**
   * @internal connect() starts: tracks that arrive before it resolves are
   * subscribed after it ({@link _releaseSubscriptions}), as twilio-video's
   * arrive in the server's offer after `connected`, so an app that listens
   * for `trackSubscribed` once connect() has resolved sees them all, and
   * the participants it finds there have none subscribed yet.
   */
  _holdSubscriptions() {
    this.#held = [];
  }

  /** @internal connect() has resolved: subscribe what arrived, on the next task (after the app's code that awaited connect()). */
  _releaseSubscriptions() {
    setTimeout(() => {
      const held = this.#held || [];
      this.#held = null;
      if (this.state === 'disconnected') return;
      for (const subscribe of held) subscribe();
    });
  }

  _start() {
    const signaling = this.#signaling;
    signaling.setHandler((message) => {
      if (signaling !== this.#signaling) return; // a session left behind by a rejoin
      try {
        this.#onMessage(message);
      } catch (error) {
        this.#log.error('Error handling a signaling message', message.type, error);
      }
    });
  }

  /**
   * Leave the room. Stops the tracks connect() created (not the ones you
   * passed in `tracks`); closes the peer connection and the socket.
   * @returns {this}
   */
  disconnect() {
    this.#end(undefined);
    return this;
  }

  /**
   * Statistics of every published and subscribed audio/video track, in
   * twilio-video's shape (one report: Salon uses one peer connection).
   * Remote video stats also carry `framesDecoded`.
   * @returns {Promise<object[]>}
   */
  async getStats() {
    if (this.state === 'disconnected') return [];
    const stats = await this.#peer.pc.getStats();
    const all = new Map();
    stats.forEach((s) => all.set(s.id, s));
    const codecOf = (s) => {
      const c = all.get(s.codecId);
      return c ? c.mimeType.split('/')[1] : null;
    };
    const byMid = (type, mid) => [...all.values()].find((s) => s.type === type && s.mid === mid && mid !== null);
    const report = {
      peerConnectionId: `${this.sid}/${this.localParticipant.sid}`,
      localAudioTrackStats: [],
      localVideoTrackStats: [],
      remoteAudioTrackStats: [],
      remoteVideoTrackStats: [],
    };
    for (const publication of this.localParticipant.tracks.values()) {
      if (publication.kind === 'data') continue;
      const s = byMid('outbound-rtp', this.#peer.sendingMid(publication.trackSid));
      if (!s) continue;
      const remote = [...all.values()].find((r) => r.type === 'remote-inbound-rtp' && r.localId === s.id) || {};
      const source = all.get(s.mediaSourceId) || {};
      const common = {
        trackId: publication.track.id,
        trackSid: publication.trackSid,
        timestamp: s.timestamp,
        ssrc: String(s.ssrc),
        packetsLost: remote.packetsLost ?? null,
        codec: codecOf(s),
        bytesSent: s.bytesSent ?? null,
        packetsSent: s.packetsSent ?? null,
        roundTripTime: remote.roundTripTime ?? null,
        jitter: remote.jitter ?? null,
      };
      if (publication.kind === 'audio') {
        report.localAudioTrackStats.push({ ...common, audioLevel: source.audioLevel ?? null });
      } else {
        report.localVideoTrackStats.push({
          ...common,
          captureDimensions: source.width ? { width: source.width, height: source.height } : null,
          dimensions: s.frameWidth ? { width: s.frameWidth, height: s.frameHeight } : null,
          captureFrameRate: source.framesPerSecond ?? null,
          frameRate: s.framesPerSecond ?? null,
        });
      }
    }
    for (const participant of this.participants.values()) {
      for (const publication of participant.tracks.values()) {
        if (publication.kind === 'data' || !publication.track) continue;
        const s = byMid('inbound-rtp', this.#peer.receivingMid(publication.trackSid));
        if (!s) continue;
        const common = {
          trackId: publication.track.mediaStreamTrack.id,
          trackSid: publication.trackSid,
          timestamp: s.timestamp,
          ssrc: String(s.ssrc),
          packetsLost: s.packetsLost ?? null,
          codec: codecOf(s),
          bytesReceived: s.bytesReceived ?? null,
          packetsReceived: s.packetsReceived ?? null,
          jitter: s.jitter ?? null,
        };
        if (publication.kind === 'audio') {
          report.remoteAudioTrackStats.push({ ...common, audioLevel: s.audioLevel ?? null });
        } else {
          report.remoteVideoTrackStats.push({
            ...common,
            dimensions: s.frameWidth ? { width: s.frameWidth, height: s.frameHeight } : null,
            frameRate: s.framesPerSecond ?? null,
            framesDecoded: s.framesDecoded ?? 0,
          });
        }
      }
    }
    return [report];
  }

  /** Accepted for twilio-video compatibility; no effect. */
  refreshInactiveMedia() {}

  toString() {
    return `[Room ${this.sid}]`;
  }

  // ---- server messages -----------------------------------------------------

  #onMessage(m) {
    if (this.state === 'disconnected') return;
    switch (m.type) {
      case 'answer':
        this.#peer.onAnswer(m);
        break;
      case 'published':
        this.#peer.onPublished(m);
        break;
      case 'participant_connected':
        if (!this.participants.has(m.participant.sid)) this.#add(new RemoteParticipant(m.participant), true);
        break;
      case 'participant_disconnected':
        this.#remove(m.participant);
        break;
      case 'participant_reconnecting':
      case 'participant_reconnected': {
        const participant = this.participants.get(m.participant);
        if (!participant) break;
        if (m.type === 'participant_reconnecting' ? participant._reconnecting() : participant._reconnected()) {
          this.emit(m.type === 'participant_reconnecting' ? 'participantReconnecting' : 'participantReconnected', participant);
        }
        break;
      }
      case 'track_published':
        this.participants.get(m.participant)?._published(m.track);
        break;
      case 'track_unpublished':
        this.#peer.unsubscribe(m.track);
        this.participants.get(m.participant)?._unpublished(m.track);
        break;
      case 'track_switched':
        this.participants.get(m.participant)?._switched(m.track, m.enabled);
        break;
      case 'subscribed':
        this.#onSubscribed(m.participant, m.track);
        break;
      case 'unsubscribed':
        this.#peer.unsubscribe(m.track);
        this.#awaitedChannels.delete(m.track);
        this.#publisherOf(m.track)?._unsubscribed(m.track);
        break;
      case 'recording':
        this.#setRecording(m.recording === true);
        break;
      case 'track_switched_off':
      case 'track_switched_on': {
        const participant = this.#publisherOf(m.track);
        participant?._switchedOff(m.track, m.type === 'track_switched_off', m.reason ?? null);
        break;
      }
      case 'track_priority_changed':
        this.participants.get(m.participant)?._priorityChanged(m.track, m.priority);
        break;
      case 'dominant_speaker_changed': {
        if (!this.#adaptive.dominantSpeaker) break;
        const speaker = (m.participant && this.participants.get(m.participant)) || null;
        if (speaker !== this.dominantSpeaker) {
          this.dominantSpeaker = speaker;
          this.emit('dominantSpeakerChanged', speaker);
        }
        break;
      }
      case 'network_quality':
        for (const entry of Array.isArray(m.participants) ? m.participants : []) {
          const participant = entry.participant === this.localParticipant.sid
            ? this.localParticipant : this.participants.get(entry.participant);
          participant?._networkQuality(entry);
        }
        break;
      case 'layers':
        this.#peer.setLayers(m.track, m.layers);
        break;
      case 'joined':
        if (m.resumed) {
          this.#reconcile(m);
          this.#setRecording(m.room?.recording === true);
        }
        break;
      case 'error': {
        const error = createTwilioError(m.code, m.message);
        if (!this.#peer.onError(error, m.revision)) this.#log.warn(`Server error ${error.code}: ${error.message}`);
        break;
      }
      case 'disconnected':
        // A node of a cluster that drains (SIGTERM) ends its rooms: go on
        // in a room of the same name on another node.
        if (m.reason === 'shutdown' && this.#rejoin) {
          this.#rejoinRoom(createTwilioError(53001, `Signaling connection disconnected: the room's node is shutting down (${m.message})`));
        } else {
          this.#end(m.code ? createTwilioError(m.code, m.message) : undefined);
        }
        break;
      default:
        break; // newer servers may say more; ignore what we do not know
    }
  }

  #onSubscribed(participantSid, info) {
    const participant = this.participants.get(participantSid);
    if (!participant) return;
    participant._published(info); // known already, except after a lost message
    if (info.kind === 'data') {
      const channel = this.#earlyChannels.get(info.sid);
      if (channel) {
        this.#earlyChannels.delete(info.sid);
        this.#subscribeData(participant, info.sid, channel);
      } else {
        this.#awaitedChannels.add(info.sid);
      }
    } else {
      this.#peer.subscribe(info.sid, info.kind);
    }
  }

  #onTrack(sid, mediaStreamTrack) {
    if (this.#held) {
      this.#held.push(() => this.#onTrack(sid, mediaStreamTrack));
      return;
    }
    const participant = this.#publisherOf(sid);
    const publication = participant?.tracks.get(sid);
    if (!publication || publication.track) return;
    const Track = publication.kind === 'audio' ? RemoteAudioTrack : RemoteVideoTrack;
    const track = new Track(sid, mediaStreamTrack, publication.trackName, publication.isTrackEnabled);
    if (publication.kind === 'video') {
      track._control((message) => this.#signaling.send({ ...message, track: sid }), this.#adaptive);
    }
    participant._subscribed(sid, track);
  }

  #onDataChannel(channel) {
    const sid = channel.label;
    if (this.#awaitedChannels.delete(sid)) {
      const participant = this.#publisherOf(sid);
      if (participant) this.#subscribeData(participant, sid, channel);
    } else {
      this.#earlyChannels.set(sid, channel);
    }
  }

  #subscribeData(participant, sid, channel) {
    if (this.#held) {
      this.#held.push(() => {
        const publisher = this.#publisherOf(sid);
        if (publisher) this.#subscribeData(publisher, sid, channel);
      });
      return;
    }
    const publication = participant.tracks.get(sid);
    if (!publication || publication.track) return;
    participant._subscribed(sid, new RemoteDataTrack(sid, publication.trackName, channel));
  }

  #publisherOf(trackSid) {
    for (const participant of this.participants.values()) {
      if (participant.tracks.has(trackSid)) return participant;
    }
    return null;
  }

  // ---- participants --------------------------------------------------------

  #add(participant, announce) {
    this.participants.set(participant.sid, participant);
    const forwarders = PARTICIPANT_EVENTS.map((event) => {
      const forward = (...args) => this.emit(event, ...args, participant);
      participant.on(event, forward);
      return [event, forward];
    });
    participant.once('disconnected', () => {
      this.participants.delete(participant.sid);
      if (this.dominantSpeaker === participant) {
        this.dominantSpeaker = null;
        this.emit('dominantSpeakerChanged', null);
      }
      for (const [event, forward] of forwarders) participant.removeListener(event, forward);
      this.emit('participantDisconnected', participant);
    });
    if (announce) this.emit('participantConnected', participant);
  }

  #remove(sid) {
    const participant = this.participants.get(sid);
    if (!participant) return;
    for (const trackSid of participant.tracks.keys()) {
      this.#peer.unsubscribe(trackSid);
      this.#awaitedChannels.delete(trackSid);
    }
    participant._disconnected();
  }

  /** After a resume: bring participants and tracks in line with the server's view. */
  /** @param {boolean} recording */
  #setRecording(recording) {
    if (recording === this.isRecording) return;
    this.isRecording = recording;
    this.emit(recording ? 'recordingStarted' : 'recordingStopped');
  }

  #reconcile(joined) {
    const present = new Map(joined.participants.map((p) => [p.sid, p]));
    for (const sid of [...this.participants.keys()]) {
      if (!present.has(sid)) this.#remove(sid);
    }
    for (const info of joined.participants) {
      let participant = this.participants.get(info.sid);
      if (!participant) {
        this.#add(new RemoteParticipant({ ...info, tracks: [] }), true);
        participant = this.participants.get(info.sid);
      }
      const tracks = new Map(info.tracks.map((t) => [t.sid, t]));
      for (const sid of [...participant.tracks.keys()]) {
        if (!tracks.has(sid)) {
          this.#peer.unsubscribe(sid);
          participant._unpublished(sid);
        }
      }
      for (const track of info.tracks) {
        if (participant.tracks.has(track.sid)) participant._switched(track.sid, track.enabled);
        else participant._published(track);
      }
    }
    // An offer sent on the dead socket may never have arrived. The server
    // says which revision it handled last: anything later was lost and is
    // sent again; anything up to it has its answer (or error) in the backlog.
    const revision = this.#peer.outstandingRevision;
    const handled = typeof joined.last_revision === 'number' ? joined.last_revision : null;
    if (revision !== null && handled !== null && revision > handled) {
      this.#peer.resendOutstanding();
    } else if (revision !== null && handled === null) {
      // An older server that does not say: wait for the backlog, then resend.
      clearTimeout(this.#resendTimer);
      this.#resendTimer = setTimeout(() => {
        if (this.state !== 'disconnected' && this.#peer.outstandingRevision === revision) this.#peer.resendOutstanding();
      }, RESEND_AFTER_RESUME_MS);
    }
  }

  // ---- rejoining ---------------------------------------------------------------

  /**
   * The room's node is lost: join the room of the same name again (see the
   * top of this file), or end with 53000 when no join works within
   * REJOIN_WINDOW_MS. A token the server refuses ends it at once.
   * @param {import('./errors.js').TwilioError} error why the session was lost
   */
  async #rejoinRoom(error) {
    if (this.#rejoining || this.state === 'disconnected') return;
    this.#rejoining = true;
    this.#log.warn(`Lost the room's node (${error.code} ${error.message}): joining ${this.name} again`);
    // The old session is gone, and its room with it.
    clearTimeout(this.#resendTimer);
    this.#reconnection.close();
    this.#signaling.close();
    this.#peer.close();
    if (this.state === 'connected') {
      this.state = 'reconnecting';
      this.localParticipant._reconnecting();
      this.emit('reconnecting', error);
    }
    for (const sid of [...this.participants.keys()]) this.#remove(sid);
    this.#earlyChannels.clear();
    this.#awaitedChannels.clear();
    this.localParticipant._forgetPublications();

    const deadline = Date.now() + REJOIN_WINDOW_MS;
    let last = error;
    while (this.state === 'reconnecting') {
      let session = null;
      try {
        session = await this.#rejoin();
      } catch (e) {
        last = e;
        const refused = e && typeof e.code === 'number' && e.code >= 20101 && e.code <= 20107;
        if (refused || Date.now() + REJOIN_RETRY_MS >= deadline) break;
        this.#log.debug(`Rejoin attempt failed (${e && e.message}): trying again`);
        await new Promise((resolve) => setTimeout(resolve, REJOIN_RETRY_MS));
        continue;
      }
      if (this.state !== 'reconnecting') {
        // disconnect() while the join was under way.
        session.signaling.close();
        session.peer.close();
        return;
      }
      await this.#rejoined(session);
      return;
    }
    if (this.state === 'reconnecting') {
      this.#rejoining = false;
      const code = last && typeof last.code === 'number' && last.code >= 20101 && last.code <= 20107 ? last.code : 53000;
      this.#end(createTwilioError(code, `Signaling connection error: could not join ${this.name} again within ${REJOIN_WINDOW_MS / 1000} s (${last && last.message})`));
    }
  }

  /** In the room again: the new session becomes the room's. */
  async #rejoined({ signaling, joined, peer }) {
    this.#log.info(`Joined ${joined.room.name} again: room ${joined.room.sid}, participant ${joined.participant.sid}`);
    this.sid = joined.room.sid;
    this.name = joined.room.name;
    this.#attach(signaling, peer, joined);
    // From here a loss of this session (its node too may die or drain) is
    // a new rejoin, which takes over from this one.
    this.#rejoining = false;
    const republish = this.localParticipant._rejoined(joined.participant, peer, signaling);
    this.#setRecording(joined.room.recording === true);
    for (const info of joined.participants) this.#add(new RemoteParticipant(info), true);
    // As connect(): what is in the room and what we publish, in one offer.
    const expected = new Set(this.#autoSubscribe
      ? joined.participants.flatMap((p) => p.tracks.filter((t) => t.kind !== 'data').map((t) => t.sid))
      : []);
    peer.hold();
    this._start();
    const publishing = republish.map(({ track, priority }) => this.localParticipant.publishTrack(track, { priority }).catch((e) => {
      this.#log.warn(`Could not publish ${track} again:`, e);
      return null;
    }));
    await waitFor(() => this.state !== 'reconnecting' || [...expected].every((sid) => peer.isSubscribed(sid)), FIRST_OFFER_WAIT_MS);
    peer.release();
    await Promise.all(publishing);
    if (this.state !== 'reconnecting' || this.#peer !== peer) return;
    this.state = 'connected';
    this.localParticipant._reconnected();
    this.emit('reconnected');
  }

  // ---- the end ---------------------------------------------------------------

  #end(error) {
    if (this.state === 'disconnected') return;
    this.state = 'disconnected';
    this.#rejoining = false;
    if (error) this.#log.warn(`Disconnected: ${error.code} ${error.message}`);
    else this.#log.info('Disconnected');
    clearTimeout(this.#resendTimer);
    this.#reconnection.close();
    this.#signaling.close();
    this.#peer.close();
    for (const participant of this.participants.values()) {
      for (const sid of participant.tracks.keys()) participant._unsubscribed(sid);
    }
    this.emit('disconnected', this, error);
    this.localParticipant._disconnected();
    for (const track of this.#ownedTracks) track.stop();
  }
}

/** Resolve when `done()` holds (checked every few ms) or after `ms`. */
export function waitFor(done, ms) {
  return new Promise((resolve) => {
    const started = Date.now();
    const check = () => {
      if (done() || Date.now() - started >= ms) resolve();
      else setTimeout(check, 5);
    };
    check();
  });
}
