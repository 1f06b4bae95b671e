// connect(): from an access token to a Room.
//
//   1. check the arguments (TypeError / RangeError before anything happens)
//   2. capture the microphone and camera, unless `tracks` were given
//   3. open the signaling socket and `join`             (Signaling)
//   4. make the peer connection, publish the tracks     (PeerSession, LocalParticipant)
//      and subscribe to what is already in the room      (Room)
//   5. resolve with the Room once the first answer is applied; then, on
//      the next task, `trackPublished` for the tracks it published
//
// If anything fails, or the promise is canceled, everything made so far is
// undone: the socket closed, the peer connection closed, the tracks this
// function captured stopped. No half-open session is left behind.

import { createTwilioError, rangeError, typeError } from './errors.js';
import { createLocalTracks } from './localtracks.js';
import { DEFAULT_LOGGER_NAME, Log, applyLogLevelOption } from './log.js';
import { LocalParticipant, checkBitrate, checkNetworkQualityConfiguration, checkPriority } from './participant.js';
import { PeerSession } from './peer.js';
import { FIRST_OFFER_WAIT_MS, Room, waitFor } from './room.js';
import { HOW_TO_SAY, Signaling, signalingUrl, whereSalonIs } from './signaling.js';
import { LocalAudioTrack, LocalDataTrack, LocalVideoTrack } from './track.js';

/** The SDK's version (also in package.json). */
export const VERSION = '0.2.0';

export const VIDEO_CODECS = ['VP8', 'H264', 'VP9'];
/** Salon forwards these; iSAC, which twilio-video also names, no browser sends any more: it is skipped. */
export const AUDIO_CODECS = ['opus', 'PCMU', 'PCMA', 'isac'];

/**
 * @typedef {object} ConnectOptions
 * @property {string|null} [name] the room's name (or RM SID); default: the token's room grant, or else a new room named by its SID
 * @property {boolean|MediaTrackConstraints} [audio=true] capture the microphone (ignored with `tracks`)
 * @property {boolean|MediaTrackConstraints} [video=true] capture the camera, e.g. `{width: 640}` (ignored with `tracks`)
 * @property {Array<LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack>} [tracks] publish these instead of capturing
 * @property {boolean} [automaticSubscription=true] receive every track in the room
 * @property {Array<'VP8'|'H264'|'VP9'|{codec: string, simulcast?: boolean}>|'auto'} [preferredVideoCodecs] default `['VP8']`
 * @property {Array<'opus'|'PCMU'|'PCMA'|'isac'|{codec: string, dtx?: boolean}>} [preferredAudioCodecs] default: the browser's order (Opus first)
 * @property {number|null} [maxAudioBitrate] bits per second
 * @property {number|null} [maxVideoBitrate] bits per second
 * @property {boolean} [dominantSpeaker] `room.dominantSpeaker` and `dominantSpeakerChanged`
 * @property {boolean|{local?: number, remote?: number}} [networkQuality] network quality levels (true: `{local: 1, remote: 0}`)
 * @property {object} [bandwidthProfile] sent to the server (`set_bandwidth_profile`); switch-off and content preferences `auto` by default
 * @property {RTCConfiguration} [rtcConfiguration] extra ICE servers and the like
 * @property {string} [url] where Salon is (`https://video.example.com`); default: see whereSalonIs() in signaling.js
 * @property {string} [loggerName] the logger to log to (default 'twilio-video')
 * @property {boolean} [rejoin] when the node holding the room is lost (a cluster's node dies or drains), join the
 *   room of the same name again, keeping the Room (`reconnecting`, then `reconnected`); default: on when the
 *   server is a node of a cluster (`joined.node`), off on a single node. A Salon extension.
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
  const log = new Log('connect', o.loggerName);
  const canceled = () => new Error('Canceled');

  // 2. Media.
  let tracks;
  let owned = [];
  if (o.tracks) {
    tracks = o.tracks;
  } else {
    tracks = await createLocalTracks({ audio: o.audio, video: o.video, getUserMedia: o.getUserMedia });
    owned = tracks;
    if (attempt.canceled) {
      owned.forEach((t) => t.stop());
      throw canceled();
    }
  }

  // 3. Signaling.
  const signaling = new Signaling(o.url, token, { log: log.child('signaling') });
  let peer = null;
  let room = null;
  attempt.undo = () => {
    if (room) room.disconnect();
    signaling.close();
    if (peer) peer.close();
    owned.forEach((t) => t.stop());
  };
  try {
    const joined = await signaling.join({ room: o.name, autoSubscribe: o.automaticSubscription, client: `salon-video.js ${VERSION}` })
      .catch((error) => {
        // Salon is not where the SDK guessed: say how to tell it.
        if (error.code === 53000 && o.urlFrom !== 'options.url') error.message += ` (Salon's address came from ${o.urlFrom}. ${HOW_TO_SAY})`;
        throw error;
      });
    if (attempt.canceled) throw canceled();

    // 4. Media session, participants, the first offer.
    peer = mediaSession(o, signaling, joined, log);
    const localParticipant = new LocalParticipant(joined.participant, peer, signaling);
    // When the room's node is lost: the same join, by the room's name, through
    // the same address, with a new media session (room.js, rejoining).
    const rejoinRoom = async () => {
      const again = new Signaling(o.url, token, { log: log.child('signaling') });
      try {
        const rejoined = await again.join({ room: room.name, autoSubscribe: o.automaticSubscription, client: `salon-video.js ${VERSION}` });
        const session = { signaling: again, joined: rejoined, peer: mediaSession(o, again, rejoined, log) };
        if (o.bandwidthProfileMessage) again.send(o.bandwidthProfileMessage);
        return session;
      } catch (error) {
        again.close();
        throw error;
      }
    };
    const rejoin = o.rejoin ?? (typeof joined.node === 'string');
    room = new Room(joined, localParticipant, signaling, peer, owned, log, o.adaptive, {
      autoSubscribe: o.automaticSubscription,
      rejoin: rejoin ? rejoinRoom : null,
    });
    // Adaptive video settings go to the server before anything else.
    if (o.bandwidthProfileMessage) signaling.send(o.bandwidthProfileMessage);
    if (o.networkQuality) localParticipant.setNetworkQualityConfiguration(o.networkQuality);
    const ended = new Promise((_, reject) => {
      room.once('disconnected', (_room, error) => reject(error || createTwilioError(53001, 'Disconnected while connecting')));
    });
    ended.catch(() => {});

    const expected = new Set(o.automaticSubscription
      ? joined.participants.flatMap((p) => p.tracks.filter((t) => t.kind !== 'data').map((t) => t.sid))
      : []);
    const subscriptions = waitFor(() => [...expected].every((sid) => peer.isSubscribed(sid)), FIRST_OFFER_WAIT_MS);
    peer.hold();
    localParticipant._holdAnnouncements();
    room._holdSubscriptions();
    room._start();
    const publishing = tracks.map((t) => localParticipant.publishTrack(t).catch((error) => {
      log.warn(`Could not publish ${t}:`, error);
      return null;
    }));
    await Promise.race([subscriptions, ended]);
    peer.release();
    await Promise.race([Promise.all(publishing), ended]);
    if (attempt.canceled) throw canceled();
    log.info(`Connected to ${room}, publishing ${localParticipant.tracks.size} track(s)`);
    localParticipant._announce(tracks);
    room._releaseSubscriptions();
    return room;
  } catch (error) {
    attempt.undo();
    throw error;
  }
}

/** The media session (RTCPeerConnection) of a session `joined` as `o` asks. */
function mediaSession(o, signaling, joined, log) {
  return new PeerSession({
    signaling,
    iceServers: (joined.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    rtcConfiguration: o.rtcConfiguration,
    preferredCodecs: { audio: o.preferredAudioCodecs, video: o.preferredVideoCodecs },
    dtx: o.dtx,
    // One object for every session: setParameters() changes it, and a
    // rejoin's session starts with the caps as they are now.
    bitrates: o.bitrates,
    // docs/protocol.md: "until layer selection lands, publish one
    // encoding". A server that selects layers says so in `joined`.
    simulcast: o.simulcast && joined.simulcast === true,
    RTCPeerConnection: o.RTCPeerConnection,
    log: log.child('webrtc'),
  });
}

// ---- arguments ----------------------------------------------------------------

function checkOptions(token, options) {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError('options', 'object');
  if (typeof token !== 'string') throw typeError('token', 'string');
  if (token.length === 0) throw new TypeError('token must not be empty');

  const name = options.name ?? null;
  if (name !== null && typeof name !== 'string') throw typeError('options.name', 'string');

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

  for (const key of ['automaticSubscription', 'dominantSpeaker', 'insights', 'enableDscp', 'dscpTagging', 'receiveTranscriptions', 'rejoin']) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw typeError(`options.${key}`, 'boolean');
  }
  const nq = options.networkQuality;
  if (nq !== undefined && typeof nq !== 'boolean') checkNetworkQualityConfiguration('options.networkQuality', nq);
  if (options.bandwidthProfile !== undefined) checkBandwidthProfile(options.bandwidthProfile);
  if (options.rtcConfiguration !== undefined && (options.rtcConfiguration === null || typeof options.rtcConfiguration !== 'object')) {
    throw typeError('options.rtcConfiguration', 'object');
  }
  // Deprecated in twilio-video in favour of rtcConfiguration; still honoured.
  const rtcConfiguration = { ...(options.rtcConfiguration || {}) };
  if (options.iceServers !== undefined) {
    if (!Array.isArray(options.iceServers)) throw typeError('options.iceServers', 'array');
    rtcConfiguration.iceServers = [...(rtcConfiguration.iceServers || []), ...options.iceServers];
  }
  if (options.iceTransportPolicy !== undefined) {
    if (!['all', 'relay'].includes(options.iceTransportPolicy)) throw rangeError('options.iceTransportPolicy', ['all', 'relay']);
    rtcConfiguration.iceTransportPolicy = options.iceTransportPolicy;
  }
  for (const key of ['RTCPeerConnection', 'getUserMedia']) {
    if (options[key] !== undefined && typeof options[key] !== 'function') throw typeError(`options.${key}`, 'function');
  }
  const loggerName = options.loggerName ?? DEFAULT_LOGGER_NAME;
  if (typeof loggerName !== 'string' || !loggerName) throw typeError('options.loggerName', 'non-empty string');
  applyLogLevelOption(options.logLevel, loggerName);

  const explicit = options.url ?? options.wsServer;
  if (explicit !== undefined && typeof explicit !== 'string') throw typeError('options.url', 'string');
  const where = explicit !== undefined ? { url: explicit, from: 'options.url' } : whereSalonIs();

  // As twilio-video: a kind not given is captured only when neither is.
  const neither = options.audio === undefined && options.video === undefined;
  return {
    name,
    audio: options.audio === undefined ? neither : options.audio,
    video: options.video === undefined ? neither : options.video,
    tracks,
    automaticSubscription: options.automaticSubscription !== false,
    rejoin: options.rejoin,
    simulcast: options.preferredVideoCodecs === 'auto'
      || (Array.isArray(options.preferredVideoCodecs) && options.preferredVideoCodecs.some((c) => c && typeof c === 'object' && c.simulcast === true)),
    bandwidthProfileMessage: bandwidthProfileMessage(options.bandwidthProfile),
    networkQuality: nq === true ? { local: 1, remote: 0 } : nq && typeof nq === 'object' ? { local: nq.local ?? 1, remote: nq.remote ?? 0 } : null,
    adaptive: {
      dominantSpeaker: options.dominantSpeaker === true,
      clientTrackSwitchOffControl: options.bandwidthProfile?.video?.clientTrackSwitchOffControl
        ?? (options.bandwidthProfile?.video ? 'auto' : 'disabled'),
      contentPreferencesMode: options.bandwidthProfile?.video?.contentPreferencesMode
        ?? (options.bandwidthProfile?.video ? 'auto' : 'disabled'),
    },
    preferredVideoCodecs: codecList('options.preferredVideoCodecs', options.preferredVideoCodecs, VIDEO_CODECS, ['VP8']),
    preferredAudioCodecs: codecList('options.preferredAudioCodecs', options.preferredAudioCodecs, AUDIO_CODECS, []),
    dtx: opusDtx(options.preferredAudioCodecs),
    maxAudioBitrate: checkBitrate('options.maxAudioBitrate', options.maxAudioBitrate),
    maxVideoBitrate: checkBitrate('options.maxVideoBitrate', options.maxVideoBitrate),
    bitrates: {
      audio: checkBitrate('options.maxAudioBitrate', options.maxAudioBitrate),
      video: checkBitrate('options.maxVideoBitrate', options.maxVideoBitrate),
    },
    rtcConfiguration,
    RTCPeerConnection: options.RTCPeerConnection,
    getUserMedia: options.getUserMedia,
    loggerName,
    url: signalingUrl(where.url),
    urlFrom: where.from,
  };
}

/**
 * Whether Opus is sent with discontinuous transmission (DTX: a packet
 * every 400 ms instead of every 20 ms while the microphone hears
 * silence), as twilio-video decides: on, unless the app lists Opus and
 * none of its Opus entries is `{codec: 'opus', dtx: true}` (a plain
 * `'opus'` counts as `dtx: true`; `dtx` defaults to true).
 * @param {any} value options.preferredAudioCodecs, already checked
 */
function opusDtx(value) {
  if (!Array.isArray(value)) return true;
  const opus = value
    .map((entry) => (typeof entry === 'string' ? { codec: entry } : entry))
    .filter((entry) => entry.codec.toLowerCase() === 'opus');
  return opus.length === 0 || opus.some((entry) => entry.dtx !== false);
}

/**
 * Codec names (or `{codec}` settings) in the order given, canonically
 * spelled; `'auto'` (video: adaptive VP8) and nothing give `fallback`.
 */
function codecList(what, value, known, fallback) {
  if (value === undefined || value === null || (value === 'auto' && known === VIDEO_CODECS)) return fallback;
  if (!Array.isArray(value)) throw typeError(what, known === VIDEO_CODECS ? 'array or "auto"' : 'array');
  const names = value.map((entry, i) => {
    const name = typeof entry === 'string' ? entry : entry && typeof entry === 'object' ? entry.codec : undefined;
    if (typeof name !== 'string') throw typeError(`${what}[${i}]`, 'codec name or an object with a codec');
    const canonical = known.find((c) => c.toLowerCase() === name.toLowerCase());
    if (!canonical) throw rangeError(`${what}[${i}]`, known);
    return canonical;
  });
  return names.length ? names : fallback;
}

/**
 * The `set_bandwidth_profile` message for connect()'s bandwidthProfile, or
 * null when there is none. clientTrackSwitchOffControl and
 * contentPreferencesMode stay in the SDK (RemoteVideoTrack's auto mode).
 * @param {any} profile checked by checkBandwidthProfile
 */
function bandwidthProfileMessage(profile) {
  const video = profile && profile.video;
  if (!video) return null;
  const message = { type: 'set_bandwidth_profile' };
  if (video.mode !== undefined) message.mode = video.mode;
  if (video.maxSubscriptionBitrate !== undefined) message.max_subscription_bitrate = video.maxSubscriptionBitrate ?? 0;
  if (video.dominantSpeakerPriority !== undefined) message.dominant_speaker_priority = video.dominantSpeakerPriority;
  if (video.trackSwitchOffMode !== undefined) message.track_switch_off_mode = video.trackSwitchOffMode;
  if (video.maxTracks !== undefined) message.max_tracks = video.maxTracks ?? 0;
  return message;
}

const BANDWIDTH_PROFILE_VIDEO = {
  mode: ['grid', 'collaboration', 'presentation'],
  dominantSpeakerPriority: ['low', 'standard', 'high'],
  trackSwitchOffMode: ['detected', 'predicted', 'disabled'],
  clientTrackSwitchOffControl: ['auto', 'manual'],
  contentPreferencesMode: ['auto', 'manual'],
};

/**
 * twilio-video's BandwidthProfileOptions, checked as it checks them. What
 * they do is the server's business (adaptive video).
 */
function checkBandwidthProfile(profile) {
  if (profile === null || typeof profile !== 'object' || Array.isArray(profile)) throw typeError('options.bandwidthProfile', 'object');
  const video = profile.video;
  if (video === undefined) return;
  if (video === null || typeof video !== 'object' || Array.isArray(video)) throw typeError('options.bandwidthProfile.video', 'object');
  for (const [key, values] of Object.entries(BANDWIDTH_PROFILE_VIDEO)) {
    if (video[key] !== undefined && !values.includes(video[key])) throw rangeError(`options.bandwidthProfile.video.${key}`, values);
  }
  for (const key of ['maxSubscriptionBitrate', 'maxTracks']) {
    const v = video[key];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !(v >= 0))) {
      throw typeError(`options.bandwidthProfile.video.${key}`, 'non-negative number');
    }
  }
  if (video.renderDimensions !== undefined) {
    const dims = video.renderDimensions;
    if (dims === null || typeof dims !== 'object') throw typeError('options.bandwidthProfile.video.renderDimensions', 'object');
    for (const priority of ['low', 'standard', 'high']) {
      const d = dims[priority];
      if (d !== undefined && (d === null || typeof d !== 'object' || typeof d.width !== 'number' || typeof d.height !== 'number')) {
        throw typeError(`options.bandwidthProfile.video.renderDimensions.${priority}`, 'object with a width and a height');
      }
    }
  }
  checkPriority('options.bandwidthProfile.video.dominantSpeakerPriority', video.dominantSpeakerPriority, null);
}
