// runPreflight(): twilio-video's connection test, against Salon.
//
//   const preflight = Video.runPreflight(token, {duration: 10000});
//   preflight.on('progress', (name) => …);          // mediaAcquired, connected, iceConnected, …
//   preflight.on('completed', (report) => …);       // timings, jitter, rtt, packetLoss, ICE candidates
//   preflight.on('failed', (error, report) => …);
//
// twilio-video's test sends synthetic media from one peer connection to
// another through Twilio's TURN servers. Salon's test goes where the app's
// media will go: it joins Salon (a room of its own — without a room grant
// in the token, a new room named by its SID — or the granted room),
// publishes a synthetic camera (640x480) and tone, and measures the path to
// Salon's media server: signaling time, ICE, DTLS, the time until the server
// reports receiving the media, then for `duration` the round-trip time (ICE
// and RTCP), the jitter the server sees on the audio, and the fraction of
// packets lost on the way (from the server's RTCP receiver reports). The
// events, their order and the report have twilio-video's shape; the
// `mediaSubscribed` step is the server accepting the published tracks, and
// `mediaStarted` its first report of receiving them.
//
// Everything it made (socket, peer connection, synthetic tracks) is gone
// when it has completed, failed or been stopped.

import { VERSION } from './connect.js';
import { createTwilioError } from './errors.js';
import { EventEmitter } from './events.js';
import { Log } from './log.js';
import { PeerSession } from './peer.js';
import { Signaling, defaultBaseUrl, signalingUrl } from './signaling.js';
import { LocalAudioTrack, LocalVideoTrack } from './track.js';

const SECOND = 1000;
const DEFAULT_DURATION = 10 * SECOND;
/** A step may take the test's duration plus this before the test fails. */
const STEP_SLACK = 10 * SECOND;
const STATS_INTERVAL = SECOND;

const PROGRESS = {
  mediaAcquired: 'mediaAcquired',
  connected: 'connected',
  iceConnected: 'iceConnected',
  dtlsConnected: 'dtlsConnected',
  peerConnectionConnected: 'peerConnectionConnected',
  mediaSubscribed: 'mediaSubscribed',
  mediaStarted: 'mediaStarted',
};

let instances = 0;

/** A start, an end and the time between, in ms since the epoch (twilio-video's TimeMeasurement). */
class Timing {
  start = undefined;
  end = undefined;

  begin() {
    this.start = Date.now();
    return this;
  }

  finish() {
    if (this.start !== undefined && this.end === undefined) this.end = Date.now();
  }

  get measurement() {
    return { start: this.start, end: this.end, duration: this.end === undefined ? undefined : this.end - this.start };
  }
}

/**
 * A running connection test. Events: `progress`(name),
 * `completed`(report), `failed`(error, report).
 */
export class PreflightTest extends EventEmitter {
  #duration;
  #url;
  #stopped = false;
  #id = instances++;
  #log = new Log(this);
  #timing = new Timing().begin();
  #network = { connect: new Timing(), ice: new Timing(), dtls: new Timing(), peerConnection: new Timing(), media: new Timing() };
  #progress = [];
  #samples = { jitter: [], rtt: [], packetLoss: [] };
  #candidates = { selected: null, all: [] };

  /**
   * @param {string} token an access token
   * @param {{duration?: number, region?: string, url?: string}} [options]
   */
  constructor(token, options = {}) {
    super();
    if (typeof token !== 'string' || !token) throw new TypeError('token must be a non-empty string');
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { duration = DEFAULT_DURATION } = options;
    if (typeof duration !== 'number' || !(duration > 0)) throw new TypeError('options.duration must be a positive number of milliseconds');
    this.#duration = duration;
    this.#url = signalingUrl(options.url ?? defaultBaseUrl());
    // Events are emitted from the next task on: listeners added right after
    // runPreflight() returns hear everything.
    setTimeout(() => this.#run(token));
  }

  /** Stop the test: it fails with "stopped" at its next step. */
  stop() {
    this.#stopped = true;
  }

  toString() {
    return `[Preflight #${this.#id}]`;
  }

  async #run(token) {
    const made = { tracks: [], signaling: null, peer: null, stopMedia: () => {} };
    try {
      const media = await this.#step('Acquire media', () => syntheticMedia());
      made.stopMedia = media.stop;
      made.tracks = [new LocalAudioTrack(media.audio, { name: 'preflight-audio' }), new LocalVideoTrack(media.video, { name: 'preflight-video' })];
      this.#advance(PROGRESS.mediaAcquired);

      this.#network.connect.begin();
      const signaling = new Signaling(this.#url, token, { log: this.#log.child('preflight signaling') });
      made.signaling = signaling;
      const joined = await this.#step('Connect to Salon', () => signaling.join({ autoSubscribe: false, client: `salon-video.js ${VERSION} preflight` }),
        createTwilioError(53002, 'Signaling connection timed out'));
      this.#network.connect.finish();
      this.#advance(PROGRESS.connected);

      const peer = new PeerSession({
        signaling,
        iceServers: (joined.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
        preferredCodecs: { audio: [], video: ['VP8'] },
        bitrates: { audio: null, video: null },
        log: this.#log.child('preflight webrtc'),
      });
      made.peer = peer;
      signaling.setHandler((m) => {
        if (m.type === 'answer') peer.onAnswer(m);
        else if (m.type === 'error') peer.onError(createTwilioError(m.code, m.message));
      });
      this.#network.media.begin();
      const connected = this.#watchConnection(peer.pc);
      const published = Promise.all(made.tracks.map((t) => peer.publishMedia(t)));
      published.catch(() => {});
      await this.#step('Set up the peer connection', () => Promise.all([published, connected]),
        createTwilioError(53405, 'Media connection failed'));
      this.#advance(PROGRESS.mediaSubscribed);

      await this.#step('Wait for the server to receive media', () => this.#untilReceived(peer.pc),
        createTwilioError(53405, 'Media connection failed: the server reports no media'));
      this.#network.media.finish();
      this.#advance(PROGRESS.mediaStarted);

      await this.#step('Collect stats', () => this.#collect(peer.pc));
      const report = this.#report();
      this.#log.info('Completed', report);
      this.emit('completed', report);
    } catch (error) {
      this.#log.warn('Failed:', error);
      this.emit('failed', error, this.#report());
    } finally {
      made.signaling?.close();
      made.peer?.close();
      for (const track of made.tracks) track.stop();
      made.stopMedia();
    }
  }

  /** Run one step, failing with `timeoutError` if it takes too long, or with "stopped". */
  async #step(name, fn, timeoutError) {
    if (this.#stopped) throw new Error('stopped');
    this.#log.debug('Step:', name);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(timeoutError || new Error(`${name} timeout.`)), this.#duration + STEP_SLACK);
    });
    try {
      return await Promise.race([Promise.resolve().then(fn), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #advance(name) {
    this.#progress.push({ duration: Date.now() - this.#timing.start, name });
    this.emit('progress', name);
  }

  /** Resolves when ICE, DTLS and the peer connection are connected, timing each. */
  #watchConnection(pc) {
    return new Promise((resolve, reject) => {
      const { ice, dtls, peerConnection } = this.#network;
      const done = { ice: false, dtls: false, pc: false };
      const check = () => done.ice && done.dtls && done.pc && resolve();
      pc.addEventListener('iceconnectionstatechange', () => {
        if (pc.iceConnectionState === 'checking') ice.begin();
        if ((pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') && !done.ice) {
          if (ice.start === undefined) ice.begin();
          ice.finish();
          done.ice = true;
          this.#advance(PROGRESS.iceConnected);
          check();
        }
      });
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'connecting') peerConnection.begin();
        if (pc.connectionState === 'failed') reject(createTwilioError(53405, 'Media connection failed'));
        if (pc.connectionState === 'connected' && !done.pc) {
          if (peerConnection.start === undefined) peerConnection.begin();
          peerConnection.finish();
          done.pc = true;
          // The DTLS transport exists once the first description is applied.
          if (!done.dtls) dtlsConnected();
          this.#advance(PROGRESS.peerConnectionConnected);
          check();
        }
      });
      const dtlsConnected = () => {
        if (done.dtls) return;
        if (dtls.start === undefined) dtls.begin();
        dtls.finish();
        done.dtls = true;
        this.#advance(PROGRESS.dtlsConnected);
      };
      let watched = null;
      pc.addEventListener('signalingstatechange', () => {
        const transport = pc.getSenders().map((s) => s.transport).find(Boolean);
        if (!transport || transport === watched) return;
        watched = transport;
        transport.addEventListener('statechange', () => {
          if (transport.state === 'connecting') dtls.begin();
          if (transport.state === 'connected') {
            dtlsConnected();
            check();
          }
        });
      });
    });
  }

  /** Resolves when an RTCP receiver report from Salon says it receives what we send. */
  async #untilReceived(pc) {
    for (;;) {
      if (this.#stopped) throw new Error('stopped');
      const stats = await pc.getStats();
      let received = false;
      stats.forEach((s) => {
        if (s.type === 'remote-inbound-rtp') received = true;
      });
      if (received) return;
      await sleep(100);
    }
  }

  /** Sample the connection every second for the test's duration. */
  async #collect(pc) {
    const started = Date.now();
    let previous = null;
    while (Date.now() - started < this.#duration) {
      await sleep(Math.min(STATS_INTERVAL, this.#duration));
      if (this.#stopped) throw new Error('stopped');
      const sample = measure(await pc.getStats());
      this.#samples.rtt.push(sample.rtt);
      this.#samples.jitter.push(sample.jitter);
      if (previous) {
        const sent = sample.packetsSent - previous.packetsSent;
        const lost = Math.max(0, sample.packetsLost - previous.packetsLost);
        this.#samples.packetLoss.push(sent > 0 ? Math.min(100, (lost / sent) * 100) : 0);
      }
      previous = sample;
      this.#candidates.selected ??= sample.selected;
      if (this.#candidates.all.length === 0) this.#candidates.all = sample.candidates;
    }
  }

  #report() {
    this.#timing.finish();
    const n = this.#network;
    return {
      testTiming: this.#timing.measurement,
      networkTiming: {
        connect: n.connect.measurement,
        dtls: n.dtls.measurement,
        ice: n.ice.measurement,
        peerConnection: n.peerConnection.measurement,
        media: n.media.measurement,
      },
      stats: {
        jitter: summary(this.#samples.jitter),
        rtt: summary(this.#samples.rtt),
        packetLoss: summary(this.#samples.packetLoss),
      },
      selectedIceCandidatePairStats: this.#candidates.selected,
      iceCandidateStats: this.#candidates.all,
      progressEvents: [...this.#progress],
    };
  }
}

/**
 * Run a connection test with this token (see the module's header).
 * @param {string} token
 * @param {{duration?: number, region?: string, url?: string}} [options] `region` is accepted and ignored
 * @returns {PreflightTest}
 */
export function runPreflight(token, options) {
  return new PreflightTest(token, options);
}

// ---- measuring ----------------------------------------------------------------

/**
 * One look at the connection: rtt in ms (ICE's current round trip, else
 * RTCP's), the server's audio jitter in seconds, packet counters, candidates.
 */
function measure(stats) {
  const all = [];
  stats.forEach((s) => all.push(s));
  const of = (type) => all.filter((s) => s.type === type);
  const remote = of('remote-inbound-rtp');
  const pairRtt = of('candidate-pair').map((p) => p.currentRoundTripTime).filter((x) => typeof x === 'number');
  const rtcpRtt = remote.map((r) => r.roundTripTime).filter((x) => typeof x === 'number');
  const rtt = (pairRtt.length ? Math.max(...pairRtt) : rtcpRtt.length ? Math.max(...rtcpRtt) : 0) * 1000;
  const jitter = remote.filter((r) => r.kind === 'audio').map((r) => r.jitter).filter((x) => typeof x === 'number');
  const sum = (list, key) => list.reduce((total, s) => total + (typeof s[key] === 'number' ? s[key] : 0), 0);
  const transport = of('transport').find((t) => t.selectedCandidatePairId);
  const pair = transport && stats.get(transport.selectedCandidatePairId);
  const local = pair && stats.get(pair.localCandidateId);
  const far = pair && stats.get(pair.remoteCandidateId);
  return {
    rtt,
    jitter: jitter.length ? Math.max(...jitter) : 0,
    packetsSent: sum(of('outbound-rtp'), 'packetsSent'),
    packetsLost: sum(remote, 'packetsLost'),
    selected: local && far ? { localCandidate: candidate(local), remoteCandidate: candidate(far) } : null,
    candidates: [...of('local-candidate'), ...of('remote-candidate')].map(candidate),
  };
}

/** A candidate's stats in twilio-video's RTCIceCandidateStats shape. */
function candidate(s) {
  const out = {};
  const take = (key, type, ...alternatives) => {
    const found = [key, ...alternatives].find((k) => typeof s[k] === type);
    if (found) out[key] = s[found];
  };
  take('transportId', 'string');
  take('candidateType', 'string');
  take('port', 'number', 'portNumber');
  take('address', 'string', 'ip', 'ipAddress');
  take('priority', 'number');
  take('protocol', 'string', 'transport');
  take('url', 'string');
  take('relayProtocol', 'string');
  return out;
}

/** {min, max, average} of the samples, or null without any. */
function summary(values) {
  if (!values.length) return null;
  return {
    min: Math.min(...values),
    max: Math.max(...values),
    average: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

// ---- synthetic media ------------------------------------------------------------

/** A 640x480 canvas that changes every frame, and a tone: no camera or microphone asked for. */
function syntheticMedia() {
  const canvas = Object.assign(document.createElement('canvas'), { width: 640, height: 480 });
  const context = canvas.getContext('2d');
  let frame = 0;
  const paint = setInterval(() => {
    frame += 1;
    context.fillStyle = `hsl(${(frame * 7) % 360} 60% 40%)`;
    context.fillRect(0, 0, 640, 480);
    context.fillStyle = '#fff';
    context.fillRect((frame * 8) % 640, 200, 40, 80);
  }, 1000 / 30);
  const [video] = canvas.captureStream(30).getVideoTracks();
  const audioContext = new AudioContext();
  const oscillator = audioContext.createOscillator();
  const destination = audioContext.createMediaStreamDestination();
  oscillator.connect(destination);
  oscillator.start();
  // A page that has had no user gesture may start it suspended.
  audioContext.resume().catch(() => {});
  const [audio] = destination.stream.getAudioTracks();
  return {
    audio,
    video,
    stop() {
      clearInterval(paint);
      video.stop();
      audio.stop();
      oscillator.stop();
      audioContext.close().catch(() => {});
    },
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
