// A video call page written against twilio-video 2.x's types, the way apps
// use them: it imports 'twilio-video' and knows nothing of Salon. `check`
// compiles it with `tsc --strict` twice: against twilio-video's own types
// (proving it is a genuine twilio-video app) and with 'twilio-video'
// resolved to salon-video's index.d.ts (proving it moves to Salon with no
// change). It is compiled, never run.

import Video, {
  ConnectOptions,
  CreateLocalTrackOptions,
  LocalAudioTrack,
  LocalDataTrack,
  LocalTrack,
  LocalTrackPublication,
  LocalVideoTrack,
  LogLevels,
  NetworkQualityConfiguration,
  NetworkQualityLevel,
  NetworkQualityStats,
  NoiseCancellationOptions,
  Participant,
  RemoteAudioTrack,
  RemoteParticipant,
  RemoteTrack,
  RemoteTrackPublication,
  RemoteVideoTrack,
  Room,
  StatsReport,
  Track,
  TwilioError,
  VideoBandwidthProfileOptions,
  VideoTrack,
  connect,
  createLocalTracks,
} from 'twilio-video';
import * as TwilioVideo from 'twilio-video';

const stage = document.getElementById('stage') as HTMLDivElement;

// ---- options built in pieces, typed with the library's names ------------------

const bandwidth: VideoBandwidthProfileOptions = {
  mode: 'collaboration',
  dominantSpeakerPriority: 'high',
  clientTrackSwitchOffControl: 'auto',
  contentPreferencesMode: 'auto',
  trackSwitchOffMode: 'predicted',
  maxSubscriptionBitrate: 2_500_000,
};

const networkQuality: NetworkQualityConfiguration = { local: 1, remote: 2 };

const noiseCancellation: NoiseCancellationOptions = { sdkAssetsPath: '/assets/krisp', vendor: 'krisp' };

const legacyLevels: LogLevels = { default: 'warn', media: 'info', signaling: 'warn', webrtc: 'error' };

const camera: CreateLocalTrackOptions = { name: 'camera', width: 1280, height: 720, frameRate: 24 };

export function connectOptions(roomName: string, tracks?: LocalTrack[]): ConnectOptions {
  const options: ConnectOptions = {
    name: roomName,
    audio: { noiseCancellationOptions: noiseCancellation, echoCancellation: true },
    video: camera,
    bandwidthProfile: { video: bandwidth },
    dominantSpeaker: true,
    networkQuality,
    maxAudioBitrate: 16000,
    preferredVideoCodecs: [{ codec: 'VP8', simulcast: true }],
    preferredAudioCodecs: [{ codec: 'opus', dtx: false }, 'PCMU'],
    logLevel: legacyLevels,
    rtcConfiguration: { iceTransportPolicy: 'all' },
  };
  if (tracks) options.tracks = tracks;
  return options;
}

// ---- logging --------------------------------------------------------------------

export function verboseLogs(): void {
  const logger = Video.Logger.getLogger('twilio-video');
  const original = logger.methodFactory;
  logger.methodFactory = (methodName, level, loggerName) => {
    const method = original(methodName, level, loggerName);
    return (time: string, levelName: string, component: string, ...message: unknown[]) => {
      method(`[${component}]`, ...message);
    };
  };
  logger.setLevel('debug');
  const level: number = logger.getLevel();
  if (level > logger.levels.INFO) logger.setDefaultLevel('info');
  TwilioVideo.Logger.getLogger('twilio-video').setLevel(TwilioVideo.Logger.levels.WARN, false);
}

// ---- the call ---------------------------------------------------------------------

let activeRoom: Room | null = null;

export async function join(token: string, roomName: string): Promise<Room> {
  if (!Video.isSupported) throw new Error(`This browser cannot run twilio-video ${Video.version}`);
  const tracks = await createLocalTracks({ audio: true, video: { width: 640 } });
  const connecting = connect(token, connectOptions(roomName, tracks));
  const timer = setTimeout(() => connecting.cancel(), 30_000);
  let room: Room;
  try {
    room = await connecting;
  } catch (error) {
    const code = (error as TwilioError).code;
    if (code === 53105) throw new Error('The room is full');
    throw error;
  } finally {
    clearTimeout(timer);
  }
  activeRoom = room;
  room.setMaxListeners(16);

  room.localParticipant.on('trackPublished', (publication: LocalTrackPublication) => {
    console.log(`published ${publication.trackName} (${publication.trackSid}) at ${publication.priority}`);
  });
  room.localParticipant.on('trackPublicationFailed', (error, track) => {
    console.warn(`could not publish ${track.name}: ${error.code} ${error.message}`);
  });
  room.localParticipant.on('networkQualityLevelChanged', (level: NetworkQualityLevel, stats: NetworkQualityStats) => {
    console.log('my network', level, stats.audio?.send);
  });

  room.participants.forEach(participantConnected);
  room.on('participantConnected', participantConnected);
  room.on('participantDisconnected', (participant) => document.getElementById(participant.sid)?.remove());
  room.on('dominantSpeakerChanged', (speaker) => highlight(speaker));
  room.on('trackSubscribed', (track, publication, participant) => {
    console.log(`${participant.identity} sends ${track.kind} ${publication.trackName}`);
  });
  room.on('trackMessage', (data, track, participant) => {
    console.log(`${participant.identity} on ${track.name}:`, typeof data === 'string' ? data : data.byteLength);
  });
  room.on('participantReconnecting', (participant) => console.log(`${participant.identity} is reconnecting`));
  room.on('participantReconnected', (participant) => console.log(`${participant.identity} is back`));
  room.on('reconnecting', (error) => console.warn(`reconnecting: ${error.code}`));
  room.on('reconnected', () => console.log('reconnected'));
  room.on('recordingStarted', () => console.log(`recording: ${room.isRecording}`));
  room.once('disconnected', (_room, error) => {
    activeRoom = null;
    room.localParticipant.tracks.forEach((publication) => {
      const track = publication.track;
      if (track.kind !== 'data') track.stop();
    });
    if (error) console.warn(`left with ${error.code}: ${error.message}`);
  });

  const [localVideo] = Array.from(room.localParticipant.videoTracks.values());
  if (localVideo) stage.appendChild(localVideo.track.attach());
  return room;
}

function participantConnected(participant: RemoteParticipant): void {
  const tile = document.createElement('div');
  tile.id = participant.sid;
  tile.dataset.identity = participant.identity;
  stage.appendChild(tile);

  participant.tracks.forEach((publication) => {
    if (publication.isSubscribed && publication.track) attachRemote(publication.track, tile);
    watchPublication(publication);
  });
  participant.on('trackSubscribed', (track: RemoteTrack) => attachRemote(track, tile));
  participant.on('trackUnsubscribed', (track: RemoteTrack) => {
    if (track.kind !== 'data') track.detach().forEach((element) => element.remove());
  });
  participant.on('trackPublished', watchPublication);
  participant.on('trackSwitchedOff', (track, publication) => {
    tile.classList.add('switched-off');
    console.log(`${publication.trackName} switched off (${track.kind})`);
  });
  participant.on('networkQualityLevelChanged', (level) => {
    tile.dataset.bars = String(level);
  });
  participant.on('reconnecting', (p) => tile.classList.toggle('reconnecting', p.state === 'reconnecting'));
}

function watchPublication(publication: RemoteTrackPublication): void {
  publication.on('subscribed', (track) => console.log(`subscribed to ${track.name}`));
  publication.on('subscriptionFailed', (error) => console.warn(`${publication.trackName}: ${error.message}`));
  publication.on('trackEnabled', () => console.log(`${publication.trackName} enabled`));
  publication.on('publishPriorityChanged', (priority: Track.Priority) => console.log(priority));
  if (publication.kind === 'video' && publication.track) {
    const video = publication.track as RemoteVideoTrack;
    video.setPriority('high');
    video.setContentPreferences({ renderDimensions: { width: 640, height: 360 } });
    if (video.isSwitchedOff) video.switchOn();
  }
}

function attachRemote(track: RemoteTrack, tile: HTMLElement): void {
  if (track.kind === 'data') {
    track.on('message', (data: string | ArrayBuffer) => console.log('data', data));
    return;
  }
  const element = track.attach();
  tile.appendChild(element);
  if (track.kind === 'video') {
    track.on('dimensionsChanged', (t: VideoTrack) => console.log(t.dimensions.width, t.dimensions.height));
    track.on('switchedOff', () => element.classList.add('off'));
  } else {
    const audio: RemoteAudioTrack = track;
    audio.on('started', () => console.log(`hearing ${audio.sid}`));
  }
}

function highlight(participant: Participant | null): void {
  document.querySelectorAll('.speaking').forEach((el) => el.classList.remove('speaking'));
  if (participant) document.getElementById(participant.sid)?.classList.add('speaking');
}

// ---- local media controls ------------------------------------------------------------

export function toggleMicrophone(room: Room): boolean {
  let muted = false;
  room.localParticipant.audioTracks.forEach((publication) => {
    if (publication.track.isEnabled) publication.track.disable();
    else publication.track.enable();
    muted = !publication.track.isEnabled;
  });
  return muted;
}

export async function switchCamera(room: Room, deviceId: string): Promise<void> {
  const publication = Array.from(room.localParticipant.videoTracks.values())[0];
  if (publication) {
    await publication.track.restart({ deviceId: { exact: deviceId } });
    publication.setPriority('high');
    return;
  }
  const track: LocalVideoTrack = await Video.createLocalVideoTrack({ deviceId: { exact: deviceId }, name: 'camera' });
  await room.localParticipant.publishTrack(track, { priority: 'standard' });
}

export async function shareScreen(room: Room): Promise<() => void> {
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
  const screen = new LocalVideoTrack(stream.getVideoTracks()[0], { name: 'screen' });
  const publication = await room.localParticipant.publishTrack(screen);
  screen.once('stopped', () => room.localParticipant.unpublishTrack(screen));
  return () => {
    publication.unpublish();
    screen.stop();
  };
}

export async function sendChat(room: Room, text: string): Promise<void> {
  let chat = Array.from(room.localParticipant.dataTracks.values())[0]?.track;
  if (!chat) {
    chat = new LocalDataTrack({ name: 'chat', ordered: true, maxRetransmits: 3 });
    await room.localParticipant.publishTrack(chat);
  }
  chat.send(text);
  chat.send(new TextEncoder().encode(text));
}

export function capBitrates(room: Room, low: boolean): void {
  room.localParticipant.setParameters(low ? { maxAudioBitrate: 16000, maxVideoBitrate: 300000 } : null);
  room.localParticipant.setNetworkQualityConfiguration({ local: 3, remote: 0 });
}

export async function microphoneLevel(track: LocalAudioTrack): Promise<MediaStream> {
  const stream = new MediaStream([track.mediaStreamTrack]);
  track.on('muted', () => console.log('muted by the device'));
  return stream;
}

// ---- stats ------------------------------------------------------------------------------

export async function logStats(room: Room): Promise<number> {
  const reports: StatsReport[] = await room.getStats();
  let bytes = 0;
  for (const report of reports) {
    for (const stats of report.remoteVideoTrackStats) {
      bytes += stats.bytesReceived ?? 0;
      console.log(stats.trackSid, stats.codec, stats.dimensions?.width, stats.frameRate);
    }
    for (const stats of report.localAudioTrackStats) console.log(stats.audioLevel, stats.roundTripTime);
  }
  return bytes;
}

// ---- events, the Node way ------------------------------------------------------------------

export function observe(room: Room): () => void {
  const onConnected = (participant: RemoteParticipant) => console.log('hello', participant.identity);
  room.prependListener('participantConnected', onConnected);
  room.prependOnceListener('participantDisconnected', () => console.log('first goodbye'));
  const count: number = room.listenerCount('participantConnected');
  const names: Array<string | symbol> = room.eventNames();
  const raw: Function[] = room.rawListeners('participantConnected');
  console.log(count, names.length, raw.length, room.getMaxListeners(), room.listeners('disconnected').length);
  room.emit('custom', 1, 2);
  return () => {
    room.off('participantConnected', onConnected);
    room.removeAllListeners('trackMessage');
  };
}

export function leave(): void {
  activeRoom?.disconnect();
}
