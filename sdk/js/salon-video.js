// salon-video: Salon's browser SDK, with the API of twilio-video 2.x.
//
//   import { connect } from 'http://localhost:3000/sdk/salon-video.js';
//   const room = await connect(token, { name: 'standup', audio: true, video: { width: 640 } });
//
// (or, from a <script> tag, /sdk/salon-video.global.js and `Twilio.Video`.)
//
// Reading order, from connect() to the first trackSubscribed:
//   connect.js      arguments, local media, join, first offer
//   signaling.js    the WebSocket: join, pings, resume; where Salon is
//   peer.js         the RTCPeerConnection: offers, answers, codecs, mids ↔ track SIDs
//   room.js         server messages → participants, publications, events
//   participant.js  LocalParticipant (publishing) and RemoteParticipant
//   publication.js  track publications
//   track.js        tracks: attach(), detach(), enable(), disable(), stop()
//   localtracks.js  createLocalTracks and friends (getUserMedia)
//   processor.js    video processors (addProcessor)
//   preflight.js    runPreflight(), the connection test
//   errors.js       TwilioError and its coded subclasses
//   events.js       the EventEmitter every object above extends
//   log.js          Video.Logger (loglevel's API) and the SDK's own logs

import { VERSION, connect } from './connect.js';
import { TwilioError, createTwilioError, errors } from './errors.js';
import { createLocalAudioTrack, createLocalTracks, createLocalVideoTrack } from './localtracks.js';
import { Logger } from './log.js';
import { LocalParticipant, Participant, RemoteParticipant } from './participant.js';
import {
  LocalAudioTrackPublication, LocalDataTrackPublication, LocalTrackPublication, LocalVideoTrackPublication,
  RemoteAudioTrackPublication, RemoteDataTrackPublication, RemoteTrackPublication, RemoteVideoTrackPublication,
  TrackPublication,
} from './publication.js';
import { PreflightTest, runPreflight } from './preflight.js';
import { Room } from './room.js';
import {
  AudioTrack, LocalAudioTrack, LocalDataTrack, LocalVideoTrack, MediaTrack, RemoteAudioTrack, RemoteDataTrack,
  RemoteVideoTrack, Track, VideoTrack,
} from './track.js';

/** Whether this browser has what the SDK needs (WebRTC, WebSocket, getUserMedia). */
export const isSupported = typeof globalThis.RTCPeerConnection === 'function'
  && typeof globalThis.WebSocket === 'function'
  && !!(globalThis.navigator && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

export const version = VERSION;

export {
  connect, createLocalTracks, createLocalAudioTrack, createLocalVideoTrack, runPreflight, Logger, PreflightTest,
  Room, Participant, LocalParticipant, RemoteParticipant,
  Track, MediaTrack, AudioTrack, VideoTrack,
  LocalAudioTrack, LocalVideoTrack, LocalDataTrack, RemoteAudioTrack, RemoteVideoTrack, RemoteDataTrack,
  TrackPublication, LocalTrackPublication, RemoteTrackPublication,
  LocalAudioTrackPublication, LocalVideoTrackPublication, LocalDataTrackPublication,
  RemoteAudioTrackPublication, RemoteVideoTrackPublication, RemoteDataTrackPublication,
  TwilioError, createTwilioError, errors,
};

/** Everything above as one object, for `import Video from '…/salon-video.js'`. */
const Video = {
  connect, createLocalTracks, createLocalAudioTrack, createLocalVideoTrack, runPreflight, isSupported, version, Logger,
  PreflightTest,
  Room, Participant, LocalParticipant, RemoteParticipant,
  Track, MediaTrack, AudioTrack, VideoTrack,
  LocalAudioTrack, LocalVideoTrack, LocalDataTrack, RemoteAudioTrack, RemoteVideoTrack, RemoteDataTrack,
  TrackPublication, LocalTrackPublication, RemoteTrackPublication,
  LocalAudioTrackPublication, LocalVideoTrackPublication, LocalDataTrackPublication,
  RemoteAudioTrackPublication, RemoteVideoTrackPublication, RemoteDataTrackPublication,
  TwilioError, createTwilioError, errors,
};
export default Video;
