// Reconnection: the way back when the participant's network goes away.
//
// Owns: the room's connection state as the app sees it ('connected',
// 'reconnecting', 'failed'), from its two transports: the signaling
// socket (which resumes the session by itself, see signaling.js) and the
// media connection (the RTCPeerConnection, see peer.js). It decides when to
// restart ICE and when to give up. Salon's server keeps the participant,
// its publications and subscriptions for the session timeout (`joined`
// says how long) while either is gone, and shows it to the others as
// reconnecting.
// Must not: read signaling messages or touch room state; it only asks the
// PeerSession for ICE restarts.
//
//   media 'interrupted' (ICE disconnected or failed) ─┐  (and the socket is
//                                                      │   probed: a ping)
//   signaling 'reconnecting' (socket dropped) ────────┴─▶ 'reconnecting'(error)
//        ICE restart: at once when ICE failed, after RESTART_AFTER_MS when
//        only disconnected, again every RETRY_MS until media flows; and at
//        once when the signaling resumes (a laptop that slept lost both)
//   media 'restored' and signaling connected ─────────▶ 'reconnected'
//   the session timeout passes without media ─────────▶ 'failed'(53405)
//   the signaling gives up ───────────────────────────▶ 'failed'(53000, or the
//                                                         server's 53204)
//   the network changes (online, navigator.connection) ▶ ICE restart
//
// API (reused by anything that must rebuild the path to the server, such
// as following a node redirect):
//   new Reconnection({signaling, peer, sessionTimeoutMs, log, window})
//   .state             'connected' | 'reconnecting' | 'failed' | 'closed'
//   .restart(why)      restart ICE now (e.g. after the network changed)
//   .close()           stop watching (the room ended)
//   events: 'reconnecting'(TwilioError), 'reconnected'(), 'failed'(TwilioError)

import { EventEmitter } from './events.js';
import { createTwilioError } from './errors.js';
import { Log } from './log.js';

/** Twilio's session timeout, used when the server does not say. */
export const DEFAULT_SESSION_TIMEOUT_MS = 30_000;
/** ICE only `disconnected` may come back by itself (a brief outage): wait this long before restarting it. */
const RESTART_AFTER_MS = 2_000;
/** While media does not flow, restart ICE again this often. */
const RETRY_MS = 4_000;

export class Reconnection extends EventEmitter {
  /** @type {'connected'|'reconnecting'|'failed'|'closed'} */
  state = 'connected';
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
    signaling, peer, sessionTimeoutMs = DEFAULT_SESSION_TIMEOUT_MS, log = new Log('reconnect'), window = globalThis,
  }) {
    super();
    this.#signaling = signaling;
    this.#peer = peer;
    this.#sessionTimeoutMs = sessionTimeoutMs;
    this.#log = log;
    this.#listen(signaling, 'reconnecting', (error) => this.#signalingLost(error));
    this.#listen(signaling, 'reconnected', () => this.#signalingBack());
    this.#listen(signaling, 'failed', (error) => this.#fail(error));
    this.#listen(peer, 'interrupted', (failed) => this.#mediaLost(failed));
    this.#listen(peer, 'restored', () => this.#mediaBack());
    const networkChanged = () => this.restart('the network changed');
    if (window && typeof window.addEventListener === 'function') {
      window.addEventListener('online', networkChanged);
      this.#unwatch.push(() => window.removeEventListener('online', networkChanged));
    }
    const connection = window?.navigator?.connection;
    if (connection && typeof connection.addEventListener === 'function') {
      connection.addEventListener('change', networkChanged);
      this.#unwatch.push(() => connection.removeEventListener('change', networkChanged));
    }
  }

  /**
   * Restart ICE now: new credentials in a new offer, so the server learns
   * the client's new path. Media keeps flowing on the old path meanwhile,
   * if it still works.
   * @param {string} why
   */
  restart(why) {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.#log.info(`Restarting ICE: ${why}`);
    this.#peer.restartIce();
  }

  /** Stop watching: the room ended. */
  close() {
    if (this.state !== 'failed') this.state = 'closed';
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
    // After a sleep the media path is most likely gone too, and ICE may
    // not have noticed yet: restart it now rather than wait.
    if (!this.#mediaUp || this.#peer.connectionState !== 'connected') {
      this.#mediaUp = false;
      this.restart('the signaling resumed');
      this.#scheduleRetry(RETRY_MS);
    }
    this.#maybeBack();
  }

  /** @param {boolean} failed ICE failed (not only disconnected) */
  #mediaLost(failed) {
    if (this.state === 'failed' || this.state === 'closed') return;
    const first = this.#mediaUp;
    this.#mediaUp = false;
    if (first) {
      this.#log.warn(`The media connection ${failed ? 'failed' : 'was interrupted'}`);
      this.#enter(createTwilioError(53405, 'Media connection failed or Media activity ceased'));
      // Whatever took the media path may have taken the socket too (a new
      // address): find out now, not at the next keepalive.
      this.#signaling.probe();
      clearTimeout(this.#sessionTimer);
      this.#sessionTimer = setTimeout(() => this.#timedOut(), this.#sessionTimeoutMs);
    }
    if (failed) {
      this.restart('ICE failed');
      this.#scheduleRetry(RETRY_MS);
    } else if (first) {
      this.#scheduleRetry(RESTART_AFTER_MS);
    }
  }

  #mediaBack() {
    if (this.#mediaUp) return;
    this.#log.info('The media connection is back');
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
      if (this.#mediaUp || this.state !== 'reconnecting') return;
      this.restart('media does not flow yet');
      this.#scheduleRetry(RETRY_MS);
    }, ms);
  }

  #enter(error) {
    if (this.state !== 'connected') return;
    this.state = 'reconnecting';
    this.emit('reconnecting', error);
  }

  #maybeBack() {
    if (this.state !== 'reconnecting' || !this.#mediaUp || !this.#signalingUp) return;
    this.state = 'connected';
    this.emit('reconnected');
  }

  #timedOut() {
    this.#sessionTimer = null;
    if (this.#mediaUp) return;
    this.#fail(createTwilioError(53405,
      `Media connection failed or Media activity ceased: no media for the session timeout (${this.#sessionTimeoutMs / 1000} s)`));
  }

  #fail(error) {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.state = 'failed';
    this.#clearTimers();
    this.emit('failed', error);
  }

  #clearTimers() {
    clearTimeout(this.#sessionTimer);
    clearTimeout(this.#restartTimer);
    this.#sessionTimer = this.#restartTimer = null;
  }
}
