/**
 * The IPC failures a caller (the CLI, the daemon's start-up) acts on, with
 * messages meant to be shown as they are.
 *
 * @module
 */

/**
 * No daemon to talk to: the socket is missing (`ENOENT`), refuses connections
 * (`ECONNREFUSED`: a daemon that died), or the daemon went away or did not
 * answer.
 */
export class DaemonUnavailableError extends Error {
  /** @param message what happened @param options the underlying error */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonUnavailableError";
  }
}

/** The socket (or its directory) is not open to this user (`EACCES`, `EPERM`). */
export class DaemonAccessError extends Error {
  /** @param message what happened @param options the underlying error */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonAccessError";
  }
}

/** The daemon answered a request with an error. */
export class DaemonRequestError extends Error {
  /** The daemon's error code, such as `unknown-method`. */
  readonly code: string;

  /** @param code the daemon's code @param message the daemon's message */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonRequestError";
    this.code = code;
  }
}

/**
 * The other end does not speak amp's protocol: another program on the
 * socket, a daemon of an incompatible version, or a malformed message.
 */
export class DaemonProtocolError extends Error {
  /** @param message what was wrong */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonProtocolError";
  }
}

/** A live daemon already answers on the socket a new server wanted. */
export class DaemonRunningError extends Error {
  /** The socket path. */
  readonly path: string;

  /** @param path the socket that answers */
  constructor(path: string, options?: ErrorOptions) {
    super(`Another amp daemon is running (${path} answers)`, options);
    this.name = "DaemonRunningError";
    this.path = path;
  }
}
