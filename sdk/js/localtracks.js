// Capturing local media: createLocalTracks, createLocalAudioTrack,
// createLocalVideoTrack. One getUserMedia call per request, so the browser
// asks for permission once; its errors (NotAllowedError, NotFoundError …)
// reach the caller unchanged, as with twilio-video.

import { typeError } from './errors.js';
import { LocalAudioTrack, LocalVideoTrack } from './track.js';

// Keys of the track options that are ours, not getUserMedia constraints.
const OUR_KEYS = ['name', 'logLevel', 'workaroundWebKitBug180748', 'workaroundWebKitBug1208516',
  'defaultDeviceCaptureMode', 'noiseCancellationOptions', 'getUserMedia', 'enumerateDevices',
  'MediaStream', 'mapMediaElement', 'disposeMediaElement'];

/**
 * @typedef {boolean | (MediaTrackConstraints & {name?: string})} TrackRequest
 * @typedef {{audio?: TrackRequest, video?: TrackRequest, getUserMedia?: (c: MediaStreamConstraints) => Promise<MediaStream>}} CreateLocalTracksOptions
 */

/**
 * Capture the microphone and/or camera. With neither `audio` nor `video`
 * given, both are captured; with one given, only what is asked for (as
 * twilio-video: `{video: {deviceId}}` is the camera alone). Each may be
 * `true`, `false` or constraints (`{width: 640}`, `{deviceId}`), with an
 * optional track `name`.
 * @param {CreateLocalTracksOptions} [options]
 * @returns {Promise<Array<LocalAudioTrack|LocalVideoTrack>>}
 */
export async function createLocalTracks(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('options', 'object');
  }
  const neither = options.audio === undefined && options.video === undefined;
  const audio = request(options, 'audio', neither);
  const video = request(options, 'video', neither);
  if (!audio && !video) return [];
  const getUserMedia = options.getUserMedia || ((c) => navigator.mediaDevices.getUserMedia(c));
  if (!options.getUserMedia && !(globalThis.navigator && navigator.mediaDevices)) {
    throw new Error('getUserMedia is not available: use a secure context (https:// or http://localhost)');
  }
  const stream = await getUserMedia({ audio: audio ? audio.constraints : false, video: video ? video.constraints : false });
  const tracks = [];
  try {
    for (const mst of stream.getAudioTracks()) {
      const track = new LocalAudioTrack(mst, { name: audio.name });
      track._constraints = audio.constraints;
      tracks.push(track);
    }
    for (const mst of stream.getVideoTracks()) {
      const track = new LocalVideoTrack(mst, { name: video.name });
      track._constraints = video.constraints;
      tracks.push(track);
    }
  } catch (error) {
    stream.getTracks().forEach((t) => t.stop());
    throw error;
  }
  return tracks;
}

/**
 * Capture the microphone.
 * @param {MediaTrackConstraints & {name?: string}} [options]
 * @returns {Promise<LocalAudioTrack>}
 */
export async function createLocalAudioTrack(options = {}) {
  const [track] = await createLocalTracks({ audio: checkObject(options), video: false, getUserMedia: options.getUserMedia });
  return /** @type {LocalAudioTrack} */ (track);
}

/**
 * Capture the camera (or whatever `deviceId` names).
 * @param {MediaTrackConstraints & {name?: string}} [options]
 * @returns {Promise<LocalVideoTrack>}
 */
export async function createLocalVideoTrack(options = {}) {
  const [track] = await createLocalTracks({ audio: false, video: checkObject(options), getUserMedia: options.getUserMedia });
  return /** @type {LocalVideoTrack} */ (track);
}

function checkObject(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('options', 'object');
  }
  return options;
}

/**
 * What to ask getUserMedia for one kind, or null for nothing; `byDefault`
 * when the kind is not given.
 */
function request(options, kind, byDefault) {
  const value = options[kind] === undefined ? byDefault : options[kind];
  if (value === false) return null;
  if (value === true) return { constraints: true, name: undefined };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError(`options.${kind}`, 'boolean or an object of MediaTrackConstraints');
  }
  if (value.name !== undefined && typeof value.name !== 'string') {
    throw typeError(`options.${kind}.name`, 'string');
  }
  const constraints = {};
  for (const [key, v] of Object.entries(value)) {
    if (!OUR_KEYS.includes(key)) constraints[key] = v;
  }
  return { constraints: Object.keys(constraints).length ? constraints : true, name: value.name };
}
