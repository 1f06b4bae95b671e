// salon-video 0.2.0: the script-tag build (the global Twilio.Video).
// Generated from the ES modules beside it by sdk/build/bundle; do not edit.
var Twilio;
(Twilio ||= {}).Video = (() => {
  var __defProp = Object.defineProperty;
  var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
  var __getOwnPropNames = Object.getOwnPropertyNames;
  var __hasOwnProp = Object.prototype.hasOwnProperty;
  var __export = (target, all) => {
    for (var name in all)
      __defProp(target, name, { get: all[name], enumerable: true });
  };
  var __copyProps = (to, from, except, desc) => {
    if (from && typeof from === "object" || typeof from === "function") {
      for (let key of __getOwnPropNames(from))
        if (!__hasOwnProp.call(to, key) && key !== except)
          __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
    }
    return to;
  };
  var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

  // sdk/js/salon-video.js
  var salon_video_exports = {};
  __export(salon_video_exports, {
    AudioTrack: () => AudioTrack,
    LocalAudioTrack: () => LocalAudioTrack,
    LocalAudioTrackPublication: () => LocalAudioTrackPublication,
    LocalDataTrack: () => LocalDataTrack,
    LocalDataTrackPublication: () => LocalDataTrackPublication,
    LocalParticipant: () => LocalParticipant,
    LocalTrackPublication: () => LocalTrackPublication,
    LocalVideoTrack: () => LocalVideoTrack,
    LocalVideoTrackPublication: () => LocalVideoTrackPublication,
    Logger: () => Logger,
    MediaTrack: () => MediaTrack,
    Participant: () => Participant,
    PreflightTest: () => PreflightTest,
    RemoteAudioTrack: () => RemoteAudioTrack,
    RemoteAudioTrackPublication: () => RemoteAudioTrackPublication,
    RemoteDataTrack: () => RemoteDataTrack,
    RemoteDataTrackPublication: () => RemoteDataTrackPublication,
    RemoteParticipant: () => RemoteParticipant,
    RemoteTrackPublication: () => RemoteTrackPublication,
    RemoteVideoTrack: () => RemoteVideoTrack,
    RemoteVideoTrackPublication: () => RemoteVideoTrackPublication,
    Room: () => Room,
    Track: () => Track,
    TrackPublication: () => TrackPublication,
    TwilioError: () => TwilioError,
    VideoTrack: () => VideoTrack,
    connect: () => connect,
    createLocalAudioTrack: () => createLocalAudioTrack,
    createLocalTracks: () => createLocalTracks,
    createLocalVideoTrack: () => createLocalVideoTrack,
    createTwilioError: () => createTwilioError,
    default: () => salon_video_default,
    errors: () => errors,
    isSupported: () => isSupported,
    runPreflight: () => runPreflight,
    version: () => version
  });

  // sdk/js/errors.js
  var TwilioError = class extends Error {
    /**
     * @param {number} code
     * @param {string} [message]
     */
    constructor(code, message) {
      super(message);
      this.name = "TwilioError";
      this.code = code;
    }
    toString() {
      return `${this.name} ${this.code}${this.message ? `: ${this.message}` : ""}`;
    }
  };
  var CLASSES = [
    [20101, "AccessTokenInvalidError", "Invalid Access Token"],
    [20102, "AccessTokenHeaderInvalidError", "Invalid Access Token header"],
    [20103, "AccessTokenIssuerInvalidError", "Invalid Access Token issuer/subject"],
    [20104, "AccessTokenExpiredError", "Access Token expired or expiration date invalid"],
    [20105, "AccessTokenNotYetValidError", "Access Token not yet valid"],
    [20106, "AccessTokenGrantsInvalidError", "Invalid Access Token grants"],
    [20107, "AccessTokenSignatureInvalidError", "Invalid Access Token signature"],
    [53e3, "SignalingConnectionError", "Signaling connection error"],
    [53001, "SignalingConnectionDisconnectedError", "Signaling connection disconnected"],
    [53002, "SignalingConnectionTimeoutError", "Signaling connection timed out"],
    [53003, "SignalingIncomingMessageInvalidError", "Client received an invalid signaling message"],
    [53004, "SignalingOutgoingMessageInvalidError", "Client sent an invalid signaling message"],
    [53006, "SignalingServerBusyError", "Video server is busy"],
    [53100, "RoomNameInvalidError", "Room name is invalid"],
    [53101, "RoomNameTooLongError", "Room name is too long"],
    [53102, "RoomNameCharsInvalidError", "Room name contains invalid characters"],
    [53104, "RoomConnectFailedError", "Unable to connect to Room"],
    [53105, "RoomMaxParticipantsExceededError", "Room contains too many Participants"],
    [53106, "RoomNotFoundError", "Room not found"],
    [53118, "RoomCompletedError", "Room completed"],
    [53200, "ParticipantIdentityInvalidError", "Participant identity is invalid"],
    [53201, "ParticipantIdentityTooLongError", "Participant identity is too long"],
    [53202, "ParticipantIdentityCharsInvalidError", "Participant identity contains invalid characters"],
    [53204, "ParticipantNotFoundError", "Participant not found"],
    [53205, "ParticipantDuplicateIdentityError", "Participant disconnected because of duplicate identity"],
    [53216, "ParticipantSessionLengthExceededError", "Participant session length exceeded"],
    [53300, "TrackInvalidError", "Track is invalid"],
    [53301, "TrackNameInvalidError", "Track name is invalid"],
    [53302, "TrackNameTooLongError", "Track name is too long"],
    [53303, "TrackNameCharsInvalidError", "Track name contains invalid characters"],
    [53304, "TrackNameIsDuplicatedError", "Track name is duplicated"],
    [53400, "MediaClientLocalDescFailedError", "Client is unable to create or apply a local media description"],
    [53402, "MediaClientRemoteDescFailedError", "Client is unable to apply a remote media description"],
    [53403, "MediaServerRemoteDescFailedError", "Server is unable to apply a remote media description"],
    [53404, "MediaNoSupportedCodecError", "No supported codec"],
    [53405, "MediaConnectionError", "Media connection failed or Media activity ceased"]
  ];
  var BY_CODE = /* @__PURE__ */ new Map();
  var errors = {};
  for (const [code, name, defaultMessage] of CLASSES) {
    const cls = {
      [name]: class extends TwilioError {
        /** @param {string} [message] */
        constructor(message) {
          super(code, message || defaultMessage);
        }
      }
    }[name];
    BY_CODE.set(code, cls);
    errors[name] = cls;
  }
  function createTwilioError(code, message) {
    const cls = BY_CODE.get(code);
    return cls ? new cls(message) : new TwilioError(code, message || "Unknown error");
  }
  function typeError(name, type) {
    const article = /^[aeiou]/i.test(type) ? "an" : "a";
    return new TypeError(`${name} must be ${article} ${type}`);
  }
  function rangeError(name, values) {
    return new RangeError(`${name} must be one of ${values.join(", ")}`);
  }

  // sdk/js/log.js
  var LEVELS = Object.freeze({ TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, SILENT: 5 });
  var METHODS = ["trace", "debug", "info", "warn", "error"];
  var noop = () => {
  };
  var DEFAULT_LOGGER_NAME = "twilio-video";
  function defaultMethodFactory(methodName) {
    if (typeof console === "undefined") return noop;
    const name = methodName === "debug" ? "log" : methodName;
    const method = typeof console[name] === "function" ? console[name] : console.log;
    return typeof method === "function" ? method.bind(console) : noop;
  }
  function levelNumber(level) {
    if (typeof level === "string" && LEVELS[level.toUpperCase()] !== void 0) return LEVELS[level.toUpperCase()];
    if (typeof level === "number" && Number.isInteger(level) && level >= LEVELS.TRACE && level <= LEVELS.SILENT) return level;
    return void 0;
  }
  var LevelLogger = class {
    #storageKey;
    #level;
    #defaultLevel;
    /**
     * @param {string|symbol|undefined} name undefined for the root logger
     * @param {number|string} defaultLevel
     * @param {Function} factory
     */
    constructor(name, defaultLevel, factory) {
      this.name = name;
      this.levels = LEVELS;
      this.methodFactory = factory;
      this.#storageKey = typeof name === "symbol" ? void 0 : typeof name === "string" ? `loglevel:${name}` : "loglevel";
      this.#defaultLevel = levelNumber(defaultLevel) ?? LEVELS.WARN;
      const persisted = this.#persisted();
      this.setLevel(persisted ?? this.#defaultLevel, false);
    }
    /** @returns {number} */
    getLevel() {
      return this.#level;
    }
    /**
     * Log at `level` and above; the methods below it do nothing.
     * @param {number|string} level 0–5, or 'trace' … 'silent'
     * @param {boolean} [persist=true] remember it in localStorage for the next page load
     */
    setLevel(level, persist) {
      const number = levelNumber(level);
      if (number === void 0) throw new TypeError(`log.setLevel() called with invalid level: ${String(level)}`);
      this.#level = number;
      if (persist !== false) this.#persist(number);
      this.rebuild();
    }
    /** Use this level unless one was persisted. */
    setDefaultLevel(level) {
      const number = levelNumber(level);
      if (number === void 0) throw new TypeError(`log.setDefaultLevel() called with invalid level: ${String(level)}`);
      this.#defaultLevel = number;
      if (this.#persisted() === void 0) this.setLevel(number, false);
    }
    /** Forget the persisted level and go back to the default. */
    resetLevel() {
      if (this.#storageKey && typeof localStorage !== "undefined") {
        try {
          localStorage.removeItem(this.#storageKey);
        } catch {
        }
      }
      this.setLevel(this.#defaultLevel, false);
    }
    enableAll(persist) {
      this.setLevel(LEVELS.TRACE, persist);
    }
    disableAll(persist) {
      this.setLevel(LEVELS.SILENT, persist);
    }
    /** Make the logging methods again, from the current `methodFactory` and level. */
    rebuild() {
      for (const [i, method] of METHODS.entries()) {
        this[method] = i < this.#level ? noop : this.methodFactory(method, this.#level, this.name);
      }
      this.log = this.debug;
    }
    #persisted() {
      if (!this.#storageKey || typeof localStorage === "undefined") return void 0;
      try {
        return levelNumber(localStorage.getItem(this.#storageKey) ?? void 0);
      } catch {
        return void 0;
      }
    }
    #persist(level) {
      if (!this.#storageKey || typeof localStorage === "undefined") return;
      try {
        localStorage.setItem(this.#storageKey, Object.keys(LEVELS)[level]);
      } catch {
      }
    }
  };
  var RootLogger = class extends LevelLogger {
    #loggers = /* @__PURE__ */ new Map();
    constructor() {
      super(void 0, LEVELS.WARN, defaultMethodFactory);
      this.default = this;
    }
    /**
     * The logger of this name, made on first use with the root's current level
     * and method factory.
     * @param {string|symbol} name
     */
    getLogger(name) {
      if (typeof name !== "string" && typeof name !== "symbol" || name === "") {
        throw new TypeError("You must supply a name when creating a logger.");
      }
      let logger = this.#loggers.get(name);
      if (!logger) {
        logger = new LevelLogger(name, this.getLevel(), this.methodFactory);
        this.#loggers.set(name, logger);
      }
      return logger;
    }
    /** Every named logger made so far, by name. */
    getLoggers() {
      return Object.fromEntries([...this.#loggers].filter(([name]) => typeof name === "string"));
    }
    /** loglevel's way out of a clash over `window.log`; the SDK sets no global. */
    noConflict() {
      return this;
    }
  };
  var Logger = new RootLogger();
  var Log = class _Log {
    #component;
    #loggerName;
    /**
     * @param {string|{toString(): string}} component who speaks (`[Room RM…]`, 'signaling'); read at each line
     * @param {string} [loggerName]
     */
    constructor(component, loggerName = DEFAULT_LOGGER_NAME) {
      this.#component = component;
      this.#loggerName = loggerName;
    }
    /** The same logger, speaking for another component. */
    child(component) {
      return new _Log(component, this.#loggerName);
    }
    get logger() {
      return Logger.getLogger(this.#loggerName);
    }
    debug(...message) {
      this.#write("debug", message);
    }
    info(...message) {
      this.#write("info", message);
    }
    warn(...message) {
      this.#write("warn", message);
    }
    error(...message) {
      this.#write("error", message);
    }
    #write(level, message) {
      const logger = this.logger;
      if (logger.getLevel() > LEVELS[level.toUpperCase()]) return;
      logger[level]((/* @__PURE__ */ new Date()).toISOString(), level, String(this.#component), ...message);
    }
  };
  function applyLogLevelOption(value, loggerName) {
    if (value === void 0) return;
    const names = ["debug", "info", "warn", "error", "off"];
    const check = (v, what) => {
      if (!names.includes(v)) throw new RangeError(`${what} must be one of ${names.join(", ")}`);
      return v === "off" ? LEVELS.SILENT : LEVELS[v.toUpperCase()];
    };
    let level;
    if (typeof value === "string") {
      level = check(value, "options.logLevel");
    } else if (value !== null && typeof value === "object") {
      const levels = Object.entries(value).map(([module, v]) => check(v, `options.logLevel.${module}`));
      level = levels.length ? Math.min(...levels) : LEVELS.WARN;
    } else {
      throw new TypeError("options.logLevel must be a string or an object of LogLevels");
    }
    Logger.getLogger(loggerName).setDefaultLevel(level);
  }

  // sdk/js/events.js
  var log = new Log("EventEmitter");
  var EventEmitter = class _EventEmitter {
    /** Like Node's `EventEmitter.defaultMaxListeners`: the limit of emitters that set none. */
    static defaultMaxListeners = 10;
    /** @type {Map<EventName, Function[]>} */
    #events = /* @__PURE__ */ new Map();
    /** @type {number|undefined} */
    #maxListeners = void 0;
    /** Events already warned about (MaxListenersExceededWarning). */
    #warned = /* @__PURE__ */ new Set();
    /**
     * Call `listener` each time `event` is emitted.
     * @param {EventName} event
     * @param {Function} listener
     * @returns {this}
     */
    on(event, listener) {
      return this.#add(event, listener, false);
    }
    /** Alias of {@link EventEmitter#on}. */
    addListener(event, listener) {
      return this.#add(event, listener, false);
    }
    /** Like `on`, but before the listeners already there. */
    prependListener(event, listener) {
      return this.#add(event, listener, true);
    }
    /**
     * Call `listener` the next time `event` is emitted only.
     * @param {EventName} event
     * @param {Function} listener
     * @returns {this}
     */
    once(event, listener) {
      checkListener(listener);
      return this.#add(event, this.#onceWrapper(event, listener), false);
    }
    /** Like `once`, but before the listeners already there. */
    prependOnceListener(event, listener) {
      checkListener(listener);
      return this.#add(event, this.#onceWrapper(event, listener), true);
    }
    /**
     * Remove the most recently added instance of `listener` (added with `on`
     * or `once`).
     * @param {EventName} event
     * @param {Function} listener
     * @returns {this}
     */
    removeListener(event, listener) {
      checkListener(listener);
      const list = this.#events.get(event);
      if (!list) return this;
      const index = list.findLastIndex((l) => l === listener || l.listener === listener);
      if (index < 0) return this;
      list.splice(index, 1);
      if (list.length === 0) this.#events.delete(event);
      if (this.#events.has("removeListener")) this.emit("removeListener", event, listener);
      return this;
    }
    /** Alias of {@link EventEmitter#removeListener}. */
    off(event, listener) {
      return this.removeListener(event, listener);
    }
    /**
     * Remove every listener of `event`, or of every event.
     * @param {EventName} [event]
     * @returns {this}
     */
    removeAllListeners(event) {
      if (!this.#events.has("removeListener")) {
        if (arguments.length === 0) this.#events.clear();
        else this.#events.delete(event);
        return this;
      }
      const events = arguments.length === 0 ? [...this.#events.keys()].filter((e) => e !== "removeListener").concat(["removeListener"]) : [event];
      for (const name of events) {
        const list = this.#events.get(name);
        while (list && list.length) this.removeListener(name, list[list.length - 1]);
      }
      return this;
    }
    /**
     * Call every listener of `event` with `args`, in order.
     * @param {EventName} event
     * @param {...unknown} args
     * @returns {boolean} whether anyone listened
     */
    emit(event, ...args) {
      const list = this.#events.get(event);
      if (!list || list.length === 0) {
        if (event === "error") {
          const [error] = args;
          if (error instanceof Error) throw error;
          throw new Error(`Unhandled error. (${String(error)})`);
        }
        return false;
      }
      for (const listener of [...list]) {
        try {
          listener.apply(this, args);
        } catch (error) {
          report(error);
        }
      }
      return true;
    }
    /** The listeners of `event`, as given (a `once` listener unwrapped). */
    listeners(event) {
      return (this.#events.get(event) || []).map((l) => l.listener || l);
    }
    /** The listeners of `event`, `once` wrappers included (each has `.listener`). */
    rawListeners(event) {
      return [...this.#events.get(event) || []];
    }
    /**
     * How many listeners `event` has (of them, how many are `listener`).
     * @param {EventName} event
     * @param {Function} [listener]
     */
    listenerCount(event, listener) {
      const list = this.#events.get(event) || [];
      if (listener === void 0 || listener === null) return list.length;
      return list.filter((l) => l === listener || l.listener === listener).length;
    }
    /** The events that have listeners: names first, then symbols. */
    eventNames() {
      const names = [...this.#events.keys()];
      return names.filter((n) => typeof n !== "symbol").concat(names.filter((n) => typeof n === "symbol"));
    }
    /**
     * Warn when an event gets more than `n` listeners (0: never).
     * @param {number} n
     * @returns {this}
     */
    setMaxListeners(n) {
      if (typeof n !== "number" || n < 0 || Number.isNaN(n)) {
        throw new RangeError(`The value of "n" is out of range. It must be a non-negative number. Received ${String(n)}`);
      }
      this.#maxListeners = n;
      return this;
    }
    /** @returns {number} */
    getMaxListeners() {
      return this.#maxListeners ?? _EventEmitter.defaultMaxListeners;
    }
    #add(event, listener, prepend) {
      checkListener(listener);
      if (this.#events.has("newListener")) this.emit("newListener", event, listener.listener || listener);
      let list = this.#events.get(event);
      if (!list) {
        list = [];
        this.#events.set(event, list);
      }
      if (prepend) list.unshift(listener);
      else list.push(listener);
      const max = this.getMaxListeners();
      if (max > 0 && list.length > max && !this.#warned.has(event)) {
        this.#warned.add(event);
        log.warn(`MaxListenersExceededWarning: Possible EventEmitter memory leak detected. ${list.length} ${String(event)} listeners added to ${String(this)}. MaxListeners is ${max}. Use emitter.setMaxListeners() to increase limit`);
      }
      return this;
    }
    #onceWrapper(event, listener) {
      let fired = false;
      const wrapper = (...args) => {
        if (fired) return;
        fired = true;
        this.removeListener(event, wrapper);
        listener.apply(this, args);
      };
      wrapper.listener = listener;
      return wrapper;
    }
  };
  function checkListener(listener) {
    if (typeof listener !== "function") {
      throw new TypeError(`The "listener" argument must be of type function. Received ${listener === null ? "null" : typeof listener}`);
    }
  }
  function report(error) {
    if (typeof globalThis.reportError === "function") globalThis.reportError(error);
    else console.error(error);
  }

  // sdk/js/processor.js
  var DEFAULT_FRAME_RATE = 24;
  var INPUT_TYPES = ["video", "canvas", "offscreencanvas", "videoframe"];
  function checkProcessor(processor, options) {
    if (!processor || typeof processor.processFrame !== "function") {
      throw new Error("Received an invalid VideoProcessor from addProcessor.");
    }
    if (options !== void 0 && options !== null && typeof options !== "object") {
      throw new TypeError("options must be an object");
    }
    const hasOffscreen = typeof OffscreenCanvas !== "undefined";
    let { inputFrameBufferType, outputFrameBufferContextType } = options || {};
    if (inputFrameBufferType === "offscreencanvas" && !hasOffscreen) {
      throw new Error("OffscreenCanvas is not supported by this browser.");
    }
    if (inputFrameBufferType !== void 0 && !INPUT_TYPES.includes(inputFrameBufferType)) {
      throw new Error(`Invalid inputFrameBufferType of ${inputFrameBufferType}`);
    }
    if (inputFrameBufferType === "videoframe" && typeof VideoFrame === "undefined") {
      throw new Error("VideoFrame is not supported by this browser.");
    }
    inputFrameBufferType = inputFrameBufferType || (hasOffscreen ? "offscreencanvas" : "canvas");
    outputFrameBufferContextType = outputFrameBufferContextType || "2d";
    return { inputFrameBufferType, outputFrameBufferContextType };
  }
  var FrameProcessing = class {
    /** @type {MediaStreamTrack} the processed frames, to attach and to send */
    processedTrack;
    #processor;
    #options;
    #source;
    #output;
    #outputContext;
    #input = null;
    #video = null;
    #stopped = false;
    #stopSource = () => {
    };
    #log;
    /**
     * @param {MediaStreamTrack} source
     * @param {{processFrame: Function}} processor checked by {@link checkProcessor}
     * @param {{inputFrameBufferType: string, outputFrameBufferContextType: string}} options
     * @param {Log} [log]
     */
    constructor(source, processor, options, log2 = new Log("VideoProcessor")) {
      this.#source = source;
      this.#processor = processor;
      this.#options = options;
      this.#log = log2;
      const { width = 0, height = 0 } = source.getSettings ? source.getSettings() : {};
      this.#output = document.createElement("canvas");
      this.#output.width = width;
      this.#output.height = height;
      this.#outputContext = this.#output.getContext(options.outputFrameBufferContextType);
      if (!this.#outputContext) {
        throw new Error(`Cannot get outputFrameBufferContextType: ${options.outputFrameBufferContextType}.`);
      }
      if (options.inputFrameBufferType === "offscreencanvas") this.#input = new OffscreenCanvas(width, height);
      if (options.inputFrameBufferType === "canvas") {
        this.#input = document.createElement("canvas");
        this.#input.width = width;
        this.#input.height = height;
      }
      this.processedTrack = this.#output.captureStream(0).getVideoTracks()[0];
      this.processedTrack.enabled = source.enabled;
      this.#start();
    }
    /** Stop processing; the processed track ends. Idempotent. */
    stop() {
      if (this.#stopped) return;
      this.#stopped = true;
      this.#stopSource();
      if (this.#video) {
        this.#video.srcObject = null;
        this.#video = null;
      }
      this.processedTrack.stop();
    }
    #start() {
      const needsVideo = this.#options.inputFrameBufferType === "video" || typeof MediaStreamTrackProcessor !== "function";
      if (needsVideo) {
        this.#video = document.createElement("video");
        this.#video.muted = true;
        this.#video.playsInline = true;
        this.#video.srcObject = new MediaStream([this.#source]);
        this.#video.play().catch((error) => this.#log.warn("The video of the source track does not play:", error));
      }
      if (typeof MediaStreamTrackProcessor === "function") this.#pumpFrames();
      else this.#pumpVideo();
    }
    /** Each frame of the source, as it comes (Chromium: insertable streams). */
    async #pumpFrames() {
      const reader = new MediaStreamTrackProcessor({ track: this.#source }).readable.getReader();
      this.#stopSource = () => reader.cancel().catch(() => {
      });
      for (; ; ) {
        let result;
        try {
          result = await reader.read();
        } catch {
          return;
        }
        if (result.done || this.#stopped) {
          result.value?.close();
          return;
        }
        const frame = result.value;
        try {
          await this.#process(frame, frame.displayWidth, frame.displayHeight);
        } finally {
          frame.close();
        }
      }
    }
    /** Frames drawn from the <video> at the source's frame rate (elsewhere). */
    #pumpVideo() {
      const { frameRate = DEFAULT_FRAME_RATE } = this.#source.getSettings ? this.#source.getSettings() : {};
      let timer = null;
      let busy = false;
      const tick = async () => {
        if (this.#stopped || busy) return;
        if (this.#source.readyState === "ended") return this.stop();
        const video = this.#video;
        if (!video || video.readyState < 2 || !video.videoWidth) return;
        busy = true;
        try {
          await this.#process(video, video.videoWidth, video.videoHeight);
        } finally {
          busy = false;
        }
      };
      timer = setInterval(tick, 1e3 / (frameRate || DEFAULT_FRAME_RATE));
      this.#stopSource = () => clearInterval(timer);
    }
    /**
     * One frame: fill the input buffer, call processFrame, publish the output.
     * @param {VideoFrame|HTMLVideoElement} frame
     */
    async #process(frame, width, height) {
      if (this.#stopped || !width || !height) return;
      if (this.#output.width !== width || this.#output.height !== height) {
        this.#output.width = width;
        this.#output.height = height;
      }
      let input;
      switch (this.#options.inputFrameBufferType) {
        case "videoframe":
          input = frame instanceof HTMLVideoElement ? new VideoFrame(frame) : frame;
          break;
        case "video":
          input = this.#video;
          break;
        default:
          if (this.#input.width !== width || this.#input.height !== height) {
            this.#input.width = width;
            this.#input.height = height;
          }
          this.#input.getContext("2d").drawImage(frame, 0, 0, width, height);
          input = this.#input;
      }
      let returned;
      try {
        returned = await this.#processor.processFrame(input, this.#output);
      } catch (error) {
        this.#log.debug("processFrame threw:", error);
        return;
      } finally {
        if (input !== frame && input instanceof VideoFrameClass()) input.close();
      }
      if (this.#stopped) return;
      if (returned && returned !== this.#output && this.#outputContext instanceof CanvasRenderingContext2D) {
        try {
          this.#outputContext.drawImage(returned, 0, 0, width, height);
        } catch (error) {
          this.#log.debug("processFrame returned something that cannot be drawn:", error);
        }
      }
      this.processedTrack.requestFrame?.();
    }
  };
  function VideoFrameClass() {
    return typeof VideoFrame === "function" ? VideoFrame : class Never {
    };
  }

  // sdk/js/track.js
  var Track = class extends EventEmitter {
    /**
     * @param {'audio'|'video'|'data'} kind
     * @param {string} name
     */
    constructor(kind, name) {
      super();
      this.kind = kind;
      this.name = name;
    }
    toString() {
      return `[${this.constructor.name} ${this.name}]`;
    }
  };
  var MediaTrack = class extends Track {
    /** @type {Set<HTMLMediaElement>} */
    #elements = /* @__PURE__ */ new Set();
    /**
     * @param {MediaStreamTrack} mediaStreamTrack
     * @param {string} name
     */
    constructor(mediaStreamTrack, name) {
      super(mediaStreamTrack.kind === "audio" ? "audio" : "video", name);
      this.mediaStreamTrack = mediaStreamTrack;
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
      if (typeof el === "string") {
        el = document.querySelector(el);
        if (!el) throw new TypeError(`attach(): no element matches the selector "${element}"`);
      }
      if (el === void 0 || el === null) {
        el = document.createElement(this.kind);
      }
      if (typeof HTMLMediaElement === "undefined" || !(el instanceof HTMLMediaElement)) {
        throw typeError("element", "HTMLMediaElement, a CSS selector string, or undefined");
      }
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
      if ("playsInline" in el) el.playsInline = true;
      this.#elements.add(el);
      this._attached(el);
      const played = el.play();
      if (played && typeof played.catch === "function") played.catch(() => {
      });
      return el;
    }
    /**
     * Stop showing the track in `element` (returned), or in every element it
     * is attached to (returned as an array).
     * @param {HTMLMediaElement|string} [element]
     * @returns {HTMLMediaElement|HTMLMediaElement[]}
     */
    detach(element) {
      if (element === void 0) {
        return [...this.#elements].map((el2) => this.#detachOne(el2));
      }
      const el = typeof element === "string" ? document.querySelector(element) : element;
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
    _attached(_el) {
    }
    /** @protected Hook for subclasses: an element was detached. */
    _detached(_el) {
    }
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
      this.emit("started", this);
    }
  };
  var AudioTrack = class extends MediaTrack {
  };
  var VideoTrack = class extends MediaTrack {
    /** @type {FrameProcessing|null} */
    #processing = null;
    #processorOptions = null;
    constructor(mediaStreamTrack, name) {
      super(mediaStreamTrack, name);
      this.dimensions = { width: null, height: null };
      this.processor = null;
      this.processedTrack = null;
    }
    get _sendTrack() {
      return this.processedTrack || this.mediaStreamTrack;
    }
    _attached(el) {
      if (!(el instanceof HTMLVideoElement)) return;
      const update = () => this._setDimensions(el.videoWidth || null, el.videoHeight || null);
      el.addEventListener("loadedmetadata", update);
      el.addEventListener("resize", update);
    }
    /** @protected */
    _setDimensions(width, height) {
      if (width === this.dimensions.width && height === this.dimensions.height) return;
      this.dimensions = { width, height };
      this.emit("dimensionsChanged", this);
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
      if (this.processor) throw new Error("A VideoProcessor has already been added.");
      const previous = this._sendTrack;
      this.#processing = new FrameProcessing(this.mediaStreamTrack, processor, checked, new Log(this));
      this.#processorOptions = checked;
      this.processor = processor;
      this.processedTrack = this.#processing.processedTrack;
      this._showInElements(previous);
      this.emit("_replaced", this);
      return this;
    }
    /**
     * Stop processing: back to the unprocessed frames.
     * @param {{processFrame: Function}} processor the one added
     * @returns {this}
     */
    removeProcessor(processor) {
      if (!processor) throw new Error("Received an invalid VideoProcessor from removeProcessor.");
      if (!this.processor) throw new Error("No existing VideoProcessor detected.");
      if (processor !== this.processor) throw new Error("The provided VideoProcessor is different than the existing one.");
      const previous = this._sendTrack;
      this.#processing.stop();
      this.#processing = null;
      this.#processorOptions = null;
      this.processor = null;
      this.processedTrack = null;
      this._showInElements(previous);
      this.emit("_replaced", this);
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
  };
  var LocalMedia = (Base) => class extends Base {
    /**
     * @param {MediaStreamTrack} mediaStreamTrack
     * @param {{name?: string}} [options]
     * @param {string} kind the kind the class requires
     */
    constructor(mediaStreamTrack, options, kind) {
      if (typeof MediaStreamTrack === "undefined" || !(mediaStreamTrack instanceof MediaStreamTrack)) {
        throw typeError("mediaStreamTrack", "MediaStreamTrack");
      }
      if (mediaStreamTrack.kind !== kind) {
        throw new TypeError(`mediaStreamTrack must be a ${kind} MediaStreamTrack, not ${mediaStreamTrack.kind}`);
      }
      const name = trackName(options, mediaStreamTrack.id);
      super(mediaStreamTrack, name);
      this.id = mediaStreamTrack.id;
      this.isStopped = mediaStreamTrack.readyState === "ended";
      this._constraints = void 0;
      this.#watch(mediaStreamTrack);
      if (!this.isStopped) this._start();
    }
    #watch(mst) {
      mst.addEventListener("ended", () => {
        if (mst !== this.mediaStreamTrack || this.isStopped) return;
        this.isStopped = true;
        this.emit("stopped", this);
      });
      mst.addEventListener("mute", () => mst === this.mediaStreamTrack && this.emit("muted", this));
      mst.addEventListener("unmute", () => mst === this.mediaStreamTrack && this.emit("unmuted", this));
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
      if (typeof enabled !== "boolean") throw typeError("enabled", "boolean");
      if (this.mediaStreamTrack.enabled !== enabled) {
        this.mediaStreamTrack.enabled = enabled;
        if (this._processedEnabled) this._processedEnabled(enabled);
        this.emit(enabled ? "enabled" : "disabled", this);
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
        this.emit("stopped", this);
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
      this.emit("_replaced", this);
      this.emit("started", this);
    }
  };
  var LocalAudioTrack = class extends LocalMedia(AudioTrack) {
    /**
     * @param {MediaStreamTrack} mediaStreamTrack an audio track
     * @param {{name?: string}} [options]
     */
    constructor(mediaStreamTrack, options) {
      super(mediaStreamTrack, options, "audio");
    }
  };
  var LocalVideoTrack = class extends LocalMedia(VideoTrack) {
    /**
     * @param {MediaStreamTrack} mediaStreamTrack a video track
     * @param {{name?: string}} [options]
     */
    constructor(mediaStreamTrack, options) {
      super(mediaStreamTrack, options, "video");
      const { width, height } = mediaStreamTrack.getSettings ? mediaStreamTrack.getSettings() : {};
      if (width && height) this.dimensions = { width, height };
    }
  };
  var LocalDataTrack = class extends Track {
    /** @type {Set<RTCDataChannel>} */
    #channels = /* @__PURE__ */ new Set();
    /**
     * @param {{name?: string, ordered?: boolean, maxPacketLifeTime?: number|null, maxRetransmits?: number|null}} [options]
     */
    constructor(options = {}) {
      if (options === null || typeof options !== "object") throw typeError("options", "object");
      const id = randomId();
      super("data", trackName(options, id));
      const { ordered = true, maxPacketLifeTime = null, maxRetransmits = null } = options;
      if (typeof ordered !== "boolean") throw typeError("options.ordered", "boolean");
      for (const [key, value] of [["maxPacketLifeTime", maxPacketLifeTime], ["maxRetransmits", maxRetransmits]]) {
        if (value !== null && (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 65535)) {
          throw new RangeError(`options.${key} must be null or an integer from 0 to 65535`);
        }
      }
      if (maxPacketLifeTime !== null && maxRetransmits !== null) {
        throw new RangeError("options.maxPacketLifeTime and options.maxRetransmits cannot both be set");
      }
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
      if (!(typeof data === "string" || data instanceof Blob || data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
        throw typeError("data", "string, Blob, ArrayBuffer or ArrayBufferView");
      }
      for (const channel of this.#channels) {
        if (channel.readyState === "open") channel.send(
          /** @type {any} */
          data
        );
      }
    }
    /** @internal The channel carrying this track in a room. */
    _addChannel(channel) {
      this.#channels.add(channel);
      channel.addEventListener("close", () => this.#channels.delete(channel));
    }
    /** @internal */
    _removeChannel(channel) {
      this.#channels.delete(channel);
    }
  };
  var RemoteMedia = (Base) => class extends Base {
    #enabled;
    /**
     * @param {string} sid
     * @param {MediaStreamTrack} mediaStreamTrack
     * @param {string} name
     * @param {boolean} enabled the publisher's enabled flag
     */
    constructor(sid, mediaStreamTrack, name, enabled) {
      super(mediaStreamTrack, name);
      this.sid = sid;
      this.#enabled = enabled;
      this.isSwitchedOff = false;
      this.priority = null;
      if (!mediaStreamTrack.muted) this._start();
      else mediaStreamTrack.addEventListener("unmute", () => this._start(), { once: true });
    }
    /** Whether the publisher has the track enabled. */
    get isEnabled() {
      return this.#enabled;
    }
    /** @internal */
    _setEnabled(enabled) {
      if (this.#enabled === enabled) return;
      this.#enabled = enabled;
      this.emit(enabled ? "enabled" : "disabled", this);
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
      this._sendControl({ type: "set_subscribe_priority", priority: next });
      return this;
    }
    /** @protected Send an adaptive-video message about this track (set by the Room). */
    _sendControl(_message) {
    }
  };
  var RemoteAudioTrack = class extends RemoteMedia(AudioTrack) {
  };
  var TURN_OFF_DELAY_MS = 50;
  var RemoteVideoTrack = class extends RemoteMedia(VideoTrack) {
    /** @type {string|null} why the server switched the track off (twilio-video's switchOffReason) */
    switchOffReason = null;
    #send = null;
    #switchControl = "disabled";
    #contentMode = "disabled";
    /** Last hints sent, so nothing is sent twice. */
    #hintEnabled = true;
    #hintDimensions = null;
    #visible = /* @__PURE__ */ new Set();
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
      if (this.#switchControl === "auto" && typeof document !== "undefined") {
        this.#onVisibility = () => this.#updateEnabled();
        document.addEventListener("visibilitychange", this.#onVisibility);
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
      if (this.#switchControl !== "manual") {
        throw new Error('Invalid state. You can call switchOn only when bandwidthProfile.video.clientTrackSwitchOffControl is set to "manual"');
      }
      this.#hintEnabled = true;
      this._sendControl({ type: "switch_on" });
      return this;
    }
    /**
     * Ask the server to stop forwarding this track, keeping the subscription
     * (`clientTrackSwitchOffControl: 'manual'`). `switchedOff` follows.
     * @returns {this}
     */
    switchOff() {
      if (this.#switchControl !== "manual") {
        throw new Error('Invalid state. You can call switchOff only when bandwidthProfile.video.clientTrackSwitchOffControl is set to "manual"');
      }
      this.#hintEnabled = false;
      this._sendControl({ type: "switch_off" });
      return this;
    }
    /**
     * The size you render the track at (`contentPreferencesMode: 'manual'`):
     * the server forwards the smallest simulcast layer that covers it.
     * @param {{renderDimensions?: {width: number, height: number}}} contentPreferences
     * @returns {this}
     */
    setContentPreferences(contentPreferences) {
      if (this.#contentMode !== "manual") {
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
      if (this.#onVisibility) document.removeEventListener("visibilitychange", this.#onVisibility);
      this.#onVisibility = null;
      this.#send = null;
    }
    /** @internal The server switched the track off or on; returns whether it changed. */
    _setSwitchedOff(off, reason) {
      if (this.isSwitchedOff === off) return false;
      this.isSwitchedOff = off;
      this.switchOffReason = off ? reason : null;
      this.emit(off ? "switchedOff" : "switchedOn", this);
      return true;
    }
    /** @protected */
    _attached(el) {
      super._attached(el);
      if (this.#switchControl === "auto" && typeof IntersectionObserver !== "undefined") {
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
      if (this.#contentMode === "auto" && typeof ResizeObserver !== "undefined") {
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
      if (this.#switchControl === "auto") this.#updateEnabled();
      if (this.#contentMode === "auto") this.#updateDimensions();
    }
    #updateEnabled() {
      const shown = this.#visible.size > 0 && (typeof document === "undefined" || document.visibilityState !== "hidden");
      clearTimeout(this.#turnOff);
      if (shown && !this.#hintEnabled) {
        this.#hintEnabled = true;
        this._sendControl({ type: "switch_on" });
      } else if (!shown && this.#hintEnabled) {
        this.#turnOff = setTimeout(() => {
          this.#hintEnabled = false;
          this._sendControl({ type: "switch_off" });
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
      if (!(width >= 1 && height >= 1)) throw new RangeError("renderDimensions must have a positive width and height");
      const clamp = (v) => Math.min(v, 16384);
      const next = { width: clamp(width), height: clamp(height) };
      if (this.#hintDimensions && this.#hintDimensions.width === next.width && this.#hintDimensions.height === next.height) return;
      this.#hintDimensions = next;
      this._sendControl({ type: "set_render_dimensions", dimensions: next });
    }
  };
  var RemoteDataTrack = class extends Track {
    /**
     * @param {string} sid
     * @param {string} name
     * @param {RTCDataChannel} channel
     */
    constructor(sid, name, channel) {
      super("data", name);
      this.sid = sid;
      this.isEnabled = true;
      this.isSubscribed = true;
      this.isSwitchedOff = false;
      this.priority = null;
      this.ordered = channel.ordered;
      this.maxPacketLifeTime = channel.maxPacketLifeTime ?? null;
      this.maxRetransmits = channel.maxRetransmits ?? null;
      this.reliable = this.maxPacketLifeTime === null && this.maxRetransmits === null;
      channel.binaryType = "arraybuffer";
      channel.addEventListener("message", (event) => this.emit("message", event.data, this));
    }
    /** Your priority for this track (null: the publisher's). */
    setPriority(priority) {
      this.priority = checkSubscriberPriority(priority);
      return this;
    }
  };
  function checkSubscriberPriority(priority) {
    if (priority === null || priority === void 0) return null;
    if (!["low", "standard", "high"].includes(priority)) throw new RangeError("priority must be one of low, standard, high, null");
    return priority;
  }
  function trackName(options, fallback) {
    if (options === void 0 || options === null) return fallback;
    if (typeof options !== "object") throw typeError("options", "object");
    if (options.name === void 0 || options.name === null) return fallback;
    if (typeof options.name !== "string") throw typeError("options.name", "string");
    return options.name;
  }
  function randomId() {
    if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
  }

  // sdk/js/localtracks.js
  var OUR_KEYS = [
    "name",
    "logLevel",
    "workaroundWebKitBug180748",
    "workaroundWebKitBug1208516",
    "defaultDeviceCaptureMode",
    "noiseCancellationOptions",
    "getUserMedia",
    "enumerateDevices",
    "MediaStream",
    "mapMediaElement",
    "disposeMediaElement"
  ];
  async function createLocalTracks(options = {}) {
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw typeError("options", "object");
    }
    const neither = options.audio === void 0 && options.video === void 0;
    const audio = request(options, "audio", neither);
    const video = request(options, "video", neither);
    if (!audio && !video) return [];
    const getUserMedia = options.getUserMedia || ((c) => navigator.mediaDevices.getUserMedia(c));
    if (!options.getUserMedia && !(globalThis.navigator && navigator.mediaDevices)) {
      throw new Error("getUserMedia is not available: use a secure context (https:// or http://localhost)");
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
  async function createLocalAudioTrack(options = {}) {
    const [track] = await createLocalTracks({ audio: checkObject(options), video: false, getUserMedia: options.getUserMedia });
    return (
      /** @type {LocalAudioTrack} */
      track
    );
  }
  async function createLocalVideoTrack(options = {}) {
    const [track] = await createLocalTracks({ audio: false, video: checkObject(options), getUserMedia: options.getUserMedia });
    return (
      /** @type {LocalVideoTrack} */
      track
    );
  }
  function checkObject(options) {
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw typeError("options", "object");
    }
    return options;
  }
  function request(options, kind, byDefault) {
    const value = options[kind] === void 0 ? byDefault : options[kind];
    if (value === false) return null;
    if (value === true) return { constraints: true, name: void 0 };
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw typeError(`options.${kind}`, "boolean or an object of MediaTrackConstraints");
    }
    if (value.name !== void 0 && typeof value.name !== "string") {
      throw typeError(`options.${kind}.name`, "string");
    }
    const constraints = {};
    for (const [key, v] of Object.entries(value)) {
      if (!OUR_KEYS.includes(key)) constraints[key] = v;
    }
    return { constraints: Object.keys(constraints).length ? constraints : true, name: value.name };
  }

  // sdk/js/publication.js
  var PRIORITIES = ["low", "standard", "high"];
  var TrackPublication = class extends EventEmitter {
    /**
     * @param {string} trackSid
     * @param {string} trackName
     * @param {'audio'|'video'|'data'} kind
     */
    constructor(trackSid, trackName2, kind) {
      super();
      this.trackSid = trackSid;
      this.trackName = trackName2;
      this.kind = kind;
    }
    /** Same as `isTrackEnabled`. */
    get isEnabled() {
      return this.isTrackEnabled;
    }
    toString() {
      return `[${this.constructor.name} ${this.trackSid}]`;
    }
  };
  var LocalTrackPublication = class extends TrackPublication {
    #unpublish;
    #prioritize;
    /**
     * @param {string} trackSid
     * @param {import('./track.js').LocalAudioTrack|import('./track.js').LocalVideoTrack|import('./track.js').LocalDataTrack} track
     * @param {(publication: LocalTrackPublication) => void} unpublish
     * @param {'low'|'standard'|'high'} [priority]
     * @param {(publication: LocalTrackPublication) => void} [prioritize] tells the server a new priority
     */
    constructor(trackSid, track, unpublish, priority = "standard", prioritize = () => {
    }) {
      super(trackSid, track.name, track.kind);
      this.track = track;
      this.priority = priority;
      this.#unpublish = unpublish;
      this.#prioritize = prioritize;
    }
    /** Whether the track is enabled (data tracks always are). */
    get isTrackEnabled() {
      return this.track.kind === "data" ? true : this.track.isEnabled;
    }
    /**
     * Change the publication's priority: the server weighs it when it shares
     * subscribers' bandwidth, and subscribers hear `publishPriorityChanged`.
     * @param {'low'|'standard'|'high'} priority
     * @returns {this}
     */
    setPriority(priority) {
      if (!PRIORITIES.includes(priority)) throw rangeError("priority", PRIORITIES);
      if (this.priority === priority) return this;
      this.priority = priority;
      this.#prioritize(this);
      return this;
    }
    /**
     * Stop publishing the track (it keeps running: stop it yourself).
     * @returns {this}
     */
    unpublish() {
      this.#unpublish(this);
      return this;
    }
  };
  var LocalAudioTrackPublication = class extends LocalTrackPublication {
  };
  var LocalVideoTrackPublication = class extends LocalTrackPublication {
  };
  var LocalDataTrackPublication = class extends LocalTrackPublication {
  };
  var RemoteTrackPublication = class extends TrackPublication {
    #enabled;
    /**
     * @param {{sid: string, name: string, kind: 'audio'|'video'|'data', enabled: boolean}} info
     */
    constructor(info) {
      super(info.sid, info.name, info.kind);
      this.#enabled = info.enabled;
      this.track = null;
      this.publishPriority = info.priority || "standard";
    }
    /** Whether the server has switched the track off for you (false when not subscribed). */
    get isTrackSwitchedOff() {
      return Boolean(this.track && this.track.isSwitchedOff);
    }
    get isSubscribed() {
      return this.track !== null;
    }
    /** Whether the publisher has the track enabled. */
    get isTrackEnabled() {
      return this.#enabled;
    }
    /** @internal Returns whether it changed. */
    _setEnabled(enabled) {
      if (this.#enabled === enabled) return false;
      this.#enabled = enabled;
      if (this.track && this.track.kind !== "data") this.track._setEnabled(enabled);
      this.emit(enabled ? "trackEnabled" : "trackDisabled");
      return true;
    }
    /** @internal */
    _subscribed(track) {
      this.track = track;
      this.emit("subscribed", track);
    }
    /** @internal Returns the track it had. */
    _unsubscribed() {
      const track = this.track;
      this.track = null;
      if (track) this.emit("unsubscribed", track);
      return track;
    }
  };
  var RemoteAudioTrackPublication = class extends RemoteTrackPublication {
  };
  var RemoteVideoTrackPublication = class extends RemoteTrackPublication {
  };
  var RemoteDataTrackPublication = class extends RemoteTrackPublication {
  };
  function remotePublication(info) {
    const cls = { audio: RemoteAudioTrackPublication, video: RemoteVideoTrackPublication }[info.kind] || RemoteDataTrackPublication;
    return new cls(info);
  }

  // sdk/js/participant.js
  var MAX_TRACK_NAME = 128;
  var PRIORITIES2 = ["low", "standard", "high"];
  var Participant = class extends EventEmitter {
    /**
     * @param {string} sid
     * @param {string} identity
     */
    constructor(sid, identity) {
      super();
      this.sid = sid;
      this.identity = identity;
      this.state = "connected";
      this.tracks = /* @__PURE__ */ new Map();
      this.audioTracks = /* @__PURE__ */ new Map();
      this.videoTracks = /* @__PURE__ */ new Map();
      this.dataTracks = /* @__PURE__ */ new Map();
      this.networkQualityLevel = null;
      this.networkQualityStats = null;
    }
    /**
     * @internal One entry of the server's `network_quality`:
     * `networkQualityLevelChanged`(level, stats) when the level or stats change.
     */
    _networkQuality(entry) {
      if (!entry || typeof entry.level !== "number") return;
      const stats = networkQualityStats(entry);
      const same = this.networkQualityLevel === entry.level && JSON.stringify(this.networkQualityStats) === JSON.stringify(stats);
      this.networkQualityLevel = entry.level;
      this.networkQualityStats = stats;
      if (!same) this.emit("networkQualityLevelChanged", entry.level, stats && (stats.audio || stats.video) ? stats : null);
    }
    /**
     * @internal Its signaling or media went away: `reconnecting`. Returns
     * whether the state changed.
     */
    _reconnecting() {
      if (this.state !== "connected") return false;
      this.state = "reconnecting";
      this.emit("reconnecting");
      return true;
    }
    /** @internal It is back: `reconnected`. Returns whether the state changed. */
    _reconnected() {
      if (this.state !== "reconnecting") return false;
      this.state = "connected";
      this.emit("reconnected");
      return true;
    }
    toString() {
      return `[${this.constructor.name} ${this.sid}]`;
    }
    /** @protected */
    _addPublication(publication) {
      this.tracks.set(publication.trackSid, publication);
      this.#byKind(publication.kind).set(publication.trackSid, publication);
    }
    /** @protected */
    _removePublication(sid) {
      const publication = this.tracks.get(sid);
      if (!publication) return null;
      this.tracks.delete(sid);
      this.#byKind(publication.kind).delete(sid);
      return publication;
    }
    #byKind(kind) {
      return kind === "audio" ? this.audioTracks : kind === "video" ? this.videoTracks : this.dataTracks;
    }
  };
  var RemoteParticipant = class extends Participant {
    /**
     * @param {{sid: string, identity: string, tracks: any[]}} info from the server
     */
    constructor(info) {
      super(info.sid, info.identity);
      for (const track of info.tracks || []) this._addPublication(remotePublication(track));
    }
    /** @internal A track was published; returns its publication. */
    _published(info) {
      if (this.tracks.has(info.sid)) return this.tracks.get(info.sid);
      const publication = remotePublication(info);
      this._addPublication(publication);
      this.emit("trackPublished", publication);
      return publication;
    }
    /** @internal */
    _unpublished(sid) {
      if (!this.tracks.has(sid)) return;
      this._unsubscribed(sid);
      const publication = this._removePublication(sid);
      this.emit("trackUnpublished", publication);
    }
    /** @internal Media (or a data channel) arrived for a subscribed track. */
    _subscribed(sid, track) {
      const publication = this.tracks.get(sid);
      if (!publication || publication.track) return;
      track.on("started", () => this.emit("trackStarted", track));
      if (track.kind === "video") track.on("dimensionsChanged", () => this.emit("trackDimensionsChanged", track));
      if (track.kind === "data") track.on("message", (data) => this.emit("trackMessage", data, track));
      publication._subscribed(track);
      this.emit("trackSubscribed", track, publication);
      if (track.isStarted) this.emit("trackStarted", track);
    }
    /** @internal */
    _unsubscribed(sid) {
      const publication = this.tracks.get(sid);
      if (!publication || !publication.track) return;
      const track = publication._unsubscribed();
      if (track && typeof track._release === "function") track._release();
      this.emit("trackUnsubscribed", track, publication);
    }
    /** @internal */
    _subscriptionFailed(sid, error) {
      const publication = this.tracks.get(sid);
      if (!publication) return;
      publication.emit("subscriptionFailed", error);
      this.emit("trackSubscriptionFailed", error, publication);
    }
    /** @internal The publisher enabled or disabled a track. */
    _switched(sid, enabled) {
      const publication = this.tracks.get(sid);
      if (publication && publication._setEnabled(enabled)) {
        this.emit(enabled ? "trackEnabled" : "trackDisabled", publication);
      }
    }
    /** @internal The server switched a video track off (or on) for us. */
    _switchedOff(sid, off, reason) {
      const publication = this.tracks.get(sid);
      const track = publication && publication.track;
      if (!track || track.kind !== "video") return;
      if (!track._setSwitchedOff(off, reason)) return;
      publication.emit(off ? "trackSwitchedOff" : "trackSwitchedOn", track);
      this.emit(off ? "trackSwitchedOff" : "trackSwitchedOn", track, publication);
    }
    /** @internal The publisher changed a track's priority. */
    _priorityChanged(sid, priority) {
      const publication = this.tracks.get(sid);
      if (!publication || !PRIORITIES2.includes(priority) || publication.publishPriority === priority) return;
      publication.publishPriority = priority;
      publication.emit("publishPriorityChanged", priority);
      this.emit("trackPublishPriorityChanged", priority, publication);
    }
    /** @internal */
    _disconnected() {
      if (this.state === "disconnected") return;
      for (const sid of [...this.tracks.keys()]) this._unsubscribed(sid);
      this.state = "disconnected";
      this.emit("disconnected", this);
    }
  };
  var LocalParticipant = class extends Participant {
    #peer;
    #signaling;
    /** The verbosities last asked for. */
    #networkQuality = { local: 1, remote: 0 };
    /** Whether the app (or connect()) asked for network quality: asked again after a rejoin. */
    #networkQualityAsked = false;
    /**
     * Between two sessions (the Room rejoining after its node was lost): the
     * tracks to publish in the new room, and publishTrack calls waiting for it.
     * @type {{tracks: Array<{track: any, priority: string}>, waiting: Array<() => void>}|null}
     */
    #between = null;
    /** LocalTrack → Promise<publication> while being published. */
    #pending = /* @__PURE__ */ new Map();
    /** LocalTrack → its listeners, removed when unpublished. */
    #watches = /* @__PURE__ */ new Map();
    /**
     * While connect() runs, `trackPublished` waits here: twilio-video emits it
     * after connect() has resolved, when the app has had its chance to listen.
     * @type {Array<import('./publication.js').LocalTrackPublication>|null}
     */
    #unannounced = null;
    /**
     * @param {{sid: string, identity: string}} info
     * @param {import('./peer.js').PeerSession} peer
     * @param {import('./signaling.js').Signaling} signaling
     */
    constructor(info, peer, signaling) {
      super(info.sid, info.identity);
      this.#peer = peer;
      this.#signaling = signaling;
      this.signalingRegion = "local";
    }
    /**
     * Publish a track: a LocalAudioTrack, LocalVideoTrack or LocalDataTrack,
     * or a MediaStreamTrack (wrapped, named by `options.name`). Publishing a
     * track that is already published resolves with its publication.
     * @param {LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack} track
     * @param {{name?: string, priority?: 'low'|'standard'|'high'}} [options] `priority` (default
     *   'standard') is the publication's; its effect on what subscribers receive is the server's
     * @returns {Promise<import('./publication.js').LocalTrackPublication>}
     */
    publishTrack(track, options = {}) {
      let local;
      let priority;
      try {
        local = this.#asLocalTrack(track, options);
        priority = checkPriority("options.priority", options && options.priority, "standard");
      } catch (error) {
        return Promise.reject(error);
      }
      if (this.state === "disconnected") {
        return Promise.reject(new Error("Illegal call to publishTrack: the LocalParticipant is disconnected"));
      }
      if (this.#between) {
        const between = this.#between;
        return new Promise((resolve) => between.waiting.push(resolve)).then(() => this.publishTrack(local, { ...options, priority }));
      }
      const published = this.#publicationOf(local);
      if (published) return Promise.resolve(published);
      if (this.#pending.has(local)) return this.#pending.get(local);
      const problem = this.#nameProblem(local.name);
      if (problem) return Promise.reject(problem);
      if (local.kind !== "data" && local.isStopped) {
        return Promise.reject(createTwilioError(53300, `Track is invalid: '${local.name}' is stopped`));
      }
      const publishing = local.kind === "data" ? this.#peer.publishData(local) : this.#peer.publishMedia(local);
      const promise = publishing.then(
        (info) => {
          if (this.#pending.get(local) !== promise) throw new Error("The room's node was lost while the track was being published");
          this.#pending.delete(local);
          if (this.state === "disconnected") throw new Error("The LocalParticipant disconnected while the track was being published");
          const cls = { audio: LocalAudioTrackPublication, video: LocalVideoTrackPublication }[local.kind] || LocalDataTrackPublication;
          const publication = new cls(
            info.sid,
            local,
            (p) => this.unpublishTrack(p.track),
            priority,
            (p) => this.state !== "disconnected" && this.#signaling.send({ type: "set_publish_priority", track: p.trackSid, priority: p.priority })
          );
          this._addPublication(publication);
          this.#watch(local, publication);
          if (priority !== "standard") this.#signaling.send({ type: "set_publish_priority", track: info.sid, priority });
          if (local.kind !== "data" && local.isEnabled !== info.enabled) {
            this.#signaling.send({ type: "set_track_enabled", track: info.sid, enabled: local.isEnabled });
          }
          if (this.#unannounced) this.#unannounced.push(publication);
          else this.emit("trackPublished", publication);
          return publication;
        },
        (error) => {
          if (this.#pending.get(local) !== promise) throw error;
          this.#pending.delete(local);
          this.emit("trackPublicationFailed", error, local);
          throw error;
        }
      );
      this.#pending.set(local, promise);
      return promise;
    }
    /**
     * @param {Array<LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack>} tracks
     */
    publishTracks(tracks) {
      if (!Array.isArray(tracks)) return Promise.reject(typeError("tracks", "Array of LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack"));
      return Promise.all(tracks.map((t) => this.publishTrack(t)));
    }
    /**
     * Stop publishing a track (the track keeps running). Returns its
     * publication, or null if it was not published.
     * @param {LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack} track
     * @returns {import('./publication.js').LocalTrackPublication|null}
     */
    unpublishTrack(track) {
      const local = this.#findLocal(track);
      if (!local) return null;
      if (this.#between) {
        this.#between.tracks = this.#between.tracks.filter((t) => t.track !== local);
        return null;
      }
      const publication = this.#publicationOf(local);
      if (!publication) {
        if (this.#pending.has(local)) this.#peer.cancelPublish(local);
        return null;
      }
      if (this.state !== "disconnected") {
        this.#signaling.send({ type: "unpublish", track: publication.trackSid });
        this.#peer.unpublish(publication.trackSid);
      }
      this.#unwatch(local);
      this._removePublication(publication.trackSid);
      return publication;
    }
    /** @param {Array<LocalAudioTrack|LocalVideoTrack|LocalDataTrack|MediaStreamTrack>} tracks */
    unpublishTracks(tracks) {
      if (!Array.isArray(tracks)) throw typeError("tracks", "Array of LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack");
      return tracks.map((t) => this.unpublishTrack(t)).filter(Boolean);
    }
    /**
     * Cap the bitrate of what you send (bits per second; null removes a cap).
     * @param {{maxAudioBitrate?: number|null, maxVideoBitrate?: number|null}|null} [params]
     * @returns {this}
     */
    setParameters(params) {
      if (params === void 0 || params === null) return this;
      if (typeof params !== "object") throw typeError("encodingParameters", "object");
      const caps = {};
      if ("maxAudioBitrate" in params) caps.audio = checkBitrate("encodingParameters.maxAudioBitrate", params.maxAudioBitrate);
      if ("maxVideoBitrate" in params) caps.video = checkBitrate("encodingParameters.maxVideoBitrate", params.maxVideoBitrate);
      this.#peer.setBitrates(caps);
      return this;
    }
    /**
     * Change how much network quality detail the server reports:
     * `{local, remote}` verbosity 0 (none) to 3 (detailed), for you and for
     * the others (`set_network_quality`). An absent side keeps its value.
     * @param {{local?: number, remote?: number}} configuration
     * @returns {this}
     */
    setNetworkQualityConfiguration(configuration) {
      checkNetworkQualityConfiguration("networkQualityConfiguration", configuration);
      this.#networkQuality = { ...this.#networkQuality, ...dropUndefined(configuration) };
      this.#networkQualityAsked = true;
      if (this.state !== "disconnected") this.#signaling.send({ type: "set_network_quality", ...this.#networkQuality });
      return this;
    }
    /** @internal connect() starts: hold `trackPublished` until {@link _announce}. */
    _holdAnnouncements() {
      this.#unannounced = [];
    }
    /**
     * @internal connect() has resolved: `trackPublished` for the tracks it
     * published, in the order it was given them, on the next task (after the
     * app's code that awaited connect()).
     * @param {object[]} order the tracks given to connect()
     */
    _announce(order) {
      const rank = (publication) => order.indexOf(publication.track);
      const publications = (this.#unannounced || []).sort((a, b) => rank(a) - rank(b));
      this.#unannounced = null;
      if (publications.length === 0) return;
      setTimeout(() => {
        for (const publication of publications) {
          if (this.tracks.get(publication.trackSid) === publication) this.emit("trackPublished", publication);
        }
      });
    }
    /**
     * @internal The room's node is lost (Room's rejoin): the publications
     * go without a word to the server (it is gone). The tracks, published or
     * being published, wait with their priority to be published again in
     * the new room ({@link _rejoined}); meanwhile publishTrack waits for it,
     * and unpublishTrack takes a track off that list.
     */
    _forgetPublications() {
      const tracks = [...this.tracks.values()].map((p) => ({ track: p.track, priority: p.priority }));
      for (const publication of [...this.tracks.values()]) {
        this.#unwatch(publication.track);
        this._removePublication(publication.trackSid);
      }
      for (const track of this.#pending.keys()) tracks.push({ track, priority: "standard" });
      this.#pending.clear();
      this.#between = { tracks, waiting: [] };
    }
    /**
     * @internal In the room again after a rejoin: a new participant SID and a
     * new session; the network quality reports asked for are asked again.
     * Returns the tracks to publish again (the Room does, then the
     * publishTrack calls that waited go on).
     * @param {{sid: string}} info
     * @param {import('./peer.js').PeerSession} peer
     * @param {import('./signaling.js').Signaling} signaling
     * @returns {Array<{track: LocalAudioTrack|LocalVideoTrack|LocalDataTrack, priority: string}>}
     */
    _rejoined(info, peer, signaling) {
      this.sid = info.sid;
      this.#peer = peer;
      this.#signaling = signaling;
      if (this.#networkQualityAsked) signaling.send({ type: "set_network_quality", ...this.#networkQuality });
      const between = this.#between;
      this.#between = null;
      if (!between) return [];
      for (const go of between.waiting) go();
      return between.tracks;
    }
    /** @internal The room is gone: every publication goes, tracks keep running. */
    _disconnected() {
      if (this.state === "disconnected") return;
      this.state = "disconnected";
      const between = this.#between;
      this.#between = null;
      if (between) for (const go of between.waiting) go();
      for (const publication of [...this.tracks.values()]) this.unpublishTrack(publication.track);
      this.emit("disconnected", this);
    }
    #asLocalTrack(track, options) {
      if (typeof MediaStreamTrack !== "undefined" && track instanceof MediaStreamTrack) {
        const existing = [...this.tracks.values()].find((p) => p.track.mediaStreamTrack === track) || [...this.#pending.keys()].find((t) => t.mediaStreamTrack === track);
        if (existing) return existing.track || existing;
        if (options !== null && typeof options !== "object") throw typeError("options", "object");
        const name = options ? options.name : void 0;
        return track.kind === "audio" ? new LocalAudioTrack(track, { name }) : new LocalVideoTrack(track, { name });
      }
      if (track instanceof LocalAudioTrack || track instanceof LocalVideoTrack || track instanceof LocalDataTrack) return track;
      throw typeError("track", "LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack");
    }
    #findLocal(track) {
      if (typeof MediaStreamTrack !== "undefined" && track instanceof MediaStreamTrack) {
        const publication = [...this.tracks.values()].find((p) => p.track.mediaStreamTrack === track);
        return publication ? publication.track : [...this.#pending.keys()].find((t) => t.mediaStreamTrack === track) || null;
      }
      if (track instanceof LocalAudioTrack || track instanceof LocalVideoTrack || track instanceof LocalDataTrack) return track;
      throw typeError("track", "LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack");
    }
    #publicationOf(local) {
      return [...this.tracks.values()].find((p) => p.track === local) || null;
    }
    #nameProblem(name) {
      if (typeof name !== "string" || name.length === 0) return createTwilioError(53301, "Track name is invalid: it is empty");
      if (name.length > MAX_TRACK_NAME) return createTwilioError(53302, `Track name is too long: at most ${MAX_TRACK_NAME} characters`);
      if (/[\u0000-\u001f\u007f]/.test(name)) return createTwilioError(53303, "Track name contains invalid characters: control characters are not allowed");
      const taken = [...this.tracks.values()].some((p) => p.trackName === name) || [...this.#pending.keys()].some((t) => t.name === name);
      if (taken) return createTwilioError(53304, `Track name is duplicated: you already publish a track named '${name}'`);
      return null;
    }
    #watch(track, publication) {
      const onEnabled = () => this.#switched(track, publication, true);
      const onDisabled = () => this.#switched(track, publication, false);
      const onStopped = () => this.emit("trackStopped", track);
      const onReplaced = () => this.#peer.replaceTrack(publication.trackSid, track._sendTrack);
      const listeners = [["enabled", onEnabled], ["disabled", onDisabled], ["stopped", onStopped], ["_replaced", onReplaced]];
      for (const [event, listener] of listeners) track.on(event, listener);
      this.#watches.set(track, listeners);
    }
    #unwatch(track) {
      for (const [event, listener] of this.#watches.get(track) || []) track.removeListener(event, listener);
      this.#watches.delete(track);
    }
    #switched(track, publication, enabled) {
      this.#signaling.send({ type: "set_track_enabled", track: publication.trackSid, enabled });
      publication.emit(enabled ? "trackEnabled" : "trackDisabled");
      this.emit(enabled ? "trackEnabled" : "trackDisabled", track);
    }
  };
  function dropUndefined(object) {
    return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== void 0));
  }
  function networkQualityStats(entry) {
    const sideStats = (s) => s && typeof s === "object" ? {
      bandwidth: { actual: s.bandwidth_actual ?? null, available: s.bandwidth_available ?? null, level: s.bandwidth_level ?? null },
      fractionLost: { fractionLost: s.fraction_lost ?? null, level: s.fraction_lost_level ?? null },
      latency: { jitter: s.jitter ?? null, rtt: s.rtt ?? null, level: s.latency_level ?? null }
    } : null;
    const media = (m) => m && typeof m === "object" ? {
      send: m.send ?? null,
      recv: m.recv ?? null,
      sendStats: sideStats(m.send_stats),
      recvStats: sideStats(m.recv_stats)
    } : null;
    return { level: entry.level, audio: media(entry.audio), video: media(entry.video) };
  }
  function checkBitrate(name, value) {
    if (value === null || value === void 0) return null;
    if (typeof value !== "number" || Number.isNaN(value)) throw typeError(name, "number");
    if (value < 0 || !Number.isFinite(value)) throw new RangeError(`${name} must be a non-negative number of bits per second`);
    return value === 0 ? null : value;
  }
  function checkPriority(name, value, fallback) {
    if (value === void 0) return fallback;
    if (value === null && fallback === null) return null;
    if (!PRIORITIES2.includes(
      /** @type {string} */
      value
    )) throw rangeError(name, PRIORITIES2);
    return (
      /** @type {'low'|'standard'|'high'} */
      value
    );
  }
  function checkNetworkQualityConfiguration(name, value) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw typeError(name, "object");
    for (const key of ["local", "remote"]) {
      const v = (
        /** @type {any} */
        value[key]
      );
      if (v !== void 0 && ![0, 1, 2, 3].includes(v)) throw rangeError(`${name}.${key}`, [0, 1, 2, 3]);
    }
  }

  // sdk/js/peer.js
  var CONTROL_CHANNEL = "salon";
  var NO_MEDIA_MS = 1500;
  var NO_MEDIA_TRIES = 4;
  var SIMULCAST_LAYERS = [
    { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 15e4 },
    { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 5e5 },
    { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 15e5 }
  ];
  function simulcastLayers(width, height) {
    const pixels = width > 0 && height > 0 ? width * height : Infinity;
    if (pixels >= 960 * 540) return SIMULCAST_LAYERS;
    if (pixels >= 480 * 270) return SIMULCAST_LAYERS.slice(1);
    return [];
  }
  function withOpusDtx(sdp, on) {
    const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
    const lines = sdp.split(eol);
    const out = [];
    let opus = null;
    for (const line of lines) {
      if (line.startsWith("m=")) opus = line.startsWith("m=audio") ? /* @__PURE__ */ new Set() : null;
      const rtpmap = opus && /^a=rtpmap:(\d+) opus\//i.exec(line);
      if (rtpmap) opus.add(rtpmap[1]);
      const fmtp = opus && /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (fmtp && opus.has(fmtp[1])) {
        const params = fmtp[2].split(";").map((p) => p.trim()).filter((p) => p && !/^usedtx=/i.test(p));
        if (on) params.push("usedtx=1");
        out.push(`a=fmtp:${fmtp[1]} ${params.join(";")}`);
        continue;
      }
      out.push(line);
    }
    return out.join(eol);
  }
  var PeerSession = class extends EventEmitter {
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
    #midToSid = /* @__PURE__ */ new Map();
    /** Track SID → receiving transceiver. */
    #receivers = /* @__PURE__ */ new Map();
    /** Track SID → sending transceiver. */
    #senders = /* @__PURE__ */ new Map();
    /** Track SID → the server's last `layers` for it (applied again after each answer). */
    #layers = /* @__PURE__ */ new Map();
    /** publish_data requests waiting for `published`, in order. */
    #dataRequests = [];
    /** Track SID → the data channel publishing it. */
    #dataChannels = /* @__PURE__ */ new Map();
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
      signaling,
      iceServers,
      rtcConfiguration = {},
      preferredCodecs,
      bitrates,
      simulcast = false,
      dtx = true,
      RTCPeerConnection: PC = globalThis.RTCPeerConnection,
      log: log2 = new Log("webrtc")
    }) {
      super();
      this.#signaling = signaling;
      this.#preferredCodecs = preferredCodecs;
      this.#simulcast = simulcast;
      this.#dtx = dtx;
      this.#bitrates = bitrates;
      this.#log = log2;
      const servers = [...rtcConfiguration.iceServers || [], ...iceServers];
      this.pc = new PC({ ...rtcConfiguration, iceServers: servers, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
      this.pc.addEventListener("track", (event) => {
        const sid = this.#midToSid.get(event.transceiver.mid);
        if (sid && this.#receivers.get(sid) === event.transceiver) this.emit("track", sid, event.track);
      });
      this.pc.addEventListener("datachannel", (event) => this.emit("datachannel", event.channel));
      this.pc.addEventListener("connectionstatechange", () => {
        const state = this.pc.connectionState;
        this.#log.debug("Peer connection state:", state);
        if (this.#closed) return;
        if (state === "disconnected" || state === "failed") {
          this.#interrupted = true;
          this.emit("interrupted", state === "failed");
        } else if (state === "connected" && this.#interrupted) {
          this.#interrupted = false;
          this.emit("restored");
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
      if (this.#closed) return Promise.reject(new Error("The media session is closed"));
      const maxBitrate = this.#bitrates[track.kind];
      let sendEncodings = maxBitrate ? [{ maxBitrate }] : void 0;
      if (track.kind === "video" && this.#simulcast) {
        const settings = typeof track._sendTrack.getSettings === "function" ? track._sendTrack.getSettings() : {};
        const layers = simulcastLayers(settings.width, settings.height);
        if (layers.length > 1) {
          sendEncodings = layers.map((layer) => ({ ...layer, maxBitrate: maxBitrate ? Math.min(layer.maxBitrate, maxBitrate) : layer.maxBitrate }));
        }
      }
      const transceiver = this.pc.addTransceiver(track._sendTrack, { direction: "sendonly", sendEncodings });
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
      if (this.#closed) return Promise.reject(new Error("The media session is closed"));
      const init = { ordered: track.ordered };
      if (track.maxPacketLifeTime !== null) init.maxPacketLifeTime = track.maxPacketLifeTime;
      if (track.maxRetransmits !== null) init.maxRetransmits = track.maxRetransmits;
      const channel = this.pc.createDataChannel(track.id, init);
      track._addChannel(channel);
      return new Promise((resolve, reject) => {
        this.#dataRequests.push({ label: track.id, channel, track, resolve, reject });
        this.#signaling.send({ type: "publish_data", name: track.name, label: track.id });
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
        p.reject(new Error("Canceled: the track was unpublished before it was published"));
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
        await transceiver.sender.setParameters(params).catch(() => {
        });
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
        if (!layer || typeof layer.active !== "boolean") continue;
        const encoding = layer.rid && params.encodings.find((e) => e.rid === layer.rid) || params.encodings[layer.layer];
        if (encoding && encoding.active !== layer.active) {
          encoding.active = layer.active;
          changed = true;
        }
      }
      if (changed) await transceiver.sender.setParameters(params).catch((error) => this.#log.warn("Could not pause or resume a simulcast layer:", error));
    }
    // ---- subscribing ---------------------------------------------------------
    /**
     * Receive an audio or video track: a receiving m-line in the next offer.
     * @param {string} sid
     * @param {'audio'|'video'} kind
     */
    subscribe(sid, kind) {
      if (this.#closed || this.#receivers.has(sid)) return;
      const transceiver = this.pc.addTransceiver(kind, { direction: "recvonly" });
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
        const offer = await this.pc.createOffer(iceRestart ? { iceRestart: true } : void 0);
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
      const live = subscribe.filter((s) => this.#receivers.get(s.sid) === s.transceiver);
      for (const s of live) this.#midToSid.set(s.transceiver.mid, s.sid);
      const revision = ++this.#revision;
      this.#outstanding = { revision, publish, subscribe: live, errors: [] };
      this.#log.debug(`Offer ${revision}${iceRestart ? " (ICE restart)" : ""}: publishing ${publish.map((p) => p.name).join(", ") || "nothing"}, subscribing ${live.map((s) => s.sid).join(", ") || "nothing"}`);
      this.#signaling.send({
        type: "offer",
        revision,
        sdp: this.pc.localDescription.sdp,
        publish: publish.map((p) => ({ mid: p.transceiver.mid, name: p.name, kind: p.kind, enabled: p.enabled })),
        subscribe: live.map((s) => ({ mid: s.transceiver.mid, track: s.sid }))
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
        await this.pc.setRemoteDescription({ type: "answer", sdp: withOpusDtx(message.sdp, this.#dtx) });
      } catch (e) {
        if (this.#closed) return;
        this.#outstanding = null;
        const error = createTwilioError(53402, `Client is unable to apply a remote media description: ${e.message}`);
        this.#fail(offer.publish, offer.subscribe, error);
        this.emit("failed", error);
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
      const [request2] = this.#dataRequests.splice(index, 1);
      this.#dataChannels.set(message.published.track.sid, request2.channel);
      request2.resolve(message.published.track);
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
        setTimeout(() => {
          if (this.#outstanding === offer) this.resendOutstanding();
        }, 1e3);
        return true;
      }
      if (offer && error.code >= 53400 && error.code < 53500) {
        this.#outstanding = null;
        this.pc.setLocalDescription({ type: "rollback" }).catch(() => {
        }).finally(() => {
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
          const request2 = this.#dataRequests.shift();
          request2.track._removeChannel(request2.channel);
          request2.channel.close();
          request2.reject(error);
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
          this.emit("subscriptionFailed", s.sid, error);
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
        if (!entry.transceiver.receiver.track.muted) return;
        if (this.pc.connectionState !== "connected") {
          this.#watch(entry);
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
        type: "offer",
        revision: offer.revision,
        sdp: this.pc.localDescription.sdp,
        publish: offer.publish.map((p) => ({ mid: p.transceiver.mid, name: p.name, kind: p.kind, enabled: p.enabled })),
        subscribe: offer.subscribe.map((s) => ({ mid: s.transceiver.mid, track: s.sid }))
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
      const closed = new Error("The media session is closed");
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
      if (preferred.length === 0 || typeof transceiver.setCodecPreferences !== "function" || typeof RTCRtpReceiver === "undefined" || !RTCRtpReceiver.getCapabilities) return;
      const receivable = RTCRtpReceiver.getCapabilities(kind);
      if (!receivable) return;
      const sendable = typeof RTCRtpSender !== "undefined" && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities(kind) || { codecs: [] };
      const canSend = (codec) => sendable.codecs.some((c) => c.mimeType === codec.mimeType && (c.sdpFmtpLine || "") === (codec.sdpFmtpLine || ""));
      const rank = (codec) => {
        const i = preferred.indexOf(codec.mimeType.split("/")[1].toLowerCase());
        return (i < 0 ? preferred.length : i) * 2 + (canSend(codec) ? 0 : 1);
      };
      const codecs = [...receivable.codecs].sort((a, b) => rank(a) - rank(b));
      try {
        transceiver.setCodecPreferences(codecs);
        this.#log.debug(`Codec preference for ${kind}:`, codecs.map((c) => c.mimeType).join(" "));
      } catch (e) {
        this.#log.warn(`setCodecPreferences failed; the browser's ${kind} codec order stays`, e);
      }
    }
  };

  // sdk/js/reconnect.js
  var DEFAULT_SESSION_TIMEOUT_MS = 3e4;
  var RESTART_AFTER_MS = 2e3;
  var RETRY_MS = 4e3;
  var Reconnection = class extends EventEmitter {
    /** @type {'connected'|'reconnecting'|'failed'|'closed'} */
    state = "connected";
    #signaling;
    #peer;
    #sessionTimeoutMs;
    #log;
    #mediaUp = true;
    #signalingUp = true;
    #sessionTimer = null;
    #restartTimer = null;
    #unwatch = [];
    /**
     * @param {object} options
     * @param {import('./signaling.js').Signaling} options.signaling
     * @param {import('./peer.js').PeerSession} options.peer
     * @param {number} [options.sessionTimeoutMs] how long the server keeps us while media is gone
     * @param {Log} [options.log]
     * @param {any} [options.window] where `online` and `navigator.connection` come from
     */
    constructor({
      signaling,
      peer,
      sessionTimeoutMs = DEFAULT_SESSION_TIMEOUT_MS,
      log: log2 = new Log("reconnect"),
      window = globalThis
    }) {
      super();
      this.#signaling = signaling;
      this.#peer = peer;
      this.#sessionTimeoutMs = sessionTimeoutMs;
      this.#log = log2;
      this.#listen(signaling, "reconnecting", (error) => this.#signalingLost(error));
      this.#listen(signaling, "reconnected", () => this.#signalingBack());
      this.#listen(signaling, "failed", (error) => this.#fail(error));
      this.#listen(peer, "interrupted", (failed) => this.#mediaLost(failed));
      this.#listen(peer, "restored", () => this.#mediaBack());
      const networkChanged = () => this.restart("the network changed");
      if (window && typeof window.addEventListener === "function") {
        window.addEventListener("online", networkChanged);
        this.#unwatch.push(() => window.removeEventListener("online", networkChanged));
      }
      const connection = window?.navigator?.connection;
      if (connection && typeof connection.addEventListener === "function") {
        connection.addEventListener("change", networkChanged);
        this.#unwatch.push(() => connection.removeEventListener("change", networkChanged));
      }
    }
    /**
     * Restart ICE now: new credentials in a new offer, so the server learns
     * the client's new path. Media keeps flowing on the old path meanwhile,
     * if it still works.
     * @param {string} why
     */
    restart(why) {
      if (this.state === "failed" || this.state === "closed") return;
      this.#log.info(`Restarting ICE: ${why}`);
      this.#peer.restartIce();
    }
    /** Stop watching: the room ended. */
    close() {
      if (this.state !== "failed") this.state = "closed";
      this.#clearTimers();
      for (const unwatch of this.#unwatch.splice(0)) unwatch();
    }
    #listen(emitter, event, handler) {
      emitter.on(event, handler);
      this.#unwatch.push(() => emitter.removeListener(event, handler));
    }
    #signalingLost(error) {
      this.#signalingUp = false;
      this.#enter(error);
    }
    #signalingBack() {
      this.#signalingUp = true;
      if (!this.#mediaUp || this.#peer.connectionState !== "connected") {
        this.#mediaUp = false;
        this.restart("the signaling resumed");
        this.#scheduleRetry(RETRY_MS);
      }
      this.#maybeBack();
    }
    /** @param {boolean} failed ICE failed (not only disconnected) */
    #mediaLost(failed) {
      if (this.state === "failed" || this.state === "closed") return;
      const first = this.#mediaUp;
      this.#mediaUp = false;
      if (first) {
        this.#log.warn(`The media connection ${failed ? "failed" : "was interrupted"}`);
        this.#enter(createTwilioError(53405, "Media connection failed or Media activity ceased"));
        this.#signaling.probe();
        clearTimeout(this.#sessionTimer);
        this.#sessionTimer = setTimeout(() => this.#timedOut(), this.#sessionTimeoutMs);
      }
      if (failed) {
        this.restart("ICE failed");
        this.#scheduleRetry(RETRY_MS);
      } else if (first) {
        this.#scheduleRetry(RESTART_AFTER_MS);
      }
    }
    #mediaBack() {
      if (this.#mediaUp) return;
      this.#log.info("The media connection is back");
      this.#mediaUp = true;
      this.#peer.cancelRestart();
      clearTimeout(this.#sessionTimer);
      clearTimeout(this.#restartTimer);
      this.#sessionTimer = this.#restartTimer = null;
      this.#maybeBack();
    }
    #scheduleRetry(ms) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = null;
        if (this.#mediaUp || this.state !== "reconnecting") return;
        this.restart("media does not flow yet");
        this.#scheduleRetry(RETRY_MS);
      }, ms);
    }
    #enter(error) {
      if (this.state !== "connected") return;
      this.state = "reconnecting";
      this.emit("reconnecting", error);
    }
    #maybeBack() {
      if (this.state !== "reconnecting" || !this.#mediaUp || !this.#signalingUp) return;
      this.state = "connected";
      this.emit("reconnected");
    }
    #timedOut() {
      this.#sessionTimer = null;
      if (this.#mediaUp) return;
      this.#fail(createTwilioError(
        53405,
        `Media connection failed or Media activity ceased: no media for the session timeout (${this.#sessionTimeoutMs / 1e3} s)`
      ));
    }
    #fail(error) {
      if (this.state === "failed" || this.state === "closed") return;
      this.state = "failed";
      this.#clearTimers();
      this.emit("failed", error);
    }
    #clearTimers() {
      clearTimeout(this.#sessionTimer);
      clearTimeout(this.#restartTimer);
      this.#sessionTimer = this.#restartTimer = null;
    }
  };

  // sdk/js/room.js
  var RESEND_AFTER_RESUME_MS = 1500;
  var REJOIN_WINDOW_MS = 3e4;
  var REJOIN_RETRY_MS = 500;
  var FIRST_OFFER_WAIT_MS = 150;
  var PARTICIPANT_EVENTS = [
    "trackDimensionsChanged",
    "trackDisabled",
    "trackEnabled",
    "trackMessage",
    "trackPublished",
    "trackStarted",
    "trackSubscribed",
    "trackSubscriptionFailed",
    "trackUnpublished",
    "trackUnsubscribed",
    "trackSwitchedOff",
    "trackSwitchedOn",
    "trackPublishPriorityChanged"
  ];
  var Room = class extends EventEmitter {
    #signaling;
    #peer;
    /** Tracks connect() made: stopped when the room ends. */
    #ownedTracks;
    /** Data channels the server opened before its `subscribed` arrived, by label (track SID). */
    #earlyChannels = /* @__PURE__ */ new Map();
    /** Data tracks we were told we are subscribed to, awaiting their channel. */
    #awaitedChannels = /* @__PURE__ */ new Set();
    #resendTimer = null;
    #log;
    /** @type {Reconnection} */
    #reconnection;
    /** connect()'s adaptive options: dominantSpeaker, clientTrackSwitchOffControl, contentPreferencesMode. */
    #adaptive;
    /** How to join again when the room's node is lost (see the top of this file); null: never. */
    #rejoin;
    /** Subscriptions held while connect() is under way ({@link _holdSubscriptions}). */
    #held = null;
    /** A rejoin is looking for the room (until its `joined`). */
    #rejoining = false;
    /** Whether the server subscribes us to every track (connect()'s automaticSubscription). */
    #autoSubscribe;
    /**
     * @param {any} joined the server's `joined` message
     * @param {import('./participant.js').LocalParticipant} localParticipant
     * @param {import('./signaling.js').Signaling} signaling
     * @param {import('./peer.js').PeerSession} peer
     * @param {Array<{stop: () => void}>} ownedTracks
     * @param {Log} [log]
     * @param {{dominantSpeaker: boolean, clientTrackSwitchOffControl: string, contentPreferencesMode: string}} [adaptive]
     * @param {{autoSubscribe?: boolean, rejoin?: (() => Promise<{signaling: any, joined: any, peer: any}>)|null}} [session]
     *   `rejoin` opens a new session in the room of the same name (when the room's node is lost)
     */
    constructor(joined, localParticipant, signaling, peer, ownedTracks, log2 = new Log("Room"), adaptive = {
      dominantSpeaker: false,
      clientTrackSwitchOffControl: "disabled",
      contentPreferencesMode: "disabled"
    }, { autoSubscribe = true, rejoin = null } = {}) {
      super();
      this.#log = log2.child(this);
      this.#adaptive = adaptive;
      this.#autoSubscribe = autoSubscribe;
      this.#rejoin = rejoin;
      this.sid = joined.room.sid;
      this.name = joined.room.name;
      this.state = "connected";
      this.localParticipant = localParticipant;
      this.participants = /* @__PURE__ */ new Map();
      this.dominantSpeaker = null;
      this.isRecording = joined.room.recording === true;
      this.mediaRegion = "local";
      this.#ownedTracks = ownedTracks;
      for (const info of joined.participants) this.#add(new RemoteParticipant(info), false);
      this.#attach(signaling, peer, joined);
    }
    /**
     * Take `signaling` and `peer` as the room's session (at connect(), and
     * after a rejoin): the signaling socket and the media connection come
     * back on their own paths; the Reconnection (reconnect.js) says when
     * the room is reconnecting, back, or lost.
     */
    #attach(signaling, peer, joined) {
      this.#signaling = signaling;
      this.#peer = peer;
      const reconnection = new Reconnection({
        signaling,
        peer,
        sessionTimeoutMs: typeof joined.session_timeout === "number" && joined.session_timeout > 0 ? joined.session_timeout * 1e3 : DEFAULT_SESSION_TIMEOUT_MS,
        log: this.#log.child("reconnect")
      });
      this.#reconnection = reconnection;
      const current = () => this.#peer === peer;
      reconnection.on("reconnecting", (error) => {
        if (this.state !== "connected" || !current()) return;
        this.state = "reconnecting";
        this.localParticipant._reconnecting();
        this.emit("reconnecting", error);
      });
      reconnection.on("reconnected", () => {
        if (this.state !== "reconnecting" || !current() || this.#rejoining) return;
        this.state = "connected";
        this.localParticipant._reconnected();
        this.emit("reconnected");
      });
      reconnection.on("failed", (error) => {
        if (!current()) return;
        if (this.#rejoin && error && error.nodeLost) this.#rejoinRoom(error);
        else this.#end(error);
      });
      peer.on("track", (sid, mediaStreamTrack) => current() && this.#onTrack(sid, mediaStreamTrack));
      peer.on("datachannel", (channel) => current() && this.#onDataChannel(channel));
      peer.on("subscriptionFailed", (sid, error) => current() && this.#publisherOf(sid)?._subscriptionFailed(sid, error));
      peer.on("failed", (error) => current() && this.#end(error));
    }
    /**
     * @internal twilio-video's private path to its signaling socket, which
     * Twilio's remotereconnection example uses to simulate a dropped
     * connection: `room._signaling._transport._twilioConnection._close({code, reason})`
     * drops the socket and resumes the session. Nothing else of the private
     * object is there.
     */
    get _signaling() {
      const signaling = this.#signaling;
      return { _transport: { _twilioConnection: { _close: () => signaling.drop() } } };
    }
    /** @internal Start reading server messages (after connect() has wired everything). */
    /**
     * @internal connect() starts: tracks that arrive before it resolves are
     * subscribed after it ({@link _releaseSubscriptions}), as twilio-video's
     * arrive in the server's offer after `connected`, so an app that listens
     * for `trackSubscribed` once connect() has resolved sees them all, and
     * the participants it finds there have none subscribed yet.
     */
    _holdSubscriptions() {
      this.#held = [];
    }
    /** @internal connect() has resolved: subscribe what arrived, on the next task (after the app's code that awaited connect()). */
    _releaseSubscriptions() {
      setTimeout(() => {
        const held = this.#held || [];
        this.#held = null;
        if (this.state === "disconnected") return;
        for (const subscribe of held) subscribe();
      });
    }
    _start() {
      const signaling = this.#signaling;
      signaling.setHandler((message) => {
        if (signaling !== this.#signaling) return;
        try {
          this.#onMessage(message);
        } catch (error) {
          this.#log.error("Error handling a signaling message", message.type, error);
        }
      });
    }
    /**
     * Leave the room. Stops the tracks connect() created (not the ones you
     * passed in `tracks`); closes the peer connection and the socket.
     * @returns {this}
     */
    disconnect() {
      this.#end(void 0);
      return this;
    }
    /**
     * Statistics of every published and subscribed audio/video track, in
     * twilio-video's shape (one report: Salon uses one peer connection).
     * Remote video stats also carry `framesDecoded`.
     * @returns {Promise<object[]>}
     */
    async getStats() {
      if (this.state === "disconnected") return [];
      const stats = await this.#peer.pc.getStats();
      const all = /* @__PURE__ */ new Map();
      stats.forEach((s) => all.set(s.id, s));
      const codecOf = (s) => {
        const c = all.get(s.codecId);
        return c ? c.mimeType.split("/")[1] : null;
      };
      const byMid = (type, mid) => [...all.values()].find((s) => s.type === type && s.mid === mid && mid !== null);
      const report2 = {
        peerConnectionId: `${this.sid}/${this.localParticipant.sid}`,
        localAudioTrackStats: [],
        localVideoTrackStats: [],
        remoteAudioTrackStats: [],
        remoteVideoTrackStats: []
      };
      for (const publication of this.localParticipant.tracks.values()) {
        if (publication.kind === "data") continue;
        const s = byMid("outbound-rtp", this.#peer.sendingMid(publication.trackSid));
        if (!s) continue;
        const remote = [...all.values()].find((r) => r.type === "remote-inbound-rtp" && r.localId === s.id) || {};
        const source = all.get(s.mediaSourceId) || {};
        const common = {
          trackId: publication.track.id,
          trackSid: publication.trackSid,
          timestamp: s.timestamp,
          ssrc: String(s.ssrc),
          packetsLost: remote.packetsLost ?? null,
          codec: codecOf(s),
          bytesSent: s.bytesSent ?? null,
          packetsSent: s.packetsSent ?? null,
          roundTripTime: remote.roundTripTime ?? null,
          jitter: remote.jitter ?? null
        };
        if (publication.kind === "audio") {
          report2.localAudioTrackStats.push({ ...common, audioLevel: source.audioLevel ?? null });
        } else {
          report2.localVideoTrackStats.push({
            ...common,
            captureDimensions: source.width ? { width: source.width, height: source.height } : null,
            dimensions: s.frameWidth ? { width: s.frameWidth, height: s.frameHeight } : null,
            captureFrameRate: source.framesPerSecond ?? null,
            frameRate: s.framesPerSecond ?? null
          });
        }
      }
      for (const participant of this.participants.values()) {
        for (const publication of participant.tracks.values()) {
          if (publication.kind === "data" || !publication.track) continue;
          const s = byMid("inbound-rtp", this.#peer.receivingMid(publication.trackSid));
          if (!s) continue;
          const common = {
            trackId: publication.track.mediaStreamTrack.id,
            trackSid: publication.trackSid,
            timestamp: s.timestamp,
            ssrc: String(s.ssrc),
            packetsLost: s.packetsLost ?? null,
            codec: codecOf(s),
            bytesReceived: s.bytesReceived ?? null,
            packetsReceived: s.packetsReceived ?? null,
            jitter: s.jitter ?? null
          };
          if (publication.kind === "audio") {
            report2.remoteAudioTrackStats.push({ ...common, audioLevel: s.audioLevel ?? null });
          } else {
            report2.remoteVideoTrackStats.push({
              ...common,
              dimensions: s.frameWidth ? { width: s.frameWidth, height: s.frameHeight } : null,
              frameRate: s.framesPerSecond ?? null,
              framesDecoded: s.framesDecoded ?? 0
            });
          }
        }
      }
      return [report2];
    }
    /** Accepted for twilio-video compatibility; no effect. */
    refreshInactiveMedia() {
    }
    toString() {
      return `[Room ${this.sid}]`;
    }
    // ---- server messages -----------------------------------------------------
    #onMessage(m) {
      if (this.state === "disconnected") return;
      switch (m.type) {
        case "answer":
          this.#peer.onAnswer(m);
          break;
        case "published":
          this.#peer.onPublished(m);
          break;
        case "participant_connected":
          if (!this.participants.has(m.participant.sid)) this.#add(new RemoteParticipant(m.participant), true);
          break;
        case "participant_disconnected":
          this.#remove(m.participant);
          break;
        case "participant_reconnecting":
        case "participant_reconnected": {
          const participant = this.participants.get(m.participant);
          if (!participant) break;
          if (m.type === "participant_reconnecting" ? participant._reconnecting() : participant._reconnected()) {
            this.emit(m.type === "participant_reconnecting" ? "participantReconnecting" : "participantReconnected", participant);
          }
          break;
        }
        case "track_published":
          this.participants.get(m.participant)?._published(m.track);
          break;
        case "track_unpublished":
          this.#peer.unsubscribe(m.track);
          this.participants.get(m.participant)?._unpublished(m.track);
          break;
        case "track_switched":
          this.participants.get(m.participant)?._switched(m.track, m.enabled);
          break;
        case "subscribed":
          this.#onSubscribed(m.participant, m.track);
          break;
        case "unsubscribed":
          this.#peer.unsubscribe(m.track);
          this.#awaitedChannels.delete(m.track);
          this.#publisherOf(m.track)?._unsubscribed(m.track);
          break;
        case "recording":
          this.#setRecording(m.recording === true);
          break;
        case "track_switched_off":
        case "track_switched_on": {
          const participant = this.#publisherOf(m.track);
          participant?._switchedOff(m.track, m.type === "track_switched_off", m.reason ?? null);
          break;
        }
        case "track_priority_changed":
          this.participants.get(m.participant)?._priorityChanged(m.track, m.priority);
          break;
        case "dominant_speaker_changed": {
          if (!this.#adaptive.dominantSpeaker) break;
          const speaker = m.participant && this.participants.get(m.participant) || null;
          if (speaker !== this.dominantSpeaker) {
            this.dominantSpeaker = speaker;
            this.emit("dominantSpeakerChanged", speaker);
          }
          break;
        }
        case "network_quality":
          for (const entry of Array.isArray(m.participants) ? m.participants : []) {
            const participant = entry.participant === this.localParticipant.sid ? this.localParticipant : this.participants.get(entry.participant);
            participant?._networkQuality(entry);
          }
          break;
        case "layers":
          this.#peer.setLayers(m.track, m.layers);
          break;
        case "joined":
          if (m.resumed) {
            this.#reconcile(m);
            this.#setRecording(m.room?.recording === true);
          }
          break;
        case "error": {
          const error = createTwilioError(m.code, m.message);
          if (!this.#peer.onError(error, m.revision)) this.#log.warn(`Server error ${error.code}: ${error.message}`);
          break;
        }
        case "disconnected":
          if (m.reason === "shutdown" && this.#rejoin) {
            this.#rejoinRoom(createTwilioError(53001, `Signaling connection disconnected: the room's node is shutting down (${m.message})`));
          } else {
            this.#end(m.code ? createTwilioError(m.code, m.message) : void 0);
          }
          break;
        default:
          break;
      }
    }
    #onSubscribed(participantSid, info) {
      const participant = this.participants.get(participantSid);
      if (!participant) return;
      participant._published(info);
      if (info.kind === "data") {
        const channel = this.#earlyChannels.get(info.sid);
        if (channel) {
          this.#earlyChannels.delete(info.sid);
          this.#subscribeData(participant, info.sid, channel);
        } else {
          this.#awaitedChannels.add(info.sid);
        }
      } else {
        this.#peer.subscribe(info.sid, info.kind);
      }
    }
    #onTrack(sid, mediaStreamTrack) {
      if (this.#held) {
        this.#held.push(() => this.#onTrack(sid, mediaStreamTrack));
        return;
      }
      const participant = this.#publisherOf(sid);
      const publication = participant?.tracks.get(sid);
      if (!publication || publication.track) return;
      const Track2 = publication.kind === "audio" ? RemoteAudioTrack : RemoteVideoTrack;
      const track = new Track2(sid, mediaStreamTrack, publication.trackName, publication.isTrackEnabled);
      if (publication.kind === "video") {
        track._control((message) => this.#signaling.send({ ...message, track: sid }), this.#adaptive);
      }
      participant._subscribed(sid, track);
    }
    #onDataChannel(channel) {
      const sid = channel.label;
      if (this.#awaitedChannels.delete(sid)) {
        const participant = this.#publisherOf(sid);
        if (participant) this.#subscribeData(participant, sid, channel);
      } else {
        this.#earlyChannels.set(sid, channel);
      }
    }
    #subscribeData(participant, sid, channel) {
      if (this.#held) {
        this.#held.push(() => {
          const publisher = this.#publisherOf(sid);
          if (publisher) this.#subscribeData(publisher, sid, channel);
        });
        return;
      }
      const publication = participant.tracks.get(sid);
      if (!publication || publication.track) return;
      participant._subscribed(sid, new RemoteDataTrack(sid, publication.trackName, channel));
    }
    #publisherOf(trackSid) {
      for (const participant of this.participants.values()) {
        if (participant.tracks.has(trackSid)) return participant;
      }
      return null;
    }
    // ---- participants --------------------------------------------------------
    #add(participant, announce) {
      this.participants.set(participant.sid, participant);
      const forwarders = PARTICIPANT_EVENTS.map((event) => {
        const forward = (...args) => this.emit(event, ...args, participant);
        participant.on(event, forward);
        return [event, forward];
      });
      participant.once("disconnected", () => {
        this.participants.delete(participant.sid);
        if (this.dominantSpeaker === participant) {
          this.dominantSpeaker = null;
          this.emit("dominantSpeakerChanged", null);
        }
        for (const [event, forward] of forwarders) participant.removeListener(event, forward);
        this.emit("participantDisconnected", participant);
      });
      if (announce) this.emit("participantConnected", participant);
    }
    #remove(sid) {
      const participant = this.participants.get(sid);
      if (!participant) return;
      for (const trackSid of participant.tracks.keys()) {
        this.#peer.unsubscribe(trackSid);
        this.#awaitedChannels.delete(trackSid);
      }
      participant._disconnected();
    }
    /** After a resume: bring participants and tracks in line with the server's view. */
    /** @param {boolean} recording */
    #setRecording(recording) {
      if (recording === this.isRecording) return;
      this.isRecording = recording;
      this.emit(recording ? "recordingStarted" : "recordingStopped");
    }
    #reconcile(joined) {
      const present = new Map(joined.participants.map((p) => [p.sid, p]));
      for (const sid of [...this.participants.keys()]) {
        if (!present.has(sid)) this.#remove(sid);
      }
      for (const info of joined.participants) {
        let participant = this.participants.get(info.sid);
        if (!participant) {
          this.#add(new RemoteParticipant({ ...info, tracks: [] }), true);
          participant = this.participants.get(info.sid);
        }
        const tracks = new Map(info.tracks.map((t) => [t.sid, t]));
        for (const sid of [...participant.tracks.keys()]) {
          if (!tracks.has(sid)) {
            this.#peer.unsubscribe(sid);
            participant._unpublished(sid);
          }
        }
        for (const track of info.tracks) {
          if (participant.tracks.has(track.sid)) participant._switched(track.sid, track.enabled);
          else participant._published(track);
        }
      }
      const revision = this.#peer.outstandingRevision;
      const handled = typeof joined.last_revision === "number" ? joined.last_revision : null;
      if (revision !== null && handled !== null && revision > handled) {
        this.#peer.resendOutstanding();
      } else if (revision !== null && handled === null) {
        clearTimeout(this.#resendTimer);
        this.#resendTimer = setTimeout(() => {
          if (this.state !== "disconnected" && this.#peer.outstandingRevision === revision) this.#peer.resendOutstanding();
        }, RESEND_AFTER_RESUME_MS);
      }
    }
    // ---- rejoining ---------------------------------------------------------------
    /**
     * The room's node is lost: join the room of the same name again (see the
     * top of this file), or end with 53000 when no join works within
     * REJOIN_WINDOW_MS. A token the server refuses ends it at once.
     * @param {import('./errors.js').TwilioError} error why the session was lost
     */
    async #rejoinRoom(error) {
      if (this.#rejoining || this.state === "disconnected") return;
      this.#rejoining = true;
      this.#log.warn(`Lost the room's node (${error.code} ${error.message}): joining ${this.name} again`);
      clearTimeout(this.#resendTimer);
      this.#reconnection.close();
      this.#signaling.close();
      this.#peer.close();
      if (this.state === "connected") {
        this.state = "reconnecting";
        this.localParticipant._reconnecting();
        this.emit("reconnecting", error);
      }
      for (const sid of [...this.participants.keys()]) this.#remove(sid);
      this.#earlyChannels.clear();
      this.#awaitedChannels.clear();
      this.localParticipant._forgetPublications();
      const deadline = Date.now() + REJOIN_WINDOW_MS;
      let last = error;
      while (this.state === "reconnecting") {
        let session = null;
        try {
          session = await this.#rejoin();
        } catch (e) {
          last = e;
          const refused = e && typeof e.code === "number" && e.code >= 20101 && e.code <= 20107;
          if (refused || Date.now() + REJOIN_RETRY_MS >= deadline) break;
          this.#log.debug(`Rejoin attempt failed (${e && e.message}): trying again`);
          await new Promise((resolve) => setTimeout(resolve, REJOIN_RETRY_MS));
          continue;
        }
        if (this.state !== "reconnecting") {
          session.signaling.close();
          session.peer.close();
          return;
        }
        await this.#rejoined(session);
        return;
      }
      if (this.state === "reconnecting") {
        this.#rejoining = false;
        const code = last && typeof last.code === "number" && last.code >= 20101 && last.code <= 20107 ? last.code : 53e3;
        this.#end(createTwilioError(code, `Signaling connection error: could not join ${this.name} again within ${REJOIN_WINDOW_MS / 1e3} s (${last && last.message})`));
      }
    }
    /** In the room again: the new session becomes the room's. */
    async #rejoined({ signaling, joined, peer }) {
      this.#log.info(`Joined ${joined.room.name} again: room ${joined.room.sid}, participant ${joined.participant.sid}`);
      this.sid = joined.room.sid;
      this.name = joined.room.name;
      this.#attach(signaling, peer, joined);
      this.#rejoining = false;
      const republish = this.localParticipant._rejoined(joined.participant, peer, signaling);
      this.#setRecording(joined.room.recording === true);
      for (const info of joined.participants) this.#add(new RemoteParticipant(info), true);
      const expected = new Set(this.#autoSubscribe ? joined.participants.flatMap((p) => p.tracks.filter((t) => t.kind !== "data").map((t) => t.sid)) : []);
      peer.hold();
      this._start();
      const publishing = republish.map(({ track, priority }) => this.localParticipant.publishTrack(track, { priority }).catch((e) => {
        this.#log.warn(`Could not publish ${track} again:`, e);
        return null;
      }));
      await waitFor(() => this.state !== "reconnecting" || [...expected].every((sid) => peer.isSubscribed(sid)), FIRST_OFFER_WAIT_MS);
      peer.release();
      await Promise.all(publishing);
      if (this.state !== "reconnecting" || this.#peer !== peer) return;
      this.state = "connected";
      this.localParticipant._reconnected();
      this.emit("reconnected");
    }
    // ---- the end ---------------------------------------------------------------
    #end(error) {
      if (this.state === "disconnected") return;
      this.state = "disconnected";
      this.#rejoining = false;
      if (error) this.#log.warn(`Disconnected: ${error.code} ${error.message}`);
      else this.#log.info("Disconnected");
      clearTimeout(this.#resendTimer);
      this.#reconnection.close();
      this.#signaling.close();
      this.#peer.close();
      for (const participant of this.participants.values()) {
        for (const sid of participant.tracks.keys()) participant._unsubscribed(sid);
      }
      this.emit("disconnected", this, error);
      this.localParticipant._disconnected();
      for (const track of this.#ownedTracks) track.stop();
    }
  };
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

  // sdk/js/signaling.js
  var import_meta = {};
  var PROTOCOL_VERSION = 1;
  var CONNECT_TIMEOUT_MS = 1e4;
  var MAX_REDIRECTS = 3;
  var RESUME_WINDOW_MS = 1e4;
  var RESUME_ATTEMPT_MS = 3e3;
  var PING_INTERVAL_MS = 5e3;
  var PROBE_MS = 3e3;
  var SILENCE_LIMIT_MS = 3 * PING_INTERVAL_MS + 1e3;
  function signalingUrl(base) {
    let url;
    try {
      url = new URL(base);
    } catch {
      throw new TypeError(`options.url must be an http(s):// or ws(s):// URL, not ${base}`);
    }
    if (url.protocol === "http:" || url.protocol === "https:") {
      url.protocol = url.protocol === "http:" ? "ws:" : "wss:";
      const path = url.pathname.replace(/\/+$/, "");
      if (!path.endsWith("/v1/signaling")) url.pathname = `${path}/v1/signaling`;
    } else if (url.protocol === "ws:" || url.protocol === "wss:") {
      if (url.pathname === "/" || url.pathname === "") url.pathname = "/v1/signaling";
    } else {
      throw new TypeError(`options.url must be an http(s):// or ws(s):// URL, not ${base}`);
    }
    return url.toString();
  }
  var SDK_FILES = /\/sdk\/(signaling|salon-video\.global)\.js$/;
  var LOADED_FROM = (() => {
    const candidates = [];
    try {
      candidates.push(import_meta.url);
    } catch {
    }
    if (typeof document !== "undefined" && document.currentScript && document.currentScript.src) {
      candidates.push(document.currentScript.src);
    }
    for (const candidate2 of candidates) {
      if (typeof candidate2 !== "string" || !candidate2) continue;
      try {
        const url = new URL(candidate2);
        if ((url.protocol === "http:" || url.protocol === "https:") && SDK_FILES.test(url.pathname)) {
          return `${url.origin}${url.pathname.replace(SDK_FILES, "")}`;
        }
      } catch {
      }
    }
    return null;
  })();
  function whereSalonIs() {
    const configured = typeof SALON_VIDEO_URL !== "undefined" ? SALON_VIDEO_URL : void 0;
    if (typeof configured === "string" && configured) return { url: configured, from: "SALON_VIDEO_URL" };
    if (typeof document !== "undefined") {
      const meta = document.querySelector('meta[name="salon-video-url"]');
      const content = meta && meta.getAttribute("content");
      if (content) return { url: new URL(content, document.baseURI).toString(), from: '<meta name="salon-video-url">' };
    }
    if (LOADED_FROM) return { url: LOADED_FROM, from: "where the SDK was loaded from" };
    if (globalThis.location && /^https?:$/.test(globalThis.location.protocol)) {
      return { url: globalThis.location.origin, from: "the page's origin" };
    }
    throw new TypeError(`Where is Salon? ${HOW_TO_SAY}`);
  }
  var HOW_TO_SAY = 'Pass options.url, or set <meta name="salon-video-url" content="https://…"> or SALON_VIDEO_URL (a global or a bundler define).';
  function defaultBaseUrl() {
    return whereSalonIs().url;
  }
  var Signaling = class extends EventEmitter {
    /** @type {'connecting'|'connected'|'reconnecting'|'closed'} */
    state = "connecting";
    #url;
    /** Where join() began (a cluster's common address), before any redirect. */
    #entryUrl;
    #token;
    #WebSocket;
    /** @type {WebSocket|null} */
    #ws = null;
    /** Sockets given up as dead, closed once a resume has replaced them. */
    #stale = [];
    #session = null;
    /** The server's session timeout (`joined.session_timeout`), in ms. */
    #resumeWindowMs = RESUME_WINDOW_MS;
    /** Set by the server's `disconnected`: the session is over, do not resume. */
    #ended = false;
    /** @type {((message: any) => void)|null} */
    #handler = null;
    /** Messages received before the handler was set. */
    #inbox = [];
    /** Messages to send once a resume succeeds. */
    #outbox = [];
    /** @type {{onJoined: (m: any) => void, onError: (e: Error) => void}|null} */
    #waiter = null;
    #pingTimer = null;
    #pingId = 0;
    #lastHeard = 0;
    #probeTimer = null;
    #log;
    /**
     * @param {string} url the WebSocket URL (see {@link signalingUrl})
     * @param {string} token
     * @param {{WebSocket?: typeof WebSocket, log?: Log}} [options]
     */
    constructor(url, token, { WebSocket: WebSocketImpl = globalThis.WebSocket, log: log2 = new Log("signaling") } = {}) {
      super();
      this.#url = url;
      this.#entryUrl = url;
      this.#token = token;
      this.#WebSocket = WebSocketImpl;
      this.#log = log2;
    }
    /**
     * Open the socket and join the room.
     * @param {{room?: string|null, autoSubscribe: boolean, client: string}} request
     *   without `room`: the token's room grant, or a new room named by its SID
     * @returns {Promise<any>} the `joined` message
     */
    async join({ room, autoSubscribe, client }) {
      const request2 = { type: "join", version: PROTOCOL_VERSION, token: this.#token, auto_subscribe: autoSubscribe, client };
      if (typeof room === "string") request2.room = room;
      let joined;
      for (let redirects = 0; ; redirects++) {
        this.#log.info(`Connecting to ${this.#url}`);
        const ws = await this.#open(CONNECT_TIMEOUT_MS);
        try {
          joined = await this.#first(ws, request2, CONNECT_TIMEOUT_MS);
          break;
        } catch (error) {
          if (!error.redirect || redirects >= MAX_REDIRECTS) throw error;
          this.#log.info(`Redirected to node ${error.node}`);
          ws.onmessage = ws.onclose = null;
          ws.close(1e3);
          this.#url = error.redirect;
        }
      }
      this.#log.info(`Joined room ${joined.room.name} (${joined.room.sid}) as ${joined.participant.identity} (${joined.participant.sid})`);
      this.#connected();
      return joined;
    }
    /**
     * Receive every server message after `joined`, in order (including a
     * `joined` with `resumed: true` after a resume). Messages that came before
     * this call are handed over at once.
     * @param {(message: any) => void} handler
     */
    setHandler(handler) {
      this.#handler = handler;
      const waiting = this.#inbox.splice(0);
      for (const message of waiting) handler(message);
    }
    /**
     * Send a message. While reconnecting it waits for the new socket; after
     * close() it is dropped.
     * @param {object} message
     */
    send(message) {
      if (this.state === "closed") return;
      const ws = this.#ws;
      if (this.state === "connected" && ws && ws.readyState === 1) {
        ws.send(JSON.stringify(message));
      } else if (message.type !== "ping") {
        this.#outbox.push(message);
      }
    }
    /** Leave: send `leave`, close the socket, stop every timer. Idempotent. */
    close() {
      if (this.state === "closed") return;
      const wasConnected = this.state === "connected";
      this.state = "closed";
      clearInterval(this.#pingTimer);
      clearTimeout(this.#probeTimer);
      const ws = this.#ws;
      this.#ws = null;
      if (ws) {
        if (wasConnected && ws.readyState === 1) ws.send(JSON.stringify({ type: "leave" }));
        ws.close(1e3);
      }
      for (const s of this.#stale.splice(0)) s.close(1e3);
      if (this.#waiter) {
        const waiter = this.#waiter;
        this.#waiter = null;
        waiter.onError(new Error("Canceled"));
      }
    }
    // ---- the socket ----------------------------------------------------------
    /** Open a socket; it becomes the current one. */
    #open(timeoutMs) {
      return new Promise((resolve, reject) => {
        let ws;
        try {
          ws = new this.#WebSocket(this.#url);
        } catch (error) {
          reject(createTwilioError(53e3, `Signaling connection error: ${error.message}`));
          return;
        }
        this.#ws = ws;
        const timer = setTimeout(() => {
          ws.onopen = ws.onclose = null;
          ws.close();
          reject(createTwilioError(53002, `Signaling connection timed out: ${this.#url} did not open within ${timeoutMs} ms`));
        }, timeoutMs);
        ws.onopen = () => {
          clearTimeout(timer);
          if (this.state === "closed") {
            ws.close(1e3);
            reject(new Error("Canceled"));
            return;
          }
          ws.onmessage = (event) => this.#receive(ws, event.data);
          ws.onclose = (event) => this.#closed(ws, event);
          resolve(ws);
        };
        ws.onclose = () => {
          clearTimeout(timer);
          reject(createTwilioError(53e3, `Signaling connection error: cannot open ${this.#url}`));
        };
      });
    }
    /** Send the first message (join or resume) and wait for `joined`. */
    #first(ws, message, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiter = null;
          ws.onmessage = ws.onclose = null;
          ws.close();
          reject(createTwilioError(53002, `Signaling connection timed out: no answer to ${message.type} within ${timeoutMs} ms`));
        }, timeoutMs);
        this.#waiter = {
          onJoined: (joined) => {
            clearTimeout(timer);
            resolve(joined);
          },
          onError: (error) => {
            clearTimeout(timer);
            reject(error);
          }
        };
        ws.send(JSON.stringify(message));
      });
    }
    #receive(ws, text) {
      if (ws !== this.#ws) return;
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        this.#log.warn("Ignoring a signaling message that is not JSON");
        return;
      }
      if (!message || typeof message.type !== "string") return;
      this.#lastHeard = Date.now();
      const waiter = this.#waiter;
      if (waiter) {
        this.#waiter = null;
        if (message.type === "joined") {
          this.#session = message.session;
          if (typeof message.session_timeout === "number" && message.session_timeout > 0) {
            this.#resumeWindowMs = message.session_timeout * 1e3;
          }
          if (message.resumed) this.#resumed(message);
          waiter.onJoined(message);
        } else if (message.type === "redirect" && typeof message.url === "string") {
          const error = createTwilioError(53e3, `Signaling connection error: the room is on node ${message.node}`);
          Object.defineProperty(error, "redirect", { value: message.url });
          Object.defineProperty(error, "node", { value: message.node });
          waiter.onError(error);
        } else if (message.type === "error") {
          const error = createTwilioError(message.code, message.message);
          Object.defineProperty(error, "fromServer", { value: true });
          waiter.onError(error);
        } else if (message.type === "disconnected") {
          const error = createTwilioError(typeof message.code === "number" ? message.code : 53001, message.message);
          Object.defineProperty(error, "fromServer", { value: true });
          Object.defineProperty(error, "nodeLost", { value: message.reason === "node-lost" });
          waiter.onError(error);
        } else {
          waiter.onError(createTwilioError(53003, `expected joined, got ${message.type}`));
        }
        return;
      }
      if (message.type === "pong") return;
      this.#log.debug("Received", message.type);
      if (message.type === "disconnected") this.#ended = true;
      this.#deliver(message);
    }
    #deliver(message) {
      if (this.#handler) this.#handler(message);
      else this.#inbox.push(message);
    }
    #closed(ws, event) {
      if (ws !== this.#ws) return;
      this.#ws = null;
      if (this.#waiter) {
        const waiter = this.#waiter;
        this.#waiter = null;
        waiter.onError(createTwilioError(53e3, `Signaling connection error: the socket closed (${event.code})`));
        return;
      }
      if (this.state !== "connected") return;
      if (this.#ended) {
        this.state = "closed";
        clearInterval(this.#pingTimer);
        clearTimeout(this.#probeTimer);
        return;
      }
      this.#reconnect();
    }
    #connected() {
      this.state = "connected";
      this.#lastHeard = Date.now();
      clearInterval(this.#pingTimer);
      clearTimeout(this.#probeTimer);
      this.#pingTimer = setInterval(() => this.#keepalive(), PING_INTERVAL_MS);
      const waiting = this.#outbox.splice(0);
      for (const message of waiting) this.send(message);
    }
    #keepalive() {
      if (this.state !== "connected") return;
      if (Date.now() - this.#lastHeard > SILENCE_LIMIT_MS && this.#ws) {
        this.#abandon();
        return;
      }
      this.send({ type: "ping", id: ++this.#pingId });
    }
    /**
     * Check the socket now rather than at the next keepalive (the media
     * connection was just lost: the network may have gone under both). A
     * `ping`; if nothing at all comes back within `ms`, the socket is taken
     * for dead and the session resumed on a new one.
     * @param {number} [ms]
     */
    probe(ms = PROBE_MS) {
      if (this.state !== "connected" || !this.#ws) return;
      const sent = Date.now();
      this.send({ type: "ping", id: ++this.#pingId });
      clearTimeout(this.#probeTimer);
      this.#probeTimer = setTimeout(() => {
        if (this.state === "connected" && this.#ws && this.#lastHeard < sent) this.#abandon();
      }, ms);
    }
    /**
     * Drop the socket as a broken network would and resume the session on a
     * new one: `reconnecting`, then `reconnected`, and the others see this
     * participant reconnecting. What twilio-video's private
     * `room._signaling._transport._twilioConnection._close()` does, which
     * Twilio's remotereconnection example calls to simulate a drop.
     */
    drop() {
      if (this.state === "connected" && this.#ws) this.#abandon();
    }
    /**
     * The socket is dead without having closed (a half-open TCP connection):
     * resume on a new one. Do not close it now: a close frame that does get
     * through would end the session. Close it after the resume.
     */
    #abandon() {
      const dead = this.#ws;
      dead.onmessage = dead.onclose = null;
      this.#stale.push(dead);
      this.#ws = null;
      this.#reconnect();
    }
    // ---- resuming ------------------------------------------------------------
    async #reconnect() {
      this.#log.warn("The signaling connection dropped: resuming the session");
      this.state = "reconnecting";
      clearInterval(this.#pingTimer);
      clearTimeout(this.#probeTimer);
      this.emit("reconnecting", createTwilioError(53001));
      const deadline = Date.now() + this.#resumeWindowMs;
      let delay = 0;
      let unreachable = 0;
      while (this.state === "reconnecting") {
        if (delay) await sleep(delay);
        const remaining = deadline - Date.now();
        if (this.state !== "reconnecting" || remaining <= 0) break;
        try {
          const attempt = Math.min(remaining, RESUME_ATTEMPT_MS);
          const ws = await this.#open(attempt);
          await this.#first(ws, {
            type: "resume",
            version: PROTOCOL_VERSION,
            token: this.#token,
            session: this.#session
          }, attempt);
          return;
        } catch (error) {
          if (this.state !== "reconnecting") return;
          if (error.redirect) {
            this.#log.info(`Resuming on node ${error.node}`);
            this.#url = error.redirect;
            delay = 0;
            continue;
          }
          if (error instanceof TwilioError && error.fromServer) {
            return this.#fail(error);
          }
          if (this.#url !== this.#entryUrl && ++unreachable >= 2) {
            this.#log.info(`The session's node does not answer: resuming through ${this.#entryUrl}`);
            this.#url = this.#entryUrl;
            unreachable = 0;
          }
        }
        delay = Math.min(delay ? delay * 2 : 250, 1e3);
      }
      if (this.state === "reconnecting") {
        this.#fail(createTwilioError(53e3, `Signaling connection error: the session could not be resumed within ${this.#resumeWindowMs / 1e3} s`));
      }
    }
    /** Runs inside the message event of `joined {resumed: true}`, before the backlog. */
    #resumed(joined) {
      this.#log.info("Resumed the session");
      this.#connected();
      for (const s of this.#stale.splice(0)) s.close(1e3);
      this.#deliver(joined);
      this.emit("reconnected");
    }
    #fail(error) {
      if (this.state === "closed") return;
      this.#log.warn("Could not resume the session:", error.message);
      this.state = "closed";
      clearInterval(this.#pingTimer);
      clearTimeout(this.#probeTimer);
      if (this.#ws) {
        this.#ws.onmessage = this.#ws.onclose = null;
        this.#ws.close();
        this.#ws = null;
      }
      for (const s of this.#stale.splice(0)) s.close(1e3);
      this.emit("failed", error);
    }
  };
  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // sdk/js/connect.js
  var VERSION = "0.2.0";
  var VIDEO_CODECS = ["VP8", "H264", "VP9"];
  var AUDIO_CODECS = ["opus", "PCMU", "PCMA", "isac"];
  function connect(token, options) {
    const attempt = { canceled: false, undo: () => {
    } };
    const promise = (
      /** @type {Promise<Room> & {cancel: () => void}} */
      run(token, options, attempt)
    );
    promise.cancel = () => {
      if (attempt.canceled) return;
      attempt.canceled = true;
      attempt.undo();
    };
    return promise;
  }
  async function run(token, options, attempt) {
    const o = checkOptions(token, options);
    const log2 = new Log("connect", o.loggerName);
    const canceled = () => new Error("Canceled");
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
    const signaling = new Signaling(o.url, token, { log: log2.child("signaling") });
    let peer = null;
    let room = null;
    attempt.undo = () => {
      if (room) room.disconnect();
      signaling.close();
      if (peer) peer.close();
      owned.forEach((t) => t.stop());
    };
    try {
      const joined = await signaling.join({ room: o.name, autoSubscribe: o.automaticSubscription, client: `salon-video.js ${VERSION}` }).catch((error) => {
        if (error.code === 53e3 && o.urlFrom !== "options.url") error.message += ` (Salon's address came from ${o.urlFrom}. ${HOW_TO_SAY})`;
        throw error;
      });
      if (attempt.canceled) throw canceled();
      peer = mediaSession(o, signaling, joined, log2);
      const localParticipant = new LocalParticipant(joined.participant, peer, signaling);
      const rejoinRoom = async () => {
        const again = new Signaling(o.url, token, { log: log2.child("signaling") });
        try {
          const rejoined = await again.join({ room: room.name, autoSubscribe: o.automaticSubscription, client: `salon-video.js ${VERSION}` });
          const session = { signaling: again, joined: rejoined, peer: mediaSession(o, again, rejoined, log2) };
          if (o.bandwidthProfileMessage) again.send(o.bandwidthProfileMessage);
          return session;
        } catch (error) {
          again.close();
          throw error;
        }
      };
      const rejoin = o.rejoin ?? typeof joined.node === "string";
      room = new Room(joined, localParticipant, signaling, peer, owned, log2, o.adaptive, {
        autoSubscribe: o.automaticSubscription,
        rejoin: rejoin ? rejoinRoom : null
      });
      if (o.bandwidthProfileMessage) signaling.send(o.bandwidthProfileMessage);
      if (o.networkQuality) localParticipant.setNetworkQualityConfiguration(o.networkQuality);
      const ended = new Promise((_, reject) => {
        room.once("disconnected", (_room, error) => reject(error || createTwilioError(53001, "Disconnected while connecting")));
      });
      ended.catch(() => {
      });
      const expected = new Set(o.automaticSubscription ? joined.participants.flatMap((p) => p.tracks.filter((t) => t.kind !== "data").map((t) => t.sid)) : []);
      const subscriptions = waitFor(() => [...expected].every((sid) => peer.isSubscribed(sid)), FIRST_OFFER_WAIT_MS);
      peer.hold();
      localParticipant._holdAnnouncements();
      room._holdSubscriptions();
      room._start();
      const publishing = tracks.map((t) => localParticipant.publishTrack(t).catch((error) => {
        log2.warn(`Could not publish ${t}:`, error);
        return null;
      }));
      await Promise.race([subscriptions, ended]);
      peer.release();
      await Promise.race([Promise.all(publishing), ended]);
      if (attempt.canceled) throw canceled();
      log2.info(`Connected to ${room}, publishing ${localParticipant.tracks.size} track(s)`);
      localParticipant._announce(tracks);
      room._releaseSubscriptions();
      return room;
    } catch (error) {
      attempt.undo();
      throw error;
    }
  }
  function mediaSession(o, signaling, joined, log2) {
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
      log: log2.child("webrtc")
    });
  }
  function checkOptions(token, options) {
    if (options === void 0) options = {};
    if (options === null || typeof options !== "object" || Array.isArray(options)) throw typeError("options", "object");
    if (typeof token !== "string") throw typeError("token", "string");
    if (token.length === 0) throw new TypeError("token must not be empty");
    const name = options.name ?? null;
    if (name !== null && typeof name !== "string") throw typeError("options.name", "string");
    for (const kind of ["audio", "video"]) {
      const v = options[kind];
      if (v !== void 0 && typeof v !== "boolean" && (v === null || typeof v !== "object" || Array.isArray(v))) {
        throw typeError(`options.${kind}`, "boolean or an object of MediaTrackConstraints");
      }
    }
    let tracks = null;
    if (options.tracks !== void 0) {
      const what = "Array of LocalAudioTrack, LocalVideoTrack, LocalDataTrack, or MediaStreamTrack";
      if (!Array.isArray(options.tracks)) throw typeError("options.tracks", what);
      tracks = options.tracks.map((t) => {
        if (t instanceof LocalAudioTrack || t instanceof LocalVideoTrack || t instanceof LocalDataTrack) return t;
        if (typeof MediaStreamTrack !== "undefined" && t instanceof MediaStreamTrack) {
          return t.kind === "audio" ? new LocalAudioTrack(t) : new LocalVideoTrack(t);
        }
        throw typeError("options.tracks", what);
      });
    }
    for (const key of ["automaticSubscription", "dominantSpeaker", "insights", "enableDscp", "dscpTagging", "receiveTranscriptions", "rejoin"]) {
      if (options[key] !== void 0 && typeof options[key] !== "boolean") throw typeError(`options.${key}`, "boolean");
    }
    const nq = options.networkQuality;
    if (nq !== void 0 && typeof nq !== "boolean") checkNetworkQualityConfiguration("options.networkQuality", nq);
    if (options.bandwidthProfile !== void 0) checkBandwidthProfile(options.bandwidthProfile);
    if (options.rtcConfiguration !== void 0 && (options.rtcConfiguration === null || typeof options.rtcConfiguration !== "object")) {
      throw typeError("options.rtcConfiguration", "object");
    }
    const rtcConfiguration = { ...options.rtcConfiguration || {} };
    if (options.iceServers !== void 0) {
      if (!Array.isArray(options.iceServers)) throw typeError("options.iceServers", "array");
      rtcConfiguration.iceServers = [...rtcConfiguration.iceServers || [], ...options.iceServers];
    }
    if (options.iceTransportPolicy !== void 0) {
      if (!["all", "relay"].includes(options.iceTransportPolicy)) throw rangeError("options.iceTransportPolicy", ["all", "relay"]);
      rtcConfiguration.iceTransportPolicy = options.iceTransportPolicy;
    }
    for (const key of ["RTCPeerConnection", "getUserMedia"]) {
      if (options[key] !== void 0 && typeof options[key] !== "function") throw typeError(`options.${key}`, "function");
    }
    const loggerName = options.loggerName ?? DEFAULT_LOGGER_NAME;
    if (typeof loggerName !== "string" || !loggerName) throw typeError("options.loggerName", "non-empty string");
    applyLogLevelOption(options.logLevel, loggerName);
    const explicit = options.url ?? options.wsServer;
    if (explicit !== void 0 && typeof explicit !== "string") throw typeError("options.url", "string");
    const where = explicit !== void 0 ? { url: explicit, from: "options.url" } : whereSalonIs();
    const neither = options.audio === void 0 && options.video === void 0;
    return {
      name,
      audio: options.audio === void 0 ? neither : options.audio,
      video: options.video === void 0 ? neither : options.video,
      tracks,
      automaticSubscription: options.automaticSubscription !== false,
      rejoin: options.rejoin,
      simulcast: options.preferredVideoCodecs === "auto" || Array.isArray(options.preferredVideoCodecs) && options.preferredVideoCodecs.some((c) => c && typeof c === "object" && c.simulcast === true),
      bandwidthProfileMessage: bandwidthProfileMessage(options.bandwidthProfile),
      networkQuality: nq === true ? { local: 1, remote: 0 } : nq && typeof nq === "object" ? { local: nq.local ?? 1, remote: nq.remote ?? 0 } : null,
      adaptive: {
        dominantSpeaker: options.dominantSpeaker === true,
        clientTrackSwitchOffControl: options.bandwidthProfile?.video?.clientTrackSwitchOffControl ?? (options.bandwidthProfile?.video ? "auto" : "disabled"),
        contentPreferencesMode: options.bandwidthProfile?.video?.contentPreferencesMode ?? (options.bandwidthProfile?.video ? "auto" : "disabled")
      },
      preferredVideoCodecs: codecList("options.preferredVideoCodecs", options.preferredVideoCodecs, VIDEO_CODECS, ["VP8"]),
      preferredAudioCodecs: codecList("options.preferredAudioCodecs", options.preferredAudioCodecs, AUDIO_CODECS, []),
      dtx: opusDtx(options.preferredAudioCodecs),
      maxAudioBitrate: checkBitrate("options.maxAudioBitrate", options.maxAudioBitrate),
      maxVideoBitrate: checkBitrate("options.maxVideoBitrate", options.maxVideoBitrate),
      bitrates: {
        audio: checkBitrate("options.maxAudioBitrate", options.maxAudioBitrate),
        video: checkBitrate("options.maxVideoBitrate", options.maxVideoBitrate)
      },
      rtcConfiguration,
      RTCPeerConnection: options.RTCPeerConnection,
      getUserMedia: options.getUserMedia,
      loggerName,
      url: signalingUrl(where.url),
      urlFrom: where.from
    };
  }
  function opusDtx(value) {
    if (!Array.isArray(value)) return true;
    const opus = value.map((entry) => typeof entry === "string" ? { codec: entry } : entry).filter((entry) => entry.codec.toLowerCase() === "opus");
    return opus.length === 0 || opus.some((entry) => entry.dtx !== false);
  }
  function codecList(what, value, known, fallback) {
    if (value === void 0 || value === null || value === "auto" && known === VIDEO_CODECS) return fallback;
    if (!Array.isArray(value)) throw typeError(what, known === VIDEO_CODECS ? 'array or "auto"' : "array");
    const names = value.map((entry, i) => {
      const name = typeof entry === "string" ? entry : entry && typeof entry === "object" ? entry.codec : void 0;
      if (typeof name !== "string") throw typeError(`${what}[${i}]`, "codec name or an object with a codec");
      const canonical = known.find((c) => c.toLowerCase() === name.toLowerCase());
      if (!canonical) throw rangeError(`${what}[${i}]`, known);
      return canonical;
    });
    return names.length ? names : fallback;
  }
  function bandwidthProfileMessage(profile) {
    const video = profile && profile.video;
    if (!video) return null;
    const message = { type: "set_bandwidth_profile" };
    if (video.mode !== void 0) message.mode = video.mode;
    if (video.maxSubscriptionBitrate !== void 0) message.max_subscription_bitrate = video.maxSubscriptionBitrate ?? 0;
    if (video.dominantSpeakerPriority !== void 0) message.dominant_speaker_priority = video.dominantSpeakerPriority;
    if (video.trackSwitchOffMode !== void 0) message.track_switch_off_mode = video.trackSwitchOffMode;
    if (video.maxTracks !== void 0) message.max_tracks = video.maxTracks ?? 0;
    return message;
  }
  var BANDWIDTH_PROFILE_VIDEO = {
    mode: ["grid", "collaboration", "presentation"],
    dominantSpeakerPriority: ["low", "standard", "high"],
    trackSwitchOffMode: ["detected", "predicted", "disabled"],
    clientTrackSwitchOffControl: ["auto", "manual"],
    contentPreferencesMode: ["auto", "manual"]
  };
  function checkBandwidthProfile(profile) {
    if (profile === null || typeof profile !== "object" || Array.isArray(profile)) throw typeError("options.bandwidthProfile", "object");
    const video = profile.video;
    if (video === void 0) return;
    if (video === null || typeof video !== "object" || Array.isArray(video)) throw typeError("options.bandwidthProfile.video", "object");
    for (const [key, values] of Object.entries(BANDWIDTH_PROFILE_VIDEO)) {
      if (video[key] !== void 0 && !values.includes(video[key])) throw rangeError(`options.bandwidthProfile.video.${key}`, values);
    }
    for (const key of ["maxSubscriptionBitrate", "maxTracks"]) {
      const v = video[key];
      if (v !== void 0 && v !== null && (typeof v !== "number" || !(v >= 0))) {
        throw typeError(`options.bandwidthProfile.video.${key}`, "non-negative number");
      }
    }
    if (video.renderDimensions !== void 0) {
      const dims = video.renderDimensions;
      if (dims === null || typeof dims !== "object") throw typeError("options.bandwidthProfile.video.renderDimensions", "object");
      for (const priority of ["low", "standard", "high"]) {
        const d = dims[priority];
        if (d !== void 0 && (d === null || typeof d !== "object" || typeof d.width !== "number" || typeof d.height !== "number")) {
          throw typeError(`options.bandwidthProfile.video.renderDimensions.${priority}`, "object with a width and a height");
        }
      }
    }
    checkPriority("options.bandwidthProfile.video.dominantSpeakerPriority", video.dominantSpeakerPriority, null);
  }

  // sdk/js/preflight.js
  var SECOND = 1e3;
  var DEFAULT_DURATION = 10 * SECOND;
  var STEP_SLACK = 10 * SECOND;
  var STATS_INTERVAL = SECOND;
  var PROGRESS = {
    mediaAcquired: "mediaAcquired",
    connected: "connected",
    iceConnected: "iceConnected",
    dtlsConnected: "dtlsConnected",
    peerConnectionConnected: "peerConnectionConnected",
    mediaSubscribed: "mediaSubscribed",
    mediaStarted: "mediaStarted"
  };
  var instances = 0;
  var Timing = class {
    start = void 0;
    end = void 0;
    begin() {
      this.start = Date.now();
      return this;
    }
    finish() {
      if (this.start !== void 0 && this.end === void 0) this.end = Date.now();
    }
    get measurement() {
      return { start: this.start, end: this.end, duration: this.end === void 0 ? void 0 : this.end - this.start };
    }
  };
  var PreflightTest = class extends EventEmitter {
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
      if (typeof token !== "string" || !token) throw new TypeError("token must be a non-empty string");
      if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
      const { duration = DEFAULT_DURATION } = options;
      if (typeof duration !== "number" || !(duration > 0)) throw new TypeError("options.duration must be a positive number of milliseconds");
      this.#duration = duration;
      this.#url = signalingUrl(options.url ?? defaultBaseUrl());
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
      const made = { tracks: [], signaling: null, peer: null, stopMedia: () => {
      } };
      try {
        const media = await this.#step("Acquire media", () => syntheticMedia());
        made.stopMedia = media.stop;
        made.tracks = [new LocalAudioTrack(media.audio, { name: "preflight-audio" }), new LocalVideoTrack(media.video, { name: "preflight-video" })];
        this.#advance(PROGRESS.mediaAcquired);
        this.#network.connect.begin();
        const signaling = new Signaling(this.#url, token, { log: this.#log.child("preflight signaling") });
        made.signaling = signaling;
        const joined = await this.#step(
          "Connect to Salon",
          () => signaling.join({ autoSubscribe: false, client: `salon-video.js ${VERSION} preflight` }),
          createTwilioError(53002, "Signaling connection timed out")
        );
        this.#network.connect.finish();
        this.#advance(PROGRESS.connected);
        const peer = new PeerSession({
          signaling,
          iceServers: (joined.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
          preferredCodecs: { audio: [], video: ["VP8"] },
          bitrates: { audio: null, video: null },
          log: this.#log.child("preflight webrtc")
        });
        made.peer = peer;
        signaling.setHandler((m) => {
          if (m.type === "answer") peer.onAnswer(m);
          else if (m.type === "error") peer.onError(createTwilioError(m.code, m.message));
        });
        this.#network.media.begin();
        const connected = this.#watchConnection(peer.pc);
        const published = Promise.all(made.tracks.map((t) => peer.publishMedia(t)));
        published.catch(() => {
        });
        await this.#step(
          "Set up the peer connection",
          () => Promise.all([published, connected]),
          createTwilioError(53405, "Media connection failed")
        );
        this.#advance(PROGRESS.mediaSubscribed);
        await this.#step(
          "Wait for the server to receive media",
          () => this.#untilReceived(peer.pc),
          createTwilioError(53405, "Media connection failed: the server reports no media")
        );
        this.#network.media.finish();
        this.#advance(PROGRESS.mediaStarted);
        await this.#step("Collect stats", () => this.#collect(peer.pc));
        const report2 = this.#report();
        this.#log.info("Completed", report2);
        this.emit("completed", report2);
      } catch (error) {
        this.#log.warn("Failed:", error);
        this.emit("failed", error, this.#report());
      } finally {
        made.signaling?.close();
        made.peer?.close();
        for (const track of made.tracks) track.stop();
        made.stopMedia();
      }
    }
    /** Run one step, failing with `timeoutError` if it takes too long, or with "stopped". */
    async #step(name, fn, timeoutError) {
      if (this.#stopped) throw new Error("stopped");
      this.#log.debug("Step:", name);
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
      this.emit("progress", name);
    }
    /** Resolves when ICE, DTLS and the peer connection are connected, timing each. */
    #watchConnection(pc) {
      return new Promise((resolve, reject) => {
        const { ice, dtls, peerConnection } = this.#network;
        const done = { ice: false, dtls: false, pc: false };
        const check = () => done.ice && done.dtls && done.pc && resolve();
        pc.addEventListener("iceconnectionstatechange", () => {
          if (pc.iceConnectionState === "checking") ice.begin();
          if ((pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed") && !done.ice) {
            if (ice.start === void 0) ice.begin();
            ice.finish();
            done.ice = true;
            this.#advance(PROGRESS.iceConnected);
            check();
          }
        });
        pc.addEventListener("connectionstatechange", () => {
          if (pc.connectionState === "connecting") peerConnection.begin();
          if (pc.connectionState === "failed") reject(createTwilioError(53405, "Media connection failed"));
          if (pc.connectionState === "connected" && !done.pc) {
            if (peerConnection.start === void 0) peerConnection.begin();
            peerConnection.finish();
            done.pc = true;
            if (!done.dtls) dtlsConnected();
            this.#advance(PROGRESS.peerConnectionConnected);
            check();
          }
        });
        const dtlsConnected = () => {
          if (done.dtls) return;
          if (dtls.start === void 0) dtls.begin();
          dtls.finish();
          done.dtls = true;
          this.#advance(PROGRESS.dtlsConnected);
        };
        let watched = null;
        pc.addEventListener("signalingstatechange", () => {
          const transport = pc.getSenders().map((s) => s.transport).find(Boolean);
          if (!transport || transport === watched) return;
          watched = transport;
          transport.addEventListener("statechange", () => {
            if (transport.state === "connecting") dtls.begin();
            if (transport.state === "connected") {
              dtlsConnected();
              check();
            }
          });
        });
      });
    }
    /** Resolves when an RTCP receiver report from Salon says it receives what we send. */
    async #untilReceived(pc) {
      for (; ; ) {
        if (this.#stopped) throw new Error("stopped");
        const stats = await pc.getStats();
        let received = false;
        stats.forEach((s) => {
          if (s.type === "remote-inbound-rtp") received = true;
        });
        if (received) return;
        await sleep2(100);
      }
    }
    /** Sample the connection every second for the test's duration. */
    async #collect(pc) {
      const started = Date.now();
      let previous = null;
      while (Date.now() - started < this.#duration) {
        await sleep2(Math.min(STATS_INTERVAL, this.#duration));
        if (this.#stopped) throw new Error("stopped");
        const sample = measure(await pc.getStats());
        this.#samples.rtt.push(sample.rtt);
        this.#samples.jitter.push(sample.jitter);
        if (previous) {
          const sent = sample.packetsSent - previous.packetsSent;
          const lost = Math.max(0, sample.packetsLost - previous.packetsLost);
          this.#samples.packetLoss.push(sent > 0 ? Math.min(100, lost / sent * 100) : 0);
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
          media: n.media.measurement
        },
        stats: {
          jitter: summary(this.#samples.jitter),
          rtt: summary(this.#samples.rtt),
          packetLoss: summary(this.#samples.packetLoss)
        },
        selectedIceCandidatePairStats: this.#candidates.selected,
        iceCandidateStats: this.#candidates.all,
        progressEvents: [...this.#progress]
      };
    }
  };
  function runPreflight(token, options) {
    return new PreflightTest(token, options);
  }
  function measure(stats) {
    const all = [];
    stats.forEach((s) => all.push(s));
    const of = (type) => all.filter((s) => s.type === type);
    const remote = of("remote-inbound-rtp");
    const pairRtt = of("candidate-pair").map((p) => p.currentRoundTripTime).filter((x) => typeof x === "number");
    const rtcpRtt = remote.map((r) => r.roundTripTime).filter((x) => typeof x === "number");
    const rtt = (pairRtt.length ? Math.max(...pairRtt) : rtcpRtt.length ? Math.max(...rtcpRtt) : 0) * 1e3;
    const jitter = remote.filter((r) => r.kind === "audio").map((r) => r.jitter).filter((x) => typeof x === "number");
    const sum = (list, key) => list.reduce((total, s) => total + (typeof s[key] === "number" ? s[key] : 0), 0);
    const transport = of("transport").find((t) => t.selectedCandidatePairId);
    const pair = transport && stats.get(transport.selectedCandidatePairId);
    const local = pair && stats.get(pair.localCandidateId);
    const far = pair && stats.get(pair.remoteCandidateId);
    return {
      rtt,
      jitter: jitter.length ? Math.max(...jitter) : 0,
      packetsSent: sum(of("outbound-rtp"), "packetsSent"),
      packetsLost: sum(remote, "packetsLost"),
      selected: local && far ? { localCandidate: candidate(local), remoteCandidate: candidate(far) } : null,
      candidates: [...of("local-candidate"), ...of("remote-candidate")].map(candidate)
    };
  }
  function candidate(s) {
    const out = {};
    const take = (key, type, ...alternatives) => {
      const found = [key, ...alternatives].find((k) => typeof s[k] === type);
      if (found) out[key] = s[found];
    };
    take("transportId", "string");
    take("candidateType", "string");
    take("port", "number", "portNumber");
    take("address", "string", "ip", "ipAddress");
    take("priority", "number");
    take("protocol", "string", "transport");
    take("url", "string");
    take("relayProtocol", "string");
    return out;
  }
  function summary(values) {
    if (!values.length) return null;
    return {
      min: Math.min(...values),
      max: Math.max(...values),
      average: values.reduce((a, b) => a + b, 0) / values.length
    };
  }
  function syntheticMedia() {
    const canvas = Object.assign(document.createElement("canvas"), { width: 640, height: 480 });
    const context = canvas.getContext("2d");
    let frame = 0;
    const paint = setInterval(() => {
      frame += 1;
      context.fillStyle = `hsl(${frame * 7 % 360} 60% 40%)`;
      context.fillRect(0, 0, 640, 480);
      context.fillStyle = "#fff";
      context.fillRect(frame * 8 % 640, 200, 40, 80);
    }, 1e3 / 30);
    const [video] = canvas.captureStream(30).getVideoTracks();
    const audioContext = new AudioContext();
    const oscillator = audioContext.createOscillator();
    const destination = audioContext.createMediaStreamDestination();
    oscillator.connect(destination);
    oscillator.start();
    audioContext.resume().catch(() => {
    });
    const [audio] = destination.stream.getAudioTracks();
    return {
      audio,
      video,
      stop() {
        clearInterval(paint);
        video.stop();
        audio.stop();
        oscillator.stop();
        audioContext.close().catch(() => {
        });
      }
    };
  }
  function sleep2(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // sdk/js/salon-video.js
  var isSupported = typeof globalThis.RTCPeerConnection === "function" && typeof globalThis.WebSocket === "function" && !!(globalThis.navigator && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  var version = VERSION;
  var Video = {
    connect,
    createLocalTracks,
    createLocalAudioTrack,
    createLocalVideoTrack,
    runPreflight,
    isSupported,
    version,
    Logger,
    PreflightTest,
    Room,
    Participant,
    LocalParticipant,
    RemoteParticipant,
    Track,
    MediaTrack,
    AudioTrack,
    VideoTrack,
    LocalAudioTrack,
    LocalVideoTrack,
    LocalDataTrack,
    RemoteAudioTrack,
    RemoteVideoTrack,
    RemoteDataTrack,
    TrackPublication,
    LocalTrackPublication,
    RemoteTrackPublication,
    LocalAudioTrackPublication,
    LocalVideoTrackPublication,
    LocalDataTrackPublication,
    RemoteAudioTrackPublication,
    RemoteVideoTrackPublication,
    RemoteDataTrackPublication,
    TwilioError,
    createTwilioError,
    errors
  };
  var salon_video_default = Video;
  return __toCommonJS(salon_video_exports);
})();
