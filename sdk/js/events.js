// The EventEmitter every SDK object extends, with Node.js's API and
// semantics, as twilio-video's objects have (they extend Node's `events`):
// on/addListener, prependListener, once, prependOnceListener,
// off/removeListener, removeAllListeners, emit, listeners, rawListeners,
// listenerCount, eventNames, setMaxListeners, getMaxListeners; the
// `newListener` and `removeListener` events; listeners called with the
// emitter as `this`; an `error` event nobody listens to is thrown; more than
// `getMaxListeners()` listeners for one event (10 by default, 0 for no limit)
// is warned about once, as a likely leak.
//
// One difference, on purpose: a listener that throws does not stop the
// others, nor the SDK code that emitted. The error is reported to the page
// (window `error` event, or the console) and emission goes on. In Node it
// would unwind through the SDK's own state changes.

import { Log } from './log.js';

const log = new Log('EventEmitter');

/** @typedef {string|symbol} EventName */

export class EventEmitter {
  /** Like Node's `EventEmitter.defaultMaxListeners`: the limit of emitters that set none. */
  static defaultMaxListeners = 10;

  /** @type {Map<EventName, Function[]>} */
  #events = new Map();
  /** @type {number|undefined} */
  #maxListeners = undefined;
  /** Events already warned about (MaxListenersExceededWarning). */
  #warned = new Set();

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
    if (this.#events.has('removeListener')) this.emit('removeListener', event, listener);
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
    if (!this.#events.has('removeListener')) {
      if (arguments.length === 0) this.#events.clear();
      else this.#events.delete(event);
      return this;
    }
    // Someone listens to removals: remove one by one, newest first, and
    // 'removeListener' itself last, so that they hear about every one.
    const events = arguments.length === 0
      ? [...this.#events.keys()].filter((e) => e !== 'removeListener').concat(['removeListener'])
      : [event];
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
      if (event === 'error') {
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
    return [...(this.#events.get(event) || [])];
  }

  /**
   * How many listeners `event` has (of them, how many are `listener`).
   * @param {EventName} event
   * @param {Function} [listener]
   */
  listenerCount(event, listener) {
    const list = this.#events.get(event) || [];
    if (listener === undefined || listener === null) return list.length;
    return list.filter((l) => l === listener || l.listener === listener).length;
  }

  /** The events that have listeners: names first, then symbols. */
  eventNames() {
    const names = [...this.#events.keys()];
    return names.filter((n) => typeof n !== 'symbol').concat(names.filter((n) => typeof n === 'symbol'));
  }

  /**
   * Warn when an event gets more than `n` listeners (0: never).
   * @param {number} n
   * @returns {this}
   */
  setMaxListeners(n) {
    if (typeof n !== 'number' || n < 0 || Number.isNaN(n)) {
      throw new RangeError(`The value of "n" is out of range. It must be a non-negative number. Received ${String(n)}`);
    }
    this.#maxListeners = n;
    return this;
  }

  /** @returns {number} */
  getMaxListeners() {
    return this.#maxListeners ?? EventEmitter.defaultMaxListeners;
  }

  #add(event, listener, prepend) {
    checkListener(listener);
    if (this.#events.has('newListener')) this.emit('newListener', event, listener.listener || listener);
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
      log.warn(`MaxListenersExceededWarning: Possible EventEmitter memory leak detected. ${list.length} ${String(event)} `
        + `listeners added to ${String(this)}. MaxListeners is ${max}. Use emitter.setMaxListeners() to increase limit`);
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
}

function checkListener(listener) {
  if (typeof listener !== 'function') {
    throw new TypeError(`The "listener" argument must be of type function. Received ${listener === null ? 'null' : typeof listener}`);
  }
}

function report(error) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
  else console.error(error);
}
