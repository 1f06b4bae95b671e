// Participants: you (LocalParticipant) and everyone else (RemoteParticipant),
// each with Maps of track publications by track SID.
//
// Owns: the publications and the per-participant track events. The
// LocalParticipant turns publishTrack/unpublishTrack and a track's
// enable()/disable() into signaling messages and media-session calls; a
// RemoteParticipant is told what happened by the Room.
// Must not: read signaling messages (the Room does) or touch the peer
// connection except through the PeerSession.

import { EventEmitter } from './events.js';
import { createTwilioError, rangeError, typeError } from './errors.js';
import {
  LocalAudioTrackPublication, LocalDataTrackPublication, LocalVideoTrackPublication, remotePublication,
} from './publication.js';
import { LocalAudioTrack, LocalDataTrack, LocalVideoTrack } from './track.js';

const MAX_TRACK_NAME = 128;
export const PRIORITIES = ['low', 'standard', 'high'];

/**
 * What both kinds of participant have.
 * Events: `disconnected`(participant), `reconnecting`(), `reconnected`(),
 * `trackStarted`(track), and the track
 * events of each subclass.
 */
export class Participant extends EventEmitter {
  /**
   * @param {string} sid
   * @param {string} identity
   */
  constructor(sid, identity) {
    super();
    /** @type {string} */
    this.sid = sid;
    /** @type {string} */
    this.identity = identity;
    /** @type {'connected'|'reconnecting'|'disconnected'} */
    this.state = 'connected';
    /** Every publication, by track SID. */
    this.tracks = new Map();
    this.audioTracks = new Map();
    this.videoTracks = new Map();
    this.dataTracks = new Map();
    /** @type {number|null} 0 (broken) to 5 (excellent), once the server reports it (connect()'s `networkQuality`) */
    this.networkQualityLevel = null;
    /** @type {object|null} twilio-video's NetworkQualityStats, at verbosity 2 and up */
    this.networkQualityStats = null;
  }

  /**
   * @internal One entry of the server's `network_quality`:
   * `networkQualityLevelChanged`(level, stats) when the level or stats change.
   */
  _networkQuality(entry) {
    if (!entry || typeof entry.level !== 'number') return;
    const stats = networkQualityStats(entry);
    const same = this.networkQualityLevel === entry.level
      && JSON.stringify(this.networkQualityStats) === JSON.stringify(stats);
    this.networkQualityLevel = entry.level;
    this.networkQualityStats = stats;
    if (!same) this.emit('networkQualityLevelChanged', entry.level, stats && (stats.audio || stats.video) ? stats : null);
  }

  /**
   * @internal Its signaling or media went away: `reconnecting`. Returns
   * whether the state changed.
   */
  _reconnecting() {
    if (this.state !== 'connected') return false;
    this.state = 'reconnecting';
    this.emit('reconnecting');
    return true;
  }

  /** @internal It is back: `reconnected`. Returns whether the state changed. */
  _reconnected() {
    if (this.state !== 'reconnecting') return false;
    this.state = 'connected';
    this.emit('reconnected');
    return true;
  }

  toString() {
    return `[${this.constructor.name} ${this.sid}]`;
  }

  /** @protected */
  _addPublication(publication) {
    this.tracks.set(publication.trackSid, publication);
    this.#byKind(publication.kind).set(publication.trackSid, publication);
  }

  /** @protected */
  _removePublication(sid) {
    const publication = this.tracks.get(sid);
    if (!publication) return null;
    this.tracks.delete(sid);
    this.#byKind(publication.kind).delete(sid);
    return publication;
  }

  #byKind(kind) {
    return kind === 'audio' ? this.audioTracks : kind === 'video' ? this.videoTracks : this.dataTracks;
  }
}

// ---- remote -----------------------------------------------------------------

/**
 * Someone else in the room.
 * Events: `trackPublished`(publication), `trackUnpublished`(publication),
 * `trackSubscribed`(track, publication), `trackUnsubscribed`(track, publication),
 * `trackSubscriptionFailed`(error, publication), `trackEnabled`(publication),
 * `trackDisabled`(publication), `trackMessage`(data, track), `trackStarted`(track),
 * `trackDimensionsChanged`(track), `trackSwitchedOff`(track, publication),
 * `trackSwitchedOn`(track, publication), `trackPublishPriorityChanged`(priority, publication),
 * `networkQualityLevelChanged`(level, stats), `disconnected`(participant).
 */
export class RemoteParticipant extends Participant {
  /**
   * @param {{sid: string, identity: string, tracks: any[]}} info from the server
   */
  constructor(info) {
    super(info.sid, info.identity);
    for (const track of info.tracks || []) this._addPublication(remotePublication(track));
  }

  /** @internal A track was published; returns its publication. */
  _published(info) {
    if (this.tracks.has(info.sid)) return this.tracks.get(info.sid);
    const publication = remotePublication(info);
    this._addPublication(publication);
    this.emit('trackPublished', publication);
    return publication;
  }

  /** @internal */
  _unpublished(sid) {
    if (!this.tracks.has(sid)) return;
    this._unsubscribed(sid);
    const publication = this._removePublication(sid);
    this.emit('trackUnpublished', publication);
  }

  /** @internal Media (or a data channel) arrived for a subscribed track. */
  _subscribed(sid, track) {
    const publication = this.tracks.get(sid);
    if (!publication || publication.track) return;
    track.on('started', () => this.emit('trackStarted', track));
    if (track.kind === 'video') track.on('dimensionsChanged', () => this.emit('trackDimensionsChanged', track));
    if (track.kind === 'data') track.on('message', (data) => this.emit('trackMessage', data, track));
    publication._subscribed(track);
    this.emit('trackSubscribed', track, publication);
    if (track.isStarted) this.emit('trackStarted', track);
  }

  /** @internal */
  _unsubscribed(sid) {
    const publication = this.tracks.get(sid);
    if (!publication || !publication.track) return;
    const track = publication._unsubscribed();
    if (track && typeof track._release === 'function') track._release();
    this.emit('trackUnsubscribed', track, publication);
  }

  /** @internal */
  _subscriptionFailed(sid, error) {
    const publication = this.tracks.get(sid);
    if (!publication) return;
    publication.emit('subscriptionFailed', error);
    this.emit('trackSubscriptionFailed', error, publication);
  }

  /** @internal The publisher enabled or disabled a track. */
  _switched(sid, enabled) {
    const publication = this.tracks.get(sid);
    if (publication && publication._setEnabled(enabled)) {
      this.emit(enabled ? 'trackEnabled' : 'trackDisabled', publication);
    }
  }

  /** @internal The server switched a video track off (or on) for us. */
  _switchedOff(sid, off, reason) {
    const publication = this.tracks.get(sid);
    const track = publication && publication.track;
    if (!track || track.kind !== 'video') return;
    if (!track._setSwitchedOff(off, reason)) return;
    publication.emit(off ? 'trackSwitchedOff' : 'trackSwitchedOn', track);
    this.emit(off ? 'trackSwitchedOff' : 'trackSwitchedOn', track, publication);
  }

  /** @internal The publisher changed a track's priority. */
  _priorityChanged(sid, priority) {
    const publication = this.tracks.get(sid);
    if (!publication || !PRIORITIES.includes(priority) || publication.publishPriority === priority) return;
    publication.publishPriority = priority;
    publication.emit('publishPriorityChanged', priority);
    this.emit('trackPublishPriorityChanged', priority, publication);
  }

  /** @internal */
  _disconnected() {
    if (this.state === 'disconnected') return;
    for (const sid of [...this.tracks.keys()]) this._unsubscribed(sid);
    this.state = 'disconnected';
    this.emit('disconnected', this);
  }
}

// ---- local ------------------------------------------------------------------

/**
 * You, in the room.
 * Events: `trackPublished`(publication), `trackPublicationFailed`(error, track),
 * `trackEnabled`(track), `trackDisabled`(track), `trackStopped`(track),
 * `disconnected`(participant).
 */
export class LocalParticipant extends Participant {
  #peer;
  #signaling;
  /** The verbosities last asked for. */
  #networkQuality = { local: 1, remote: 0 };
  /** Whether the app (or connect()) asked for network quality: asked again after a rejoin. */
  #networkQualityAsked = false;
  /**
   * Between two sessions (the Room rejoining after its node was lost): the
   * tracks to publish in the new room, and publishTrack calls waiting for it.
   * @type {{tracks: Array<{track: any, priority: string}>, waiting: Array<() => void>}|null}
   */
  #between = null;
  /** LocalTrack → Promise<publication> while being published. */
  #pending = new Map();
  /** LocalTrack → its listeners, removed when unpublished. */
  #watches = new Map();
  /**
   * While connect() runs, `trackPublished` waits here: twilio-video emits it
   * after connect() has resolved, when the app has had its chance to listen.
   * @type {Array<import('./publication.js').LocalTrackPublication>|null}
   */
  #unannounced = null;

  /**
   * @param {{sid: string, identity: string}} info
   * @param {import('./peer.js').PeerSession} peer
   * @param {import('./signaling.js').Signaling} signaling
   */
  constructor(info, peer, signaling) {
    super(info.sid, info.identity);
    this.#peer = peer;
    this.#signaling = signaling;
    this.signalingRegion = 'local';
  }

  /**
   * Publish a track: a LocalAudioTrack, LocalVideoTrack or LocalDataTrack,
   * or a MediaStreamTrack (wrapped, named by `options.name`). Publishing a
   * track that is already published resolves with its publication.
   * @param {LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack} track
   * @param {{name?: string, priority?: 'low'|'standard'|'high'}} [options] `priority` (default
   *   'standard') is the publication's; its effect on what subscribers receive is the server's
   * @returns {Promise<import('./publication.js').LocalTrackPublication>}
   */
  publishTrack(track, options = {}) {
    let local;
    let priority;
    try {
      local = this.#asLocalTrack(track, options);
      priority = checkPriority('options.priority', options && options.priority, 'standard');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.state === 'disconnected') {
      return Promise.reject(new Error('Illegal call to publishTrack: the LocalParticipant is disconnected'));
    }
    if (this.#between) {
      // Rejoining: published in the new room, once there is one.
      const between = this.#between;
      return new Promise((resolve) => between.waiting.push(resolve)).then(() => this.publishTrack(local, { ...options, priority }));
    }
    const published = this.#publicationOf(local);
    if (published) return Promise.resolve(published);
    if (this.#pending.has(local)) return this.#pending.get(local);
    const problem = this.#nameProblem(local.name);
    if (problem) return Promise.reject(problem);
    if (local.kind !== 'data' && local.isStopped) {
      return Promise.reject(createTwilioError(53300, `Track is invalid: '${local.name}' is stopped`));
    }
    const publishing = local.kind === 'data' ? this.#peer.publishData(local) : this.#peer.publishMedia(local);
    const promise = publishing.then(
      (info) => {
        // A rejoin took over the publication (see _forgetPublications).
        if (this.#pending.get(local) !== promise) throw new Error('The room\'s node was lost while the track was being published');
        this.#pending.delete(local);
        if (this.state === 'disconnected') throw new Error('The LocalParticipant disconnected while the track was being published');
        const cls = { audio: LocalAudioTrackPublication, video: LocalVideoTrackPublication }[local.kind] || LocalDataTrackPublication;
        const publication = new cls(info.sid, local, (p) => this.unpublishTrack(p.track), priority,
          (p) => this.state !== 'disconnected' && this.#signaling.send({ type: 'set_publish_priority', track: p.trackSid, priority: p.priority }));
        this._addPublication(publication);
        this.#watch(local, publication);
        if (priority !== 'standard') this.#signaling.send({ type: 'set_publish_priority', track: info.sid, priority });
        // Enabled or disabled while the offer was out: tell the server now.
        if (local.kind !== 'data' && local.isEnabled !== info.enabled) {
          this.#signaling.send({ type: 'set_track_enabled', track: info.sid, enabled: local.isEnabled });
        }
        if (this.#unannounced) this.#unannounced.push(publication);
        else this.emit('trackPublished', publication);
        return publication;
      },
      (error) => {
        if (this.#pending.get(local) !== promise) throw error;
        this.#pending.delete(local);
        this.emit('trackPublicationFailed', error, local);
        throw error;
      },
    );
    this.#pending.set(local, promise);
    return promise;
  }

  /**
   * @param {Array<LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack>} tracks
   */
  publishTracks(tracks) {
    if (!Array.isArray(tracks)) return Promise.reject(typeError('tracks', 'Array of LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack'));
    return Promise.all(tracks.map((t) => this.publishTrack(t)));
  }

  /**
   * Stop publishing a track (the track keeps running). Returns its
   * publication, or null if it was not published.
   * @param {LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack} track
   * @returns {import('./publication.js').LocalTrackPublication|null}
   */
  unpublishTrack(track) {
    const local = this.#findLocal(track);
    if (!local) return null;
    if (this.#between) {
      // Rejoining: not to be published again.
      this.#between.tracks = this.#between.tracks.filter((t) => t.track !== local);
      return null;
    }
    const publication = this.#publicationOf(local);
    if (!publication) {
      if (this.#pending.has(local)) this.#peer.cancelPublish(local);
      return null;
    }
    if (this.state !== 'disconnected') {
      this.#signaling.send({ type: 'unpublish', track: publication.trackSid });
      this.#peer.unpublish(publication.trackSid);
    }
    this.#unwatch(local);
    this._removePublication(publication.trackSid);
    return publication;
  }

  /** @param {Array<LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack>} tracks */
  unpublishTracks(tracks) {
    if (!Array.isArray(tracks)) throw typeError('tracks', 'Array of LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack');
    return tracks.map((t) => this.unpublishTrack(t)).filter(Boolean);
  }

  /**
   * Cap the bitrate of what you send (bits per second; null removes a cap).
   * @param {{maxAudioBitrate?: number|null, maxVideoBitrate?: number|null}|null} [params]
   * @returns {this}
   */
  setParameters(params) {
    if (params === undefined || params === null) return this;
    if (typeof params !== 'object') throw typeError('encodingParameters', 'object');
    const caps = {};
    if ('maxAudioBitrate' in params) caps.audio = checkBitrate('encodingParameters.maxAudioBitrate', params.maxAudioBitrate);
    if ('maxVideoBitrate' in params) caps.video = checkBitrate('encodingParameters.maxVideoBitrate', params.maxVideoBitrate);
    this.#peer.setBitrates(caps);
    return this;
  }

  /**
   * Change how much network quality detail the server reports:
   * `{local, remote}` verbosity 0 (none) to 3 (detailed), for you and for
   * the others (`set_network_quality`). An absent side keeps its value.
   * @param {{local?: number, remote?: number}} configuration
   * @returns {this}
   */
  setNetworkQualityConfiguration(configuration) {
    checkNetworkQualityConfiguration('networkQualityConfiguration', configuration);
    this.#networkQuality = { ...this.#networkQuality, ...dropUndefined(configuration) };
    this.#networkQualityAsked = true;
    if (this.state !== 'disconnected') this.#signaling.send({ type: 'set_network_quality', ...this.#networkQuality });
    return this;
  }

  /** @internal connect() starts: hold `trackPublished` until {@link _announce}. */
  _holdAnnouncements() {
    this.#unannounced = [];
  }

  /**
   * @internal connect() has resolved: `trackPublished` for the tracks it
   * published, in the order it was given them, on the next task (after the
   * app's code that awaited connect()).
   * @param {object[]} order the tracks given to connect()
   */
  _announce(order) {
    const rank = (publication) => order.indexOf(publication.track);
    const publications = (this.#unannounced || []).sort((a, b) => rank(a) - rank(b));
    this.#unannounced = null;
    if (publications.length === 0) return;
    setTimeout(() => {
      for (const publication of publications) {
        if (this.tracks.get(publication.trackSid) === publication) this.emit('trackPublished', publication);
      }
    });
  }

  /**
   * @internal The room's node is lost (Room's rejoin): the publications
   * go without a word to the server (it is gone). The tracks, published or
   * being published, wait with their priority to be published again in
   * the new room ({@link _rejoined}); meanwhile publishTrack waits for it,
   * and unpublishTrack takes a track off that list.
   */
  _forgetPublications() {
    const tracks = [...this.tracks.values()].map((p) => ({ track: p.track, priority: p.priority }));
    for (const publication of [...this.tracks.values()]) {
      this.#unwatch(publication.track);
      this._removePublication(publication.trackSid);
    }
    for (const track of this.#pending.keys()) tracks.push({ track, priority: 'standard' });
    this.#pending.clear();
    this.#between = { tracks, waiting: [] };
  }

  /**
   * @internal In the room again after a rejoin: a new participant SID and a
   * new session; the network quality reports asked for are asked again.
   * Returns the tracks to publish again (the Room does, then the
   * publishTrack calls that waited go on).
   * @param {{sid: string}} info
   * @param {import('./peer.js').PeerSession} peer
   * @param {import('./signaling.js').Signaling} signaling
   * @returns {Array<{track: LocalAudioTrack|LocalVideoTrack|LocalDataTrack, priority: string}>}
   */
  _rejoined(info, peer, signaling) {
    this.sid = info.sid;
    this.#peer = peer;
    this.#signaling = signaling;
    if (this.#networkQualityAsked) signaling.send({ type: 'set_network_quality', ...this.#networkQuality });
    const between = this.#between;
    this.#between = null;
    if (!between) return [];
    for (const go of between.waiting) go();
    return between.tracks;
  }

  /** @internal The room is gone: every publication goes, tracks keep running. */
  _disconnected() {
    if (this.state === 'disconnected') return;
    this.state = 'disconnected';
    // publishTrack calls waiting for a rejoin now fail (disconnected).
    const between = this.#between;
    this.#between = null;
    if (between) for (const go of between.waiting) go();
    for (const publication of [...this.tracks.values()]) this.unpublishTrack(publication.track);
    this.emit('disconnected', this);
  }

  #asLocalTrack(track, options) {
    if (typeof MediaStreamTrack !== 'undefined' && track instanceof MediaStreamTrack) {
      const existing = [...this.tracks.values()].find((p) => p.track.mediaStreamTrack === track)
        || [...this.#pending.keys()].find((t) => t.mediaStreamTrack === track);
      if (existing) return existing.track || existing;
      if (options !== null && typeof options !== 'object') throw typeError('options', 'object');
      const name = options ? options.name : undefined;
      return track.kind === 'audio' ? new LocalAudioTrack(track, { name }) : new LocalVideoTrack(track, { name });
    }
    if (track instanceof LocalAudioTrack || track instanceof LocalVideoTrack || track instanceof LocalDataTrack) return track;
    throw typeError('track', 'LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack');
  }

  #findLocal(track) {
    if (typeof MediaStreamTrack !== 'undefined' && track instanceof MediaStreamTrack) {
      const publication = [...this.tracks.values()].find((p) => p.track.mediaStreamTrack === track);
      return publication ? publication.track : [...this.#pending.keys()].find((t) => t.mediaStreamTrack === track) || null;
    }
    if (track instanceof LocalAudioTrack || track instanceof LocalVideoTrack || track instanceof LocalDataTrack) return track;
    throw typeError('track', 'LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack');
  }

  #publicationOf(local) {
    return [...this.tracks.values()].find((p) => p.track === local) || null;
  }

  #nameProblem(name) {
    if (typeof name !== 'string' || name.length === 0) return createTwilioError(53301, 'Track name is invalid: it is empty');
    if (name.length > MAX_TRACK_NAME) return createTwilioError(53302, `Track name is too long: at most ${MAX_TRACK_NAME} characters`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(name)) return createTwilioError(53303, 'Track name contains invalid characters: control characters are not allowed');
    const taken = [...this.tracks.values()].some((p) => p.trackName === name)
      || [...this.#pending.keys()].some((t) => t.name === name);
    if (taken) return createTwilioError(53304, `Track name is duplicated: you already publish a track named '${name}'`);
    return null;
  }

  #watch(track, publication) {
    const onEnabled = () => this.#switched(track, publication, true);
    const onDisabled = () => this.#switched(track, publication, false);
    const onStopped = () => this.emit('trackStopped', track);
    const onReplaced = () => this.#peer.replaceTrack(publication.trackSid, track._sendTrack);
    const listeners = [['enabled', onEnabled], ['disabled', onDisabled], ['stopped', onStopped], ['_replaced', onReplaced]];
    for (const [event, listener] of listeners) track.on(event, listener);
    this.#watches.set(track, listeners);
  }

  #unwatch(track) {
    for (const [event, listener] of this.#watches.get(track) || []) track.removeListener(event, listener);
    this.#watches.delete(track);
  }

  #switched(track, publication, enabled) {
    this.#signaling.send({ type: 'set_track_enabled', track: publication.trackSid, enabled });
    publication.emit(enabled ? 'trackEnabled' : 'trackDisabled');
    this.emit(enabled ? 'trackEnabled' : 'trackDisabled', track);
  }
}

function dropUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}

/**
 * twilio-video's NetworkQualityStats from a `network_quality` entry (level
 * only at verbosity 1: audio and video null).
 * @param {any} entry
 */
function networkQualityStats(entry) {
  const sideStats = (s) => (s && typeof s === 'object' ? {
    bandwidth: { actual: s.bandwidth_actual ?? null, available: s.bandwidth_available ?? null, level: s.bandwidth_level ?? null },
    fractionLost: { fractionLost: s.fraction_lost ?? null, level: s.fraction_lost_level ?? null },
    latency: { jitter: s.jitter ?? null, rtt: s.rtt ?? null, level: s.latency_level ?? null },
  } : null);
  const media = (m) => (m && typeof m === 'object' ? {
    send: m.send ?? null, recv: m.recv ?? null, sendStats: sideStats(m.send_stats), recvStats: sideStats(m.recv_stats),
  } : null);
  return { level: entry.level, audio: media(entry.audio), video: media(entry.video) };
}

/**
 * @param {string} name
 * @param {unknown} value
 * @returns {number|null}
 */
export function checkBitrate(name, value) {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || Number.isNaN(value)) throw typeError(name, 'number');
  if (value < 0 || !Number.isFinite(value)) throw new RangeError(`${name} must be a non-negative number of bits per second`);
  return value === 0 ? null : value;
}

/**
 * A track priority, or `fallback` when not given.
 * @param {string} name
 * @param {unknown} value
 * @param {string|null} fallback
 */
export function checkPriority(name, value, fallback) {
  if (value === undefined) return fallback;
  if (value === null && fallback === null) return null;
  if (!PRIORITIES.includes(/** @type {string} */ (value))) throw rangeError(name, PRIORITIES);
  return /** @type {'low'|'standard'|'high'} */ (value);
}

/**
 * connect()'s `networkQuality` object and setNetworkQualityConfiguration's
 * argument: `{local, remote}`, each a verbosity 0–3.
 * @param {string} name
 * @param {unknown} value
 */
export function checkNetworkQualityConfiguration(name, value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(name, 'object');
  for (const key of ['local', 'remote']) {
    const v = /** @type {any} */ (value)[key];
    if (v !== undefined && ![0, 1, 2, 3].includes(v)) throw rangeError(`${name}.${key}`, [0, 1, 2, 3]);
  }
}
