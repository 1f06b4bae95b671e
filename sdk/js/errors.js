// Errors the SDK raises: `TwilioError`s with Twilio's numeric codes (what the
// server sends, and what apps written for twilio-video switch on), and the
// TypeError/RangeError messages for bad arguments.
//
// Owns: the code → class table and the wording of argument errors.
// Must not: know about rooms, sockets or media.

/**
 * An error with a Twilio error code, as twilio-video raises them.
 * `error.code` is the number apps switch on; `error.message` says what
 * happened (the server's explanation when it gave one).
 */
export class TwilioError extends Error {
  /**
   * @param {number} code
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message);
    this.name = 'TwilioError';
    /** @type {number} */
    this.code = code;
  }

  toString() {
    return `${this.name} ${this.code}${this.message ? `: ${this.message}` : ''}`;
  }
}

// Twilio's classes for the codes Salon can produce, with Twilio's default
// messages (used when the server gives none).
const CLASSES = [
  [20101, 'AccessTokenInvalidError', 'Invalid Access Token'],
  [20102, 'AccessTokenHeaderInvalidError', 'Invalid Access Token header'],
  [20103, 'AccessTokenIssuerInvalidError', 'Invalid Access Token issuer/subject'],
  [20104, 'AccessTokenExpiredError', 'Access Token expired or expiration date invalid'],
  [20105, 'AccessTokenNotYetValidError', 'Access Token not yet valid'],
  [20106, 'AccessTokenGrantsInvalidError', 'Invalid Access Token grants'],
  [20107, 'AccessTokenSignatureInvalidError', 'Invalid Access Token signature'],
  [53000, 'SignalingConnectionError', 'Signaling connection error'],
  [53001, 'SignalingConnectionDisconnectedError', 'Signaling connection disconnected'],
  [53002, 'SignalingConnectionTimeoutError', 'Signaling connection timed out'],
  [53003, 'SignalingIncomingMessageInvalidError', 'Client received an invalid signaling message'],
  [53004, 'SignalingOutgoingMessageInvalidError', 'Client sent an invalid signaling message'],
  [53006, 'SignalingServerBusyError', 'Video server is busy'],
  [53100, 'RoomNameInvalidError', 'Room name is invalid'],
  [53101, 'RoomNameTooLongError', 'Room name is too long'],
  [53102, 'RoomNameCharsInvalidError', 'Room name contains invalid characters'],
  [53104, 'RoomConnectFailedError', 'Unable to connect to Room'],
  [53105, 'RoomMaxParticipantsExceededError', 'Room contains too many Participants'],
  [53106, 'RoomNotFoundError', 'Room not found'],
  [53118, 'RoomCompletedError', 'Room completed'],
  [53200, 'ParticipantIdentityInvalidError', 'Participant identity is invalid'],
  [53201, 'ParticipantIdentityTooLongError', 'Participant identity is too long'],
  [53202, 'ParticipantIdentityCharsInvalidError', 'Participant identity contains invalid characters'],
  [53204, 'ParticipantNotFoundError', 'Participant not found'],
  [53205, 'ParticipantDuplicateIdentityError', 'Participant disconnected because of duplicate identity'],
  [53216, 'ParticipantSessionLengthExceededError', 'Participant session length exceeded'],
  [53300, 'TrackInvalidError', 'Track is invalid'],
  [53301, 'TrackNameInvalidError', 'Track name is invalid'],
  [53302, 'TrackNameTooLongError', 'Track name is too long'],
  [53303, 'TrackNameCharsInvalidError', 'Track name contains invalid characters'],
  [53304, 'TrackNameIsDuplicatedError', 'Track name is duplicated'],
  [53400, 'MediaClientLocalDescFailedError', 'Client is unable to create or apply a local media description'],
  [53402, 'MediaClientRemoteDescFailedError', 'Client is unable to apply a remote media description'],
  [53403, 'MediaServerRemoteDescFailedError', 'Server is unable to apply a remote media description'],
  [53404, 'MediaNoSupportedCodecError', 'No supported codec'],
  [53405, 'MediaConnectionError', 'Media connection failed or Media activity ceased'],
];

/** @type {Map<number, {new (message?: string): TwilioError}>} */
const BY_CODE = new Map();
/** Every coded error class, by name (`errors.RoomCompletedError`, …). */
export const errors = {};

for (const [code, name, defaultMessage] of CLASSES) {
  const cls = {
    [name]: class extends TwilioError {
      /** @param {string} [message] */
      constructor(message) {
        super(code, message || defaultMessage);
      }
    },
  }[name];
  BY_CODE.set(code, cls);
  errors[name] = cls;
}

/**
 * The TwilioError for a code, with the server's message when it has one.
 * @param {number} code
 * @param {string} [message]
 * @returns {TwilioError}
 */
export function createTwilioError(code, message) {
  const cls = BY_CODE.get(code);
  return cls ? new cls(message) : new TwilioError(code, message || 'Unknown error');
}

// ---- argument errors, worded as twilio-video words them --------------------

/**
 * `name must be a type`.
 * @param {string} name
 * @param {string} type
 */
export function typeError(name, type) {
  const article = /^[aeiou]/i.test(type) ? 'an' : 'a';
  return new TypeError(`${name} must be ${article} ${type}`);
}

/**
 * `name must be one of a, b, c`.
 * @param {string} name
 * @param {unknown[]} values
 */
export function rangeError(name, values) {
  return new RangeError(`${name} must be one of ${values.join(', ')}`);
}
