/**
 * The HTTP side of the camera: one MJPEG connection, single-frame polling, and the reconnect loop around either.
 * All parsing lives in mjpeg.ts; this module only moves bytes, watches the clock and turns HTTP trouble into
 * ServiceErrors whose messages say what to change.
 */

import { messageOf, ServiceError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { allocateFrame } from "./frame.ts";
import { boundaryFromContentType, isJpeg, MjpegParser } from "./mjpeg.ts";

export interface CameraFrame {
  jpeg: Uint8Array;
  /** Wall-clock time (ms since the epoch) when the bytes completing the frame arrived. */
  receivedAtMs: number;
  /** The part's headers (lower-case names); for polling, the response headers. */
  headers: Record<string, string>;
}

/** Why a part or response was not yielded: a parser error reason (MjpegErrorReason) or "not-jpeg". */
export type RejectReason = string;

export interface MjpegFramesOptions {
  /** Largest frame accepted; larger parts are skipped (and counted). */
  maxPartBytes: number;
  /** A connection or read that yields no bytes for this long fails with a retriable "stalled" error. */
  readTimeoutMs: number;
  /** Aborting ends the generator quietly. */
  signal?: AbortSignal;
  log: Logger;
  /** Called once per dropped part: parser errors by reason, non-JPEG parts as "not-jpeg". */
  onReject?: (reason: RejectReason) => void;
}

export interface PolledFramesOptions {
  /** Requests per second. */
  fps: number;
  readTimeoutMs: number;
  signal?: AbortSignal;
  log: Logger;
  maxPartBytes: number;
  onReject?: (reason: RejectReason) => void;
}

/** The original's rule for polling: the frame endpoint is the stream URL with `/stream` replaced by `/frame`. */
export function frameUrlFromStreamUrl(url: string): string {
  // Like Rust's str::replace in the original, every occurrence is replaced.
  return url.replaceAll("/stream", "/frame");
}

/**
 * The URL with the `quality` and `fps` query parameters the camera daemon reads (the original sends them on every
 * request), keeping any other parameters. Undefined values are left out.
 */
export function withQuery(url: string, params: { quality?: number; fps?: number }): string {
  const parsed = parseCameraUrl(url);
  if (params.quality !== undefined) parsed.searchParams.set("quality", String(params.quality));
  if (params.fps !== undefined) parsed.searchParams.set("fps", String(params.fps));
  return parsed.toString();
}

function parseCameraUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `camera URL "${url}" is not a valid URL: write it like http://192.168.1.42:8000/api/camera/stream`,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`camera URL "${url}" must use http:// or https://, not ${parsed.protocol}`);
  }
  return parsed;
}

/** Rejects after `ms` with `error()` unless cleared; lets every await on the network have a deadline. */
function deadline(ms: number, error: () => Error): { promise: Promise<never>; clear: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  // Nobody may await it when the guarded operation wins; that must not count as an unhandled rejection.
  promise.catch(() => {});
  return { promise, clear: () => clearTimeout(timer) };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Fetches with the caller's signal and a deadline for the response headers; network failures become ServiceErrors. */
async function fetchCamera(
  url: string,
  what: string,
  readTimeoutMs: number,
  controller: AbortController,
): Promise<Response> {
  const limit = deadline(
    readTimeoutMs,
    () =>
      new ServiceError("camera", `${what} at ${url} stalled: no response for ${seconds(readTimeoutMs)}`, {
        retriable: true,
      }),
  );
  const request = fetch(url, {
    signal: controller.signal,
    headers: { accept: "multipart/x-mixed-replace, image/jpeg" },
  });
  try {
    return await Promise.race([request, limit.promise]);
  } catch (error) {
    controller.abort();
    request.then((r) => r.body?.cancel(), () => {});
    if (error instanceof ServiceError || controller.signal.reason === error) throw error;
    throw new ServiceError("camera", `cannot reach ${what} at ${url}: ${messageOf(error)}`, {
      retriable: true,
      cause: error,
    });
  } finally {
    limit.clear();
  }
}

/** Throws a ServiceError naming the fix when the response is an HTTP error. */
async function checkStatus(response: Response, url: string, what: string): Promise<void> {
  if (response.ok) return;
  await response.body?.cancel();
  const status = `HTTP ${response.status}${response.statusText ? " " + response.statusText : ""}`;
  let hint = "";
  if (response.status === 404) {
    hint = what === "camera stream"
      ? ": check stream.url (newer Reachy Mini daemons dropped /api/camera/stream; use the daemon's current stream " +
        'path, or stream.mode = "polling" if it serves single frames)'
      : ": check the frame URL (it is stream.url with /stream replaced by /frame)";
  } else if (response.status === 401 || response.status === 403) {
    hint = ": the camera refuses access; put credentials it accepts into the URL or open it up";
  } else if (response.status >= 500) {
    hint = ": the camera daemon is failing; retrying";
  }
  // A 404 is retriable on purpose: a daemon being upgraded or started can answer 404 for a while, and the
  // reconnect loop backs off to 30 s, so a wrong URL gives a calm retry with a clear log line, not a storm.
  const retriable = response.status >= 500 || response.status === 404 || response.status === 408 ||
    response.status === 429;
  throw new ServiceError("camera", `${what} at ${url} answered ${status}${hint}`, { retriable });
}

/** The media type of a response, lower-case, without parameters. */
function mediaType(response: Response): string {
  return (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
}

/**
 * Frames from one MJPEG connection, until the stream ends (return), fails (throw ServiceError) or the signal
 * aborts (return). Only complete JPEGs are yielded; dropped parts are logged and counted through onReject.
 * The response body is cancelled whenever the generator finishes, including when the caller stops early.
 */
export async function* mjpegFrames(url: string, options: MjpegFramesOptions): AsyncGenerator<CameraFrame> {
  const { maxPartBytes, readTimeoutMs, signal, log, onReject } = options;
  parseCameraUrl(url);
  if (signal?.aborted) return;
  // Our own controller, so that a stall can abort the connection without aborting the caller's signal.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let reader: BodyReader | undefined;
  try {
    const response = await fetchCamera(url, "camera stream", readTimeoutMs, controller);
    await checkStatus(response, url, "camera stream");
    const type = mediaType(response);
    if (!type.startsWith("multipart/")) {
      await response.body?.cancel();
      throw notAStream(url, type);
    }
    const contentType = response.headers.get("content-type") ?? "";
    const boundary = boundaryFromContentType(contentType);
    if (boundary === null) {
      log.debug(`no boundary in Content-Type "${contentType}"; learning it from the stream`);
    }
    const parser = new MjpegParser({ boundary, maxPartBytes, allocate: allocateFrame });
    if (response.body === null) return;
    reader = new BodyReader(response.body, readTimeoutMs, `camera stream at ${url}`, controller, signal);
    log.info(`connected to camera stream at ${url}`);
    while (true) {
      const chunk = await reader.read();
      const receivedAtMs = Date.now();
      const events = chunk === null ? parser.end() : parser.push(chunk);
      for (const event of events) {
        if (event.kind === "error") {
          onReject?.(event.reason);
          if (event.reason === "no-boundary") {
            // Nothing will ever come out of this connection; a new one may start cleanly. The caller logs it.
            throw new ServiceError("camera", `camera stream at ${url} is unreadable: ${event.message}`, {
              retriable: true,
            });
          }
          log.warn(`camera stream at ${url}: ${event.message}`);
        } else if (isJpeg(event.body)) {
          yield { jpeg: event.body, receivedAtMs, headers: event.headers };
        } else {
          log.debug(
            `skipped a ${event.headers["content-type"] ?? "untyped"} part of ${event.body.length} bytes ` +
              `(not a complete JPEG)`,
          );
          onReject?.("not-jpeg");
        }
      }
      if (chunk === null) return;
    }
  } catch (error) {
    // Aborting is how the caller stops us: end quietly instead of reporting the AbortError.
    if (signal?.aborted) return;
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Cancelling releases the connection even when the caller stopped in the middle of the stream.
    await reader?.cancel().catch(() => {});
    controller.abort();
  }
}

function notAStream(url: string, type: string): ServiceError {
  if (type === "text/html") {
    return new ServiceError(
      "camera",
      `camera at ${url} serves text/html, not an MJPEG stream (multipart/x-mixed-replace): the URL points at a ` +
        `web page or an error page; check stream.url`,
      { retriable: true },
    );
  }
  if (type === "image/jpeg") {
    return new ServiceError(
      "camera",
      `camera at ${url} serves a single JPEG (image/jpeg), not an MJPEG stream: use stream.mode = "polling" for ` +
        `this URL, or the daemon's stream URL`,
      { retriable: false },
    );
  }
  const served = type || "no Content-Type";
  return new ServiceError(
    "camera",
    `camera at ${url} serves ${served}, not an MJPEG stream (multipart/x-mixed-replace); check stream.url`,
    { retriable: true },
  );
}

/** Size of the one buffer a stream is read into: what a read returns at most. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Reads a response body chunk by chunk into one buffer it reuses (a BYOB reader; a plain reader where the body is
 * not a byte stream), so that reading a camera allocates nothing per chunk. A watchdog replaces a timer per read:
 * one timer per `ms`, re-armed from the time of the last bytes, aborts the connection once `ms` went by without
 * any; the read then fails with a retriable "stalled" ServiceError. A broken connection is a retriable "broke
 * off"; the caller's abort passes through as it is, so that the caller can end quietly.
 */
class BodyReader {
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  #buffer: ArrayBuffer = new ArrayBuffer(READ_BUFFER_BYTES);
  #lastBytesAt = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stalled = false;
  #done = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly ms: number,
    private readonly what: string,
    private readonly controller: AbortController,
    private readonly signal: AbortSignal | undefined,
  ) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: read its chunks as they come.
    }
    this.#byob = byob;
    this.#plain = byob ? null : body.getReader();
    this.#arm(ms);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      const quiet = Date.now() - this.#lastBytesAt;
      if (quiet < this.ms) return this.#arm(this.ms - quiet);
      this.#stalled = true;
      this.controller.abort();
    }, ms);
  }

  /** The next bytes (valid until the next read), or null at the end of the body. */
  async read(): Promise<Uint8Array | null> {
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = this.#byob ? await this.#byob.read(new Uint8Array(this.#buffer)) : await this.#plain!.read();
    } catch (error) {
      this.#stop();
      if (this.#stalled) throw this.#stall();
      if (error instanceof ServiceError || this.signal?.aborted) throw error;
      throw new ServiceError("camera", `${this.what} broke off: ${messageOf(error)}`, {
        retriable: true,
        cause: error,
      });
    }
    if (this.#stalled) {
      this.#stop();
      throw this.#stall();
    }
    if (result.done) {
      this.#stop();
      return null;
    }
    this.#lastBytesAt = Date.now();
    // A BYOB read hands the buffer back (transferred): it is the one to read into next time.
    if (this.#byob) this.#buffer = result.value.buffer as ArrayBuffer;
    return result.value;
  }

  #stall(): ServiceError {
    return new ServiceError(
      "camera",
      `${this.what} stalled: no bytes for ${
        seconds(this.ms)
      } (the camera accepted the connection but stopped ` +
        `sending)`,
      { retriable: true },
    );
  }

  #stop(): void {
    this.#done = true;
    clearTimeout(this.#timer);
  }

  /** Releases the connection, also in the middle of the stream. */
  async cancel(): Promise<void> {
    if (!this.#done) this.#stop();
    await (this.#byob ?? this.#plain)!.cancel().catch(() => {});
  }
}

/**
 * The next chunk, or a retriable ServiceError when none comes within `ms` ("stalled") or the connection breaks.
 * Errors caused by the caller's abort pass through unchanged so that the caller can end quietly.
 */
async function readWithDeadline(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
  what: string,
  signal: AbortSignal | undefined,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  const message =
    `${what} stalled: no bytes for ${seconds(ms)} (the camera accepted the connection but stopped ` +
    `sending)`;
  const limit = deadline(ms, () => new ServiceError("camera", message, { retriable: true }));
  try {
    return await Promise.race([reader.read(), limit.promise]);
  } catch (error) {
    if (error instanceof ServiceError || signal?.aborted) throw error;
    throw new ServiceError("camera", `${what} broke off: ${messageOf(error)}`, {
      retriable: true,
      cause: error,
    });
  } finally {
    limit.clear();
  }
}

/** Reads a whole body, failing when it exceeds `max` bytes or stalls. */
async function readBody(
  response: Response,
  url: string,
  max: number,
  readTimeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array | null> {
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const result = await readWithDeadline(reader, readTimeoutMs, `camera frame at ${url}`, signal);
      if (result.done) break;
      size += result.value.length;
      if (size > max) return null;
      chunks.push(result.value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const out = allocateFrame(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Sleeps `ms`, waking early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Frames by polling single JPEGs at `fps` (the original's "polling" mode, for daemons without a stream). Runs
 * until an HTTP error (throw ServiceError) or the signal aborts (return). A slow camera lowers the rate rather
 * than piling up requests: the next request starts one period after the previous one started, or at once.
 */
export async function* polledFrames(
  frameUrl: string,
  options: PolledFramesOptions,
): AsyncGenerator<CameraFrame> {
  const { fps, readTimeoutMs, signal, log, maxPartBytes, onReject } = options;
  parseCameraUrl(frameUrl);
  if (!(fps > 0) || !Number.isFinite(fps)) throw new RangeError(`fps must be a positive number, got ${fps}`);
  const periodMs = 1000 / fps;
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!signal?.aborted) {
      const started = performance.now();
      const response = await fetchCamera(frameUrl, "camera frame", readTimeoutMs, controller);
      await checkStatus(response, frameUrl, "camera frame");
      const type = mediaType(response);
      if (type === "text/html" || type.startsWith("multipart/")) {
        await response.body?.cancel();
        throw new ServiceError(
          "camera",
          `camera at ${frameUrl} serves ${type}, not a single JPEG: ` +
            (type === "text/html"
              ? "the URL points at a web page or an error page; check the frame URL"
              : 'it is a stream; use stream.mode = "mjpeg" for this URL'),
          { retriable: type === "text/html" },
        );
      }
      const body = await readBody(response, frameUrl, maxPartBytes, readTimeoutMs, signal);
      const receivedAtMs = Date.now();
      if (body === null) {
        log.warn(`camera frame at ${frameUrl} is over maxPartBytes (${maxPartBytes}); skipped it`);
        onReject?.("part-too-large");
      } else if (!isJpeg(body)) {
        log.debug(
          `camera frame at ${frameUrl} is not a complete JPEG (${body.length} bytes, ${type}); skipped it`,
        );
        onReject?.("not-jpeg");
      } else {
        yield { jpeg: body, receivedAtMs, headers: Object.fromEntries(response.headers) };
      }
      const wait = periodMs - (performance.now() - started);
      if (wait > 0) await sleep(wait, signal);
    }
  } catch (error) {
    if (signal?.aborted) return;
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    controller.abort();
  }
}

export interface CameraFramesOptions {
  log: Logger;
  /** Aborting stops the loop (and the running source) quietly. */
  signal?: AbortSignal;
  /** First reconnect delay; doubles after each failure. 2000 by default, like the original. */
  initialBackoffMs?: number;
  /** Cap of the reconnect delay; 30000 by default. */
  maxBackoffMs?: number;
  /** How to wait; injectable for tests. Must return early when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * The reconnect loop: runs `source` (one connection) again whenever it ends or fails, waiting 2 s, 4 s, 8 s ...
 * up to 30 s between attempts, back to 2 s once a frame arrives. Stops when the signal aborts. Errors that cannot
 * heal by waiting (a non-retriable ServiceError, a TypeError or RangeError from bad settings) are rethrown.
 */
export async function* cameraFrames<T>(
  source: () => AsyncIterable<T>,
  options: CameraFramesOptions,
): AsyncGenerator<T> {
  const { log, signal, initialBackoffMs = 2000, maxBackoffMs = 30_000, sleep: wait = sleep } = options;
  if (!(initialBackoffMs > 0) || !(maxBackoffMs >= initialBackoffMs)) {
    throw new RangeError(
      `backoff must satisfy 0 < initialBackoffMs <= maxBackoffMs, got ${initialBackoffMs} and ${maxBackoffMs}`,
    );
  }
  let backoff = initialBackoffMs;
  while (!signal?.aborted) {
    let why: string;
    try {
      for await (const frame of source()) {
        backoff = initialBackoffMs;
        yield frame;
        if (signal?.aborted) return;
      }
      why = "camera stream ended (the camera closed the connection)";
    } catch (error) {
      if (signal?.aborted) return;
      if (
        (error instanceof ServiceError && !error.retriable) || error instanceof TypeError ||
        error instanceof RangeError
      ) {
        throw error;
      }
      why = `camera stream failed (${messageOf(error)})`;
    }
    if (signal?.aborted) return;
    log.warn(`${why}: reconnecting in ${seconds(backoff)}`);
    await wait(backoff, signal);
    backoff = Math.min(backoff * 2, maxBackoffMs);
  }
}
