// Type definitions for salon-video 0.1 — Salon's browser SDK, with the API of
// twilio-video 2.x. Hand-kept: update it with the JavaScript modules.

export const version: string;
export const isSupported: boolean;

// ---- errors ------------------------------------------------------------------

/** An error with Twilio's numeric code (20101 invalid token, 53105 room full, 53118 room completed …). */
export class TwilioError extends Error {
  code: number;
  message: string;
  constructor(code: number, message?: string);
}
export function createTwilioError(code: number, message?: string): TwilioError;
/** Twilio's error classes by name: `errors.RoomCompletedError`, `errors.RoomMaxParticipantsExceededError` … */
export const errors: Record<string, new (message?: string) => TwilioError>;

// ---- events ------------------------------------------------------------------

declare class EventEmitter {
  on(event: string, listener: (...args: any[]) => void): this;
  addListener(event: string, listener: (...args: any[]) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event: string, listener: (...args: any[]) => void): this;
  removeListener(event: string, listener: (...args: any[]) => void): this;
  removeAllListeners(event?: string): this;
  emit(event: string, ...args: any[]): boolean;
  listenerCount(event: string): number;
  listeners(event: string): Array<(...args: any[]) => void>;
}

// ---- tracks ------------------------------------------------------------------

export namespace Track {
  type Kind = 'audio' | 'video' | 'data';
  type Priority = 'low' | 'standard' | 'high';
  type ID = string;
  type SID = string;
}

export class Track extends EventEmitter {
  kind: Track.Kind;
  name: string;
}

export class MediaTrack extends Track {
  isStarted: boolean;
  readonly isEnabled: boolean;
  mediaStreamTrack: MediaStreamTrack;
  attach(element?: HTMLMediaElement | string): HTMLMediaElement;
  detach(element: HTMLMediaElement | string): HTMLMediaElement;
  detach(): HTMLMediaElement[];
  on(event: 'enabled' | 'disabled' | 'started', listener: (track: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export class AudioTrack extends MediaTrack {
  kind: 'audio';
}

export namespace VideoTrack {
  interface Dimensions {
    width: number | null;
    height: number | null;
  }
}

export class VideoTrack extends MediaTrack {
  kind: 'video';
  dimensions: VideoTrack.Dimensions;
  processor: null;
  processedTrack: null;
  on(event: 'dimensionsChanged', listener: (track: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export interface LocalTrackOptions {
  name?: string;
}

interface LocalMediaTrackMethods {
  id: Track.ID;
  isStopped: boolean;
  readonly isMuted: boolean;
  enable(enabled?: boolean): this;
  disable(): this;
  stop(): this;
  restart(constraints?: MediaTrackConstraints): Promise<void>;
}

export class LocalAudioTrack extends AudioTrack implements LocalMediaTrackMethods {
  constructor(mediaStreamTrack: MediaStreamTrack, options?: LocalTrackOptions);
  id: Track.ID;
  isStopped: boolean;
  readonly isMuted: boolean;
  enable(enabled?: boolean): this;
  disable(): this;
  stop(): this;
  restart(constraints?: MediaTrackConstraints): Promise<void>;
  on(event: 'enabled' | 'disabled' | 'started' | 'stopped' | 'muted' | 'unmuted', listener: (track: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export class LocalVideoTrack extends VideoTrack implements LocalMediaTrackMethods {
  constructor(mediaStreamTrack: MediaStreamTrack, options?: LocalTrackOptions);
  id: Track.ID;
  isStopped: boolean;
  readonly isMuted: boolean;
  enable(enabled?: boolean): this;
  disable(): this;
  stop(): this;
  restart(constraints?: MediaTrackConstraints): Promise<void>;
  on(event: 'enabled' | 'disabled' | 'started' | 'stopped' | 'muted' | 'unmuted' | 'dimensionsChanged', listener: (track: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export interface LocalDataTrackOptions extends LocalTrackOptions {
  ordered?: boolean;
  maxPacketLifeTime?: number | null;
  maxRetransmits?: number | null;
}

export class LocalDataTrack extends Track {
  constructor(options?: LocalDataTrackOptions);
  id: Track.ID;
  kind: 'data';
  ordered: boolean;
  maxPacketLifeTime: number | null;
  maxRetransmits: number | null;
  reliable: boolean;
  send(data: string | Blob | ArrayBuffer | ArrayBufferView): void;
}

interface RemoteTrackMethods {
  sid: Track.SID;
  priority: Track.Priority | null;
  isSwitchedOff: boolean;
  setPriority(priority: Track.Priority | null): this;
}

export class RemoteAudioTrack extends AudioTrack implements RemoteTrackMethods {
  sid: Track.SID;
  priority: Track.Priority | null;
  isSwitchedOff: boolean;
  setPriority(priority: Track.Priority | null): this;
}

export class RemoteVideoTrack extends VideoTrack implements RemoteTrackMethods {
  sid: Track.SID;
  priority: Track.Priority | null;
  isSwitchedOff: boolean;
  setPriority(priority: Track.Priority | null): this;
  switchOn(): this;
  switchOff(): this;
  setContentPreferences(preferences: { renderDimensions?: VideoTrack.Dimensions }): this;
}

export class RemoteDataTrack extends Track {
  kind: 'data';
  sid: Track.SID;
  isEnabled: boolean;
  isSubscribed: boolean;
  isSwitchedOff: boolean;
  ordered: boolean;
  maxPacketLifeTime: number | null;
  maxRetransmits: number | null;
  reliable: boolean;
  priority: Track.Priority | null;
  setPriority(priority: Track.Priority | null): this;
  on(event: 'message', listener: (data: string | ArrayBuffer, track: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export type LocalTrack = LocalAudioTrack | LocalVideoTrack | LocalDataTrack;
export type RemoteTrack = RemoteAudioTrack | RemoteVideoTrack | RemoteDataTrack;

// ---- publications ------------------------------------------------------------

export class TrackPublication extends EventEmitter {
  trackSid: Track.SID;
  trackName: string;
  kind: Track.Kind;
  readonly isEnabled: boolean;
  readonly isTrackEnabled: boolean;
  on(event: 'trackEnabled' | 'trackDisabled', listener: () => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export class LocalTrackPublication extends TrackPublication {
  track: LocalTrack;
  priority: Track.Priority;
  setPriority(priority: Track.Priority): this;
  unpublish(): this;
}
export class LocalAudioTrackPublication extends LocalTrackPublication { track: LocalAudioTrack; }
export class LocalVideoTrackPublication extends LocalTrackPublication { track: LocalVideoTrack; }
export class LocalDataTrackPublication extends LocalTrackPublication { track: LocalDataTrack; }

export class RemoteTrackPublication extends TrackPublication {
  track: RemoteTrack | null;
  readonly isSubscribed: boolean;
  publishPriority: Track.Priority;
  on(event: 'subscribed' | 'unsubscribed', listener: (track: RemoteTrack) => void): this;
  on(event: 'subscriptionFailed', listener: (error: TwilioError) => void): this;
  on(event: 'trackEnabled' | 'trackDisabled', listener: () => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}
export class RemoteAudioTrackPublication extends RemoteTrackPublication { track: RemoteAudioTrack | null; }
export class RemoteVideoTrackPublication extends RemoteTrackPublication { track: RemoteVideoTrack | null; }
export class RemoteDataTrackPublication extends RemoteTrackPublication { track: RemoteDataTrack | null; }

// ---- participants ------------------------------------------------------------

export namespace Participant {
  type Identity = string;
  type SID = string;
}

export class Participant extends EventEmitter {
  sid: Participant.SID;
  identity: Participant.Identity;
  state: 'connected' | 'reconnecting' | 'disconnected';
  tracks: Map<Track.SID, TrackPublication>;
  audioTracks: Map<Track.SID, TrackPublication>;
  videoTracks: Map<Track.SID, TrackPublication>;
  dataTracks: Map<Track.SID, TrackPublication>;
  networkQualityLevel: number | null;
  networkQualityStats: null;
}

export interface EncodingParameters {
  maxAudioBitrate?: number | null;
  maxVideoBitrate?: number | null;
}

export class LocalParticipant extends Participant {
  tracks: Map<Track.SID, LocalTrackPublication>;
  audioTracks: Map<Track.SID, LocalAudioTrackPublication>;
  videoTracks: Map<Track.SID, LocalVideoTrackPublication>;
  dataTracks: Map<Track.SID, LocalDataTrackPublication>;
  signalingRegion: string;
  publishTrack(track: LocalTrack, options?: { priority?: Track.Priority }): Promise<LocalTrackPublication>;
  publishTrack(track: MediaStreamTrack, options?: LocalTrackOptions & { priority?: Track.Priority }): Promise<LocalTrackPublication>;
  publishTracks(tracks: Array<LocalTrack | MediaStreamTrack>): Promise<LocalTrackPublication[]>;
  unpublishTrack(track: LocalTrack | MediaStreamTrack): LocalTrackPublication | null;
  unpublishTracks(tracks: Array<LocalTrack | MediaStreamTrack>): LocalTrackPublication[];
  setParameters(encodingParameters?: EncodingParameters | null): this;
  setNetworkQualityConfiguration(configuration: object): this;
  on(event: 'trackPublished', listener: (publication: LocalTrackPublication) => void): this;
  on(event: 'trackPublicationFailed', listener: (error: TwilioError, track: LocalTrack) => void): this;
  on(event: 'trackEnabled' | 'trackDisabled' | 'trackStopped', listener: (track: LocalTrack) => void): this;
  on(event: 'disconnected', listener: (participant: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export class RemoteParticipant extends Participant {
  tracks: Map<Track.SID, RemoteTrackPublication>;
  audioTracks: Map<Track.SID, RemoteAudioTrackPublication>;
  videoTracks: Map<Track.SID, RemoteVideoTrackPublication>;
  dataTracks: Map<Track.SID, RemoteDataTrackPublication>;
  on(event: 'trackSubscribed' | 'trackUnsubscribed', listener: (track: RemoteTrack, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackPublished' | 'trackUnpublished' | 'trackEnabled' | 'trackDisabled', listener: (publication: RemoteTrackPublication) => void): this;
  on(event: 'trackSubscriptionFailed', listener: (error: TwilioError, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackMessage', listener: (data: string | ArrayBuffer, track: RemoteDataTrack) => void): this;
  on(event: 'trackStarted' | 'trackDimensionsChanged', listener: (track: RemoteTrack) => void): this;
  on(event: 'disconnected', listener: (participant: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

// ---- room --------------------------------------------------------------------

export namespace Room {
  type SID = string;
}

export interface StatsReport {
  peerConnectionId: string;
  localAudioTrackStats: object[];
  localVideoTrackStats: object[];
  remoteAudioTrackStats: object[];
  remoteVideoTrackStats: Array<{ trackSid: string; framesDecoded: number; [key: string]: unknown }>;
}

export class Room extends EventEmitter {
  sid: Room.SID;
  name: string;
  state: 'connected' | 'reconnecting' | 'disconnected';
  localParticipant: LocalParticipant;
  participants: Map<Participant.SID, RemoteParticipant>;
  dominantSpeaker: RemoteParticipant | null;
  isRecording: boolean;
  mediaRegion: string;
  disconnect(): this;
  getStats(): Promise<StatsReport[]>;
  refreshInactiveMedia(): void;

  on(event: 'disconnected', listener: (room: Room, error?: TwilioError) => void): this;
  on(event: 'participantConnected' | 'participantDisconnected', listener: (participant: RemoteParticipant) => void): this;
  on(event: 'reconnecting', listener: (error: TwilioError) => void): this;
  on(event: 'reconnected', listener: () => void): this;
  on(event: 'trackSubscribed' | 'trackUnsubscribed', listener: (track: RemoteTrack, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackPublished' | 'trackUnpublished' | 'trackEnabled' | 'trackDisabled', listener: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackSubscriptionFailed', listener: (error: TwilioError, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackMessage', listener: (data: string | ArrayBuffer, track: RemoteDataTrack, participant: RemoteParticipant) => void): this;
  on(event: 'trackStarted' | 'trackDimensionsChanged', listener: (track: RemoteTrack, participant: RemoteParticipant) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

// ---- connecting ----------------------------------------------------------------

export type VideoCodec = 'VP8' | 'H264' | 'VP9';
export type CreateLocalTrackOptions = MediaTrackConstraints & LocalTrackOptions;

export interface ConnectOptions {
  /** The room's unique name or RM SID; default: the token's room grant. */
  name?: string | null;
  audio?: boolean | CreateLocalTrackOptions;
  video?: boolean | CreateLocalTrackOptions;
  tracks?: Array<LocalTrack | MediaStreamTrack>;
  automaticSubscription?: boolean;
  preferredVideoCodecs?: Array<VideoCodec | { codec: VideoCodec }> | 'auto';
  preferredAudioCodecs?: Array<string | { codec: string }>;
  maxAudioBitrate?: number | null;
  maxVideoBitrate?: number | null;
  /** Accepted; takes effect when the server supports it. */
  dominantSpeaker?: boolean;
  /** Accepted; takes effect when the server supports it. */
  networkQuality?: boolean | object;
  /** Accepted; takes effect when the server supports it. */
  bandwidthProfile?: object;
  rtcConfiguration?: RTCConfiguration;
  /** Where Salon is (http(s):// or ws(s)://); default: where the SDK was loaded from. */
  url?: string;
  [other: string]: unknown;
}

export interface CreateLocalTracksOptions {
  audio?: boolean | CreateLocalTrackOptions;
  video?: boolean | CreateLocalTrackOptions;
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
}

export interface CancelablePromise<T> extends Promise<T> {
  cancel(): void;
}

export function connect(token: string, options?: ConnectOptions): CancelablePromise<Room>;
export function createLocalTracks(options?: CreateLocalTracksOptions): Promise<Array<LocalAudioTrack | LocalVideoTrack>>;
export function createLocalAudioTrack(options?: CreateLocalTrackOptions): Promise<LocalAudioTrack>;
export function createLocalVideoTrack(options?: CreateLocalTrackOptions): Promise<LocalVideoTrack>;

declare const Video: {
  connect: typeof connect;
  createLocalTracks: typeof createLocalTracks;
  createLocalAudioTrack: typeof createLocalAudioTrack;
  createLocalVideoTrack: typeof createLocalVideoTrack;
  isSupported: boolean;
  version: string;
  Room: typeof Room;
  Participant: typeof Participant;
  LocalParticipant: typeof LocalParticipant;
  RemoteParticipant: typeof RemoteParticipant;
  Track: typeof Track;
  MediaTrack: typeof MediaTrack;
  AudioTrack: typeof AudioTrack;
  VideoTrack: typeof VideoTrack;
  LocalAudioTrack: typeof LocalAudioTrack;
  LocalVideoTrack: typeof LocalVideoTrack;
  LocalDataTrack: typeof LocalDataTrack;
  RemoteAudioTrack: typeof RemoteAudioTrack;
  RemoteVideoTrack: typeof RemoteVideoTrack;
  RemoteDataTrack: typeof RemoteDataTrack;
  TrackPublication: typeof TrackPublication;
  LocalTrackPublication: typeof LocalTrackPublication;
  RemoteTrackPublication: typeof RemoteTrackPublication;
  TwilioError: typeof TwilioError;
  createTwilioError: typeof createTwilioError;
  errors: typeof errors;
};
export default Video;
