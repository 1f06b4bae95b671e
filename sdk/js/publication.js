// Track publications: a track as published in a room, known by its track
// SID. Yours (LocalTrackPublication) always hold their track; someone
// else's (RemoteTrackPublication) hold one only while you are subscribed.
//
// Owns: the publication's state and its events. Must not: talk to the
// server (the participant objects do).

import { EventEmitter } from './events.js';
import { rangeError } from './errors.js';

const PRIORITIES = ['low', 'standard', 'high'];

/**
 * Events: `trackEnabled`(), `trackDisabled`().
 */
export class TrackPublication extends EventEmitter {
  /**
   * @param {string} trackSid
   * @param {string} trackName
   * @param {'audio'|'video'|'data'} kind
   */
  constructor(trackSid, trackName, kind) {
    super();
    /** @type {string} */
    this.trackSid = trackSid;
    /** @type {string} */
    this.trackName = trackName;
    /** @type {'audio'|'video'|'data'} */
    this.kind = kind;
  }

  /** Same as `isTrackEnabled`. */
  get isEnabled() {
    return this.isTrackEnabled;
  }

  toString() {
    return `[${this.constructor.name} ${this.trackSid}]`;
  }
}

/** One of your tracks, published. */
export class LocalTrackPublication extends TrackPublication {
  #unpublish;
  #prioritize;

  /**
   * @param {string} trackSid
   * @param {import('./track.js').LocalAudioTrack|import('./track.js').LocalVideoTrack|import('./track.js').LocalDataTrack} track
   * @param {(publication: LocalTrackPublication) => void} unpublish
   * @param {'low'|'standard'|'high'} [priority]
   * @param {(publication: LocalTrackPublication) => void} [prioritize] tells the server a new priority
   */
  constructor(trackSid, track, unpublish, priority = 'standard', prioritize = () => {}) {
    super(trackSid, track.name, track.kind);
    this.track = track;
    /** @type {'low'|'standard'|'high'} */
    this.priority = priority;
    this.#unpublish = unpublish;
    this.#prioritize = prioritize;
  }

  /** Whether the track is enabled (data tracks always are). */
  get isTrackEnabled() {
    return this.track.kind === 'data' ? true : this.track.isEnabled;
  }

  /**
   * Change the publication's priority: the server weighs it when it shares
   * subscribers' bandwidth, and subscribers hear `publishPriorityChanged`.
   * @param {'low'|'standard'|'high'} priority
   * @returns {this}
   */
  setPriority(priority) {
    if (!PRIORITIES.includes(priority)) throw rangeError('priority', PRIORITIES);
    if (this.priority === priority) return this;
    this.priority = priority;
    this.#prioritize(this);
    return this;
  }

  /**
   * Stop publishing the track (it keeps running: stop it yourself).
   * @returns {this}
   */
  unpublish() {
    this.#unpublish(this);
    return this;
  }
}

export class LocalAudioTrackPublication extends LocalTrackPublication {}
export class LocalVideoTrackPublication extends LocalTrackPublication {}
export class LocalDataTrackPublication extends LocalTrackPublication {}

/**
 * Someone else's track. `track` is set while you are subscribed.
 * Events: `subscribed`(track), `unsubscribed`(track), `trackEnabled`(),
 * `trackDisabled`(), `subscriptionFailed`(error), `publishPriorityChanged`(priority),
 * `trackSwitchedOff`(track), `trackSwitchedOn`(track).
 */
export class RemoteTrackPublication extends TrackPublication {
  #enabled;

  /**
   * @param {{sid: string, name: string, kind: 'audio'|'video'|'data', enabled: boolean}} info
   */
  constructor(info) {
    super(info.sid, info.name, info.kind);
    this.#enabled = info.enabled;
    /** @type {import('./track.js').RemoteAudioTrack|import('./track.js').RemoteVideoTrack|import('./track.js').RemoteDataTrack|null} */
    this.track = null;
    /** @type {'low'|'standard'|'high'} */
    this.publishPriority = info.priority || 'standard';
  }

  /** Whether the server has switched the track off for you (false when not subscribed). */
  get isTrackSwitchedOff() {
    return Boolean(this.track && this.track.isSwitchedOff);
  }

  get isSubscribed() {
    return this.track !== null;
  }

  /** Whether the publisher has the track enabled. */
  get isTrackEnabled() {
    return this.#enabled;
  }

  /** @internal Returns whether it changed. */
  _setEnabled(enabled) {
    if (this.#enabled === enabled) return false;
    this.#enabled = enabled;
    if (this.track && this.track.kind !== 'data') this.track._setEnabled(enabled);
    this.emit(enabled ? 'trackEnabled' : 'trackDisabled');
    return true;
  }

  /** @internal */
  _subscribed(track) {
    this.track = track;
    this.emit('subscribed', track);
  }

  /** @internal Returns the track it had. */
  _unsubscribed() {
    const track = this.track;
    this.track = null;
    if (track) this.emit('unsubscribed', track);
    return track;
  }
}

export class RemoteAudioTrackPublication extends RemoteTrackPublication {}
export class RemoteVideoTrackPublication extends RemoteTrackPublication {}
export class RemoteDataTrackPublication extends RemoteTrackPublication {}

/**
 * The RemoteTrackPublication class for a track kind.
 * @param {{sid: string, name: string, kind: 'audio'|'video'|'data', enabled: boolean}} info
 */
export function remotePublication(info) {
  const cls = { audio: RemoteAudioTrackPublication, video: RemoteVideoTrackPublication }[info.kind] || RemoteDataTrackPublication;
  return new cls(info);
}
