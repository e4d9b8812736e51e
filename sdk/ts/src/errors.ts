// Errors the SDK raises. Every one carries a machine-readable `code` (the
// protocol's error codes, SPEC.md §7, or the SDK's own for local failures).

/** The server refused a request: an ERR frame, or an HTTP error reply. */
export class SandcatError extends Error {
  override name = "SandcatError";
  /** An error code of SPEC.md §7 (`forbidden`, `bad_request`, `rate_limited`, ...). */
  readonly code: string;
  /** With `rate_limited` (and sometimes `unavailable`): wait this long before retrying. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, retryAfterMs?: number) {
    super(`${code}: ${message}`);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** An HTTP API error reply: `{"error": {"code", "message"}}` with its status. */
export class HttpError extends SandcatError {
  override name = "HttpError";
  readonly status: number;
  /** With 422: the field that is missing or invalid. */
  readonly field: string | undefined;
  /** A word telling apart refusals with the same code (`banned`, `invite_expired`, ...). */
  readonly reason: string | undefined;
  /** The method and path of the request, for logs. */
  readonly request: string;

  constructor(
    status: number,
    code: string,
    message: string,
    request: string,
    field?: string,
    retryAfterMs?: number,
    reason?: string,
  ) {
    super(code, `${message} (HTTP ${status} from ${request})`, retryAfterMs);
    this.status = status;
    this.field = field;
    this.reason = reason;
    this.request = request;
  }
}

/**
 * Bytes that are not a valid frame (SPEC.md §2): a server closes the
 * connection with `closeCode` after ERR `code` to `rid` (when one could be read).
 */
export class FrameError extends Error {
  override name = "FrameError";
  readonly code: "bad_frame" | "too_large";
  readonly closeCode: 1007 | 1009;
  readonly rid: number | null;

  constructor(message: string, rid: number | null = null, code: "bad_frame" | "too_large" = "bad_frame") {
    super(message);
    this.code = code;
    this.closeCode = code === "too_large" ? 1009 : 1007;
    this.rid = rid;
  }
}

/**
 * A valid frame with an unknown op or invalid fields (SPEC.md §2): ERR
 * `code` (`unknown_op` or `bad_request`) to `rid`; the connection stays.
 * The SDK also raises it before sending a request with invalid fields.
 */
export class RequestError extends Error {
  override name = "RequestError";
  readonly code: "bad_request" | "unknown_op";
  readonly rid: number;

  constructor(code: "bad_request" | "unknown_op", message: string, rid: number) {
    super(message);
    this.code = code;
    this.rid = rid;
  }
}

/** The client ended for good: closed by the application, or by the server with a final close code. */
export class ClientClosedError extends Error {
  override name = "ClientClosedError";
  readonly code = "closed";
  /** The WebSocket close code that ended it (4001 replaced, 4007 session ended, ...), or null. */
  readonly closeCode: number | null;

  constructor(message: string, closeCode: number | null = null) {
    super(message);
    this.closeCode = closeCode;
  }
}

/** A request got no reply in time. For a send, the message may or may not have been stored. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
  readonly code = "timeout";
}
