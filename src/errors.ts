/**
 * Typed errors. Every error Corral reports to a client or an operator has a
 * stable `code` (`CORRAL_ERR_*`) and, where it ends an HTTP exchange, the
 * status sent. `docs/errors.md` lists them all; a test keeps the list honest.
 */

export const ERROR_CODES = {
  CORRAL_ERR_BAD_REQUEST: { status: 400, text: 'Bad Request', doc: 'The request head is malformed (request line, header syntax, framing).' },
  CORRAL_ERR_AMBIGUOUS_LENGTH: { status: 400, text: 'Bad Request', doc: 'Both Content-Length and Transfer-Encoding, duplicate or invalid Content-Length, or a Transfer-Encoding that does not end in chunked (RFC 9112 §6.1, §6.3).' },
  CORRAL_ERR_BAD_HOST: { status: 400, text: 'Bad Request', doc: 'Missing Host on HTTP/1.1, more than one Host, or an invalid Host (RFC 9112 §3.2).' },
  CORRAL_ERR_BAD_CHUNK: { status: 400, text: 'Bad Request', doc: 'Malformed chunked request body.' },
  CORRAL_ERR_HEADERS_TOO_LARGE: { status: 431, text: 'Request Header Fields Too Large', doc: 'The request head exceeds the size limit (16 KiB).' },
  CORRAL_ERR_VERSION: { status: 505, text: 'HTTP Version Not Supported', doc: 'A version other than HTTP/1.0 or HTTP/1.1.' },
  CORRAL_ERR_CLIENT_TIMEOUT: { status: 408, text: 'Request Timeout', doc: 'The client did not send its request head within `timeouts.headers`, or stalled its body longer than `timeouts.client`.' },
  CORRAL_ERR_NO_ROUTE: { status: 503, text: 'Service Unavailable', doc: 'No route matched and the frontend has no default backend.' },
  CORRAL_ERR_NO_SERVER: { status: 503, text: 'Service Unavailable', doc: 'No server of the backend is eligible (all down, in maintenance or already tried).' },
  CORRAL_ERR_QUEUE_TIMEOUT: { status: 503, text: 'Service Unavailable', doc: 'Every eligible server was at `maxConn` for longer than `timeouts.queue`.' },
  CORRAL_ERR_QUEUE_FULL: { status: 503, text: 'Service Unavailable', doc: 'The backend queue is at its size limit.' },
  CORRAL_ERR_CONNECT_FAILED: { status: 502, text: 'Bad Gateway', doc: 'Connecting to the server failed (refused, unreachable, reset) on every attempt.' },
  CORRAL_ERR_CONNECT_TIMEOUT: { status: 504, text: 'Gateway Timeout', doc: 'Connecting to the server took longer than `timeouts.connect` on every attempt.' },
  CORRAL_ERR_SERVER_FAILED: { status: 502, text: 'Bad Gateway', doc: 'The server closed or reset the connection before a complete response head.' },
  CORRAL_ERR_BAD_RESPONSE: { status: 502, text: 'Bad Gateway', doc: 'The server sent a malformed response (status line, headers, framing, or bytes after the response).' },
  CORRAL_ERR_SERVER_TIMEOUT: { status: 504, text: 'Gateway Timeout', doc: 'The server was silent for longer than `timeouts.server`.' },
  CORRAL_ERR_BAD_PROXY_HEADER: { status: 400, text: 'Bad Request', doc: '`acceptProxy`: the connection did not begin with a valid PROXY protocol v1/v2 header (malformed, over 107 bytes for v1 or 1 KiB for v2, closed early, or incomplete within `timeouts.headers`); it is closed without reaching a server.' },
  CORRAL_ERR_CONFIG: { status: 0, text: '', doc: 'The configuration is invalid; every problem is reported as FILE:LINE:COL message.' },
  CORRAL_ERR_LISTEN: { status: 0, text: '', doc: 'A listener could not bind its address.' },
  CORRAL_ERR_USAGE: { status: 0, text: '', doc: 'The command line is invalid (exit code 2).' },
} as const satisfies Record<string, { status: number; text: string; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CorralError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CorralError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

const bodies = new Map<ErrorCode, Buffer>();

/**
 * The full HTTP/1.1 error response for a code, as bytes (cached): a short
 * plain-text body naming the code, `Connection: close` when asked.
 */
export function errorResponse(code: ErrorCode, close: boolean): Buffer {
  const key = (close ? '!' : '') + code;
  let cached = bodies.get(key as ErrorCode);
  if (cached === undefined) {
    const { status, text } = ERROR_CODES[code];
    const body = `${status} ${text}\n${code}\n`;
    cached = Buffer.from(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\ncache-control: no-store\r\n` +
        (close ? 'connection: close\r\n' : '') +
        `x-corral-error: ${code}\r\n\r\n${body}`,
      'latin1',
    );
    bodies.set(key as ErrorCode, cached);
  }
  return cached;
}
