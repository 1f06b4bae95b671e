// A small EventEmitter with the Node.js method names twilio-video's objects
// have (`on`, `once`, `off`, `removeListener`, `emit` …), so app code written
// against twilio-video registers its listeners unchanged.
//
// A listener that throws does not stop the others, nor the SDK: the error is
// reported to the page (window `error` event / console) and emission goes on.

export class EventEmitter {
  /** @type {Map<string, Function[]>} */
  #listeners = new Map();

  /**
   * @param {string} event
   * @param {Function} listener
   * @returns {this}
   */
  on(event, listener) {
    if (typeof listener !== 'function') {
      throw new TypeError('listener must be a function');
    }
    const list = this.#listeners.get(event) || [];
    list.push(listener);
    this.#listeners.set(event, list);
    return this;
  }

  /** Alias of {@link EventEmitter#on}. */
  addListener(event, listener) {
    return this.on(event, listener);
  }

  /**
   * Call `listener` the next time `event` is emitted only.
   * @param {string} event
   * @param {Function} listener
   * @returns {this}
   */
  once(event, listener) {
    if (typeof listener !== 'function') {
      throw new TypeError('listener must be a function');
    }
    const wrapper = (...args) => {
      this.removeListener(event, wrapper);
      listener.apply(this, args);
    };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }

  /**
   * @param {string} event
   * @param {Function} listener
   * @returns {this}
   */
  removeListener(event, listener) {
    const list = this.#listeners.get(event);
    if (!list) return this;
    const index = list.findIndex((l) => l === listener || l.listener === listener);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  /** Alias of {@link EventEmitter#removeListener}. */
  off(event, listener) {
    return this.removeListener(event, listener);
  }

  /**
   * @param {string} [event] every event when omitted
   * @returns {this}
   */
  removeAllListeners(event) {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  /** @param {string} event */
  listenerCount(event) {
    return (this.#listeners.get(event) || []).length;
  }

  /** @param {string} event */
  listeners(event) {
    return (this.#listeners.get(event) || []).map((l) => l.listener || l);
  }

  /**
   * @param {string} event
   * @param {...unknown} args
   * @returns {boolean} whether anyone listened
   */
  emit(event, ...args) {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const listener of [...list]) {
      try {
        listener.apply(this, args);
      } catch (error) {
        report(error);
      }
    }
    return true;
  }
}

function report(error) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
  else console.error(error);
}
