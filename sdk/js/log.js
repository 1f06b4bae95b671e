// Logging: `Video.Logger`, and the SDK's own log lines.
//
// twilio-video's `Logger` is the `loglevel` library's root logger, so apps
// configure the SDK's output with loglevel's API:
//
//   const logger = Video.Logger.getLogger('twilio-video');
//   logger.setLevel('debug');                         // persisted in localStorage
//   const original = logger.methodFactory;
//   logger.methodFactory = (method, level, name) => {
//     const log = original(method, level, name);
//     return (time, level, component, ...message) => log(`[${component}]`, ...message);
//   };
//   logger.setLevel(logger.getLevel());               // apply the new factory
//
// This module is that API, written for Salon (loglevel 1.7's behaviour, plus
// `resetLevel` and `rebuild` from later versions), and `Log`, what the SDK's
// modules log through. Every line goes to the logger named 'twilio-video'
// (or the `loggerName` given to connect()) as twilio-video's do:
// `(ISO time, level name, component, ...message)`. Its default level is
// `warn`, so only warnings and errors reach the console unless the app asks.
//
// Owns: loggers, levels and their persistence. Must not: know about rooms.

const LEVELS = Object.freeze({ TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, SILENT: 5 });
const METHODS = ['trace', 'debug', 'info', 'warn', 'error'];
const noop = () => {};

/** The logger the SDK logs to unless connect() is given a `loggerName`. */
export const DEFAULT_LOGGER_NAME = 'twilio-video';
/** Its level unless the app sets (or persisted) another. */
export const DEFAULT_LOG_LEVEL = 'warn';

/** loglevel's default: the console's own method, bound (debug prints with console.log, as loglevel does). */
function defaultMethodFactory(methodName) {
  if (typeof console === 'undefined') return noop;
  const name = methodName === 'debug' ? 'log' : methodName;
  const method = typeof console[name] === 'function' ? console[name] : console.log;
  return typeof method === 'function' ? method.bind(console) : noop;
}

/** A level name or number as a number, or undefined when it is neither. */
function levelNumber(level) {
  if (typeof level === 'string' && LEVELS[level.toUpperCase()] !== undefined) return LEVELS[level.toUpperCase()];
  if (typeof level === 'number' && Number.isInteger(level) && level >= LEVELS.TRACE && level <= LEVELS.SILENT) return level;
  return undefined;
}

/** A named logger with loglevel's methods. */
class LevelLogger {
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
    this.#storageKey = typeof name === 'symbol' ? undefined : typeof name === 'string' ? `loglevel:${name}` : 'loglevel';
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
    if (number === undefined) throw new TypeError(`log.setLevel() called with invalid level: ${String(level)}`);
    this.#level = number;
    if (persist !== false) this.#persist(number);
    this.rebuild();
  }

  /** Use this level unless one was persisted. */
  setDefaultLevel(level) {
    const number = levelNumber(level);
    if (number === undefined) throw new TypeError(`log.setDefaultLevel() called with invalid level: ${String(level)}`);
    this.#defaultLevel = number;
    if (this.#persisted() === undefined) this.setLevel(number, false);
  }

  /** Forget the persisted level and go back to the default. */
  resetLevel() {
    if (this.#storageKey && typeof localStorage !== 'undefined') {
      try {
        localStorage.removeItem(this.#storageKey);
      } catch {
        // storage unavailable (sandboxed frame): nothing to forget
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
    if (!this.#storageKey || typeof localStorage === 'undefined') return undefined;
    try {
      return levelNumber(localStorage.getItem(this.#storageKey) ?? undefined);
    } catch {
      return undefined;
    }
  }

  #persist(level) {
    if (!this.#storageKey || typeof localStorage === 'undefined') return;
    try {
      localStorage.setItem(this.#storageKey, Object.keys(LEVELS)[level]);
    } catch {
      // storage unavailable: the level holds for this page only
    }
  }
}

/** `Video.Logger`: loglevel's root logger, with `getLogger(name)` for named ones. */
class RootLogger extends LevelLogger {
  #loggers = new Map();

  constructor() {
    super(undefined, LEVELS.WARN, defaultMethodFactory);
    this.default = this;
  }

  /**
   * The logger of this name, made on first use with the root's current level
   * and method factory.
   * @param {string|symbol} name
   */
  getLogger(name) {
    if ((typeof name !== 'string' && typeof name !== 'symbol') || name === '') {
      throw new TypeError('You must supply a name when creating a logger.');
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
    return Object.fromEntries([...this.#loggers].filter(([name]) => typeof name === 'string'));
  }

  /** loglevel's way out of a clash over `window.log`; the SDK sets no global. */
  noConflict() {
    return this;
  }
}

export const Logger = new RootLogger();

/**
 * What the SDK's modules log through: each line goes to the named logger
 * with twilio-video's prefix (time, level, component).
 */
export class Log {
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
    return new Log(component, this.#loggerName);
  }

  get logger() {
    return Logger.getLogger(this.#loggerName);
  }

  debug(...message) {
    this.#write('debug', message);
  }

  info(...message) {
    this.#write('info', message);
  }

  warn(...message) {
    this.#write('warn', message);
  }

  error(...message) {
    this.#write('error', message);
  }

  #write(level, message) {
    const logger = this.logger;
    if (logger.getLevel() > LEVELS[level.toUpperCase()]) return;
    logger[level](new Date().toISOString(), level, String(this.#component), ...message);
  }
}

/**
 * Apply connect()'s deprecated `logLevel` option ('debug' … 'off', or
 * `{default, media, signaling, webrtc}`): the default level of the logger,
 * which a level the app set and persisted still overrides (as in
 * twilio-video). Per-module levels are not separate loggers in Salon: the
 * most verbose one applies.
 * @param {unknown} value
 * @param {string} loggerName
 */
export function applyLogLevelOption(value, loggerName) {
  if (value === undefined) return;
  const names = ['debug', 'info', 'warn', 'error', 'off'];
  const check = (v, what) => {
    if (!names.includes(v)) throw new RangeError(`${what} must be one of ${names.join(', ')}`);
    return v === 'off' ? LEVELS.SILENT : LEVELS[v.toUpperCase()];
  };
  let level;
  if (typeof value === 'string') {
    level = check(value, 'options.logLevel');
  } else if (value !== null && typeof value === 'object') {
    const levels = Object.entries(value).map(([module, v]) => check(v, `options.logLevel.${module}`));
    level = levels.length ? Math.min(...levels) : LEVELS.WARN;
  } else {
    throw new TypeError('options.logLevel must be a string or an object of LogLevels');
  }
  Logger.getLogger(loggerName).setDefaultLevel(level);
}
