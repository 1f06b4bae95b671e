// Tracks: what an app attaches to the page, enables, disables and stops.
//
//   Track ─┬─ MediaTrack ─┬─ AudioTrack ─┬─ LocalAudioTrack   (yours: a microphone)
//          │              │              └─ RemoteAudioTrack  (someone else's)
//          │              └─ VideoTrack ─┬─ LocalVideoTrack   (a camera, a screen)
//          │                             └─ RemoteVideoTrack
//          ├─ LocalDataTrack                                  (messages you send)
//          └─ RemoteDataTrack                                 (messages you receive)
//
// A media track wraps one MediaStreamTrack. Owns: attaching it to <audio> and
// <video> elements, the enabled/stopped state, and the track's events.
// Must not: know about signaling or the peer connection. Publishing is the
// LocalParticipant's business; it listens to these tracks' events.

import { EventEmitter } from './events.js';
import { typeError } from './errors.js';
import { Log } from './log.js';
import { FrameProcessing, checkProcessor } from './processor.js';

/** What every track has: a kind and a name. */
export class Track extends EventEmitter {
  /**
   * @param {'audio'|'video'|'data'} kind
   * @param {string} name
   */
  constructor(kind, name) {
    super();
    /** @type {'audio'|'video'|'data'} */
    this.kind = kind;
    /** @type {string} */
    this.name = name;
  }

  toString() {
    return `[${this.constructor.name} ${this.name}]`;
  }
}

/**
 * An audio or video track backed by a MediaStreamTrack.
 * Events: `enabled`(track), `disabled`(track), `started`(track).
 */
export class MediaTrack extends Track {
  /** @type {Set<HTMLMediaElement>} */
  #elements = new Set();

  /**
   * @param {MediaStreamTrack} mediaStreamTrack
   * @param {string} name
   */
  constructor(mediaStreamTrack, name) {
    super(mediaStreamTrack.kind === 'audio' ? 'audio' : 'video', name);
    /** @type {MediaStreamTrack} */
    this.mediaStreamTrack = mediaStreamTrack;
    /** True once media flows (local tracks: at once; remote: with the first packets). */
    this.isStarted = false;
  }

  /** @returns {boolean} */
  get isEnabled() {
    return this.mediaStreamTrack.enabled;
  }

  /** @internal What elements show and a publication sends: the processed frames if a processor is set. */
  get _sendTrack() {
    return this.mediaStreamTrack;
  }

  /**
   * Show or play the track: in `element` (an <audio>/<video> element, or a
   * CSS selector for one), or in a new element of the track's kind.
   * @param {HTMLMediaElement|string} [element]
   * @returns {HTMLMediaElement}
   */
  attach(element) {
    let el = element;
    if (typeof el === 'string') {
      el = document.querySelector(el);
      if (!el) throw new TypeError(`attach(): no element matches the selector "${element}"`);
    }
    if (el === undefined || el === null) {
      el = document.createElement(this.kind);
    }
    if (typeof HTMLMediaElement === 'undefined' || !(el instanceof HTMLMediaElement)) {
      throw typeError('element', 'HTMLMediaElement, a CSS selector string, or undefined');
    }
    // Share the element with a track of the other kind (audio + video in one
    // <video>), replacing any track of this kind.
    let stream = el.srcObject;
    if (!(stream instanceof MediaStream)) {
      stream = new MediaStream();
    }
    const shown = this._sendTrack;
    for (const t of stream.getTracks()) {
      if (t.kind === shown.kind && t !== shown) stream.removeTrack(t);
    }
    if (!stream.getTracks().includes(shown)) stream.addTrack(shown);
    if (el.srcObject !== stream) el.srcObject = stream;
    el.autoplay = true;
    if ('playsInline' in el) el.playsInline = true;
    this.#elements.add(el);
    this._attached(el);
    // Autoplay policies may refuse until the user interacts; the element
    // keeps its srcObject and plays once allowed.
    const played = el.play();
    if (played && typeof played.catch === 'function') played.catch(() => {});
    return el;
  }

  /**
   * Stop showing the track in `element` (returned), or in every element it
   * is attached to (returned as an array).
   * @param {HTMLMediaElement|string} [element]
   * @returns {HTMLMediaElement|HTMLMediaElement[]}
   */
  detach(element) {
    if (element === undefined) {
      return [...this.#elements].map((el) => this.#detachOne(el));
    }
    const el = typeof element === 'string' ? document.querySelector(element) : element;
    if (!el) throw new TypeError(`detach(): no element matches the selector "${element}"`);
    return this.#detachOne(el);
  }

  #detachOne(el) {
    const stream = el.srcObject;
    if (stream instanceof MediaStream) {
      stream.removeTrack(this._sendTrack);
      if (stream.getTracks().length === 0) el.srcObject = null;
    }
    this.#elements.delete(el);
    this._detached(el);
    return el;
  }

  /** Elements this track is attached to now. */
  get _elements() {
    return [...this.#elements];
  }

  /** @protected Hook for subclasses: an element was attached. */
  _attached(_el) {}

  /** @protected Hook for subclasses: an element was detached. */
  _detached(_el) {}

  /** @protected The elements show `_sendTrack` instead of `previous`. */
  _showInElements(previous) {
    const next = this._sendTrack;
    if (previous === next) return;
    for (const el of this.#elements) {
      const stream = el.srcObject;
      if (stream instanceof MediaStream) {
        stream.removeTrack(previous);
        stream.addTrack(next);
      }
    }
  }

  /** @protected */
  _start() {
    if (this.isStarted) return;
    this.isStarted = true;
    this.emit('started', this);
  }
}

/** An audio track. */
export class AudioTrack extends MediaTrack {}

/**
 * A video track, with its current dimensions and an optional
 * {@link VideoProcessor} (see processor.js).
 * Events: `dimensionsChanged`(track), and those of {@link MediaTrack}.
 */
export class VideoTrack extends MediaTrack {
  /** @type {FrameProcessing|null} */
  #processing = null;
  #processorOptions = null;

  constructor(mediaStreamTrack, name) {
    super(mediaStreamTrack, name);
    /** @type {{width: number|null, height: number|null}} */
    this.dimensions = { width: null, height: null };
    /** The VideoProcessor added with addProcessor(), or null. */
    this.processor = null;
    /** @type {MediaStreamTrack|null} the processor's output, or null */
    this.processedTrack = null;
  }

  get _sendTrack() {
    return this.processedTrack || this.mediaStreamTrack;
  }

  _attached(el) {
    if (!(el instanceof HTMLVideoElement)) return;
    const update = () => this._setDimensions(el.videoWidth || null, el.videoHeight || null);
    el.addEventListener('loadedmetadata', update);
    el.addEventListener('resize', update);
  }

  /** @protected */
  _setDimensions(width, height) {
    if (width === this.dimensions.width && height === this.dimensions.height) return;
    this.dimensions = { width, height };
    this.emit('dimensionsChanged', this);
  }

  /**
   * Process every frame with `processor` (twilio-video's VideoProcessor:
   * `processFrame(inputFrameBuffer, outputFrameBuffer)`). Elements the track
   * is attached to, and what a published LocalVideoTrack sends, show the
   * processed frames from now on.
   * @param {{processFrame: Function}} processor
   * @param {{inputFrameBufferType?: 'video'|'canvas'|'offscreencanvas'|'videoframe', outputFrameBufferContextType?: string}} [options]
   * @returns {this}
   */
  addProcessor(processor, options) {
    const checked = checkProcessor(processor, options);
    if (this.processor) throw new Error('A VideoProcessor has already been added.');
    const previous = this._sendTrack;
    this.#processing = new FrameProcessing(this.mediaStreamTrack, processor, checked, new Log(this));
    this.#processorOptions = checked;
    this.processor = processor;
    this.processedTrack = this.#processing.processedTrack;
    this._showInElements(previous);
    this.emit('_replaced', this);
    return this;
  }

  /**
   * Stop processing: back to the unprocessed frames.
   * @param {{processFrame: Function}} processor the one added
   * @returns {this}
   */
  removeProcessor(processor) {
    if (!processor) throw new Error('Received an invalid VideoProcessor from removeProcessor.');
    if (!this.processor) throw new Error('No existing VideoProcessor detected.');
    if (processor !== this.processor) throw new Error('The provided VideoProcessor is different than the existing one.');
    const previous = this._sendTrack;
    this.#processing.stop();
    this.#processing = null;
    this.#processorOptions = null;
    this.processor = null;
    this.processedTrack = null;
    this._showInElements(previous);
    this.emit('_replaced', this);
    return this;
  }

  /** @protected The source track changed (restart): process the new one. */
  _restartProcessing() {
    if (!this.#processing) return;
    this.#processing.stop();
    this.#processing = new FrameProcessing(this.mediaStreamTrack, this.processor, this.#processorOptions, new Log(this));
    this.processedTrack = this.#processing.processedTrack;
  }

  /** @protected Disabling the track blacks out the processed frames too. */
  _processedEnabled(enabled) {
    if (this.processedTrack) this.processedTrack.enabled = enabled;
  }
}

// ---- local media tracks ---------------------------------------------------

/**
 * What local audio and video tracks add: enable/disable, stop, restart.
 * Events: `enabled`, `disabled`, `stopped`, `muted`, `unmuted`, `started`.
 * @template {new (...args: any[]) => MediaTrack} B
 * @param {B} Base
 */
const LocalMedia = (Base) =>
  class extends Base {
    /**
     * @param {MediaStreamTrack} mediaStreamTrack
     * @param {{name?: string}} [options]
     * @param {string} kind the kind the class requires
     */
    constructor(mediaStreamTrack, options, kind) {
      if (typeof MediaStreamTrack === 'undefined' || !(mediaStreamTrack instanceof MediaStreamTrack)) {
        throw typeError('mediaStreamTrack', 'MediaStreamTrack');
      }
      if (mediaStreamTrack.kind !== kind) {
        throw new TypeError(`mediaStreamTrack must be a ${kind} MediaStreamTrack, not ${mediaStreamTrack.kind}`);
      }
      const name = trackName(options, mediaStreamTrack.id);
      super(mediaStreamTrack, name);
      /** The MediaStreamTrack's id when the track was made. */
      this.id = mediaStreamTrack.id;
      this.isStopped = mediaStreamTrack.readyState === 'ended';
      /** @type {MediaTrackConstraints|undefined} set by createLocal*Track, used by restart() */
      this._constraints = undefined;
      this.#watch(mediaStreamTrack);
      if (!this.isStopped) this._start();
    }

    #watch(mst) {
      mst.addEventListener('ended', () => {
        if (mst !== this.mediaStreamTrack || this.isStopped) return;
        this.isStopped = true;
        this.emit('stopped', this);
      });
      mst.addEventListener('mute', () => mst === this.mediaStreamTrack && this.emit('muted', this));
      mst.addEventListener('unmute', () => mst === this.mediaStreamTrack && this.emit('unmuted', this));
    }

    /** Whether the source produces no media now (a muted device, not {@link disable}). */
    get isMuted() {
      return this.mediaStreamTrack.muted;
    }

    /**
     * Enable (or, with `false`, disable) the track. Participants see the
     * change as `trackEnabled` / `trackDisabled`.
     * @param {boolean} [enabled=true]
     * @returns {this}
     */
    enable(enabled = true) {
      if (typeof enabled !== 'boolean') throw typeError('enabled', 'boolean');
      if (this.mediaStreamTrack.enabled !== enabled) {
        this.mediaStreamTrack.enabled = enabled;
        if (this._processedEnabled) this._processedEnabled(enabled);
        this.emit(enabled ? 'enabled' : 'disabled', this);
      }
      return this;
    }

    /**
     * Disable the track: it sends silence or black frames.
     * @returns {this}
     */
    disable() {
      return this.enable(false);
    }

    /**
     * Stop the track for good: the camera or microphone is released.
     * @returns {this}
     */
    stop() {
      this.mediaStreamTrack.stop();
      if (!this.isStopped) {
        this.isStopped = true;
        this.emit('stopped', this);
      }
      return this;
    }

    /**
     * Capture again (another device, other constraints): the track keeps its
     * name and publication, and the new capture replaces the old one.
     * @param {MediaTrackConstraints} [constraints]
     * @returns {Promise<void>}
     */
    async restart(constraints) {
      const c = constraints ?? this._constraints ?? true;
      const stream = await navigator.mediaDevices.getUserMedia({ [this.kind]: c });
      const [next] = stream.getTracks();
      const enabled = this.mediaStreamTrack.enabled;
      this.mediaStreamTrack.stop();
      next.enabled = enabled;
      const previous = this._sendTrack;
      this.mediaStreamTrack = next;
      if (this._restartProcessing) this._restartProcessing();
      this._showInElements(previous);
      this._constraints = constraints ?? this._constraints;
      this.isStopped = false;
      this.#watch(next);
      // The LocalParticipant listens to replace the sender's track.
      this.emit('_replaced', this);
      this.emit('started', this);
    }
  };

/** A microphone (or any audio MediaStreamTrack) of yours. */
export class LocalAudioTrack extends LocalMedia(AudioTrack) {
  /**
   * @param {MediaStreamTrack} mediaStreamTrack an audio track
   * @param {{name?: string}} [options]
   */
  constructor(mediaStreamTrack, options) {
    super(mediaStreamTrack, options, 'audio');
  }
}

/** A camera, a screen, or any video MediaStreamTrack of yours. */
export class LocalVideoTrack extends LocalMedia(VideoTrack) {
  /**
   * @param {MediaStreamTrack} mediaStreamTrack a video track
   * @param {{name?: string}} [options]
   */
  constructor(mediaStreamTrack, options) {
    super(mediaStreamTrack, options, 'video');
    const { width, height } = mediaStreamTrack.getSettings ? mediaStreamTrack.getSettings() : {};
    if (width && height) this.dimensions = { width, height };
  }
}

// ---- data tracks ----------------------------------------------------------

/**
 * A track of messages you send to everyone subscribed: publish it, then
 * `send()` strings or binary data.
 */
export class LocalDataTrack extends Track {
  /** @type {Set<RTCDataChannel>} */
  #channels = new Set();

  /**
   * @param {{name?: string, ordered?: boolean, maxPacketLifeTime?: number|null, maxRetransmits?: number|null}} [options]
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw typeError('options', 'object');
    const id = randomId();
    super('data', trackName(options, id));
    const { ordered = true, maxPacketLifeTime = null, maxRetransmits = null } = options;
    if (typeof ordered !== 'boolean') throw typeError('options.ordered', 'boolean');
    for (const [key, value] of [['maxPacketLifeTime', maxPacketLifeTime], ['maxRetransmits', maxRetransmits]]) {
      if (value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535)) {
        throw new RangeError(`options.${key} must be null or an integer from 0 to 65535`);
      }
    }
    if (maxPacketLifeTime !== null && maxRetransmits !== null) {
      throw new RangeError('options.maxPacketLifeTime and options.maxRetransmits cannot both be set');
    }
    /** @type {string} */
    this.id = id;
    this.ordered = ordered;
    this.maxPacketLifeTime = maxPacketLifeTime;
    this.maxRetransmits = maxRetransmits;
    this.reliable = maxPacketLifeTime === null && maxRetransmits === null;
  }

  /**
   * Send a message to everyone subscribed. Messages sent before the track is
   * published, or while its channel opens, are dropped (as in twilio-video).
   * @param {string|Blob|ArrayBuffer|ArrayBufferView} data
   */
  send(data) {
    if (!(typeof data === 'string' || data instanceof Blob || data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
      throw typeError('data', 'string, Blob, ArrayBuffer or ArrayBufferView');
    }
    for (const channel of this.#channels) {
      if (channel.readyState === 'open') channel.send(/** @type {any} */ (data));
    }
  }

  /** @internal The channel carrying this track in a room. */
  _addChannel(channel) {
    this.#channels.add(channel);
    channel.addEventListener('close', () => this.#channels.delete(channel));
  }

  /** @internal */
  _removeChannel(channel) {
    this.#channels.delete(channel);
  }
}

// ---- remote tracks --------------------------------------------------------

/**
 * What remote tracks add: the track SID, the publisher's enabled flag, and
 * the priority/switch-off API (accepted, no effect yet).
 * @template {new (...args: any[]) => MediaTrack} B
 * @param {B} Base
 */
const RemoteMedia = (Base) =>
  class extends Base {
    #enabled;

    /**
     * @param {string} sid
     * @param {MediaStreamTrack} mediaStreamTrack
     * @param {string} name
     * @param {boolean} enabled the publisher's enabled flag
     */
    constructor(sid, mediaStreamTrack, name, enabled) {
      super(mediaStreamTrack, name);
      /** @type {string} */
      this.sid = sid;
      this.#enabled = enabled;
      this.isSwitchedOff = false;
      this.priority = null;
      // A receiving track is muted until its first packets arrive.
      if (!mediaStreamTrack.muted) this._start();
      else mediaStreamTrack.addEventListener('unmute', () => this._start(), { once: true });
    }

    /** Whether the publisher has the track enabled. */
    get isEnabled() {
      return this.#enabled;
    }

    /** @internal */
    _setEnabled(enabled) {
      if (this.#enabled === enabled) return;
      this.#enabled = enabled;
      this.emit(enabled ? 'enabled' : 'disabled', this);
    }

    /**
     * Your priority for this track (null: the publisher's). What it changes
     * in what you receive is the server's business (adaptive video).
     * @param {'low'|'standard'|'high'|null} priority
     * @returns {this}
     */
    setPriority(priority) {
      const next = checkSubscriberPriority(priority);
      if (next === this.priority) return this;
      this.priority = next;
      this._sendControl({ type: 'set_subscribe_priority', priority: next });
      return this;
    }

    /** @protected Send an adaptive-video message about this track (set by the Room). */
    _sendControl(_message) {}
  };

/** Someone else's audio. */
export class RemoteAudioTrack extends RemoteMedia(AudioTrack) {}

/** An element hidden for this long switches the track off (twilio-video's delay). */
const TURN_OFF_DELAY_MS = 50;

/**
 * Someone else's video.
 * Events (besides VideoTrack's): `switchedOff`(track), `switchedOn`(track); why it
 * was switched off is in `switchOffReason` (a Salon addition).
 *
 * With a bandwidth profile, `clientTrackSwitchOffControl` and
 * `contentPreferencesMode` are `auto` unless set: the track is switched off
 * while none of its elements is visible (IntersectionObserver, page
 * visibility; a track never attached too) and its render dimensions follow
 * the largest element
 * (ResizeObserver). In `manual`, the app calls switchOff()/switchOn() and
 * setContentPreferences().
 */
export class RemoteVideoTrack extends RemoteMedia(VideoTrack) {
  /** @type {string|null} why the server switched the track off (twilio-video's switchOffReason) */
  switchOffReason = null;
  #send = null;
  #switchControl = 'disabled';
  #contentMode = 'disabled';
  /** Last hints sent, so nothing is sent twice. */
  #hintEnabled = true;
  #hintDimensions = null;
  #visible = new Set();
  #intersection = null;
  #resize = null;
  #turnOff = null;
  #onVisibility = null;

  /**
   * @internal The Room wires the track to the server.
   * @param {(message: object) => void} send
   * @param {{clientTrackSwitchOffControl: string, contentPreferencesMode: string}} modes
   */
  _control(send, modes) {
    this.#send = send;
    this.#switchControl = modes.clientTrackSwitchOffControl;
    this.#contentMode = modes.contentPreferencesMode;
    if (this.#switchControl === 'auto' && typeof document !== 'undefined') {
      this.#onVisibility = () => this.#updateEnabled();
      document.addEventListener('visibilitychange', this.#onVisibility);
      // A track no element shows is switched off (shortly, so an app that
      // attaches it in `trackSubscribed` never sees it off), as in
      // twilio-video: an app that subscribes without rendering pays nothing.
      this.#updateEnabled();
    }
  }

  /** @protected */
  _sendControl(message) {
    if (this.#send) this.#send(message);
  }

  /**
   * Ask the server to forward this track again (`clientTrackSwitchOffControl: 'manual'`).
   * @returns {this}
   */
  switchOn() {
    if (this.#switchControl !== 'manual') {
      throw new Error('Invalid state. You can call switchOn only when bandwidthProfile.video.clientTrackSwitchOffControl is set to "manual"');
    }
    this.#hintEnabled = true;
    this._sendControl({ type: 'switch_on' });
    return this;
  }

  /**
   * Ask the server to stop forwarding this track, keeping the subscription
   * (`clientTrackSwitchOffControl: 'manual'`). `switchedOff` follows.
   * @returns {this}
   */
  switchOff() {
    if (this.#switchControl !== 'manual') {
      throw new Error('Invalid state. You can call switchOff only when bandwidthProfile.video.clientTrackSwitchOffControl is set to "manual"');
    }
    this.#hintEnabled = false;
    this._sendControl({ type: 'switch_off' });
    return this;
  }

  /**
   * The size you render the track at (`contentPreferencesMode: 'manual'`):
   * the server forwards the smallest simulcast layer that covers it.
   * @param {{renderDimensions?: {width: number, height: number}}} contentPreferences
   * @returns {this}
   */
  setContentPreferences(contentPreferences) {
    if (this.#contentMode !== 'manual') {
      throw new Error('Invalid state. You can call setContentPreferences only when bandwidthProfile.video.contentPreferencesMode is set to "manual"');
    }
    if (contentPreferences && contentPreferences.renderDimensions) this.#sendDimensions(contentPreferences.renderDimensions);
    return this;
  }

  /** @internal Unsubscribed: stop watching the page and the elements. */
  _release() {
    clearTimeout(this.#turnOff);
    this.#intersection?.disconnect();
    this.#resize?.disconnect();
    if (this.#onVisibility) document.removeEventListener('visibilitychange', this.#onVisibility);
    this.#onVisibility = null;
    this.#send = null;
  }

  /** @internal The server switched the track off or on; returns whether it changed. */
  _setSwitchedOff(off, reason) {
    if (this.isSwitchedOff === off) return false;
    this.isSwitchedOff = off;
    /** @type {string|null} twilio-video's switchOffReason */
    this.switchOffReason = off ? reason : null;
    this.emit(off ? 'switchedOff' : 'switchedOn', this);
    return true;
  }

  /** @protected */
  _attached(el) {
    super._attached(el);
    if (this.#switchControl === 'auto' && typeof IntersectionObserver !== 'undefined') {
      // The observer's first report (on the next frame) decides.
      clearTimeout(this.#turnOff);
      this.#intersection ??= new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (entry.isIntersecting) this.#visible.add(entry.target);
          else this.#visible.delete(entry.target);
        }
        this.#updateEnabled();
      });
      this.#intersection.observe(el);
    }
    if (this.#contentMode === 'auto' && typeof ResizeObserver !== 'undefined') {
      this.#resize ??= new ResizeObserver(() => this.#updateDimensions());
      this.#resize.observe(el);
    }
  }

  /** @protected */
  _detached(el) {
    super._detached(el);
    this.#visible.delete(el);
    this.#intersection?.unobserve(el);
    this.#resize?.unobserve(el);
    if (this.#switchControl === 'auto') this.#updateEnabled();
    if (this.#contentMode === 'auto') this.#updateDimensions();
  }

  #updateEnabled() {
    const shown = this.#visible.size > 0 && (typeof document === 'undefined' || document.visibilityState !== 'hidden');
    clearTimeout(this.#turnOff);
    if (shown && !this.#hintEnabled) {
      this.#hintEnabled = true;
      this._sendControl({ type: 'switch_on' });
    } else if (!shown && this.#hintEnabled) {
      this.#turnOff = setTimeout(() => {
        this.#hintEnabled = false;
        this._sendControl({ type: 'switch_off' });
      }, TURN_OFF_DELAY_MS);
    }
  }

  #updateDimensions() {
    let best = null;
    for (const el of this._elements) {
      const width = el.clientWidth;
      const height = el.clientHeight;
      if (width > 0 && height > 0 && (!best || width * height > best.width * best.height)) best = { width, height };
    }
    if (best) this.#sendDimensions(best);
  }

  #sendDimensions(dimensions) {
    const width = Math.round(dimensions.width);
    const height = Math.round(dimensions.height);
    if (!(width >= 1 && height >= 1)) throw new RangeError('renderDimensions must have a positive width and height');
    const clamp = (v) => Math.min(v, 16_384);
    const next = { width: clamp(width), height: clamp(height) };
    if (this.#hintDimensions && this.#hintDimensions.width === next.width && this.#hintDimensions.height === next.height) return;
    this.#hintDimensions = next;
    this._sendControl({ type: 'set_render_dimensions', dimensions: next });
  }
}

/**
 * Someone else's data track. Events: `message`(data, track).
 */
export class RemoteDataTrack extends Track {
  /**
   * @param {string} sid
   * @param {string} name
   * @param {RTCDataChannel} channel
   */
  constructor(sid, name, channel) {
    super('data', name);
    /** @type {string} */
    this.sid = sid;
    this.isEnabled = true;
    this.isSubscribed = true;
    this.isSwitchedOff = false;
    this.priority = null;
    this.ordered = channel.ordered;
    this.maxPacketLifeTime = channel.maxPacketLifeTime ?? null;
    this.maxRetransmits = channel.maxRetransmits ?? null;
    this.reliable = this.maxPacketLifeTime === null && this.maxRetransmits === null;
    channel.binaryType = 'arraybuffer';
    channel.addEventListener('message', (event) => this.emit('message', event.data, this));
  }

  /** Your priority for this track (null: the publisher's). */
  setPriority(priority) {
    this.priority = checkSubscriberPriority(priority);
    return this;
  }
}

// ---- helpers ----------------------------------------------------------------

function checkSubscriberPriority(priority) {
  if (priority === null || priority === undefined) return null;
  if (!['low', 'standard', 'high'].includes(priority)) throw new RangeError('priority must be one of low, standard, high, null');
  return priority;
}

function trackName(options, fallback) {
  if (options === undefined || options === null) return fallback;
  if (typeof options !== 'object') throw typeError('options', 'object');
  if (options.name === undefined || options.name === null) return fallback;
  if (typeof options.name !== 'string') throw typeError('options.name', 'string');
  return options.name;
}

function randomId() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
}
