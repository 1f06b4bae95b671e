// Type definitions for salon-video 0.2 — Salon's browser SDK, with the API
// of twilio-video 2.x.
//
// Hand-kept: update it with the JavaScript modules. It declares everything
// twilio-video 2.36's own type definitions declare, under the same names and
// at least as permissively, so a TypeScript app written against twilio-video
// compiles unchanged against salon-video (tests/types compiles one, with
// `--strict`, against both). Salon's additions are marked "Salon:".

// ---- the module --------------------------------------------------------------

export const version: string;
export const isSupported: boolean;
/** loglevel's root logger; the SDK logs to `Logger.getLogger('twilio-video')` (level `warn` by default). */
export const Logger: Log.RootLogger;

/**
 * Join a room. Resolves with the Room; rejects with a TwilioError (20101
 * invalid token, 53105 room full, …), a getUserMedia DOMException, or a
 * TypeError/RangeError for bad arguments.
 */
export function connect(token: string, options?: ConnectOptions): CancelablePromise<Room>;
export function createLocalAudioTrack(options?: CreateLocalTrackOptions | CreateLocalAudioTrackOptions): Promise<LocalAudioTrack>;
export function createLocalTracks(options?: CreateLocalTracksOptions): Promise<LocalTrack[]>;
export function createLocalVideoTrack(options?: CreateLocalTrackOptions): Promise<LocalVideoTrack>;
/** The connection test: signaling, ICE, DTLS and media to Salon's media server. */
export function runPreflight(token: string, options?: PreflightOptions): PreflightTest;

/** Salon: every export above as one object (`import Video from 'salon-video'`). */
declare const Video: {
  connect: typeof connect;
  createLocalAudioTrack: typeof createLocalAudioTrack;
  createLocalTracks: typeof createLocalTracks;
  createLocalVideoTrack: typeof createLocalVideoTrack;
  runPreflight: typeof runPreflight;
  isSupported: boolean;
  version: string;
  Logger: Log.RootLogger;
  PreflightTest: typeof PreflightTest;
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
  LocalAudioTrackPublication: typeof LocalAudioTrackPublication;
  LocalVideoTrackPublication: typeof LocalVideoTrackPublication;
  LocalDataTrackPublication: typeof LocalDataTrackPublication;
  RemoteAudioTrackPublication: typeof RemoteAudioTrackPublication;
  RemoteVideoTrackPublication: typeof RemoteVideoTrackPublication;
  RemoteDataTrackPublication: typeof RemoteDataTrackPublication;
  TwilioError: typeof TwilioError;
  createTwilioError: typeof createTwilioError;
  errors: typeof errors;
};
export default Video;

// ---- events ------------------------------------------------------------------

/**
 * Node's EventEmitter API, which every SDK object has (twilio-video's extend
 * Node's `events`); structurally a Node `EventEmitter`.
 */
export class EventEmitter {
  static defaultMaxListeners: number;
  addListener(eventName: string | symbol, listener: (...args: any[]) => void): this;
  on(eventName: string | symbol, listener: (...args: any[]) => void): this;
  once(eventName: string | symbol, listener: (...args: any[]) => void): this;
  prependListener(eventName: string | symbol, listener: (...args: any[]) => void): this;
  prependOnceListener(eventName: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(eventName: string | symbol, listener: (...args: any[]) => void): this;
  off(eventName: string | symbol, listener: (...args: any[]) => void): this;
  removeAllListeners(eventName?: string | symbol): this;
  setMaxListeners(n: number): this;
  getMaxListeners(): number;
  listeners(eventName: string | symbol): Function[];
  rawListeners(eventName: string | symbol): Function[];
  emit(eventName: string | symbol, ...args: any[]): boolean;
  listenerCount(eventName: string | symbol, listener?: Function): number;
  eventNames(): Array<string | symbol>;
}

/** A state name; the ones listed are those Salon uses. */
type State<Known extends string> = Known | (string & {});

// ---- errors ------------------------------------------------------------------

/** An error with Twilio's numeric code (20101 invalid token, 53105 room full, 53118 room completed …). */
export class TwilioError extends Error {
  code: number;
  message: string;
  /** Salon: twilio-video's classes are not constructible; Salon's are. */
  constructor(code: number, message?: string);
}
/** Salon: the TwilioError subclass for a code, with the server's message. */
export function createTwilioError(code: number, message?: string): TwilioError;
/** Salon: Twilio's error classes by name: `errors.RoomCompletedError`, `errors.RoomMaxParticipantsExceededError` … */
export const errors: Record<string, new (message?: string) => TwilioError>;

// ---- logging (loglevel's API) --------------------------------------------------

export namespace Log {
  interface LogLevel {
    TRACE: 0;
    DEBUG: 1;
    INFO: 2;
    WARN: 3;
    ERROR: 4;
    SILENT: 5;
  }
  type LogLevelNumbers = LogLevel[keyof LogLevel];
  type LogLevelDesc = LogLevelNumbers | 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent' | keyof LogLevel;
  type LoggingMethod = (...message: any[]) => void;
  type MethodFactory = (methodName: string, level: LogLevelNumbers, loggerName: string | symbol) => LoggingMethod;

  interface Logger {
    readonly levels: LogLevel;
    /** Makes the logging methods; call setLevel() (or rebuild()) after replacing it. */
    methodFactory: MethodFactory;
    trace(...msg: any[]): void;
    debug(...msg: any[]): void;
    log(...msg: any[]): void;
    info(...msg: any[]): void;
    warn(...msg: any[]): void;
    error(...msg: any[]): void;
    /** Persisted in localStorage unless `persist` is false. */
    setLevel(level: LogLevelDesc, persist?: boolean): void;
    getLevel(): LogLevel[keyof LogLevel];
    setDefaultLevel(level: LogLevelDesc): void;
    /** Salon (loglevel 1.8+): forget the persisted level. */
    resetLevel(): void;
    /** Salon (loglevel 1.9+): make the logging methods again. */
    rebuild(): void;
    enableAll(persist?: boolean): void;
    disableAll(persist?: boolean): void;
  }

  interface RootLogger extends Logger {
    noConflict(): any;
    getLogger(name: string | symbol): Logger;
    getLoggers(): { [name: string]: Logger };
    default: RootLogger;
  }
}

/** @deprecated twilio-video's: use Video.Logger */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'off';

/** @deprecated twilio-video's: use Video.Logger */
export interface LogLevels {
  default: LogLevel;
  media: LogLevel;
  signaling: LogLevel;
  webrtc: LogLevel;
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
  isEnabled: boolean;
  mediaStreamTrack: MediaStreamTrack;

  attach(element?: HTMLMediaElement | string): HTMLMediaElement;
  detach(element: HTMLMediaElement | string): HTMLMediaElement;
  detach(): HTMLMediaElement[];

  on(event: 'disabled', listener: (track: this) => void): this;
  on(event: 'enabled', listener: (track: this) => void): this;
  on(event: 'started', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
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

/** A frame the browser decodes (WebCodecs' VideoFrame), as a processor may receive it. */
declare class VideoFrame {
  displayHeight: number;
  displayWidth: number;
  timestamp: number;
  constructor(videoSource: HTMLVideoElement);
  close(): void;
}

/**
 * What `addProcessor` takes: `processFrame` draws each frame of the input
 * into the output canvas (the context type of `outputFrameBufferContextType`).
 * @twilio/video-processors' processors are VideoProcessors.
 */
export class VideoProcessor {
  processFrame(
    inputFrameBuffer: OffscreenCanvas | HTMLCanvasElement | HTMLVideoElement | VideoFrame,
    outputFrameBuffer: HTMLCanvasElement
  ): Promise<void> | void;
}

export interface AddProcessorOptions {
  /** What processFrame is given: default 'offscreencanvas' (or 'canvas' without OffscreenCanvas). */
  inputFrameBufferType?: 'video' | 'canvas' | 'offscreencanvas' | 'videoframe';
  /** The output canvas's context: default '2d'; 'bitmaprenderer' for @twilio/video-processors' WebGL2 pipeline. */
  outputFrameBufferContextType?: string;
}

export class VideoTrack extends MediaTrack {
  dimensions: VideoTrack.Dimensions;
  kind: 'video';
  processor: VideoProcessor | null;
  processedTrack: MediaStreamTrack | null;

  addProcessor(processor: VideoProcessor, options?: AddProcessorOptions): this;
  removeProcessor(processor: VideoProcessor): this;

  on(event: 'dimensionsChanged', listener: (track: this) => void): this;
  on(event: 'disabled', listener: (track: this) => void): this;
  on(event: 'enabled', listener: (track: this) => void): this;
  on(event: 'started', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface LocalTrackOptions {
  /** @deprecated twilio-video's: use Video.Logger */
  logLevel?: LogLevel | LogLevels;
  name?: string;
  workaroundWebKitBug1208516?: boolean;
}

export type NoiseCancellationVendor = 'krisp' | 'rnnoise';

/** twilio-video's noise cancellation plugins (Krisp, RNNoise); Salon accepts the options and does not load them. */
export interface NoiseCancellation {
  readonly vendor: NoiseCancellationVendor;
  readonly sourceTrack: MediaStreamTrack;
  readonly isEnabled: boolean;
  enable: () => Promise<void>;
  disable: () => Promise<void>;
}

export interface NoiseCancellationOptions {
  sdkAssetsPath: string;
  vendor: NoiseCancellationVendor;
}

export class LocalAudioTrack extends AudioTrack {
  constructor(mediaStreamTrack: MediaStreamTrack, options?: LocalTrackOptions);

  id: Track.ID;
  isMuted: boolean;
  isStopped: boolean;
  /** Always undefined in Salon (no noise cancellation plugin). */
  noiseCancellation?: NoiseCancellation;

  disable(): this;
  enable(enabled?: boolean): this;
  restart(constraints?: MediaTrackConstraints): Promise<void>;
  stop(): this;

  on(event: 'disabled', listener: (track: this) => void): this;
  on(event: 'enabled', listener: (track: this) => void): this;
  on(event: 'muted', listener: (track: this) => void): this;
  on(event: 'started', listener: (track: this) => void): this;
  on(event: 'stopped', listener: (track: this) => void): this;
  on(event: 'unmuted', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class LocalVideoTrack extends VideoTrack {
  constructor(mediaStreamTrack: MediaStreamTrack, options?: LocalTrackOptions);

  id: Track.ID;
  isMuted: boolean;
  isStopped: boolean;

  disable(): this;
  enable(enabled?: boolean): this;
  restart(constraints?: MediaTrackConstraints): Promise<void>;
  stop(): this;

  on(event: 'dimensionsChanged', listener: (track: VideoTrack) => void): this;
  on(event: 'disabled', listener: (track: this) => void): this;
  on(event: 'enabled', listener: (track: this) => void): this;
  on(event: 'muted', listener: (track: this) => void): this;
  on(event: 'started', listener: (track: this) => void): this;
  on(event: 'stopped', listener: (track: this) => void): this;
  on(event: 'unmuted', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface LocalDataTrackOptions extends LocalTrackOptions {
  maxPacketLifeTime?: number | null;
  maxRetransmits?: number | null;
  ordered?: boolean;
}

export class LocalDataTrack extends Track {
  constructor(options?: LocalDataTrackOptions);

  id: Track.ID;
  kind: 'data';
  maxPacketLifeTime: number | null;
  maxRetransmits: number | null;
  ordered: boolean;
  reliable: boolean;

  send(data: string | Blob | ArrayBuffer | ArrayBufferView): void;
}

export class RemoteAudioTrack extends AudioTrack {
  sid: Track.SID;
  priority: Track.Priority | null;
  /** Salon switches off video only: always false for audio. */
  isSwitchedOff: boolean;
  isEnabled: boolean;

  setPriority(priority: Track.Priority | null): this;

  on(event: 'disabled', listener: (track: this) => void): this;
  on(event: 'enabled', listener: (track: this) => void): this;
  on(event: 'started', listener: (track: this) => void): this;
  on(event: 'switchedOff', listener: (track: this) => void): this;
  on(event: 'switchedOn', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface VideoContentPreferences {
  renderDimensions?: VideoTrack.Dimensions;
}

export class RemoteVideoTrack extends VideoTrack {
  sid: Track.SID;
  priority: Track.Priority | null;
  isSwitchedOff: boolean;
  /** Salon's addition: why the server switched the track off (`disabled-by-subscriber`, `network-congestion`, `max-bandwidth-reached`, `max-tracks-switched-on`, `disabled-by-publisher`), null while on. */
  switchOffReason: string | null;
  isEnabled: boolean;

  /** Your priority for the track (`set_subscribe_priority`); null goes back to the publisher's. */
  setPriority(priority: Track.Priority | null): this;
  /** Only with `bandwidthProfile.video.clientTrackSwitchOffControl: 'manual'` (throws otherwise, as twilio-video does). */
  switchOn(): this;
  switchOff(): this;
  /** Only with `bandwidthProfile.video.contentPreferencesMode: 'manual'`: the server forwards the smallest simulcast layer that covers it. */
  setContentPreferences(content: VideoContentPreferences): this;

  on(event: 'dimensionsChanged', listener: (track: this) => void): this;
  on(event: 'disabled', listener: (track: this) => void): this;
  on(event: 'enabled', listener: (track: this) => void): this;
  on(event: 'started', listener: (track: this) => void): this;
  on(event: 'stopped', listener: (track: this) => void): this;
  on(event: 'switchedOff', listener: (track: this) => void): this;
  on(event: 'switchedOn', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class RemoteDataTrack extends Track {
  isEnabled: boolean;
  isSubscribed: boolean;
  isSwitchedOff: boolean;
  kind: 'data';
  maxPacketLifeTime: number | null;
  maxRetransmits: number | null;
  ordered: boolean;
  priority: Track.Priority | null;
  reliable: boolean;
  sid: Track.SID;

  setPriority(priority: Track.Priority | null): this;

  on(event: 'message', listener: (data: string | ArrayBuffer, track: RemoteDataTrack) => void): this;
  on(event: 'switchedOff', listener: (track: this) => void): this;
  on(event: 'switchedOn', listener: (track: this) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export type LocalTrack = LocalAudioTrack | LocalVideoTrack | LocalDataTrack;
export type RemoteTrack = RemoteAudioTrack | RemoteVideoTrack | RemoteDataTrack;
export type DataTrack = LocalDataTrack | RemoteDataTrack;

// ---- publications ------------------------------------------------------------

export class TrackPublication extends EventEmitter {
  isEnabled: boolean;
  kind: Track.Kind;
  trackName: string;
  trackSid: Track.SID;

  on(event: 'trackDisabled', listener: () => void): this;
  on(event: 'trackEnabled', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class LocalTrackPublication extends TrackPublication {
  isTrackEnabled: boolean;
  kind: Track.Kind;
  priority: Track.Priority;
  track: LocalTrack;

  /** Sent to the server (`set_publish_priority`); subscribers hear `trackPublishPriorityChanged`. */
  setPriority(priority: Track.Priority): this;
  unpublish(): this;

  on(event: 'trackDisabled', listener: () => void): this;
  on(event: 'trackEnabled', listener: () => void): this;
  on(event: 'warning', listener: (name: string) => void): this;
  on(event: 'warningsCleared', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class LocalAudioTrackPublication extends LocalTrackPublication {
  kind: 'audio';
  track: LocalAudioTrack;
}

export class LocalVideoTrackPublication extends LocalTrackPublication {
  kind: 'video';
  track: LocalVideoTrack;
}

export class LocalDataTrackPublication extends LocalTrackPublication {
  kind: 'data';
  track: LocalDataTrack;
}

export class RemoteTrackPublication extends TrackPublication {
  isSubscribed: boolean;
  isTrackEnabled: boolean;
  kind: Track.Kind;
  publishPriority: Track.Priority;
  track: RemoteTrack | null;

  on(event: 'publishPriorityChanged', listener: (priority: Track.Priority) => void): this;
  on(event: 'subscribed', listener: (track: RemoteTrack) => void): this;
  on(event: 'subscriptionFailed', listener: (error: TwilioError) => void): this;
  on(event: 'trackDisabled', listener: () => void): this;
  on(event: 'trackEnabled', listener: () => void): this;
  on(event: 'trackSwitchedOff', listener: (track: RemoteTrack) => void): this;
  on(event: 'trackSwitchedOn', listener: (track: RemoteTrack) => void): this;
  on(event: 'unsubscribed', listener: (track: RemoteTrack) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class RemoteAudioTrackPublication extends RemoteTrackPublication {
  kind: 'audio';
  track: RemoteAudioTrack | null;

  on(event: 'subscribed', listener: (track: RemoteAudioTrack) => void): this;
  on(event: 'subscriptionFailed', listener: (error: TwilioError) => void): this;
  on(event: 'trackSwitchedOff', listener: (track: RemoteAudioTrack) => void): this;
  on(event: 'trackSwitchedOn', listener: (track: RemoteAudioTrack) => void): this;
  on(event: 'unsubscribed', listener: (track: RemoteAudioTrack) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class RemoteVideoTrackPublication extends RemoteTrackPublication {
  kind: 'video';
  track: RemoteVideoTrack | null;

  on(event: 'subscribed', listener: (track: RemoteVideoTrack) => void): this;
  on(event: 'subscriptionFailed', listener: (error: TwilioError) => void): this;
  on(event: 'trackSwitchedOff', listener: (track: RemoteVideoTrack) => void): this;
  on(event: 'trackSwitchedOn', listener: (track: RemoteVideoTrack) => void): this;
  on(event: 'unsubscribed', listener: (track: RemoteVideoTrack) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class RemoteDataTrackPublication extends RemoteTrackPublication {
  kind: 'data';
  track: RemoteDataTrack | null;

  on(event: 'subscribed', listener: (track: RemoteDataTrack) => void): this;
  on(event: 'subscriptionFailed', listener: (error: TwilioError) => void): this;
  on(event: 'unsubscribed', listener: (track: RemoteDataTrack) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export type AudioTrackPublication = LocalAudioTrackPublication | RemoteAudioTrackPublication;
export type DataTrackPublication = LocalDataTrackPublication | RemoteDataTrackPublication;
export type VideoTrackPublication = LocalVideoTrackPublication | RemoteVideoTrackPublication;

// ---- network quality (computed by the server's adaptive video) -----------------

export type NetworkQualityLevel = number;
export type NetworkQualityVerbosity = 0 | 1 | 2 | 3;

export class NetworkQualityFractionLostStats {
  fractionLost: number | null;
  level: NetworkQualityLevel | null;
}

export class NetworkQualityBandwidthStats {
  actual: number | null;
  available: number | null;
  level: NetworkQualityLevel | null;
}

export class NetworkQualityLatencyStats {
  jitter: number | null;
  rtt: number | null;
  level: NetworkQualityLevel | null;
}

export class NetworkQualitySendOrRecvStats {
  bandwidth: NetworkQualityBandwidthStats | null;
  latency: NetworkQualityLatencyStats | null;
  fractionLost: NetworkQualityFractionLostStats | null;
}

export class NetworkQualityMediaStats {
  send: NetworkQualityLevel;
  recv: NetworkQualityLevel;
  sendStats: NetworkQualitySendOrRecvStats | null;
  recvStats: NetworkQualitySendOrRecvStats | null;
}

export class NetworkQualityStats {
  level: NetworkQualityLevel;
  audio: NetworkQualityMediaStats | null;
  video: NetworkQualityMediaStats | null;
}

export interface NetworkQualityConfiguration {
  local?: NetworkQualityVerbosity;
  remote?: NetworkQualityVerbosity;
}

// ---- participants ------------------------------------------------------------

export namespace Participant {
  type Identity = string;
  type SID = string;
}

export class Participant extends EventEmitter {
  audioTracks: Map<Track.SID, AudioTrackPublication>;
  dataTracks: Map<Track.SID, DataTrackPublication>;
  identity: Participant.Identity;
  /** From the server's reports (connect()'s `networkQuality`); null until the first. */
  networkQualityLevel: NetworkQualityLevel | null;
  networkQualityStats: NetworkQualityStats | null;
  sid: Participant.SID;
  state: State<'connected' | 'reconnecting' | 'disconnected'>;
  tracks: Map<Track.SID, TrackPublication>;
  videoTracks: Map<Track.SID, VideoTrackPublication>;

  on(event: 'disconnected', listener: (participant: this) => void): this;
  on(event: 'networkQualityLevelChanged', listener: (networkQualityLevel: NetworkQualityLevel, networkQualityStats: NetworkQualityStats) => void): this;
  on(event: 'reconnected', listener: (participant: this) => void): this;
  on(event: 'reconnecting', listener: (participant: this) => void): this;
  on(event: 'trackDimensionsChanged', listener: (track: VideoTrack) => void): this;
  on(event: 'trackStarted', listener: (track: Track) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface EncodingParameters {
  maxAudioBitrate?: number | null;
  maxVideoBitrate?: number | null;
}

export interface LocalTrackPublishOptions {
  priority?: Track.Priority;
}

export interface MediaStreamTrackPublishOptions extends LocalTrackOptions {
  priority?: Track.Priority;
}

export class LocalParticipant extends Participant {
  audioTracks: Map<Track.SID, LocalAudioTrackPublication>;
  dataTracks: Map<Track.SID, LocalDataTrackPublication>;
  tracks: Map<Track.SID, LocalTrackPublication>;
  videoTracks: Map<Track.SID, LocalVideoTrackPublication>;
  signalingRegion: string;

  publishTrack(track: LocalTrack, options?: LocalTrackPublishOptions): Promise<LocalTrackPublication>;
  publishTrack(track: MediaStreamTrack, options?: MediaStreamTrackPublishOptions): Promise<LocalTrackPublication>;
  publishTracks(tracks: Array<LocalTrack | MediaStreamTrack>): Promise<LocalTrackPublication[]>;
  /** Sent to the server (`set_network_quality`). */
  setNetworkQualityConfiguration(networkQualityConfiguration: NetworkQualityConfiguration): this;
  setParameters(encodingParameters?: EncodingParameters | null): this;
  unpublishTrack(track: LocalTrack | MediaStreamTrack): LocalTrackPublication | null;
  unpublishTracks(tracks: Array<LocalTrack | MediaStreamTrack>): LocalTrackPublication[];

  on(event: 'disconnected', listener: (participant: this) => void): this;
  on(event: 'networkQualityLevelChanged', listener: (networkQualityLevel: NetworkQualityLevel, networkQualityStats: NetworkQualityStats) => void): this;
  on(event: 'reconnected', listener: (participant: this) => void): this;
  on(event: 'reconnecting', listener: (participant: this) => void): this;
  on(event: 'trackDimensionsChanged', listener: (track: LocalVideoTrack) => void): this;
  on(event: 'trackDisabled', listener: (track: LocalTrack) => void): this;
  on(event: 'trackEnabled', listener: (track: LocalTrack) => void): this;
  on(event: 'trackPublicationFailed', listener: (error: TwilioError, track: LocalTrack) => void): this;
  /** After connect() has resolved for the tracks it published, as in twilio-video. */
  on(event: 'trackPublished', listener: (publication: LocalTrackPublication) => void): this;
  on(event: 'trackStarted', listener: (track: LocalTrack) => void): this;
  on(event: 'trackStopped', listener: (track: LocalTrack) => void): this;
  on(event: 'trackWarning', listener: (name: string, publication: LocalTrackPublication) => void): this;
  on(event: 'trackWarningsCleared', listener: (publication: LocalTrackPublication) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class RemoteParticipant extends Participant {
  audioTracks: Map<Track.SID, RemoteAudioTrackPublication>;
  dataTracks: Map<Track.SID, RemoteDataTrackPublication>;
  tracks: Map<Track.SID, RemoteTrackPublication>;
  videoTracks: Map<Track.SID, RemoteVideoTrackPublication>;

  on(event: 'disconnected', listener: (participant: this) => void): this;
  on(event: 'networkQualityLevelChanged', listener: (networkQualityLevel: NetworkQualityLevel, networkQualityStats: NetworkQualityStats) => void): this;
  on(event: 'reconnected', listener: (participant: this) => void): this;
  on(event: 'reconnecting', listener: (participant: this) => void): this;
  on(event: 'trackDimensionsChanged', listener: (track: RemoteVideoTrack) => void): this;
  on(event: 'trackDisabled', listener: (track: RemoteTrackPublication) => void): this;
  on(event: 'trackEnabled', listener: (track: RemoteTrackPublication) => void): this;
  on(event: 'trackMessage', listener: (data: string | ArrayBuffer, track: RemoteDataTrack) => void): this;
  on(event: 'trackPublished', listener: (publication: RemoteTrackPublication) => void): this;
  on(event: 'trackPublishPriorityChanged', listener: (priority: Track.Priority, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackStarted', listener: (track: RemoteTrack) => void): this;
  on(event: 'trackSubscribed', listener: (track: RemoteTrack, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackSubscriptionFailed', listener: (error: TwilioError, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackSwitchedOff', listener: (track: RemoteTrack, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackSwitchedOn', listener: (track: RemoteTrack, publication: RemoteTrackPublication) => void): this;
  on(event: 'trackUnpublished', listener: (publication: RemoteTrackPublication) => void): this;
  on(event: 'trackUnsubscribed', listener: (track: RemoteTrack, publication: RemoteTrackPublication) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

// ---- stats -------------------------------------------------------------------

export type AudioLevel = number;

export class TrackStats {
  trackId: Track.ID;
  trackSid: Track.SID;
  timestamp: number;
  ssrc: string;
  packetsLost: number | null;
  codec: string | null;
}

export class LocalTrackStats extends TrackStats {
  bytesSent: number | null;
  packetsSent: number | null;
  roundTripTime: number | null;
  jitter: number | null;
}

export class LocalVideoTrackStats extends LocalTrackStats {
  captureDimensions: VideoTrack.Dimensions | null;
  dimensions: VideoTrack.Dimensions | null;
  captureFrameRate: number | null;
  frameRate: number | null;
  qualityLimitationReason?: 'none' | 'cpu' | 'bandwidth' | 'other';
}

export class LocalAudioTrackStats extends LocalTrackStats {
  audioLevel: AudioLevel | null;
}

export class RemoteTrackStats extends TrackStats {
  bytesReceived: number | null;
  packetsReceived: number | null;
  jitter: number | null;
}

export class RemoteAudioTrackStats extends RemoteTrackStats {
  audioLevel: AudioLevel | null;
}

export class RemoteVideoTrackStats extends RemoteTrackStats {
  dimensions: VideoTrack.Dimensions | null;
  frameRate: number | null;
  freezeCount?: number;
  /** Salon: frames decoded so far. */
  framesDecoded?: number;
}

export class StatsReport {
  peerConnectionId: string;
  localAudioTrackStats: LocalAudioTrackStats[];
  localVideoTrackStats: LocalVideoTrackStats[];
  remoteAudioTrackStats: RemoteAudioTrackStats[];
  remoteVideoTrackStats: RemoteVideoTrackStats[];
}

// ---- room --------------------------------------------------------------------

export namespace Room {
  type SID = string;
}

export type TranscriptionEvent = {
  language_code: string;
  partial_results: boolean;
  sequence_number: number;
  participant: string;
  timestamp: string;
  track: string;
  transcription: string;
  type: 'extension_transcriptions';
};

export class Room extends EventEmitter {
  /** The loudest participant, with `dominantSpeaker: true`; null until the server names one. */
  dominantSpeaker: RemoteParticipant | null;
  /** Whether some track of the room is being recorded; `recordingStarted` / `recordingStopped` say when it changes. */
  isRecording: boolean;
  localParticipant: LocalParticipant;
  mediaRegion: string;
  name: string;
  participants: Map<Participant.SID, RemoteParticipant>;
  sid: Room.SID;
  state: State<'connected' | 'reconnecting' | 'disconnected'>;

  disconnect(): this;
  getStats(): Promise<StatsReport[]>;
  refreshInactiveMedia(): void;

  on(event: 'disconnected', listener: (room: Room, error: TwilioError) => void): this;
  on(event: 'dominantSpeakerChanged', listener: (dominantSpeaker: RemoteParticipant) => void): this;
  on(event: 'transcription', listener: (transcriptionEvent: TranscriptionEvent) => void): this;
  on(event: 'participantConnected', listener: (participant: RemoteParticipant) => void): this;
  on(event: 'participantDisconnected', listener: (participant: RemoteParticipant) => void): this;
  on(event: 'participantReconnected', listener: (participant: RemoteParticipant) => void): this;
  on(event: 'participantReconnecting', listener: (participant: RemoteParticipant) => void): this;
  on(event: 'reconnected', listener: () => void): this;
  on(event: 'reconnecting', listener: (error: TwilioError) => void): this;
  on(event: 'recordingStarted', listener: () => void): this;
  on(event: 'recordingStopped', listener: () => void): this;
  on(event: 'trackDimensionsChanged', listener: (track: RemoteVideoTrack, participant: RemoteParticipant) => void): this;
  on(event: 'trackDisabled', listener: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackEnabled', listener: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackMessage', listener: (data: string | ArrayBuffer, track: RemoteDataTrack, participant: RemoteParticipant) => void): this;
  on(event: 'trackPublished', listener: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackPublishPriorityChanged', listener: (priority: Track.Priority, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackStarted', listener: (track: RemoteTrack, participant: RemoteParticipant) => void): this;
  on(event: 'trackSubscribed', listener: (track: RemoteTrack, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackSubscriptionFailed', listener: (error: TwilioError, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackSwitchedOff', listener: (track: RemoteTrack, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackSwitchedOn', listener: (track: RemoteTrack, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackUnpublished', listener: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackUnsubscribed', listener: (track: RemoteTrack, publication: RemoteTrackPublication, participant: RemoteParticipant) => void): this;
  on(event: 'trackWarning', listener: (name: string, publication: LocalTrackPublication, participant: LocalParticipant) => void): this;
  on(event: 'trackWarningsCleared', listener: (publication: LocalTrackPublication, participant: LocalParticipant) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

// ---- connecting ----------------------------------------------------------------

export type AudioCodec = 'isac' | 'opus' | 'PCMA' | 'PCMU';
export type VideoCodec = 'H264' | 'VP8' | 'VP9';
export type VideoEncodingMode = 'auto';

export interface AudioCodecSettings {
  codec: AudioCodec;
}

export interface OpusCodecSettings extends AudioCodecSettings {
  codec: 'opus';
  /** Discontinuous transmission while the microphone hears silence (default true). */
  dtx?: boolean;
}

export interface VideoCodecSettings {
  codec: VideoCodec;
}

export interface VP8CodecSettings extends VideoCodecSettings {
  codec: 'VP8';
  /** Publish three RID layers (¼, ½, full size); layers no one receives are paused. */
  simulcast?: boolean;
}

export type TrackSwitchOffMode = 'detected' | 'predicted' | 'disabled';
export type BandwidthProfileMode = 'grid' | 'collaboration' | 'presentation';
export type VideoContentPreferencesMode = 'auto' | 'manual';
export type ClientTrackSwitchOffControl = 'auto' | 'manual';
export type DefaultDeviceCaptureMode = 'auto' | 'manual';
export type NotifyWarning = 'recording-media-lost';

/** @deprecated twilio-video's: use contentPreferencesMode */
export interface VideoRenderDimensions {
  high?: VideoTrack.Dimensions;
  low?: VideoTrack.Dimensions;
  standard?: VideoTrack.Dimensions;
}

/** Sent to the server (`set_bandwidth_profile`), except clientTrackSwitchOffControl and contentPreferencesMode (the SDK's; `auto` by default). */
export interface VideoBandwidthProfileOptions {
  contentPreferencesMode?: VideoContentPreferencesMode;
  dominantSpeakerPriority?: Track.Priority;
  maxSubscriptionBitrate?: number;
  /** @deprecated use clientTrackSwitchOffControl */
  maxTracks?: number;
  mode?: BandwidthProfileMode;
  /** @deprecated use contentPreferencesMode */
  renderDimensions?: VideoRenderDimensions;
  clientTrackSwitchOffControl?: ClientTrackSwitchOffControl;
  trackSwitchOffMode?: TrackSwitchOffMode;
}

export interface BandwidthProfileOptions {
  video?: VideoBandwidthProfileOptions;
}

interface MediaImplementationOptions {
  /** Used instead of navigator.mediaDevices.getUserMedia. */
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
  enumerateDevices?: () => Promise<Array<any>>;
  MediaStream?: any;
  mapMediaElement?: (element: HTMLMediaElement) => void;
  disposeMediaElement?: (element: HTMLMediaElement) => void;
}

export interface CreateLocalTrackOptions extends MediaTrackConstraints, MediaImplementationOptions {
  /** @deprecated twilio-video's: use Video.Logger */
  logLevel?: LogLevel | LogLevels;
  name?: string;
  workaroundWebKitBug180748?: boolean;
  workaroundWebKitBug1208516?: boolean;
}

export interface CreateLocalAudioTrackOptions extends CreateLocalTrackOptions {
  defaultDeviceCaptureMode?: DefaultDeviceCaptureMode;
  /** Accepted; Salon loads no noise cancellation plugin. */
  noiseCancellationOptions?: NoiseCancellationOptions;
}

export interface ConnectOptions extends MediaImplementationOptions {
  audio?: boolean | CreateLocalTrackOptions | CreateLocalAudioTrackOptions;
  automaticSubscription?: boolean;
  bandwidthProfile?: BandwidthProfileOptions;
  dominantSpeaker?: boolean;
  receiveTranscriptions?: boolean;
  /** @deprecated use enableDscp */
  dscpTagging?: boolean;
  enableDscp?: boolean;
  /** @deprecated twilio-video's: use Video.Logger. The logger to log to (default 'twilio-video'). */
  loggerName?: string;
  eventListener?: EventListener;
  /** @deprecated use rtcConfiguration.iceServers */
  iceServers?: Array<RTCIceServer>;
  /** @deprecated use rtcConfiguration.iceTransportPolicy */
  iceTransportPolicy?: RTCIceTransportPolicy;
  insights?: boolean;
  maxAudioBitrate?: number | null;
  maxVideoBitrate?: number | null;
  /** The room's unique name or RM SID; default: the token's room grant, or else a new room named by its SID. */
  name?: string | null;
  networkQuality?: boolean | NetworkQualityConfiguration;
  notifyWarnings?: Array<NotifyWarning>;
  region?: string;
  preferredAudioCodecs?: Array<AudioCodec | AudioCodecSettings | OpusCodecSettings>;
  preferredVideoCodecs?: Array<VideoCodec | VideoCodecSettings | VP8CodecSettings> | VideoEncodingMode;
  /** @deprecated twilio-video's: use Video.Logger */
  logLevel?: LogLevel | LogLevels;
  tracks?: Array<LocalTrack | MediaStreamTrack>;
  video?: boolean | CreateLocalTrackOptions;
  rtcConfiguration?: RTCConfiguration;
  RTCPeerConnection?: any;
  /**
   * Salon: where Salon is (http(s):// or ws(s)://). Default: `SALON_VIDEO_URL`
   * (a global or a bundler define), else `<meta name="salon-video-url">`,
   * else the server the SDK was loaded from, else the page's origin.
   */
  url?: string;
  /** Salon: accepted as twilio-video's (its signaling server); prefer `url`. */
  wsServer?: string;
  /**
   * Salon: when the node holding the room is lost (a cluster node that dies
   * or drains), join the room of the same name again through `url` and keep
   * the same Room: `reconnecting`, the old room's participants
   * `participantDisconnected`, the new room's `participantConnected`, the
   * local tracks published again (`trackPublished`), `reconnected`; new
   * `room.sid` and `localParticipant.sid`. `disconnected` (53001) when no
   * join works within 30 s. Default: on when the server is a node of a
   * cluster, off on a single node. A completed room or a kick never rejoins.
   */
  rejoin?: boolean;
}

export interface CreateLocalTracksOptions extends MediaImplementationOptions {
  audio?: boolean | CreateLocalTrackOptions | CreateLocalAudioTrackOptions;
  /** @deprecated twilio-video's: use Video.Logger */
  logLevel?: LogLevel | LogLevels;
  loggerName?: string;
  tracks?: LocalTrack[];
  video?: boolean | CreateLocalTrackOptions;
}

export interface CancelablePromise<T> extends Promise<T> {
  cancel: () => void;
}

// ---- preflight -----------------------------------------------------------------

export interface PreflightOptions {
  /** How long to measure, in ms (default 10000). */
  duration?: number;
  /** Accepted; Salon has no regions. */
  region?: string;
  /** Salon: where Salon is (as ConnectOptions.url). */
  url?: string;
}

export interface TimeMeasurement {
  start: number;
  end?: number;
  duration?: number;
}

export interface NetworkTiming {
  connect?: TimeMeasurement;
  dtls?: TimeMeasurement;
  ice?: TimeMeasurement;
  peerConnection?: TimeMeasurement;
  media?: TimeMeasurement;
}

export interface RTCIceCandidateStats {
  transportId?: string;
  address?: string;
  port?: number;
  protocol?: string;
  candidateType?: string;
  priority?: number;
  url?: string;
  relayProtocol?: string;
}

export interface SelectedIceCandidatePairStats {
  localCandidate: RTCIceCandidateStats;
  remoteCandidate: RTCIceCandidateStats;
}

export interface Stats {
  average: number;
  max: number;
  min: number;
}

export interface ProgressEvent {
  duration: number;
  name: string;
}

export interface PreflightReportStats {
  /** Seconds: the jitter Salon sees on the test's audio. */
  jitter: Stats | null;
  /** Milliseconds. */
  rtt: Stats | null;
  /** Percent of packets lost on the way to Salon. */
  packetLoss: Stats | null;
}

export interface PreflightTestReport {
  testTiming: TimeMeasurement;
  networkTiming: NetworkTiming;
  stats: PreflightReportStats;
  iceCandidateStats: RTCIceCandidateStats[];
  selectedIceCandidatePairStats: SelectedIceCandidatePairStats | null;
  progressEvents: ProgressEvent[];
}

export class PreflightTest extends EventEmitter {
  /** Salon: constructible; runPreflight() is the usual way. */
  constructor(token: string, options?: PreflightOptions);
  stop(): void;
  on(event: 'progress', listener: (progress: string) => void): this;
  on(event: 'completed', listener: (report: PreflightTestReport) => void): this;
  on(event: 'failed', listener: (error: Error, report: PreflightTestReport) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export {};
