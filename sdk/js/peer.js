// The media session: the participant's one RTCPeerConnection to Salon's SFU.
//
// Owns: transceivers, offers and answers, and which track SID each m-line
// carries. Follows the protocol's media model (docs/protocol.md):
//
// * the client always offers and keeps at most one offer outstanding;
//   changes that come meanwhile (a track to publish, a `subscribed`, an
//   `unsubscribed`) are batched into the next offer;
// * each offer declares the m-lines it adds: `publish` (sending m-lines and
//   their track names), `subscribe` (receiving m-lines and their track SIDs);
// * the first offer is made when connect() has queued what it publishes and
//   subscribes, even if that is nothing: it carries a data channel (the
//   m=application line), so data tracks, published or received, need no
//   renegotiation, and a participant with only data tracks is connected;
// * each sending m-line lists the codecs in the publisher's order of
//   preference (`setCodecPreferences`), and Salon's answer keeps that order,
//   so the browser sends the codec the app asked for;
// * an incoming track (`ontrack`) is known by its transceiver's mid.
//
// Must not: know about participants or publications (the Room and the
// LocalParticipant do); it deals in track SIDs and MediaStreamTracks.
//
// * an ICE restart (`restartIce()`, asked by the Reconnection in
//   reconnect.js) is the next offer made with `iceRestart: true`: new ICE
//   credentials, which the server answers with its own new ones.
//
// Events: `track`(trackSid, MediaStreamTrack), `datachannel`(RTCDataChannel),
// `subscriptionFailed`(trackSid, error), `failed`(error),
// `interrupted`(failed: boolean) when the connection goes `disconnected`
// or `failed`, `restored`() when it is `connected` again.

import { EventEmitter } from './events.js';
import { createTwilioError } from './errors.js';
import { Log } from './log.js';

/** The data channel that gives the first offer its m=application. */
const CONTROL_CHANNEL = 'salon';
/**
 * A receiving m-line that has had no packet this long after its answer
 * (with the transport connected) is declared again in the next offer; the
 * delay doubles with each try. See `#watch`.
 */
const NO_MEDIA_MS = 1_500;
const NO_MEDIA_TRIES = 4;

/** Simulcast layers, lowest first: Twilio's VP8 simulcast sizes (¼, ½, full). */
const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/**
 * The simulcast layers for a camera of `width`×`height`, lowest first,
 * the top one always full size. libwebrtc sends at most 3 layers from
 * 960×540, 2 from 480×270 and 1 below (its simulcast format table), and
 * drops the *top* encodings past that: asked for ¼, ½ and full of a
 * 640×360 camera it would send ¼ and ½ only. So, as twilio-video does,
 * ask for no more layers than it sends: ½ and full from 480×270, a single
 * encoding below. Unknown size: 3.
 * @param {number} [width]
 * @param {number} [height]
 */
function simulcastLayers(width, height) {
  const pixels = width > 0 && height > 0 ? width * height : Infinity;
  if (pixels >= 960 * 540) return SIMULCAST_LAYERS;
  if (pixels >= 480 * 270) return SIMULCAST_LAYERS.slice(1);
  return [];
}

/**
 * `sdp` (an answer) with Opus's `usedtx=1` in each audio m-section's
 * `a=fmtp` when `on`, and without it otherwise. The answer is what the
 * browser's encoder follows (RFC 7587 §7: `usedtx` is the receiving side's
 * preference, here the app's), which is how twilio-video turns DTX on; the
 * server forwards whatever the publisher sends, so it need not be told.
 * @param {string} sdp
 * @param {boolean} on
 */
export function withOpusDtx(sdp, on) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(eol);
  const out = [];
  let opus = null;
  for (const line of lines) {
    if (line.startsWith('m=')) opus = line.startsWith('m=audio') ? new Set() : null;
    const rtpmap = opus && /^a=rtpmap:(\d+) opus\//i.exec(line);
    if (rtpmap) opus.add(rtpmap[1]);
    const fmtp = opus && /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (fmtp && opus.has(fmtp[1])) {
      const params = fmtp[2].split(';').map((p) => p.trim()).filter((p) => p && !/^usedtx=/i.test(p));
      if (on) params.push('usedtx=1');
      out.push(`a=fmtp:${fmtp[1]} ${params.join(';')}`);
      continue;
    }
    out.push(line);
  }
  return out.join(eol);
}

export class PeerSession extends EventEmitter {
  /** @type {RTCPeerConnection} */
  pc;
  #signaling;
  #preferredCodecs;
  #bitrates;
  #log;
  #revision = 0;
  /** The offer waiting for its answer. */
  #outstanding = null;
  /** An offer is being created (createOffer / setLocalDescription). */
  #making = false;
  /** A change that needs an offer but adds nothing to declare (a stopped transceiver). */
  #dirty = false;
  /** Sending m-lines not offered yet. */
  #publishQueue = [];
  /** Receiving m-lines not offered yet. */
  #subscribeQueue = [];
  /** Receiving mid → track SID. */
  #midToSid = new Map();
  /** Track SID → receiving transceiver. */
  #receivers = new Map();
  /** Track SID → sending transceiver. */
  #senders = new Map();
  /** Track SID → the server's last `layers` for it (applied again after each answer). */
  #layers = new Map();
  /** publish_data requests waiting for `published`, in order. */
  #dataRequests = [];
  /** Track SID → the data channel publishing it. */
  #dataChannels = new Map();
  #closed = false;
  /** Publish video as three simulcast layers (preferredVideoCodecs simulcast or 'auto'). */
  #simulcast = false;
  /** Send Opus with DTX (the answers applied say `usedtx=1`). */
  #dtx = true;
  /** While held, changes queue up without an offer (connect() batches the first one). */
  #held = false;
  /** The next offer restarts ICE. */
  #restartWanted = false;
  /** The connection went disconnected or failed and has not come back. */
  #interrupted = false;

  /**
   * @param {object} options
   * @param {import('./signaling.js').Signaling} options.signaling
   * @param {RTCIceServer[]} options.iceServers from `joined`
   * @param {RTCConfiguration} [options.rtcConfiguration]
   * @param {{audio: string[], video: string[]}} options.preferredCodecs codec names by kind, most wanted first
   * @param {{audio: number|null, video: number|null}} options.bitrates bps caps
   * @param {boolean} [options.simulcast] publish video in three RID layers
   * @param {boolean} [options.dtx] send Opus with discontinuous transmission (default true, as twilio-video)
   * @param {typeof RTCPeerConnection} [options.RTCPeerConnection]
   * @param {Log} [options.log]
   */
  constructor({
    signaling, iceServers, rtcConfiguration = {}, preferredCodecs, bitrates, simulcast = false, dtx = true,
    RTCPeerConnection: PC = globalThis.RTCPeerConnection, log = new Log('webrtc'),
  }) {
    super();
    this.#signaling = signaling;
    this.#preferredCodecs = preferredCodecs;
    this.#simulcast = simulcast;
    this.#dtx = dtx;
    this.#bitrates = bitrates;
    this.#log = log;
    const servers = [...(rtcConfiguration.iceServers || []), ...iceServers];
    this.pc = new PC({ ...rtcConfiguration, iceServers: servers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc.addEventListener('track', (event) => {
      const sid = this.#midToSid.get(event.transceiver.mid);
      if (sid && this.#receivers.get(sid) === event.transceiver) this.emit('track', sid, event.track);
    });
    this.pc.addEventListener('datachannel', (event) => this.emit('datachannel', event.channel));
    this.pc.addEventListener('connectionstatechange', () => {
      const state = this.pc.connectionState;
      this.#log.debug('Peer connection state:', state);
      if (this.#closed) return;
      if (state === 'disconnected' || state === 'failed') {
        // The Reconnection decides: restart ICE, and give up after the
        // session timeout (53405).
        this.#interrupted = true;
        this.emit('interrupted', state === 'failed');
      } else if (state === 'connected' && this.#interrupted) {
        this.#interrupted = false;
        this.emit('restored');
      }
    });
    this.pc.createDataChannel(CONTROL_CHANNEL);
  }

  /** The peer connection's `connectionState`. */
  get connectionState() {
    return this.pc.connectionState;
  }

  /**
   * Restart ICE in the next offer (now, or when the outstanding one is
   * answered): new ICE credentials, so both sides gather and check again,
   * from wherever the client is now.
   */
  restartIce() {
    if (this.#closed) return;
    this.#restartWanted = true;
    this.#negotiate();
  }

  /** Forget an ICE restart not offered yet (media came back meanwhile). */
  cancelRestart() {
    this.#restartWanted = false;
  }

  /** Whether an offer is outstanding or queued (for tests and getStats). */
  get isNegotiating() {
    return this.#making || this.#outstanding !== null;
  }

  // ---- publishing ----------------------------------------------------------

  /**
   * Publish an audio or video track in the next offer.
   * @param {import('./track.js').LocalAudioTrack|import('./track.js').LocalVideoTrack} track
   * @returns {Promise<{sid: string, name: string, kind: string, enabled: boolean}>} the server's TrackInfo
   */
  publishMedia(track) {
    if (this.#closed) return Promise.reject(new Error('The media session is closed'));
    const maxBitrate = this.#bitrates[track.kind];
    let sendEncodings = maxBitrate ? [{ maxBitrate }] : undefined;
    if (track.kind === 'video' && this.#simulcast) {
      // RID layers, lowest first, as docs/protocol.md (Simulcast) says: as
      // many as the camera's size gives.
      const settings = typeof track._sendTrack.getSettings === 'function' ? track._sendTrack.getSettings() : {};
      const layers = simulcastLayers(settings.width, settings.height);
      if (layers.length > 1) {
        sendEncodings = layers.map((layer) => ({ ...layer, maxBitrate: maxBitrate ? Math.min(layer.maxBitrate, maxBitrate) : layer.maxBitrate }));
      }
    }
    const transceiver = this.pc.addTransceiver(track._sendTrack, { direction: 'sendonly', sendEncodings });
    this.#preferCodecs(transceiver, track.kind);
    return new Promise((resolve, reject) => {
      this.#publishQueue.push({ transceiver, track, name: track.name, kind: track.kind, enabled: track.isEnabled, resolve, reject });
      this.#negotiate();
    });
  }

  /**
   * Publish a data track on a data channel of its own.
   * @param {import('./track.js').LocalDataTrack} track
   * @returns {Promise<{sid: string}>}
   */
  publishData(track) {
    if (this.#closed) return Promise.reject(new Error('The media session is closed'));
    const init = { ordered: track.ordered };
    if (track.maxPacketLifeTime !== null) init.maxPacketLifeTime = track.maxPacketLifeTime;
    if (track.maxRetransmits !== null) init.maxRetransmits = track.maxRetransmits;
    const channel = this.pc.createDataChannel(track.id, init);
    track._addChannel(channel);
    return new Promise((resolve, reject) => {
      this.#dataRequests.push({ label: track.id, channel, track, resolve, reject });
      this.#signaling.send({ type: 'publish_data', name: track.name, label: track.id });
    });
  }

  /**
   * Stop sending a published track (the server was told with `unpublish`).
   * @param {string} sid
   */
  unpublish(sid) {
    const transceiver = this.#senders.get(sid);
    this.#layers.delete(sid);
    if (transceiver) {
      this.#senders.delete(sid);
      transceiver.stop();
      this.#dirty = true;
      this.#negotiate();
    }
    const channel = this.#dataChannels.get(sid);
    if (channel) {
      this.#dataChannels.delete(sid);
      channel.close();
    }
  }

  /**
   * Withdraw a publication that has not been answered yet.
   * @param {object} track the LocalTrack given to publishMedia/publishData
   */
  cancelPublish(track) {
    const queued = this.#publishQueue.findIndex((p) => p.track === track);
    if (queued >= 0) {
      const [p] = this.#publishQueue.splice(queued, 1);
      p.transceiver.stop();
      p.reject(new Error('Canceled: the track was unpublished before it was published'));
    }
  }

  /**
   * Send another MediaStreamTrack on a published track's m-line (restart()).
   * @param {string} sid
   * @param {MediaStreamTrack} mediaStreamTrack
   */
  async replaceTrack(sid, mediaStreamTrack) {
    const transceiver = this.#senders.get(sid);
    if (transceiver) await transceiver.sender.replaceTrack(mediaStreamTrack);
  }

  /**
   * Change the bitrate caps of every sender (LocalParticipant#setParameters).
   * @param {{audio?: number|null, video?: number|null}} caps
   */
  async setBitrates(caps) {
    Object.assign(this.#bitrates, caps);
    for (const transceiver of this.#senders.values()) {
      const kind = transceiver.sender.track ? transceiver.sender.track.kind : null;
      if (!kind || !(kind in caps)) continue;
      const params = transceiver.sender.getParameters();
      if (!params.encodings || params.encodings.length === 0) continue;
      for (const encoding of params.encodings) {
        if (caps[kind]) encoding.maxBitrate = caps[kind];
        else delete encoding.maxBitrate;
      }
      await transceiver.sender.setParameters(params).catch(() => {});
    }
  }

  /**
   * The server's `layers`: pause the simulcast layers no one receives
   * (`active: false`) and resume the others. Layers are matched by `rid`,
   * else by position (lowest first). Kept and applied again after every
   * answer: Chromium sets each RID encoding's `active` from the answer's
   * `a=simulcast` (paused only when marked `~`) whenever it applies one.
   * @param {string} sid the published track
   * @param {Array<{layer: number, rid?: string, active: boolean}>} layers
   */
  async setLayers(sid, layers) {
    const transceiver = this.#senders.get(sid);
    if (!transceiver || !Array.isArray(layers)) return;
    this.#layers.set(sid, layers);
    const params = transceiver.sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    for (const layer of layers) {
      if (!layer || typeof layer.active !== 'boolean') continue;
      const encoding = (layer.rid && params.encodings.find((e) => e.rid === layer.rid)) || params.encodings[layer.layer];
      if (encoding && encoding.active !== layer.active) {
        encoding.active = layer.active;
        changed = true;
      }
    }
    if (changed) await transceiver.sender.setParameters(params).catch((error) => this.#log.warn('Could not pause or resume a simulcast layer:', error));
  }

  // ---- subscribing ---------------------------------------------------------

  /**
   * Receive an audio or video track: a receiving m-line in the next offer.
   * @param {string} sid
   * @param {'audio'|'video'} kind
   */
  subscribe(sid, kind) {
    if (this.#closed || this.#receivers.has(sid)) return;
    const transceiver = this.pc.addTransceiver(kind, { direction: 'recvonly' });
    this.#receivers.set(sid, transceiver);
    this.#subscribeQueue.push({ transceiver, sid });
    this.#negotiate();
  }

  /**
   * Stop receiving a track: its m-line is stopped in the next offer.
   * @param {string} sid
   */
  unsubscribe(sid) {
    const transceiver = this.#receivers.get(sid);
    if (!transceiver) return;
    this.#receivers.delete(sid);
    if (transceiver.mid) this.#midToSid.delete(transceiver.mid);
    this.#subscribeQueue = this.#subscribeQueue.filter((s) => s.sid !== sid);
    if (!this.#closed) {
      transceiver.stop();
      this.#dirty = true;
      this.#negotiate();
    }
  }

  /** Whether a receiving m-line exists for this track. */
  isSubscribed(sid) {
    return this.#receivers.has(sid);
  }

  /** The receiving transceiver's mid for a track (for stats). */
  receivingMid(sid) {
    const t = this.#receivers.get(sid);
    return t ? t.mid : null;
  }

  /** The sending transceiver's mid for a track (for stats). */
  sendingMid(sid) {
    const t = this.#senders.get(sid);
    return t ? t.mid : null;
  }

  // ---- offers and answers --------------------------------------------------

  /** Queue changes without offering until {@link release}. */
  hold() {
    this.#held = true;
  }

  /**
   * Offer what was queued while held. The first offer is made even with
   * nothing queued: it connects the transport and the data channel.
   */
  release() {
    this.#held = false;
    if (this.#revision === 0) this.#dirty = true;
    this.#negotiate();
  }

  async #negotiate() {
    if (this.#closed || this.#held || this.#making || this.#outstanding) return;
    if (!this.#dirty && !this.#restartWanted && this.#publishQueue.length === 0 && this.#subscribeQueue.length === 0) return;
    this.#making = true;
    const publish = this.#publishQueue.splice(0);
    const subscribe = this.#subscribeQueue.splice(0);
    const iceRestart = this.#restartWanted;
    this.#dirty = false;
    this.#restartWanted = false;
    try {
      const offer = await this.pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
      if (this.#closed) return;
      await this.pc.setLocalDescription(offer);
    } catch (e) {
      this.#making = false;
      if (this.#closed) return;
      const error = createTwilioError(53400, `Client is unable to create or apply a local media description: ${e.message}`);
      this.#fail(publish, subscribe, error);
      return;
    }
    this.#making = false;
    if (this.#closed) return;
    // A subscription withdrawn while the offer was made is simply not declared.
    const live = subscribe.filter((s) => this.#receivers.get(s.sid) === s.transceiver);
    for (const s of live) this.#midToSid.set(s.transceiver.mid, s.sid);
    const revision = ++this.#revision;
    this.#outstanding = { revision, publish, subscribe: live, errors: [] };
    this.#log.debug(`Offer ${revision}${iceRestart ? ' (ICE restart)' : ''}: publishing ${publish.map((p) => p.name).join(', ') || 'nothing'}, `
      + `subscribing ${live.map((s) => s.sid).join(', ') || 'nothing'}`);
    this.#signaling.send({
      type: 'offer',
      revision,
      sdp: this.pc.localDescription.sdp,
      publish: publish.map((p) => ({ mid: p.transceiver.mid, name: p.name, kind: p.kind, enabled: p.enabled })),
      subscribe: live.map((s) => ({ mid: s.transceiver.mid, track: s.sid })),
    });
  }

  /**
   * The server's `answer`.
   * @param {{revision: number, sdp: string, published: Array<{mid: string, track: any}>}} message
   */
  async onAnswer(message) {
    const offer = this.#outstanding;
    if (!offer || offer.revision !== message.revision) {
      this.#log.warn(`Ignoring an answer to revision ${message.revision}, which is not outstanding`);
      return;
    }
    this.#log.debug(`Answer ${message.revision}`);
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: withOpusDtx(message.sdp, this.#dtx) });
    } catch (e) {
      if (this.#closed) return;
      this.#outstanding = null;
      const error = createTwilioError(53402, `Client is unable to apply a remote media description: ${e.message}`);
      this.#fail(offer.publish, offer.subscribe, error);
      this.emit('failed', error);
      return;
    }
    if (this.#closed) return;
    this.#outstanding = null;
    for (const [sid, layers] of this.#layers) this.setLayers(sid, layers);
    for (const s of offer.subscribe) this.#watch(s);
    const published = new Map((message.published || []).map((p) => [p.mid, p.track]));
    for (const p of offer.publish) {
      const info = published.get(p.transceiver.mid);
      if (info) {
        this.#senders.set(info.sid, p.transceiver);
        p.resolve(info);
      } else {
        p.transceiver.stop();
        this.#dirty = true;
        p.reject(offer.errors.shift() || createTwilioError(53300, `Track is invalid: the server did not publish '${p.name}'`));
      }
    }
    this.#negotiate();
  }

  /**
   * The server's `published` (a data track).
   * @param {{published: {mid: string, track: any}}} message
   */
  onPublished(message) {
    const index = this.#dataRequests.findIndex((r) => r.label === message.published.mid);
    if (index < 0) return;
    const [request] = this.#dataRequests.splice(index, 1);
    this.#dataChannels.set(message.published.track.sid, request.channel);
    request.resolve(message.published.track);
  }

  /**
   * A server `error` that may concern a request of ours. Returns whether it
   * was ours.
   * @param {import('./errors.js').TwilioError} error
   * @param {number} [revision] the offer it refers to, when the server says
   */
  onError(error, revision) {
    const offer = this.#outstanding;
    if (offer && error.code === 20429 && (revision == null || revision === offer.revision)) {
      // Over the server's message rate limit the offer was not handled:
      // the same offer goes again once the limit has refilled.
      setTimeout(() => {
        if (this.#outstanding === offer) this.resendOutstanding();
      }, 1000);
      return true;
    }
    if (offer && error.code >= 53400 && error.code < 53500) {
      // The offer was refused: no answer will come, and the tracks it
      // published are unpublished again. Back to the last stable state.
      this.#outstanding = null;
      this.pc.setLocalDescription({ type: 'rollback' }).catch(() => {}).finally(() => {
        this.#fail(offer.publish, offer.subscribe, error);
        this.#negotiate();
      });
      return true;
    }
    if (error.code >= 53300 && error.code < 53400) {
      if (offer && offer.publish.length > offer.errors.length) {
        offer.errors.push(error);
        return true;
      }
      if (this.#dataRequests.length) {
        const request = this.#dataRequests.shift();
        request.track._removeChannel(request.channel);
        request.channel.close();
        request.reject(error);
        return true;
      }
    }
    return false;
  }

  #fail(publish, subscribe, error) {
    for (const p of publish) {
      p.transceiver.stop();
      p.reject(error);
    }
    for (const s of subscribe) {
      if (this.#receivers.get(s.sid) === s.transceiver) {
        this.#receivers.delete(s.sid);
        s.transceiver.stop();
        this.emit('subscriptionFailed', s.sid, error);
      }
    }
  }

  /**
   * Make sure media arrives on a receiving m-line. The server can answer an
   * offer without binding one of its `subscribe` entries (when the
   * publisher's own offer has not reached the media server yet, the entry
   * is skipped without an error), and then nothing ever arrives there. A
   * receiving track stays muted until its first packet: if it still is
   * after a while, the m-line is declared again in the next offer, which
   * binds it (declaring an m-line again only replaces its binding).
   */
  #watch(entry) {
    const tries = entry.tries || 0;
    if (tries >= NO_MEDIA_TRIES) return;
    setTimeout(() => {
      if (this.#closed || this.#receivers.get(entry.sid) !== entry.transceiver) return;
      if (!entry.transceiver.receiver.track.muted) return; // media arrived
      if (this.pc.connectionState !== 'connected') {
        this.#watch(entry); // not yet connected: nothing could arrive; look again later
        return;
      }
      if (this.#subscribeQueue.some((s) => s.sid === entry.sid)) return;
      this.#log.info(`No media on m-line ${entry.transceiver.mid} (track ${entry.sid}) yet: declaring it again`);
      this.#subscribeQueue.push({ transceiver: entry.transceiver, sid: entry.sid, tries: tries + 1 });
      this.#negotiate();
    }, NO_MEDIA_MS * 2 ** tries);
  }

  /** After a resume: an offer whose answer never came is sent again. */
  resendOutstanding() {
    const offer = this.#outstanding;
    if (!offer || !this.pc.localDescription) return;
    this.#signaling.send({
      type: 'offer',
      revision: offer.revision,
      sdp: this.pc.localDescription.sdp,
      publish: offer.publish.map((p) => ({ mid: p.transceiver.mid, name: p.name, kind: p.kind, enabled: p.enabled })),
      subscribe: offer.subscribe.map((s) => ({ mid: s.transceiver.mid, track: s.sid })),
    });
  }

  /** The outstanding offer's revision, if any. */
  get outstandingRevision() {
    return this.#outstanding ? this.#outstanding.revision : null;
  }

  /** Close the peer connection; pending publications fail. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new Error('The media session is closed');
    for (const p of this.#publishQueue.splice(0)) p.reject(closed);
    if (this.#outstanding) for (const p of this.#outstanding.publish) p.reject(closed);
    this.#outstanding = null;
    for (const r of this.#dataRequests.splice(0)) r.reject(closed);
    this.pc.close();
  }

  /**
   * List the transceiver's codecs in the app's order of preference: the
   * preferred ones first (in the order given), then the rest in the
   * browser's order; within a codec, the variants this browser can send
   * first (the answer keeps the order, and the browser sends the first).
   */
  #preferCodecs(transceiver, kind) {
    const preferred = (this.#preferredCodecs[kind] || []).map((c) => c.toLowerCase());
    if (preferred.length === 0 || typeof transceiver.setCodecPreferences !== 'function'
      || typeof RTCRtpReceiver === 'undefined' || !RTCRtpReceiver.getCapabilities) return;
    const receivable = RTCRtpReceiver.getCapabilities(kind);
    if (!receivable) return;
    const sendable = (typeof RTCRtpSender !== 'undefined' && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities(kind)) || { codecs: [] };
    const canSend = (codec) => sendable.codecs.some((c) => c.mimeType === codec.mimeType && (c.sdpFmtpLine || '') === (codec.sdpFmtpLine || ''));
    const rank = (codec) => {
      const i = preferred.indexOf(codec.mimeType.split('/')[1].toLowerCase());
      return (i < 0 ? preferred.length : i) * 2 + (canSend(codec) ? 0 : 1);
    };
    const codecs = [...receivable.codecs].sort((a, b) => rank(a) - rank(b));
    try {
      transceiver.setCodecPreferences(codecs);
      this.#log.debug(`Codec preference for ${kind}:`, codecs.map((c) => c.mimeType).join(' '));
    } catch (e) {
      this.#log.warn(`setCodecPreferences failed; the browser's ${kind} codec order stays`, e);
    }
  }
}
