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

import { EventEmitter } from './events.js';
import { createTwilioError } from './errors.js';
import { Log } from './log.js';
import { DEFAULT_SESSION_TIMEOUT_MS, Reconnection } from './reconnect.js';
import { RemoteParticipant } from './participant.js';
import { RemoteAudioTrack, RemoteDataTrack, RemoteVideoTrack } from './track.js';

/** After a resume, how long an unanswered offer waits for its answer in the backlog. */
const RESEND_AFTER_RESUME_MS = 1_500;

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

  /**
   * @param {any} joined the server's `joined` message
   * @param {import('./participant.js').LocalParticipant} localParticipant
   * @param {import('./signaling.js').Signaling} signaling
   * @param {import('./peer.js').PeerSession} peer
   * @param {Array<{stop: () => void}>} ownedTracks
   * @param {Log} [log]
   * @param {{dominantSpeaker: boolean, clientTrackSwitchOffControl: string, contentPreferencesMode: string}} [adaptive]
   */
  constructor(joined, localParticipant, signaling, peer, ownedTracks, log = new Log('Room'), adaptive = {
    dominantSpeaker: false, clientTrackSwitchOffControl: 'disabled', contentPreferencesMode: 'disabled',
  }) {
    super();
    this.#log = log.child(this);
    this.#adaptive = adaptive;
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
    this.#signaling = signaling;
    this.#peer = peer;
    this.#ownedTracks = ownedTracks;
    for (const info of joined.participants) this.#add(new RemoteParticipant(info), false);

    // The signaling socket and the media connection come back on their
    // own paths; the Reconnection (reconnect.js) says when the room is
    // reconnecting, back, or lost.
    this.#reconnection = new Reconnection({
      signaling,
      peer,
      sessionTimeoutMs: typeof joined.session_timeout === 'number' && joined.session_timeout > 0
        ? joined.session_timeout * 1000 : DEFAULT_SESSION_TIMEOUT_MS,
      log: this.#log.child('reconnect'),
    });
    this.#reconnection.on('reconnecting', (error) => {
      if (this.state !== 'connected') return;
      this.state = 'reconnecting';
      this.localParticipant._reconnecting();
      this.emit('reconnecting', error);
    });
    this.#reconnection.on('reconnected', () => {
      if (this.state !== 'reconnecting') return;
      this.state = 'connected';
      this.localParticipant._reconnected();
      this.emit('reconnected');
    });
    this.#reconnection.on('failed', (error) => this.#end(error));
    peer.on('track', (sid, mediaStreamTrack) => this.#onTrack(sid, mediaStreamTrack));
    peer.on('datachannel', (channel) => this.#onDataChannel(channel));
    peer.on('subscriptionFailed', (sid, error) => this.#publisherOf(sid)?._subscriptionFailed(sid, error));
    peer.on('failed', (error) => this.#end(error));
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
  _start() {
    this.#signaling.setHandler((message) => {
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
        this.#end(m.code ? createTwilioError(m.code, m.message) : undefined);
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

  // ---- the end ---------------------------------------------------------------

  #end(error) {
    if (this.state === 'disconnected') return;
    this.state = 'disconnected';
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
