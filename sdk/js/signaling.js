// The signaling connection: one WebSocket to Salon's `/v1/signaling`
// speaking the JSON protocol of docs/protocol.md.
//
// Owns: opening the socket, the `join` handshake, keepalive pings, and
// resuming the session on a new socket when the old one drops (the server
// keeps the participant in the room for 10 s). Hands every other server
// message, in order, to one handler (the Room).
// Must not: interpret room state or touch media.
//
//   join() ──▶ socket open ──▶ {type: join} ──▶ joined ──▶ handler(message)…
//   socket drops ──▶ 'reconnecting' ──▶ new socket ──▶ {type: resume}
//        ├─ joined {resumed: true} ──▶ handler(joined), backlog… ──▶ 'reconnected'
//        └─ refused, or 10 s pass ──▶ 'failed'(error)

import { EventEmitter } from './events.js';
import { TwilioError, createTwilioError } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Time allowed to open the socket and get `joined`. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long the server keeps a dropped session for `resume`. */
const RESUME_WINDOW_MS = 10_000;
/** One resume attempt: open the socket and get `joined`. */
const RESUME_ATTEMPT_MS = 3_000;
/** Keepalive: the server ends sessions silent for 30 s. */
const PING_INTERVAL_MS = 5_000;
/** No message (not even a pong) for this long: the socket is dead. */
const SILENCE_LIMIT_MS = 3 * PING_INTERVAL_MS + 1_000;

/**
 * The WebSocket URL for a Salon base URL: `http://host:3000` →
 * `ws://host:3000/v1/signaling`. A ws(s):// URL with a path is kept as is.
 * @param {string} base
 */
export function signalingUrl(base) {
  const url = new URL(base);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`options.url must be an http(s):// or ws(s):// URL, not ${base}`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/signaling';
  return url.toString();
}

/**
 * Where Salon is by default: the server this SDK was loaded from (Salon
 * serves it at /sdk/salon-video.js), else the page's own origin.
 */
export function defaultBaseUrl() {
  const here = new URL(import.meta.url);
  if (here.protocol === 'http:' || here.protocol === 'https:') return here.origin;
  return globalThis.location ? globalThis.location.origin : 'http://localhost:3000';
}

/**
 * Events: `reconnecting`(error), `reconnected`(), `failed`(error).
 */
export class Signaling extends EventEmitter {
  /** @type {'connecting'|'connected'|'reconnecting'|'closed'} */
  state = 'connecting';
  #url;
  #token;
  #WebSocket;
  /** @type {WebSocket|null} */
  #ws = null;
  /** Sockets given up as dead, closed once a resume has replaced them. */
  #stale = [];
  #session = null;
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

  /**
   * @param {string} url the WebSocket URL (see {@link signalingUrl})
   * @param {string} token
   * @param {typeof WebSocket} [WebSocketImpl]
   */
  constructor(url, token, WebSocketImpl = globalThis.WebSocket) {
    super();
    this.#url = url;
    this.#token = token;
    this.#WebSocket = WebSocketImpl;
  }

  /**
   * Open the socket and join the room.
   * @param {{room: string, autoSubscribe: boolean, client: string}} request
   * @returns {Promise<any>} the `joined` message
   */
  async join({ room, autoSubscribe, client }) {
    const ws = await this.#open(CONNECT_TIMEOUT_MS);
    const joined = await this.#first(ws, {
      type: 'join',
      version: PROTOCOL_VERSION,
      token: this.#token,
      room,
      auto_subscribe: autoSubscribe,
      client,
    }, CONNECT_TIMEOUT_MS);
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
      console.warn('salon-video: ignoring a signaling message that is not JSON');
      return;
    }
    if (!message || typeof message.type !== 'string') return;
    this.#lastHeard = Date.now();
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      if (message.type === 'joined') {
        this.#session = message.session;
        if (message.resumed) this.#resumed(message);
        waiter.onJoined(message);
      } else if (message.type === 'error') {
        const error = createTwilioError(message.code, message.message);
        Object.defineProperty(error, 'fromServer', { value: true });
        waiter.onError(error);
      } else {
        waiter.onError(createTwilioError(53003, `expected joined, got ${message.type}`));
      }
      return;
    }
    if (message.type === 'pong') return;
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
      return;
    }
    this.#reconnect();
  }

  #connected() {
    this.state = 'connected';
    this.#lastHeard = Date.now();
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => this.#keepalive(), PING_INTERVAL_MS);
    const waiting = this.#outbox.splice(0);
    for (const message of waiting) this.send(message);
  }

  #keepalive() {
    if (this.state !== 'connected') return;
    if (Date.now() - this.#lastHeard > SILENCE_LIMIT_MS && this.#ws) {
      // The socket is dead without having closed (a half-open TCP
      // connection). Do not close it now: a close frame that does get
      // through would end the session. Close it after the resume.
      const dead = this.#ws;
      dead.onmessage = dead.onclose = null;
      this.#stale.push(dead);
      this.#ws = null;
      this.#reconnect();
      return;
    }
    this.send({ type: 'ping', id: ++this.#pingId });
  }

  // ---- resuming ------------------------------------------------------------

  async #reconnect() {
    this.state = 'reconnecting';
    clearInterval(this.#pingTimer);
    this.emit('reconnecting', createTwilioError(53001));
    const deadline = Date.now() + RESUME_WINDOW_MS;
    let delay = 0;
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
        if (error instanceof TwilioError && error.fromServer) {
          // The server refused: the session is gone, or the token expired.
          return this.#fail(error);
        }
      }
      delay = Math.min(delay ? delay * 2 : 250, 1_000);
    }
    if (this.state === 'reconnecting') {
      this.#fail(createTwilioError(53001, 'Signaling connection disconnected: the session could not be resumed within 10 s'));
    }
  }

  /** Runs inside the message event of `joined {resumed: true}`, before the backlog. */
  #resumed(joined) {
    this.#connected();
    for (const s of this.#stale.splice(0)) s.close(1000);
    this.#deliver(joined);
    this.emit('reconnected');
  }

  #fail(error) {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.#pingTimer);
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
