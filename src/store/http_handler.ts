/**
 * A request handler for @aws-sdk/client-s3 that speaks HTTP/1.1 itself over Deno's TCP (`Deno.connect`) or TLS
 * (`Deno.startTls` on such a connection, so that the socket gets TCP_NODELAY and the connect an abort signal, which
 * `Deno.connectTls` offers neither of) connections, in place of the SDK's default @smithy/node-http-handler, which
 * goes through Deno's node:http compatibility layer (ClientRequest, Node streams, a Buffer per write). The client,
 * its middleware and SigV4 signing stay the SDK's: only the bytes on the wire are written and read here.
 *
 * What it does, as the SDK expects of a handler (see NodeHttpHandler):
 * - a bounded keep-alive pool per origin (50 sockets, as the SDK's default agent); requests beyond that wait
 *   for a free socket; idle sockets are closed after 25 s and do not keep the process alive;
 * - the request body (bytes, string, web ReadableStream, Node Readable, Blob) is written as given, never
 *   copied; a stream without a Content-Length goes out chunked; `Expect: 100-continue` waits for the server;
 * - the response comes back with lower-cased header names and a web ReadableStream body (what the SDK's
 *   `sdkStreamMixin` and stream collector accept), framed by Content-Length, chunked transfer-encoding or
 *   the end of the connection;
 * - `requestTimeout` is an inactivity limit on the socket while a request (and its response body) is in
 *   progress, failing with a `TimeoutError`; the abort signal fails it with an `AbortError`; either destroys the
 *   socket. Connection failures keep Node's error codes (ECONNREFUSED, ECONNRESET, ...) so that the SDK's retry
 *   strategy and the callers' error classification see what they saw with the node handler.
 */

/** The parts of @smithy/types' HttpRequest this handler reads. */
export interface LeanHttpRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | Array<string> | null>;
  username?: string;
  password?: string;
  headers: Record<string, string>;
  body?: unknown;
}

/** What @smithy/types' HttpResponse holds; the SDK checks the shape, not the class. */
export interface LeanHttpResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array>;
}

/**
 * The abort signal as the SDK types it (its own `AbortSignal`: `aborted` and `onabort`); at run time it is a DOM
 * AbortSignal, whose listeners are used when it has them.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  onabort?: unknown;
  addEventListener?: (type: "abort", listener: () => void, options?: { once?: boolean }) => void;
  removeEventListener?: (type: "abort", listener: () => void) => void;
}

export interface LeanHttpHandlerOptions {
  /** Inactivity limit (ms) on the socket of a request in progress, its response body included; 0: none. */
  requestTimeout?: number;
  /** Limit (ms) on opening a connection (TCP, and the TLS handshake for https); 0: none. */
  connectionTimeout?: number;
  /** Sockets per origin (default 50, the SDK's default agent's). */
  maxSockets?: number;
  /** An idle pooled socket is closed after this long (ms, default 25,000). */
  idleTimeout?: number;
  /** How long (ms) `Expect: 100-continue` waits for the server's go-ahead before sending the body anyway. */
  continueTimeout?: number;
  /** PEM certificates trusted for https besides the system's (a private CA of an S3-compatible server). */
  caCerts?: string[];
  [key: string]: unknown;
}

const DEFAULT_MAX_SOCKETS = 50;
// Below the 30 s keep-alive limit common to servers (Jetty in S3Proxy among them), so that it is normally this
// side that closes an idle socket, not the server just as a request goes out on it.
const DEFAULT_IDLE_TIMEOUT = 25_000;
const DEFAULT_CONTINUE_TIMEOUT = 1_000;
/** A response head larger than this is refused (Node's default limit is 16 KB). */
const MAX_HEAD = 64 * 1024;
/** Response bodies come as chunks of at most this size (a 180 KB frame is one chunk). */
const MAX_PIECE = 1024 * 1024;
const READ_BUFFER = 16 * 1024;

const encoder = new TextEncoder();

/** Node's error names for socket failures (NodeHttpHandler renames these codes' errors to TimeoutError). */
const TIMEOUT_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/** An error as Node's net/http would give it: `code` set, and the name NodeHttpHandler would give. */
function netError(message: string, code: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string };
  error.code = code;
  if (TIMEOUT_CODES.has(code)) error.name = "TimeoutError";
  OURS.add(error);
  return error;
}

/** Deno's error for a failed socket operation, as the Node error code it stands for. */
function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && code) return code;
  if (error instanceof Deno.errors.ConnectionRefused) return "ECONNREFUSED";
  if (error instanceof Deno.errors.ConnectionReset) return "ECONNRESET";
  if (error instanceof Deno.errors.BrokenPipe) return "EPIPE";
  if (error instanceof Deno.errors.TimedOut) return "ETIMEDOUT";
  return "ECONNRESET";
}

function timeoutError(ms: number): Error {
  const error = new Error(`the request socket was idle for ${ms} ms (requestTimeout)`) as Error & {
    code: string;
  };
  error.name = "TimeoutError";
  error.code = "ETIMEDOUT";
  return error;
}

/** As NodeHttpHandler builds it: named AbortError, the signal's reason as the cause or message. */
function abortError(signal: AbortSignalLike): Error {
  const reason = signal.reason;
  const error = reason instanceof Error
    ? new Error("Request aborted", { cause: reason })
    : new Error(reason === undefined ? "Request aborted" : String(reason));
  error.name = "AbortError";
  return error;
}

/** The query string as the SDK's own handlers build it (sorted keys, RFC 3986 escaping). */
function queryString(query: Record<string, string | Array<string> | null>): string {
  const parts: string[] = [];
  for (const name of Object.keys(query).sort()) {
    const value = query[name];
    const key = escapeUri(name);
    if (Array.isArray(value)) {
      for (const v of value) parts.push(`${key}=${escapeUri(v)}`);
    } else {
      parts.push(value || typeof value === "string" ? `${key}=${escapeUri(value)}` : key);
    }
  }
  return parts.join("&");
}

const escapeUri = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Header values travel as Latin-1; a CR, LF or NUL would end the header (request smuggling), so is refused. */
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_HEADER_NAME = /[^a-z0-9!#$%&'*+.^_`|~-]/i;
const NON_ASCII = /[\x80-\uffff]/;

/** Latin-1 bytes of `text` (every char is <= 0xff, checked by the header rules above). */
function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function latin1Text(bytes: Uint8Array): string {
  let text = "";
  for (let at = 0; at < bytes.length; at += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
  }
  return text;
}

type Body =
  | { kind: "none" }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "stream"; chunks: AsyncIterable<unknown> };

/** The request body as bytes to write as they are, or an async source of chunks. */
function bodyOf(body: unknown): Body {
  if (body === undefined || body === null) return { kind: "none" };
  if (body instanceof Uint8Array) return { kind: "bytes", bytes: body }; // Buffer too
  if (typeof body === "string") return { kind: "bytes", bytes: encoder.encode(body) };
  if (body instanceof ArrayBuffer) return { kind: "bytes", bytes: new Uint8Array(body) };
  if (ArrayBuffer.isView(body)) {
    return { kind: "bytes", bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) };
  }
  if (body instanceof Blob) return { kind: "stream", chunks: body.stream() };
  // A web ReadableStream and a Node Readable are both async iterables of chunks.
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
    return { kind: "stream", chunks: body as AsyncIterable<unknown> };
  }
  throw new TypeError(`unsupported request body: ${Object.prototype.toString.call(body)}`);
}

function chunkBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`unsupported chunk in a request body stream: ${Object.prototype.toString.call(chunk)}`);
}

interface Head {
  status: number;
  reason: string;
  headers: Record<string, string>;
  /** HTTP/1.0 without keep-alive, or `Connection: close`: the socket cannot serve another request. */
  close: boolean;
}

/**
 * One socket and its read buffer. Unread bytes sit in `buf[start, end)`. At most one read is outstanding
 * (`pending`): while the socket is idle in the pool that read is what notices the server closing it, and the next
 * request on the socket takes the read over as the first read of its response.
 */
class Connection {
  buf = new Uint8Array(READ_BUFFER);
  start = 0;
  end = 0;
  pending: Promise<number | null> | null = null;
  /** When bytes last moved either way (performance.now()), for the inactivity timeout. */
  lastActivity = performance.now();
  idleSince = 0;
  idle = false;
  closed = false;
  /** Served a request already, so a failure to send can mean the server closed it meanwhile. */
  used = false;

  constructor(readonly conn: Deno.Conn) {}

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async fill(): Promise<boolean> {
    const read = this.pending ?? this.startRead();
    let n: number | null;
    try {
      n = await read;
    } finally {
      this.pending = null;
    }
    if (n === null) return false;
    this.end += n;
    this.lastActivity = performance.now();
    return true;
  }

  startRead(): Promise<number | null> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) {
      // Keep what is unread; double the buffer only when the unread part fills most of it (a long head).
      const unread = this.end - this.start;
      if (unread > this.buf.length / 2) {
        const next = new Uint8Array(this.buf.length * 2);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      } else {
        this.buf.copyWithin(0, this.start, this.end);
      }
      this.start = 0;
      this.end = unread;
    }
    this.pending = this.conn.read(this.buf.subarray(this.end));
    return this.pending;
  }

  /** Reads straight into `target` (a response body), after any buffered bytes; 0 at the end of the stream. */
  async readInto(target: Uint8Array): Promise<number> {
    const buffered = this.end - this.start;
    if (buffered > 0 || this.pending) {
      if (buffered === 0 && !(await this.fill())) return 0;
      const n = Math.min(this.end - this.start, target.length);
      target.set(this.buf.subarray(this.start, this.start + n));
      this.start += n;
      return n;
    }
    const n = await this.conn.read(target);
    if (n === null) return 0;
    this.lastActivity = performance.now();
    return n;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      at += await this.conn.write(at === 0 ? bytes : bytes.subarray(at));
      this.lastActivity = performance.now();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed by a failed operation.
    }
  }
}

/** The sockets of one origin: idle ones (most recently used last), how many exist, and requests waiting. */
class Pool {
  readonly idle: Connection[] = [];
  readonly all = new Set<Connection>();
  /** Connections being opened count against the limit too. */
  opening = 0;
  readonly waiters: Array<(connection: Connection | null) => void> = [];

  constructor(
    readonly origin: string,
    readonly hostname: string,
    readonly port: number,
    readonly tls: boolean,
  ) {}
}

/** Errors made here, already in Node's terms (see `Exchange.error`). */
const OURS = new WeakSet<object>();
const DENO_ERRORS = Object.values(Deno.errors);

/**
 * The inactivity timeouts of a handler's requests, checked by one interval timer while any request is in
 * progress: cheaper than a timer per request (a request adds and removes itself from a set), at the price of
 * firing up to a quarter of the timeout late.
 */
class Watchdog {
  readonly #active = new Set<Exchange>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #period = Infinity;

  watch(exchange: Exchange): void {
    this.#active.add(exchange);
    const period = Math.max(5, Math.min(1000, exchange.timeoutMs / 4));
    if (this.#timer !== undefined && period >= this.#period) return;
    clearInterval(this.#timer);
    this.#period = period;
    const timer = setInterval(() => {
      const now = performance.now();
      for (const watched of this.#active) watched.check(now);
      if (this.#active.size === 0) this.stop();
    }, period);
    // Requests in progress keep the process alive by their socket operations, not by this timer.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  forget(exchange: Exchange): void {
    this.#active.delete(exchange);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#period = Infinity;
  }
}

/** The per-request state that timeouts and aborts act on. */
class Exchange {
  connection: Connection | null = null;
  failure: Error | null = null;
  /** Ends a wait for a socket or a connect in progress when the request fails meanwhile. */
  onFail: ((error: Error) => void) | null = null;
  readonly armedAt = performance.now();
  #onAbort: (() => void) | undefined;

  constructor(
    readonly signal: AbortSignalLike | undefined,
    readonly timeoutMs: number,
    readonly watchdog: Watchdog,
  ) {}

  /** Starts watching the signal and the inactivity timeout. */
  arm(): void {
    const signal = this.signal;
    if (signal) {
      this.#onAbort = () => this.fail(abortError(signal));
      if (signal.addEventListener) signal.addEventListener("abort", this.#onAbort, { once: true });
      else signal.onabort = this.#onAbort; // as NodeHttpHandler does with the SDK's older signal type
    }
    if (this.timeoutMs > 0) this.watchdog.watch(this);
  }

  /** Fails the exchange when its socket has been quiet for the timeout (waiting for a socket counts as quiet). */
  check(now: number): void {
    const since = Math.max(this.armedAt, this.connection?.lastActivity ?? 0);
    if (now - since >= this.timeoutMs) this.fail(timeoutError(this.timeoutMs));
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.disarm();
    // Closing the socket ends any read or write in progress, which then reports this failure.
    this.connection?.close();
    this.onFail?.(error);
  }

  disarm(): void {
    this.watchdog.forget(this);
    if (this.#onAbort) this.signal?.removeEventListener?.("abort", this.#onAbort);
    this.#onAbort = undefined;
  }

  /**
   * The error to report for a failed socket operation: the timeout or abort that caused it, if any; Deno's socket
   * errors as Node's (with `code`); anything else (a bad body chunk, an error made here) as it is.
   */
  error(cause: unknown, doing: string): Error {
    if (this.failure) return this.failure;
    if (cause instanceof Error && (OURS.has(cause) || !DENO_ERRORS.some((type) => cause instanceof type))) {
      return cause;
    }
    const code = codeOf(cause);
    return netError(`${doing}: ${(cause as Error)?.message ?? cause} (${code})`, code, cause);
  }
}

/** The SDK's HTTP/1.1 request handler on Deno's own sockets; see the module comment. */
export class LeanHttpHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  #config: LeanHttpHandlerOptions;
  readonly #pools = new Map<string, Pool>();
  readonly #watchdog = new Watchdog();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #destroyed = false;

  constructor(options: LeanHttpHandlerOptions = {}) {
    this.#config = { ...options };
  }

  /** The handler's settings, as the SDK's `httpHandlerConfigs()` reports them. */
  httpHandlerConfigs(): LeanHttpHandlerOptions {
    return { ...this.#config };
  }

  /** The SDK sets handler options this way (e.g. from a client's `requestHandler` config extension). */
  updateHttpClientConfig(key: keyof LeanHttpHandlerOptions, value: unknown): void {
    this.#config = { ...this.#config, [key]: value };
  }

  /** Closes every socket, idle or in use; requests in progress fail. */
  destroy(): void {
    this.#destroyed = true;
    this.#watchdog.stop();
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const pool of this.#pools.values()) {
      for (const connection of pool.all) connection.close();
      pool.all.clear();
      pool.idle.length = 0;
      for (const waiter of pool.waiters.splice(0)) waiter(null);
    }
    this.#pools.clear();
  }

  /** Sockets per origin, open and idle (for tests and diagnostics). */
  sockets(): Record<string, { open: number; idle: number }> {
    const out: Record<string, { open: number; idle: number }> = {};
    for (const [origin, pool] of this.#pools) out[origin] = { open: pool.all.size, idle: pool.idle.length };
    return out;
  }

  async handle(
    request: LeanHttpRequest,
    { abortSignal, requestTimeout }: { abortSignal?: AbortSignalLike; requestTimeout?: number } = {},
  ): Promise<{ response: LeanHttpResponse }> {
    if (abortSignal?.aborted) throw abortError(abortSignal);
    if (this.#destroyed) throw new Error("the request handler was destroyed");
    const tls = request.protocol === "https:";
    const hostname = request.hostname.startsWith("[") && request.hostname.endsWith("]")
      ? request.hostname.slice(1, -1)
      : request.hostname;
    const port = request.port ? Number(request.port) : tls ? 443 : 80;
    const key = `${tls ? "https" : "http"}://${hostname}:${port}`;
    let pool = this.#pools.get(key);
    if (!pool) this.#pools.set(key, pool = new Pool(key, hostname, port, tls));

    // Everything that can fail on bad input is done before a socket is taken.
    const body = bodyOf(request.body);
    const head = requestHead(request, body, hostname, port, tls);

    const exchange = new Exchange(
      abortSignal,
      requestTimeout ?? this.#config.requestTimeout ?? 0,
      this.#watchdog,
    );
    exchange.arm();
    try {
      for (let attempt = 0;; attempt++) {
        const connection = await this.#acquire(pool, exchange, attempt > 0);
        exchange.connection = connection;
        if (exchange.failure) throw exchange.failure;
        const reused = connection.used;
        connection.used = true;
        try {
          await connection.write(head.bytes);
        } catch (error) {
          // A failed write sends nothing: when it is the request's first on a socket that sat in the pool, the
          // server closed that socket meanwhile, and the request is tried once more on a new one.
          this.#discard(pool, connection);
          if (reused && attempt === 0 && !exchange.failure) continue;
          throw exchange.error(error, `sending a request to ${key}`);
        }
        return { response: await this.#exchange(pool, connection, exchange, request.method, body, head) };
      }
    } catch (error) {
      exchange.disarm();
      if (exchange.connection) this.#discard(pool, exchange.connection);
      throw exchange.failure ?? exchange.error(error, `a request to ${key}`);
    }
  }

  /** Sends the body (the head is written already), reads the response head, and builds the response. */
  async #exchange(
    pool: Pool,
    connection: Connection,
    exchange: Exchange,
    method: string,
    body: Body,
    request: RequestHead,
  ): Promise<LeanHttpResponse> {
    let head: Head;
    let reusable = !request.close;
    if (request.expectContinue) {
      const waited = await this.#expectContinue(connection, body, request.chunked);
      head = waited.head;
      if (!waited.continued) reusable = false;
    } else {
      if (body.kind !== "none") await writeBody(connection, body, request.chunked);
      head = await readHead(connection);
    }
    // Interim answers (102, 103) precede the real one.
    while (head.status >= 100 && head.status < 200 && head.status !== 101) head = await readHead(connection);
    if (head.close) reusable = false;

    const lengthText = head.headers["content-length"];
    const transfer = head.headers["transfer-encoding"];
    let reader: BodyReader | null;
    if (method === "HEAD" || head.status === 204 || head.status === 304 || head.status < 200) {
      reader = null;
    } else if (transfer !== undefined) {
      if (/(^|,)\s*chunked\s*$/i.test(transfer)) {
        reader = chunkedReader(connection);
      } else {
        // Another coding last: the body ends with the connection.
        reusable = false;
        reader = closeReader(connection);
      }
    } else if (lengthText !== undefined) {
      const length = Number(lengthText);
      if (!/^\d+$/.test(lengthText) || !Number.isSafeInteger(length)) {
        throw netError(
          `${pool.origin} answered an invalid content-length ${JSON.stringify(lengthText)}`,
          "HPE_INVALID_CONTENT_LENGTH",
        );
      }
      reader = length === 0 ? null : lengthReader(connection, length);
    } else {
      reusable = false;
      reader = closeReader(connection);
    }

    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      exchange.disarm();
      if (reusable && !exchange.failure) this.#release(pool, connection);
      else this.#discard(pool, connection);
    };
    if (reader === null) {
      finish();
      return { statusCode: head.status, reason: head.reason, headers: head.headers, body: emptyBody() };
    }
    const next = reader;
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const piece = await next.read();
          if (piece) controller.enqueue(piece);
          // The socket goes back to the pool as soon as the last byte is in, not when the reader asks again.
          if (next.done) {
            finish();
            controller.close();
          }
        } catch (error) {
          finished = true;
          exchange.disarm();
          this.#discard(pool, connection);
          controller.error(exchange.error(error, `reading a response body from ${pool.origin}`));
        }
      },
      cancel: () => {
        // The rest of the body is not wanted; the socket cannot serve another request without reading it.
        if (!finished) {
          finished = true;
          exchange.disarm();
          this.#discard(pool, connection);
        }
      },
    }, { highWaterMark: 0 });
    return { statusCode: head.status, reason: head.reason, headers: head.headers, body: stream };
  }

  /**
   * `Expect: 100-continue`: the body goes out on the server's 100, or after `continueTimeout` without an answer
   * (a server that ignores Expect); a final answer first means the server does not want it, and it is not sent.
   * `continued`: a 100 came before the final answer, so the server read the body as part of this request and the
   * socket can serve another; without one that is not certain.
   */
  async #expectContinue(
    connection: Connection,
    body: Body,
    chunked: boolean,
  ): Promise<{ head: Head; continued: boolean }> {
    let headPromise = readHead(connection);
    // When the wait times out, the read goes on while the body is written; its failure is reported below.
    headPromise.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      headPromise,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), this.#config.continueTimeout ?? DEFAULT_CONTINUE_TIMEOUT);
      }),
    ]).finally(() => clearTimeout(timer));
    let continued = false;
    let head = first;
    while (head && head.status < 200 && head.status !== 100) head = await readHead(connection);
    if (head && head.status >= 200) return { head, continued };
    if (head?.status === 100) {
      continued = true;
      headPromise = readHead(connection);
      headPromise.catch(() => {});
    }
    await writeBody(connection, body, chunked);
    head = await headPromise;
    while (head.status < 200 && head.status !== 101) {
      if (head.status === 100) continued = true;
      head = await readHead(connection);
    }
    return { head, continued };
  }

  /** An idle socket of the pool (unless `fresh`), a new one when under the limit, or else the next one freed. */
  async #acquire(pool: Pool, exchange: Exchange, fresh: boolean): Promise<Connection> {
    for (;;) {
      if (exchange.failure) throw exchange.failure;
      const idle = fresh ? undefined : pool.idle.pop();
      if (idle) {
        idle.idle = false;
        // The idle read may have ended already (the server closed the socket, or sent bytes nobody asked for);
        // racing it with a settled promise lets such a result arrive before the socket is used.
        if (idle.pending) {
          const ended = await Promise.race([idle.pending.then(() => true, () => true), NOT_YET]);
          if (ended || idle.closed) {
            this.#discard(pool, idle);
            continue;
          }
        }
        if (idle.closed) {
          this.#discard(pool, idle);
          continue;
        }
        idle.conn.ref();
        return idle;
      }
      if (pool.all.size + pool.opening < (this.#config.maxSockets ?? DEFAULT_MAX_SOCKETS)) {
        return await this.#connect(pool, exchange);
      }
      const handed = await new Promise<Connection | null>((resolve, reject) => {
        const waiter = (connection: Connection | null) => {
          exchange.onFail = null;
          resolve(connection);
        };
        exchange.onFail = (error) => {
          exchange.onFail = null;
          const at = pool.waiters.indexOf(waiter);
          if (at >= 0) pool.waiters.splice(at, 1);
          reject(error);
        };
        pool.waiters.push(waiter);
      });
      if (this.#destroyed) throw new Error("the request handler was destroyed");
      if (handed) {
        handed.conn.ref();
        return handed;
      }
      // null: a socket was closed, so there is room for a new one (next turn of the loop).
    }
  }

  async #connect(pool: Pool, exchange: Exchange): Promise<Connection> {
    pool.opening++;
    const timeoutMs = this.#config.connectionTimeout ?? 0;
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    const failed = new AbortController();
    exchange.onFail = (error) => failed.abort(error);
    const signal = timeout ? AbortSignal.any([timeout, failed.signal]) : failed.signal;
    const where = `${pool.hostname}:${pool.port}`;
    let conn: Deno.Conn;
    try {
      const tcp = await Deno.connect({ hostname: pool.hostname, port: pool.port, signal });
      // The head and the body are separate writes: without this, Nagle's algorithm may hold the body's last
      // segment back until the head is acknowledged.
      tcp.setNoDelay(true);
      if (pool.tls) {
        let tlsConn: Deno.TlsConn | undefined;
        const onAbort = () => (tlsConn ?? tcp).close();
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          tlsConn = await Deno.startTls(tcp, { hostname: pool.hostname, caCerts: this.#config.caCerts });
          await tlsConn.handshake();
        } catch (error) {
          try {
            (tlsConn ?? tcp).close();
          } catch {
            // closed by the abort already
          }
          throw error;
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
        conn = tlsConn;
      } else {
        conn = tcp;
      }
    } catch (error) {
      if (exchange.failure) throw exchange.failure;
      if (timeout?.aborted) {
        const timedOut = new Error(
          `the socket did not connect to ${where} within the connectionTimeout of ${timeoutMs} ms`,
        ) as Error & { code: string };
        timedOut.name = "TimeoutError";
        timedOut.code = "ETIMEDOUT";
        throw timedOut;
      }
      const code = codeOf(error);
      throw netError(`connect ${code} ${where}: ${(error as Error)?.message ?? error}`, code, error);
    } finally {
      exchange.onFail = null;
      pool.opening--;
    }
    const connection = new Connection(conn);
    if (this.#destroyed) {
      connection.close();
      throw new Error("the request handler was destroyed");
    }
    pool.all.add(connection);
    return connection;
  }

  /** A socket whose exchange ended cleanly goes to a waiting request, or to the idle list. */
  #release(pool: Pool, connection: Connection): void {
    if (connection.closed || this.#destroyed || connection.end > connection.start || connection.pending) {
      // Bytes after the response: the server and this side disagree on framing; the socket is not trusted.
      this.#discard(pool, connection);
      return;
    }
    const waiter = pool.waiters.shift();
    if (waiter) {
      waiter(connection);
      return;
    }
    connection.idle = true;
    connection.idleSince = performance.now();
    // An idle socket does not keep the process alive (Node's agent unrefs its free sockets too).
    connection.conn.unref();
    pool.idle.push(connection);
    connection.startRead().then(
      () => this.#idleReadEnded(pool, connection),
      () => this.#idleReadEnded(pool, connection),
    );
    this.#sweep();
  }

  /** The idle read ended while nobody used the socket: closed by the server, or bytes out of turn. */
  #idleReadEnded(pool: Pool, connection: Connection): void {
    if (!connection.idle) return; // a request took the read over
    connection.pending = null;
    this.#discard(pool, connection);
  }

  /** Closes a socket and frees its place for a waiting request. */
  #discard(pool: Pool, connection: Connection): void {
    connection.close();
    connection.idle = false;
    const at = pool.idle.indexOf(connection);
    if (at >= 0) pool.idle.splice(at, 1);
    if (pool.all.delete(connection)) pool.waiters.shift()?.(null);
  }

  /** Closes sockets idle for longer than `idleTimeout`, looking a few times per period while any are idle. */
  #sweep(): void {
    if (this.#sweeper !== undefined) return;
    const limit = this.#config.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    const sweeper = setInterval(() => {
      const now = performance.now();
      let left = 0;
      for (const pool of this.#pools.values()) {
        for (const connection of [...pool.idle]) {
          if (now - connection.idleSince >= limit) this.#discard(pool, connection);
        }
        left += pool.idle.length;
      }
      if (left === 0) {
        clearInterval(sweeper);
        this.#sweeper = undefined;
      }
    }, Math.max(20, limit / 4));
    Deno.unrefTimer(sweeper);
    this.#sweeper = sweeper;
  }
}

const NOT_YET = Promise.resolve(false);

/** A request's head, encoded, and what it says about the exchange. */
interface RequestHead {
  bytes: Uint8Array;
  /** `Expect: 100-continue` with a body to send. */
  expectContinue: boolean;
  /** The body goes out with chunked framing. */
  chunked: boolean;
  /** `Connection: close`: the socket is not reused after this request. */
  close: boolean;
}

const BODYLESS_METHODS = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/** The request line and headers (the SDK's, as signed, plus Host and framing headers when missing). */
function requestHead(
  request: LeanHttpRequest,
  body: Body,
  hostname: string,
  port: number,
  tls: boolean,
): RequestHead {
  let path = request.path || "/";
  if (request.query) {
    const query = queryString(request.query);
    if (query) path += `?${query}`;
  }
  if (/[^\x21-\x7e]/.test(path)) {
    throw new TypeError(`invalid characters in the request path ${JSON.stringify(path)}`);
  }
  let text = `${request.method} ${path} HTTP/1.1\r\n`;
  let host = false;
  let length: string | undefined;
  let chunked = false;
  let expectContinue = false;
  let authorization = false;
  let close = false;
  for (const name in request.headers) {
    const value = request.headers[name];
    if (value === undefined || value === null) continue;
    const v = String(value);
    if (BAD_HEADER_NAME.test(name) || BAD_HEADER_VALUE.test(v)) {
      throw new TypeError(`invalid request header ${JSON.stringify(name)}: ${JSON.stringify(v)}`);
    }
    switch (name.toLowerCase()) {
      case "host":
        host = true;
        break;
      case "content-length":
        length = v;
        break;
      case "transfer-encoding":
        chunked = /(^|,)\s*chunked\s*$/i.test(v);
        break;
      case "expect":
        expectContinue = v.toLowerCase() === "100-continue";
        break;
      case "authorization":
        authorization = true;
        break;
      case "connection":
        close = /(^|,)\s*close\s*(,|$)/i.test(v);
        break;
    }
    text += `${name}: ${v}\r\n`;
  }
  if (!host) {
    const name = hostname.includes(":") ? `[${hostname}]` : hostname;
    text += `host: ${name}${port === (tls ? 443 : 80) ? "" : `:${port}`}\r\n`;
  }
  if (!authorization && (request.username != null || request.password != null)) {
    text += `authorization: Basic ${btoa(`${request.username ?? ""}:${request.password ?? ""}`)}\r\n`;
  }
  if (body.kind === "bytes") {
    if (length === undefined && !chunked) text += `content-length: ${body.bytes.length}\r\n`;
    else if (length !== undefined && Number(length) !== body.bytes.length) {
      throw new TypeError(`content-length ${length} does not match the body's ${body.bytes.length} bytes`);
    }
  } else if (body.kind === "stream") {
    if (length === undefined && !chunked) {
      text += "transfer-encoding: chunked\r\n";
      chunked = true;
    }
  } else if (length === undefined && !chunked && !BODYLESS_METHODS.has(request.method)) {
    // As Node does for a request ended without data.
    text += "content-length: 0\r\n";
  }
  text += "\r\n";
  return {
    bytes: NON_ASCII.test(text) ? latin1(text) : encoder.encode(text),
    expectContinue: expectContinue && body.kind !== "none",
    chunked: chunked && body.kind !== "none",
    close,
  };
}

/** Writes the body after the head: bytes as they are, a stream chunk by chunk (chunked framing if so). */
async function writeBody(connection: Connection, body: Body, chunked: boolean): Promise<void> {
  if (body.kind === "bytes") {
    if (body.bytes.length > 0) await connection.write(body.bytes);
    return;
  }
  if (body.kind !== "stream") return;
  for await (const chunk of body.chunks) {
    const bytes = chunkBytes(chunk);
    if (bytes.length === 0) continue;
    if (chunked) {
      await connection.write(encoder.encode(`${bytes.length.toString(16)}\r\n`));
      await connection.write(bytes);
      await connection.write(CRLF);
    } else {
      await connection.write(bytes);
    }
  }
  if (chunked) await connection.write(LAST_CHUNK);
}

const CRLF = encoder.encode("\r\n");
const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/** The next response head: status line and headers (names lower-cased, repeats joined with ", "). */
async function readHead(connection: Connection): Promise<Head> {
  let scanned = connection.start;
  for (;;) {
    const buf = connection.buf;
    // Looks for CRLF CRLF from where the last look stopped (less three bytes, in case it straddles reads).
    for (let i = Math.max(connection.start, scanned - 3); i + 3 < connection.end; i++) {
      if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
        const text = latin1Text(buf.subarray(connection.start, i));
        connection.start = i + 4;
        return parseHead(text);
      }
    }
    scanned = connection.end;
    if (connection.end - connection.start > MAX_HEAD) {
      throw netError(`the response head is larger than ${MAX_HEAD} bytes`, "HPE_HEADER_OVERFLOW");
    }
    const got = connection.end - connection.start;
    const before = connection.start;
    if (!(await connection.fill())) {
      throw got === 0
        ? netError("socket hang up (the server closed the connection without answering)", "ECONNRESET")
        : netError("the server closed the connection in the middle of the response head", "ECONNRESET");
    }
    // fill() may have moved the unread bytes to the front of a new buffer.
    scanned += connection.start - before;
  }
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!status) {
    throw netError(
      `not an HTTP/1.x response: ${JSON.stringify(lines[0].slice(0, 80))}`,
      "HPE_INVALID_CONSTANT",
    );
  }
  const headers: Record<string, string> = {};
  let last = "";
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === "") continue;
    if ((line[0] === " " || line[0] === "\t") && last) {
      headers[last] += ` ${line.trim()}`; // obsolete line folding
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw netError(
        `invalid response header line ${JSON.stringify(line.slice(0, 80))}`,
        "HPE_INVALID_HEADER_TOKEN",
      );
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    last = name;
  }
  const connection = headers["connection"]?.toLowerCase() ?? "";
  const close = status[1] === "0"
    ? !/(^|,)\s*keep-alive\s*(,|$)/.test(connection)
    : /(^|,)\s*close\s*(,|$)/.test(connection);
  return { status: Number(status[2]), reason: status[3] ?? "", headers, close };
}

/** A response body's pieces; `done` once its last byte is read. */
interface BodyReader {
  read(): Promise<Uint8Array | null>;
  readonly done: boolean;
}

function emptyBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => controller.close() });
}

/** A Content-Length body: pieces read straight into arrays of their own (one for a body up to 1 MB). */
function lengthReader(connection: Connection, length: number): BodyReader {
  let left = length;
  return {
    get done() {
      return left === 0;
    },
    async read() {
      if (left === 0) return null;
      const piece = new Uint8Array(Math.min(left, MAX_PIECE));
      let filled = 0;
      while (filled < piece.length) {
        const n = await connection.readInto(piece.subarray(filled));
        if (n === 0) {
          throw netError(
            `the server closed the connection ${length - left + filled} bytes into a ${length}-byte body`,
            "ECONNRESET",
          );
        }
        filled += n;
      }
      left -= piece.length;
      return piece;
    },
  };
}

/** A body that ends with the connection. */
function closeReader(connection: Connection): BodyReader {
  let done = false;
  return {
    get done() {
      return done;
    },
    async read() {
      if (connection.end === connection.start && !(await connection.fill())) {
        done = true;
        return null;
      }
      const piece = connection.buf.slice(connection.start, connection.end);
      connection.start = connection.end;
      return piece;
    },
  };
}

const chunkedEnd = () => netError("the server closed the connection in a chunked body", "ECONNRESET");

/** A chunked body: each chunk's data (copied out of the read buffer), then trailers, which are dropped. */
function chunkedReader(connection: Connection): BodyReader {
  let left = 0; // bytes left of the current chunk
  let done = false;
  const line = async (): Promise<string> => {
    let from = connection.start;
    for (;;) {
      const buf = connection.buf;
      for (let i = from; i + 1 < connection.end; i++) {
        if (buf[i] === 13 && buf[i + 1] === 10) {
          const text = latin1Text(buf.subarray(connection.start, i));
          connection.start = i + 2;
          return text;
        }
      }
      if (connection.end - connection.start > MAX_HEAD) {
        throw netError("a chunk-size or trailer line is too long", "HPE_INVALID_CHUNK_SIZE");
      }
      const before = connection.start;
      from = Math.max(connection.start, connection.end - 1);
      if (!(await connection.fill())) throw chunkedEnd();
      from += connection.start - before;
    }
  };
  const need = async (bytes: number) => {
    while (connection.end - connection.start < bytes) {
      if (!(await connection.fill())) throw chunkedEnd();
    }
  };
  return {
    get done() {
      return done;
    },
    async read() {
      for (;;) {
        if (done) return null;
        if (left > 0) {
          await need(1);
          const n = Math.min(left, connection.end - connection.start);
          const piece = connection.buf.slice(connection.start, connection.start + n);
          connection.start += n;
          left -= n;
          if (left === 0) {
            await need(2);
            if (connection.buf[connection.start] !== 13 || connection.buf[connection.start + 1] !== 10) {
              throw netError("no CRLF after a chunk's data", "HPE_INVALID_CHUNK_SIZE");
            }
            connection.start += 2;
          }
          return piece;
        }
        const sizeLine = await line();
        const size = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(sizeLine);
        if (!size) {
          throw netError(
            `invalid chunk size ${JSON.stringify(sizeLine.slice(0, 40))}`,
            "HPE_INVALID_CHUNK_SIZE",
          );
        }
        left = parseInt(size[1], 16);
        if (left === 0) {
          while ((await line()) !== ""); // trailers, up to the empty line
          done = true;
          return null;
        }
      }
    },
  };
}
