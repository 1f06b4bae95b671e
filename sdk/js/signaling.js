// The signaling connection: one WebSocket to Salon's `/v1/signaling`
// speaking the JSON protocol of docs/protocol.md.
//
// Owns: opening the socket, the `join` handshake, keepalive pings, and
// resuming the session on a new socket when the old one drops (the server
// keeps the participant in the room for its session timeout, which
// `joined` tells: 30 s unless the operator changed it). Hands every other server
// message, in order, to one handler (the Room).
// Must not: interpret room state or touch media.
//
//   join() ──▶ socket open ──▶ {type: join} ──▶ joined ──▶ handler(message)…
//   socket drops ──▶ 'reconnecting' ──▶ new socket ──▶ {type: resume}
//        ├─ joined {resumed: true} ──▶ handler(joined), backlog… ──▶ 'reconnected'
//        ├─ the session's node is gone (a cluster's: `disconnected`
//        │  node-lost) ──▶ 'failed'(error with `nodeLost`: the Room rejoins)
//        └─ refused, or the session timeout passes ──▶ 'failed'(error)

import { EventEmitter } from './events.js';
import { TwilioError, createTwilioError } from './errors.js';
import { Log } from './log.js';

export const PROTOCOL_VERSION = 1;
/** Time allowed to open the socket and get `joined`. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Redirects to another node of a cluster followed by one join. */
const MAX_REDIRECTS = 3;
/** How long the server keeps a dropped session for `resume`, when `joined` does not say (older servers). */
const RESUME_WINDOW_MS = 10_000;
/** One resume attempt: open the socket and get `joined`. */
const RESUME_ATTEMPT_MS = 3_000;
/** Keepalive: the server ends sessions silent for 30 s. */
const PING_INTERVAL_MS = 5_000;
/** A probe's ping unanswered this long: the socket is dead. */
const PROBE_MS = 3_000;
/** No message (not even a pong) for this long: the socket is dead. */
const SILENCE_LIMIT_MS = 3 * PING_INTERVAL_MS + 1_000;

/**
 * The WebSocket URL for a Salon base URL: `http://host:3000` →
 * `ws://host:3000/v1/signaling`, `https://host/video` (Salon behind a path)
 * → `wss://host/video/v1/signaling`. A ws(s):// URL with a path is kept as
 * is.
 * @param {string} base
 */
export function signalingUrl(base) {
  let url;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(`options.url must be an http(s):// or ws(s):// URL, not ${base}`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    const path = url.pathname.replace(/\/+$/, '');
    if (!path.endsWith('/v1/signaling')) url.pathname = `${path}/v1/signaling`;
  } else if (url.protocol === 'ws:' || url.protocol === 'wss:') {
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/signaling';
  } else {
    throw new TypeError(`options.url must be an http(s):// or ws(s):// URL, not ${base}`);
  }
  return url.toString();
}

// Where this code was loaded from: the module's URL when it runs as an ES
// module, the <script>'s when it runs as the script-tag build (read now:
// `document.currentScript` is only set while a classic script first runs).
// A bundler may leave `import.meta.url` empty (esbuild's iife and cjs
// formats) or make it the app's bundle or a file:// path (webpack, Rollup):
// only the URLs of Salon's own /sdk/ files count.
const SDK_FILES = /\/sdk\/(signaling|salon-video\.global)\.js$/;
const LOADED_FROM = (() => {
  const candidates = [];
  try {
    candidates.push(import.meta.url);
  } catch {
    // not a module
  }
  if (typeof document !== 'undefined' && document.currentScript && document.currentScript.src) {
    candidates.push(document.currentScript.src);
  }
  for (const candidate of candidates) {
    if (typeof candidate !== 'string' || !candidate) continue;
    try {
      const url = new URL(candidate);
      if ((url.protocol === 'http:' || url.protocol === 'https:') && SDK_FILES.test(url.pathname)) {
        return `${url.origin}${url.pathname.replace(SDK_FILES, '')}`;
      }
    } catch {
      // not a URL
    }
  }
  return null;
})();

/**
 * Where Salon is when connect() is not told (`options.url`), first found:
 *
 * 1. `SALON_VIDEO_URL`: a global the page sets before connecting
 *    (`window.SALON_VIDEO_URL = 'https://video.example.com'`), or a bundler
 *    define that replaces the name (esbuild `--define:SALON_VIDEO_URL=…`,
 *    webpack's DefinePlugin, Vite's `define`);
 * 2. `<meta name="salon-video-url" content="https://video.example.com">` in the page;
 * 3. the server this SDK was loaded from, when Salon served it (`/sdk/…`);
 * 4. the page's own origin.
 * @returns {{url: string, from: string}} the URL and where it came from (for error messages)
 */
export function whereSalonIs() {
  // typeof first: the name may be neither declared nor defined.
  // eslint-disable-next-line no-undef
  const configured = typeof SALON_VIDEO_URL !== 'undefined' ? SALON_VIDEO_URL : undefined;
  if (typeof configured === 'string' && configured) return { url: configured, from: 'SALON_VIDEO_URL' };
  if (typeof document !== 'undefined') {
    const meta = document.querySelector('meta[name="salon-video-url"]');
    const content = meta && meta.getAttribute('content');
    if (content) return { url: new URL(content, document.baseURI).toString(), from: '<meta name="salon-video-url">' };
  }
  if (LOADED_FROM) return { url: LOADED_FROM, from: 'where the SDK was loaded from' };
  if (globalThis.location && /^https?:$/.test(globalThis.location.protocol)) {
    return { url: globalThis.location.origin, from: 'the page\'s origin' };
  }
  throw new TypeError(`Where is Salon? ${HOW_TO_SAY}`);
}

/** How an app says where Salon is. */
export const HOW_TO_SAY = 'Pass options.url, or set <meta name="salon-video-url" content="https://…"> or SALON_VIDEO_URL (a global or a bundler define).';

/** The URL of {@link whereSalonIs}. */
export function defaultBaseUrl() {
  return whereSalonIs().url;
}

/**
 * Events: `reconnecting`(error), `reconnected`(), `failed`(error).
 */
export class Signaling extends EventEmitter {
  /** @type {'connecting'|'connected'|'reconnecting'|'closed'} */
  state = 'connecting';
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
  constructor(url, token, { WebSocket: WebSocketImpl = globalThis.WebSocket, log = new Log('signaling') } = {}) {
    super();
    this.#url = url;
    this.#entryUrl = url;
    this.#token = token;
    this.#WebSocket = WebSocketImpl;
    this.#log = log;
  }

  /**
   * Open the socket and join the room.
   * @param {{room?: string|null, autoSubscribe: boolean, client: string}} request
   *   without `room`: the token's room grant, or a new room named by its SID
   * @returns {Promise<any>} the `joined` message
   */
  async join({ room, autoSubscribe, client }) {
    const request = { type: 'join', version: PROTOCOL_VERSION, token: this.#token, auto_subscribe: autoSubscribe, client };
    if (typeof room === 'string') request.room = room;
    let joined;
    for (let redirects = 0; ; redirects++) {
      this.#log.info(`Connecting to ${this.#url}`);
      const ws = await this.#open(CONNECT_TIMEOUT_MS);
      try {
        joined = await this.#first(ws, request, CONNECT_TIMEOUT_MS);
        break;
      } catch (error) {
        // A cluster serves the room on another node: join there (and
        // resume there later). A few redirects at most.
        if (!error.redirect || redirects >= MAX_REDIRECTS) throw error;
        this.#log.info(`Redirected to node ${error.node}`);
        ws.onmessage = ws.onclose = null;
        ws.close(1000);
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
    if (this.state === 'closed') return;
    const ws = this.#ws;
    if (this.state === 'connected' && ws && ws.readyState === 1) {
      ws.send(JSON.stringify(message));
    } else if (message.type !== 'ping') {
      this.#outbox.push(message);
    }
  }

  /** Leave: send `leave`, close the socket, stop every timer. Idempotent. */
  close() {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    clearInterval(this.#pingTimer);
    clearTimeout(this.#probeTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      if (wasConnected && ws.readyState === 1) ws.send(JSON.stringify({ type: 'leave' }));
      ws.close(1000);
    }
    for (const s of this.#stale.splice(0)) s.close(1000);
    if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter.onError(new Error('Canceled'));
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
        reject(createTwilioError(53000, `Signaling connection error: ${error.message}`));
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
        if (this.state === 'closed') {
          ws.close(1000);
          reject(new Error('Canceled'));
          return;
        }
        ws.onmessage = (event) => this.#receive(ws, event.data);
        ws.onclose = (event) => this.#closed(ws, event);
        resolve(ws);
      };
      ws.onclose = () => {
        clearTimeout(timer);
        reject(createTwilioError(53000, `Signaling connection error: cannot open ${this.#url}`));
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
        },
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
      this.#log.warn('Ignoring a signaling message that is not JSON');
      return;
    }
    if (!message || typeof message.type !== 'string') return;
    this.#lastHeard = Date.now();
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      if (message.type === 'joined') {
        this.#session = message.session;
        if (typeof message.session_timeout === 'number' && message.session_timeout > 0) {
          this.#resumeWindowMs = message.session_timeout * 1000;
        }
        if (message.resumed) this.#resumed(message);
        waiter.onJoined(message);
      } else if (message.type === 'redirect' && typeof message.url === 'string') {
        const error = createTwilioError(53000, `Signaling connection error: the room is on node ${message.node}`);
        Object.defineProperty(error, 'redirect', { value: message.url });
        Object.defineProperty(error, 'node', { value: message.node });
        waiter.onError(error);
      } else if (message.type === 'error') {
        const error = createTwilioError(message.code, message.message);
        Object.defineProperty(error, 'fromServer', { value: true });
        waiter.onError(error);
      } else if (message.type === 'disconnected') {
        // The answer to a resume whose session's node is gone (reason
        // `node-lost`): the Room may join the room again (room.js).
        const error = createTwilioError(typeof message.code === 'number' ? message.code : 53001, message.message);
        Object.defineProperty(error, 'fromServer', { value: true });
        Object.defineProperty(error, 'nodeLost', { value: message.reason === 'node-lost' });
        waiter.onError(error);
      } else {
        waiter.onError(createTwilioError(53003, `expected joined, got ${message.type}`));
      }
      return;
    }
    if (message.type === 'pong') return;
    this.#log.debug('Received', message.type);
    if (message.type === 'disconnected') this.#ended = true;
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
      waiter.onError(createTwilioError(53000, `Signaling connection error: the socket closed (${event.code})`));
      return;
    }
    if (this.state !== 'connected') return;
    if (this.#ended) {
      this.state = 'closed';
      clearInterval(this.#pingTimer);
      clearTimeout(this.#probeTimer);
      return;
    }
    this.#reconnect();
  }

  #connected() {
    this.state = 'connected';
    this.#lastHeard = Date.now();
    clearInterval(this.#pingTimer);
    clearTimeout(this.#probeTimer);
    this.#pingTimer = setInterval(() => this.#keepalive(), PING_INTERVAL_MS);
    const waiting = this.#outbox.splice(0);
    for (const message of waiting) this.send(message);
  }

  #keepalive() {
    if (this.state !== 'connected') return;
    if (Date.now() - this.#lastHeard > SILENCE_LIMIT_MS && this.#ws) {
      this.#abandon();
      return;
    }
    this.send({ type: 'ping', id: ++this.#pingId });
  }

  /**
   * Check the socket now rather than at the next keepalive (the media
   * connection was just lost: the network may have gone under both). A
   * `ping`; if nothing at all comes back within `ms`, the socket is taken
   * for dead and the session resumed on a new one.
   * @param {number} [ms]
   */
  probe(ms = PROBE_MS) {
    if (this.state !== 'connected' || !this.#ws) return;
    const sent = Date.now();
    this.send({ type: 'ping', id: ++this.#pingId });
    clearTimeout(this.#probeTimer);
    this.#probeTimer = setTimeout(() => {
      if (this.state === 'connected' && this.#ws && this.#lastHeard < sent) this.#abandon();
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
    if (this.state === 'connected' && this.#ws) this.#abandon();
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
    this.#log.warn('The signaling connection dropped: resuming the session');
    this.state = 'reconnecting';
    clearInterval(this.#pingTimer);
    clearTimeout(this.#probeTimer);
    this.emit('reconnecting', createTwilioError(53001));
    const deadline = Date.now() + this.#resumeWindowMs;
    let delay = 0;
    let unreachable = 0;
    while (this.state === 'reconnecting') {
      if (delay) await sleep(delay);
      const remaining = deadline - Date.now();
      if (this.state !== 'reconnecting' || remaining <= 0) break;
      try {
        const attempt = Math.min(remaining, RESUME_ATTEMPT_MS);
        const ws = await this.#open(attempt);
        await this.#first(ws, {
          type: 'resume',
          version: PROTOCOL_VERSION,
          token: this.#token,
          session: this.#session,
        }, attempt);
        return; // #resumed did the rest, synchronously with `joined`
      } catch (error) {
        if (this.state !== 'reconnecting') return;
        // In a cluster the socket reached a node other than the session's:
        // resume there, at once.
        if (error.redirect) {
          this.#log.info(`Resuming on node ${error.node}`);
          this.#url = error.redirect;
          delay = 0;
          continue;
        }
        if (error instanceof TwilioError && error.fromServer) {
          // The server refused: the session is gone (53204), or the token
          // expired.
          return this.#fail(error);
        }
        // The session's node (a redirect's) does not answer: ask through
        // the address join() began with, which knows whether that node
        // lives (it redirects back) or died (`node-lost`).
        if (this.#url !== this.#entryUrl && ++unreachable >= 2) {
          this.#log.info(`The session's node does not answer: resuming through ${this.#entryUrl}`);
          this.#url = this.#entryUrl;
          unreachable = 0;
        }
      }
      delay = Math.min(delay ? delay * 2 : 250, 1_000);
    }
    if (this.state === 'reconnecting') {
      // twilio-video's code when its reconnection attempts are exhausted.
      this.#fail(createTwilioError(53000, `Signaling connection error: the session could not be resumed within ${this.#resumeWindowMs / 1000} s`));
    }
  }

  /** Runs inside the message event of `joined {resumed: true}`, before the backlog. */
  #resumed(joined) {
    this.#log.info('Resumed the session');
    this.#connected();
    for (const s of this.#stale.splice(0)) s.close(1000);
    this.#deliver(joined);
    this.emit('reconnected');
  }

  #fail(error) {
    if (this.state === 'closed') return;
    this.#log.warn('Could not resume the session:', error.message);
    this.state = 'closed';
    clearInterval(this.#pingTimer);
    clearTimeout(this.#probeTimer);
    if (this.#ws) {
      this.#ws.onmessage = this.#ws.onclose = null;
      this.#ws.close();
      this.#ws = null;
    }
    for (const s of this.#stale.splice(0)) s.close(1000);
    this.emit('failed', error);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
