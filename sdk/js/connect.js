// connect(): from an access token to a Room.
//
//   1. check the arguments (TypeError / RangeError before anything happens)
//   2. capture the microphone and camera, unless `tracks` were given
//   3. open the signaling socket and `join`             (Signaling)
//   4. make the peer connection, publish the tracks     (PeerSession, LocalParticipant)
//      and subscribe to what is already in the room      (Room)
//   5. resolve with the Room once the first answer is applied
//
// If anything fails, or the promise is canceled, everything made so far is
// undone: the socket closed, the peer connection closed, the tracks this
// function captured stopped. No half-open session is left behind.

import { createTwilioError, rangeError, typeError } from './errors.js';
import { createLocalTracks } from './localtracks.js';
import { LocalParticipant, checkBitrate } from './participant.js';
import { PeerSession } from './peer.js';
import { Room } from './room.js';
import { Signaling, defaultBaseUrl, signalingUrl } from './signaling.js';
import { LocalAudioTrack, LocalDataTrack, LocalVideoTrack } from './track.js';

/** The SDK's version (also in package.json). */
export const VERSION = '0.1.0';

const VIDEO_CODECS = ['VP8', 'H264', 'VP9'];
/**
 * The first offer waits this long at most for the `subscribed` messages of
 * tracks already in the room, so that it carries them too: one round trip
 * to the first remote frame instead of two.
 */
const FIRST_OFFER_WAIT_MS = 150;

/**
 * @typedef {object} ConnectOptions
 * @property {string|null} [name] the room's name (or RM SID); default: the token's room grant
 * @property {boolean|MediaTrackConstraints} [audio=true] capture the microphone (ignored with `tracks`)
 * @property {boolean|MediaTrackConstraints} [video=true] capture the camera, e.g. `{width: 640}` (ignored with `tracks`)
 * @property {Array<LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack>} [tracks] publish these instead of capturing
 * @property {boolean} [automaticSubscription=true] receive every track in the room
 * @property {Array<'VP8'|'H264'|'VP9'|{codec: string}>|'auto'} [preferredVideoCodecs] default `['VP8']`
 * @property {Array<string|{codec: string}>} [preferredAudioCodecs] accepted; Opus is used
 * @property {number|null} [maxAudioBitrate] bits per second
 * @property {number|null} [maxVideoBitrate] bits per second
 * @property {boolean} [dominantSpeaker] accepted; takes effect when the server supports it
 * @property {boolean|object} [networkQuality] accepted; takes effect when the server supports it
 * @property {object} [bandwidthProfile] accepted; takes effect when the server supports it
 * @property {RTCConfiguration} [rtcConfiguration] extra ICE servers and the like
 * @property {string} [url] where Salon is (`https://video.example.com`); default: where this SDK was loaded from
 */

/**
 * Join a room. Resolves with the {@link Room}; rejects with a TwilioError
 * carrying the server's code (20101 invalid token, 53105 room full, …), a
 * getUserMedia DOMException (NotAllowedError …), or a TypeError/RangeError
 * for bad arguments. The promise has `cancel()`.
 * @param {string} token an access token
 * @param {ConnectOptions} [options]
 * @returns {Promise<Room> & {cancel: () => void}}
 */
export function connect(token, options) {
  const attempt = { canceled: false, undo: () => {} };
  const promise = /** @type {Promise<Room> & {cancel: () => void}} */ (run(token, options, attempt));
  promise.cancel = () => {
    if (attempt.canceled) return;
    attempt.canceled = true;
    attempt.undo();
  };
  return promise;
}

async function run(token, options, attempt) {
  const o = checkOptions(token, options);
  const canceled = () => new Error('Canceled');

  // 2. Media.
  let tracks;
  let owned = [];
  if (o.tracks) {
    tracks = o.tracks;
  } else {
    tracks = await createLocalTracks({ audio: o.audio, video: o.video });
    owned = tracks;
    if (attempt.canceled) {
      owned.forEach((t) => t.stop());
      throw canceled();
    }
  }

  // 3. Signaling.
  const signaling = new Signaling(o.url, token);
  let peer = null;
  let room = null;
  attempt.undo = () => {
    if (room) room.disconnect();
    signaling.close();
    if (peer) peer.close();
    owned.forEach((t) => t.stop());
  };
  try {
    const joined = await signaling.join({ room: o.name, autoSubscribe: o.automaticSubscription, client: `salon-video.js ${VERSION}` });
    if (attempt.canceled) throw canceled();

    // 4. Media session, participants, the first offer.
    peer = new PeerSession({
      signaling,
      iceServers: (joined.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
      rtcConfiguration: o.rtcConfiguration,
      preferredVideoCodecs: o.preferredVideoCodecs,
      bitrates: { audio: o.maxAudioBitrate, video: o.maxVideoBitrate },
    });
    const localParticipant = new LocalParticipant(joined.participant, peer, signaling);
    room = new Room(joined, localParticipant, signaling, peer, owned);
    const ended = new Promise((_, reject) => {
      room.once('disconnected', (_room, error) => reject(error || createTwilioError(53001, 'Disconnected while connecting')));
    });
    ended.catch(() => {});

    const expected = new Set(o.automaticSubscription
      ? joined.participants.flatMap((p) => p.tracks.filter((t) => t.kind !== 'data').map((t) => t.sid))
      : []);
    const subscriptions = waitFor(() => [...expected].every((sid) => peer.isSubscribed(sid)), FIRST_OFFER_WAIT_MS);
    peer.hold();
    room._start();
    const publishing = tracks.map((t) => localParticipant.publishTrack(t).catch((error) => {
      console.warn(`salon-video: could not publish '${t.name}':`, error);
      return null;
    }));
    await Promise.race([subscriptions, ended]);
    peer.release();
    await Promise.race([Promise.all(publishing), ended]);
    if (attempt.canceled) throw canceled();
    return room;
  } catch (error) {
    attempt.undo();
    throw error;
  }
}

/** Resolve when `done()` holds (checked every few ms) or after `ms`. */
function waitFor(done, ms) {
  return new Promise((resolve) => {
    const started = Date.now();
    const check = () => {
      if (done() || Date.now() - started >= ms) resolve();
      else setTimeout(check, 5);
    };
    check();
  });
}

// ---- arguments ----------------------------------------------------------------

function checkOptions(token, options) {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError('options', 'object');
  if (typeof token !== 'string') throw typeError('token', 'string');
  if (token.length === 0) throw new TypeError('token must not be empty');

  let name = options.name;
  if (name === undefined || name === null) {
    name = roomGrant(token);
    if (name === null) throw new TypeError('options.name must be given: the access token has no room grant');
  } else if (typeof name !== 'string') {
    throw typeError('options.name', 'string');
  }

  for (const kind of ['audio', 'video']) {
    const v = options[kind];
    if (v !== undefined && typeof v !== 'boolean' && (v === null || typeof v !== 'object' || Array.isArray(v))) {
      throw typeError(`options.${kind}`, 'boolean or an object of MediaTrackConstraints');
    }
  }

  let tracks = null;
  if (options.tracks !== undefined) {
    const what = 'Array of LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack';
    if (!Array.isArray(options.tracks)) throw typeError('options.tracks', what);
    tracks = options.tracks.map((t) => {
      if (t instanceof LocalAudioTrack || t instanceof LocalVideoTrack || t instanceof LocalDataTrack) return t;
      if (typeof MediaStreamTrack !== 'undefined' && t instanceof MediaStreamTrack) {
        return t.kind === 'audio' ? new LocalAudioTrack(t) : new LocalVideoTrack(t);
      }
      throw typeError('options.tracks', what);
    });
  }

  for (const key of ['automaticSubscription', 'dominantSpeaker']) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw typeError(`options.${key}`, 'boolean');
  }
  const nq = options.networkQuality;
  if (nq !== undefined && typeof nq !== 'boolean' && (nq === null || typeof nq !== 'object')) {
    throw typeError('options.networkQuality', 'boolean or an object');
  }
  if (options.bandwidthProfile !== undefined && (options.bandwidthProfile === null || typeof options.bandwidthProfile !== 'object')) {
    throw typeError('options.bandwidthProfile', 'object');
  }
  if (options.preferredAudioCodecs !== undefined && !Array.isArray(options.preferredAudioCodecs)) {
    throw typeError('options.preferredAudioCodecs', 'array');
  }
  if (options.rtcConfiguration !== undefined && (options.rtcConfiguration === null || typeof options.rtcConfiguration !== 'object')) {
    throw typeError('options.rtcConfiguration', 'object');
  }

  const base = options.url ?? options.wsServer ?? defaultBaseUrl();
  if (typeof base !== 'string') throw typeError('options.url', 'string');

  return {
    name,
    audio: options.audio === undefined ? true : options.audio,
    video: options.video === undefined ? true : options.video,
    tracks,
    automaticSubscription: options.automaticSubscription !== false,
    preferredVideoCodecs: videoCodecs(options.preferredVideoCodecs),
    maxAudioBitrate: checkBitrate('options.maxAudioBitrate', options.maxAudioBitrate),
    maxVideoBitrate: checkBitrate('options.maxVideoBitrate', options.maxVideoBitrate),
    rtcConfiguration: options.rtcConfiguration || {},
    url: signalingUrl(base),
  };
}

function videoCodecs(value) {
  if (value === undefined || value === null || value === 'auto') return ['VP8'];
  if (!Array.isArray(value)) throw typeError('options.preferredVideoCodecs', 'array or "auto"');
  const names = value.map((entry, i) => {
    const name = typeof entry === 'string' ? entry : entry && typeof entry === 'object' ? entry.codec : undefined;
    if (typeof name !== 'string') throw typeError(`options.preferredVideoCodecs[${i}]`, 'codec name or an object with a codec');
    const canonical = VIDEO_CODECS.find((c) => c.toLowerCase() === name.toLowerCase());
    if (!canonical) throw rangeError(`options.preferredVideoCodecs[${i}]`, VIDEO_CODECS);
    return canonical;
  });
  return names.length ? names : ['VP8'];
}

/** The room named in the token's video grant, or null (a token we cannot read: '' and the server says why). */
function roomGrant(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return '';
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(parts[1].length / 4) * 4, '='));
    const claims = JSON.parse(decodeURIComponent(escape(json)));
    const room = claims && claims.grants && claims.grants.video && claims.grants.video.room;
    return typeof room === 'string' && room ? room : null;
  } catch {
    return '';
  }
}
