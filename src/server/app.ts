/**
 * The HTTP API and the web UI (`deno task serve`): search, look at, label and export the stored frames.
 *
 * JSON routes under /api (listed in `createApp` and described by /openapi.json), the web UI's static files from
 * web/ at /. An object key is one path segment, percent-encoded (`encodeURIComponent`, so '/' is `%2F`):
 * `/api/frames/frames%2Freachy-001%2F2026-02-18%2F20260218T093616735Z_000008.jpg/image`. Keys only ever come
 * from the catalog: a key the catalog does not have is 404 and no store is asked for it.
 *
 * Errors are `{"error": "..."}` naming the problem: 400 bad input, 401 missing token, 403 a Host this server
 * does not answer to, 404 unknown frame, label or clip, 409 a rename onto an existing label without merge, 413 a
 * body too large, 415 a wrong content type, 502 a store that failed. Writes (POST, PATCH, DELETE) need
 * `Authorization: Bearer <server.token>` when a token is configured; reads need it too when the server is bound
 * beyond loopback (unless server.public_reads), as a header or as the UI's `frame-bucket-token-<port>` cookie
 * (images and downloads cannot send headers).
 *
 * Every request's `Host` must be an IP address, `localhost`, or a name of server.allowed_hosts: a web page whose
 * DNS name is rebound to this machine's address (DNS rebinding) sends its own name, and is refused, so it cannot
 * read the API from inside the victim's browser.
 */
import { Catalog, catalogPath, type FrameRow } from "../catalog/sqlite.ts";
import type { Config } from "../config.ts";
import { messageOf } from "../errors.ts";
import { fetchFrame } from "../retention/eviction.ts";
import { type ExportPlan, labelFolder, planExport } from "../library/export.ts";
import { EXPORT_ID, ExportTracker, openExportStream } from "../library/export_stream.ts";
import {
  errorResponse,
  hostAllowed,
  HttpError,
  isLoopback,
  json,
  readBody,
  readJsonObject,
  type RouteContext,
  Router,
  sameSecret,
} from "./http.ts";
import { checkRobotId } from "../key.ts";
import { checkLabel, type Clip, DEFAULT_LABEL_LIMITS, type LabelLimits, Labels } from "../library/labels.ts";
import { createLogger, type Logger } from "../log.ts";
import { openApiDocument } from "./openapi.ts";
import type { StoragePlugin } from "../plugin.ts";
import { archiveStore, localStore } from "../filter/loader.ts";
import {
  attachLabels,
  countFrames,
  MAX_LIMIT,
  parseTime,
  parseTimeRange,
  type SearchFilter,
  searchFrames,
  TIERS,
} from "../library/search.ts";
import { hashBytesOf, JpegHasher, SimilarFrames } from "../library/similar.ts";
import { Thumbnails } from "../library/thumbs.ts";
import { hitJson } from "../library/search.ts";
import type { Tier } from "../catalog/sqlite.ts";

export interface AppDeps {
  catalog: Catalog;
  /** The local tier (rustfs plugin). */
  local: StoragePlugin;
  /** The archive tier (s3_archive plugin). */
  archive: StoragePlugin;
  /** aws_s3.prefix. */
  archivePrefix: string;
  /** Hashes uploads as the consumer does. */
  hasher: Pick<JpegHasher, "hash">;
  similar: SimilarFrames;
  /** Writes need `Authorization: Bearer <token>` when this is not empty. */
  token?: string;
  /** Reads need the token too (the server is reachable beyond loopback without server.public_reads). */
  readsNeedToken?: boolean;
  /** DNS names the Host header may carry besides IP addresses and `localhost` (server.allowed_hosts). */
  allowedHosts?: string[];
  /** `[labels]` limits (default: DEFAULT_LABEL_LIMITS). */
  labelLimits?: Partial<LabelLimits>;
  /** Waits between attempts of a failing frame fetch during an export (default: export.ts's). */
  exportRetryDelaysMs?: number[];
  /** Folder of the web UI's files; null serves none. Default: web/ of this project. */
  webDir?: string | null;
  log?: Logger;
  /** Bytes of thumbnails kept in memory (default 32 MiB). */
  thumbCacheBytes?: number;
}

export interface App {
  router: Router;
  handler: (request: Request) => Promise<Response>;
  thumbnails: Thumbnails;
  exports: ExportTracker;
}

/** Largest JPEG accepted by POST /api/similar. */
export const MAX_UPLOAD_BYTES = 32 * 1024 * 1024;
/** Most keys one label request may name. */
export const MAX_KEYS = 10_000;
/** Cookie (with the server's port appended) through which the UI's images and downloads carry the token. */
export const TOKEN_COOKIE = "frame-bucket-token";
const MAX_K = 1000;

const IMMUTABLE = "public, max-age=31536000, immutable";
const BUCKETS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

// --------------------------------------------------------------------------------------------- input parsing

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return fallback;
  const n = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new HttpError(400, `${name} ${JSON.stringify(text)} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

function boolParam(url: URL, name: string): boolean {
  const text = url.searchParams.get(name);
  if (text === null || text === "" || text === "false" || text === "0") return false;
  if (text === "true" || text === "1") return true;
  throw new HttpError(400, `${name} ${JSON.stringify(text)} must be true or false`);
}

function oneOf<T extends string>(url: URL, name: string, allowed: readonly T[], fallback: T): T {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return fallback;
  if (!allowed.includes(text as T)) {
    throw new HttpError(400, `${name} ${JSON.stringify(text)} must be one of ${allowed.join(", ")}`);
  }
  return text as T;
}

function robotsParam(url: URL): string[] {
  return url.searchParams.getAll("robot").filter((r) => r !== "").map((r) => {
    try {
      return checkRobotId(r);
    } catch (error) {
      throw new HttpError(400, `robot: ${messageOf(error)}`);
    }
  });
}

/** from/to query parameters: ISO 8601 or epoch ms, inclusive; `to` at a coarse precision covers its unit. */
function spanParams(url: URL): { fromMs?: number; toMs?: number } {
  return parseTimeRange(url.searchParams.get("from"), url.searchParams.get("to"), ["from", "to"]);
}

function searchFilter(url: URL): SearchFilter {
  const tiers = url.searchParams.getAll("tier").filter((t) => t !== "");
  for (const t of tiers) {
    if (!TIERS.includes(t as Tier)) {
      throw new HttpError(400, `tier ${JSON.stringify(t)} must be one of ${TIERS.join(", ")}`);
    }
  }
  const labels = url.searchParams.getAll("label").filter((l) => l !== "");
  const allLabels = boolParam(url, "all_labels");
  if (allLabels && labels.length === 0) throw new HttpError(400, "all_labels needs at least one label");
  return { robots: robotsParam(url), ...spanParams(url), labels, allLabels, tiers: tiers as Tier[] };
}

/** A time in a JSON body: ISO 8601 / compact / epoch-ms text, or a number of ms. */
function bodyTime(value: unknown, name: string, end = false): number {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new HttpError(400, `${name} ${value} is not a whole number of ms since the epoch`);
    }
    return value;
  }
  if (typeof value !== "string" || value === "") {
    throw new HttpError(400, `${name} must be an ISO 8601 time or ms since the epoch`);
  }
  return parseTime(value, name, { end });
}

function bodyStrings(body: Record<string, unknown>, name: string): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new HttpError(400, `${name} must be an array of strings`);
  }
  return v as string[];
}

function bodyString(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new HttpError(400, `${name} must be a string`);
  return v;
}

function labelNames(names: string[] | undefined, what: string): string[] {
  return (names ?? []).map((n) => {
    try {
      return checkLabel(n);
    } catch (error) {
      throw new HttpError(400, `${what}: ${messageOf(error)}`);
    }
  });
}

/** Names of labels to take off: looked up as they are (an old label may break today's naming rules). */
function existingLabelNames(names: string[] | undefined, what: string): string[] {
  for (const n of names ?? []) {
    if (n === "") throw new HttpError(400, `${what}: a label name must not be empty`);
  }
  return names ?? [];
}

/**
 * The tokens a request presents: the `Authorization: Bearer` one, else (for reads) those of the UI's cookies. A
 * browser sends the cookies of every port of a host, so there may be several (one per server): any may match.
 */
function presentedTokens(request: Request, cookies: boolean): string[] {
  const m = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "");
  if (m) return [m[1].trim()];
  const out: string[] = [];
  if (!cookies) return out;
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    const name = part.slice(0, eq).trim();
    if (eq > 0 && (name === TOKEN_COOKIE || name.startsWith(`${TOKEN_COOKIE}-`))) {
      try {
        out.push(decodeURIComponent(part.slice(eq + 1).trim()));
      } catch {
        // a malformed cookie is no token
      }
    }
  }
  return out;
}

/**
 * `Content-Disposition` for a download: an ASCII `filename` for old clients and the real name as RFC 5987
 * `filename*` (UTF-8, percent-encoded), both made of the labels' safe folder names.
 */
export function attachment(name: string): string {
  const ascii = name.replace(/[^A-Za-z0-9._+-]/g, "_");
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

function clipId(text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, `clip id ${JSON.stringify(text)} is not a number`);
  return Number(text);
}

// ------------------------------------------------------------------------------------------------ JSON shapes

const iso = (ms: number) => new Date(ms).toISOString();

function hex(bytes: Uint8Array | null): string | null {
  return bytes ? Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") : null;
}

function clipJson(catalog: Catalog, c: Clip): Record<string, unknown> {
  return {
    id: c.id,
    robot_id: c.robotId,
    from: iso(c.fromMs),
    to: iso(c.toMs),
    from_ms: c.fromMs,
    to_ms: c.toMs,
    name: c.name,
    note: c.note,
    labels: c.labels,
    created: iso(c.createdMs),
    author: c.author,
    frames: countFrames(catalog, { robots: [c.robotId], fromMs: c.fromMs, toMs: c.toMs }),
  };
}

/** The entity tag of a frame: the store's when the catalog has it, else one made from key and size. */
export function frameEtag(row: FrameRow): string {
  if (row.etag) return `"${row.etag.replace(/"/g, "")}"`;
  let h = 0x811c9dc5;
  for (let i = 0; i < row.key.length; i++) h = Math.imul(h ^ row.key.charCodeAt(i), 0x01000193);
  return `"fb-${(h >>> 0).toString(16)}-${row.size}"`;
}

function notModified(request: Request, etag: string): boolean {
  const header = request.headers.get("if-none-match");
  if (!header) return false;
  const bare = etag.replace(/^W\//, "");
  return header.split(",").some((t) => {
    const tag = t.trim();
    return tag === "*" || tag.replace(/^W\//, "") === bare;
  });
}

// ---------------------------------------------------------------------------------------------- static files

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
};

const CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Every file under `dir` (relative paths with '/'): the only static paths ever served. */
function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${dir}/${prefix}`)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...listFiles(dir, path));
    else if (e.isFile) out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------- the app

/** The API and UI as a request handler over already opened catalog, stores, hasher and similarity index. */
export function createApp(deps: AppDeps): App {
  const { catalog, similar } = deps;
  const labels = new Labels(catalog, { limits: deps.labelLimits });
  const limits = { ...DEFAULT_LABEL_LIMITS, ...deps.labelLimits };
  const log = deps.log ?? createLogger({ level: "info", format: "text" }, "server");
  const token = deps.token ?? "";
  const readsNeedToken = deps.readsNeedToken ?? false;
  if (readsNeedToken && !token) {
    throw new RangeError("reads cannot need the token when there is none: set server.token");
  }
  const allowedHosts = deps.allowedHosts ?? [];
  const exports = new ExportTracker();
  const stores = { catalog, local: deps.local, archive: deps.archive, archivePrefix: deps.archivePrefix };
  const webDir = deps.webDir === undefined ? new URL("../../web", import.meta.url).pathname : deps.webDir;
  const webFiles = new Set(webDir ? listFiles(webDir) : []);

  const frameOr404 = (key: string): FrameRow => {
    const row = catalog.get(key);
    if (!row) throw new HttpError(404, `no frame ${JSON.stringify(key)} in the catalog`);
    return row;
  };
  const load = async (key: string): Promise<Uint8Array | null> => {
    try {
      return await fetchFrame(key, stores);
    } catch (error) {
      throw new HttpError(502, `cannot read frame ${key} from the store: ${messageOf(error)}`);
    }
  };
  const thumbnails = new Thumbnails(load, deps.thumbCacheBytes);
  const labelExists = (name: string) =>
    catalog.db.prepare("SELECT 1 AS x FROM labels WHERE name = ?").get(name);
  /** Runs `fn` as one write transaction (the Labels calls inside join it). */
  const tx = <T>(fn: () => T): T => {
    catalog.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      catalog.db.exec("COMMIT");
      return out;
    } catch (error) {
      catalog.db.exec("ROLLBACK");
      throw error;
    }
  };
  const similarOptions = (url: URL) => {
    const robots = robotsParam(url);
    return {
      k: intParam(url, "k", 20, 1, MAX_K),
      maxDistance: url.searchParams.get("max_distance")
        ? intParam(url, "max_distance", 0, 0, 4096)
        : undefined,
      // No robot given means every robot (an empty list would match none).
      robots: robots.length ? robots : undefined,
      ...spanParams(url),
    };
  };

  /** Refuses a list of more labels than one request may name, before any of them is looked at. */
  const capped = (names: string[] | undefined, what: string): string[] | undefined => {
    if (names && names.length > limits.maxPerRequest) {
      throw new HttpError(
        400,
        `${what} names ${names.length} labels; one request may name at most ${limits.maxPerRequest} ` +
          `(labels.max_per_request): send them in several requests, or raise labels.max_per_request`,
      );
    }
    return names;
  };

  const router = new Router();

  // ---- robots
  router.add("GET", "/api/robots", () => {
    const rows = catalog.db.prepare(
      `SELECT robot_id, COUNT(*) AS frames, COALESCE(SUM(size), 0) AS bytes, MIN(ts_ms) AS first_ms,
         MAX(ts_ms) AS last_ms FROM frames GROUP BY robot_id ORDER BY robot_id`,
    ).all() as { robot_id: string; frames: number; bytes: number; first_ms: number; last_ms: number }[];
    return json({
      robots: rows.map((r) => ({
        robot_id: r.robot_id,
        frames: Number(r.frames),
        bytes: Number(r.bytes),
        first_capture_time: iso(Number(r.first_ms)),
        last_capture_time: iso(Number(r.last_ms)),
        first_timestamp_ms: Number(r.first_ms),
        last_timestamp_ms: Number(r.last_ms),
        latest_key: catalog.newest(r.robot_id)?.key ?? null,
      })),
    });
  });

  router.add("GET", "/api/robots/{robot}/timeline", ({ url, params }) => {
    const robot = params.robot;
    const span = spanParams(url);
    const range = catalog.db.prepare(
      "SELECT COUNT(*) AS n, MIN(ts_ms) AS first_ms, MAX(ts_ms) AS last_ms FROM frames WHERE robot_id = ?",
    ).get(robot) as { n: number; first_ms: number | null; last_ms: number | null };
    if (Number(range.n) === 0) {
      throw new HttpError(404, `no frames of robot ${JSON.stringify(robot)} in the catalog`);
    }
    const from = span.fromMs ?? Number(range.first_ms), to = span.toMs ?? Number(range.last_ms);
    const chosen = oneOf(url, "bucket", ["auto", "minute", "hour", "day"] as const, "auto");
    // auto: minutes up to 6 hours, hours up to 60 days, days beyond.
    const bucket = chosen !== "auto"
      ? chosen
      : to - from <= 6 * BUCKETS.hour
      ? "minute"
      : to - from <= 60 * BUCKETS.day
      ? "hour"
      : "day";
    const width = BUCKETS[bucket];
    if ((to - from) / width > 100_000) {
      throw new HttpError(
        400,
        `from..to spans more than 100000 ${bucket}s: choose a coarser bucket or a shorter span`,
      );
    }
    const rows = catalog.db.prepare(
      `SELECT ts_ms / CAST(? AS INTEGER) AS b, COUNT(*) AS n FROM frames WHERE robot_id = ? AND ts_ms >= ? AND ts_ms <= ?
       GROUP BY b ORDER BY b`,
    ).all(width, robot, from, to) as { b: number; n: number }[];
    return json({
      robot_id: robot,
      bucket,
      bucket_ms: width,
      first_timestamp_ms: Number(range.first_ms),
      last_timestamp_ms: Number(range.last_ms),
      frames: rows.reduce((sum, r) => sum + Number(r.n), 0),
      buckets: rows.map((r) => ({
        start: iso(Number(r.b) * width),
        start_ms: Number(r.b) * width,
        frames: Number(r.n),
      })),
    });
  });

  // ---- frames
  router.add("GET", "/api/frames", ({ url }) => {
    const filter = searchFilter(url);
    const page = searchFrames(catalog, {
      ...filter,
      order: oneOf(url, "order", ["newest", "oldest"] as const, "newest"),
      limit: intParam(url, "limit", 50, 1, MAX_LIMIT),
      cursor: url.searchParams.get("cursor") || null,
    });
    return json({
      frames: page.hits.map(hitJson),
      next_cursor: page.nextCursor,
      ...(boolParam(url, "count") ? { total: countFrames(catalog, filter) } : {}),
    });
  });

  router.add("GET", "/api/frames/{key}", ({ params }) => {
    const row = frameOr404(params.key);
    const hit = attachLabels(catalog, [row])[0];
    const near = (op: "<" | ">") =>
      (catalog.db.prepare(
        `SELECT key FROM frames WHERE robot_id = ? AND ts_ms ${op}= ? AND (ts_ms, seq, key) ${op} (?, ?, ?)
         ORDER BY ts_ms ${op === "<" ? "DESC" : "ASC"}, seq ${op === "<" ? "DESC" : "ASC"},
           key ${op === "<" ? "DESC" : "ASC"} LIMIT 1`,
      ).get(row.robotId, row.timestampMs, row.timestampMs, row.seq, row.key) as { key: string } | undefined)
        ?.key ?? null;
    return json({
      ...hitJson(hit),
      etag: row.etag,
      filter: row.filter,
      filter_distance: row.distance,
      hash: hex(row.hash),
      stored_time: iso(row.storedMs),
      tier_changed_time: iso(row.tierChangedMs),
      previous_key: near("<"),
      next_key: near(">"),
    });
  });

  router.add("GET", "/api/frames/{key}/image", async ({ request, params }) => {
    const row = frameOr404(params.key);
    const etag = frameEtag(row);
    const headers = { etag, "cache-control": IMMUTABLE };
    if (notModified(request, etag)) return new Response(null, { status: 304, headers });
    const bytes = await load(row.key);
    if (!bytes) {
      throw new HttpError(404, `frame ${row.key} is in the catalog (tier ${row.tier}) but no store holds it`);
    }
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: { ...headers, "content-type": "image/jpeg", "content-length": String(bytes.length) },
    });
  });

  router.add("GET", "/api/frames/{key}/thumb", async ({ request, params }) => {
    const row = frameOr404(params.key);
    const etag = frameEtag(row).replace(/^"/, '"thumb-');
    const headers = { etag, "cache-control": IMMUTABLE };
    if (notModified(request, etag)) return new Response(null, { status: 304, headers });
    let thumb: Uint8Array | null;
    try {
      thumb = await thumbnails.get(row.key);
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new HttpError(500, `cannot make a thumbnail of ${row.key}: ${messageOf(error)}`);
    }
    if (!thumb) {
      throw new HttpError(404, `frame ${row.key} is in the catalog (tier ${row.tier}) but no store holds it`);
    }
    return new Response(thumb as Uint8Array<ArrayBuffer>, {
      headers: { ...headers, "content-type": "image/jpeg", "content-length": String(thumb.length) },
    });
  });

  router.add("GET", "/api/frames/{key}/similar", ({ url, params }) => {
    const row = frameOr404(params.key);
    if (!row.hash) throw new HttpError(400, `frame ${row.key} has no perceptual hash (filter ${row.filter})`);
    return json({ frames: similar.nearestToKey(row.key, similarOptions(url)).map(hitJson) });
  });

  router.add("POST", "/api/similar", async ({ request, url }) => {
    const type = request.headers.get("content-type") ?? "";
    if (!/^(image\/jpeg|image\/jpg|application\/octet-stream)\b/i.test(type)) {
      throw new HttpError(
        415,
        `upload the JPEG as the body with Content-Type: image/jpeg, not ${JSON.stringify(type)}`,
      );
    }
    const options = similarOptions(url);
    const jpeg = await readBody(request, MAX_UPLOAD_BYTES);
    if (jpeg.length === 0) throw new HttpError(400, "the body is empty: upload a JPEG");
    let hash: Uint8Array;
    try {
      hash = await deps.hasher.hash(jpeg, options.robots?.length === 1 ? options.robots[0] : "");
    } catch (error) {
      throw new HttpError(400, `the upload cannot be hashed: ${messageOf(error)}`);
    }
    return json({ hash: hex(hash), frames: similar.nearest(hash, options).map(hitJson) });
  });

  // ---- labels
  router.add("GET", "/api/labels", () => json({ labels: labels.list().map(({ id: _, ...l }) => l) }));

  router.add("POST", "/api/frames/labels", async ({ request }) => {
    const body = await readJsonObject(request);
    const add = labelNames(capped(bodyStrings(body, "add"), "add"), "add");
    const remove = existingLabelNames(capped(bodyStrings(body, "remove"), "remove"), "remove");
    if (add.length === 0 && remove.length === 0) throw new HttpError(400, "give labels to add and/or remove");
    const author = bodyString(body, "author") ?? null;
    const keys = bodyStrings(body, "keys");
    let target: { keys: string[] } | { robotId: string; fromMs: number; toMs: number };
    if (keys !== undefined) {
      if (body.robot !== undefined) throw new HttpError(400, "give keys or robot + from + to, not both");
      if (keys.length === 0 || keys.length > MAX_KEYS) {
        throw new HttpError(400, `keys must hold 1 to ${MAX_KEYS} frame keys`);
      }
      const missing = keys.filter((k) => !catalog.get(k));
      if (missing.length) {
        throw new HttpError(
          404,
          `${missing.length} frame key(s) not in the catalog: ${
            missing.slice(0, 3).map((k) => JSON.stringify(k)).join(", ")
          }`,
        );
      }
      target = { keys };
    } else {
      const robot = bodyString(body, "robot");
      if (robot === undefined) throw new HttpError(400, "give keys, or robot + from + to");
      if (body.from === undefined || body.to === undefined) {
        throw new HttpError(400, "robot needs from and to");
      }
      const fromMs = bodyTime(body.from, "from"), toMs = bodyTime(body.to, "to", true);
      target = { robotId: robot, fromMs, toMs };
    }
    for (const name of remove) {
      if (!labelExists(name)) throw new HttpError(404, `unknown label ${JSON.stringify(name)}`);
    }
    const result = tx(() => ({
      added: add.length ? labels.addLabels(target, add, { author }) : 0,
      removed: remove.length ? labels.removeLabels(target, remove, { author }) : 0,
    }));
    return json(result);
  });

  router.add("POST", "/api/labels/rename", async ({ request }) => {
    const body = await readJsonObject(request);
    const from = bodyString(body, "from"), to = bodyString(body, "to");
    if (!from || !to) throw new HttpError(400, "give from (the label) and to (its new name)");
    if (body.merge !== undefined && typeof body.merge !== "boolean") {
      throw new HttpError(400, "merge must be true or false");
    }
    const merge = body.merge === true;
    labelNames([to], "to");
    if (!labelExists(from)) throw new HttpError(404, `unknown label ${JSON.stringify(from)}`);
    const merged = from !== to && Boolean(labelExists(to));
    if (merged && !merge) {
      throw new HttpError(
        409,
        `label ${JSON.stringify(to)} already exists: send merge: true to merge ${
          JSON.stringify(from)
        } into it`,
      );
    }
    labels.renameLabel(from, to, { merge, author: bodyString(body, "author") ?? null });
    return json({ from, to, merged });
  });

  router.add("DELETE", "/api/labels/{name}", ({ url, params }) => {
    if (!labelExists(params.name)) throw new HttpError(404, `unknown label ${JSON.stringify(params.name)}`);
    const counts = labels.deleteLabel(params.name, { author: url.searchParams.get("author") || null });
    return json({ deleted: params.name, ...counts });
  });

  // ---- clips
  router.add("GET", "/api/clips", ({ url }) => {
    const robots = robotsParam(url);
    if (robots.length > 1) throw new HttpError(400, "give at most one robot");
    const label = url.searchParams.get("label") || undefined;
    const clips = labels.listClips({ robotId: robots[0], label, ...spanParams(url) });
    return json({ clips: clips.map((c) => clipJson(catalog, c)) });
  });

  router.add("POST", "/api/clips", async ({ request }) => {
    const body = await readJsonObject(request);
    const robot = bodyString(body, "robot");
    const name = bodyString(body, "name");
    if (!robot) throw new HttpError(400, "a clip needs robot");
    if (!name) throw new HttpError(400, "a clip needs a name");
    if (body.from === undefined || body.to === undefined) {
      throw new HttpError(400, "a clip needs from and to");
    }
    const clip = labels.createClip({
      robotId: robot,
      fromMs: bodyTime(body.from, "from"),
      toMs: bodyTime(body.to, "to", true),
      name,
      note: bodyString(body, "note") ?? "",
      labels: labelNames(capped(bodyStrings(body, "labels"), "labels"), "labels"),
    }, { author: bodyString(body, "author") ?? null });
    return json(clipJson(catalog, clip), 201, { location: `/api/clips/${clip.id}` });
  });

  router.add("PATCH", "/api/clips/{id}", async ({ request, params }) => {
    const id = clipId(params.id);
    if (!labels.getClip(id)) throw new HttpError(404, `no clip ${id}`);
    const body = await readJsonObject(request);
    const known = ["robot", "from", "to", "name", "note", "labels", "add_labels", "remove_labels", "author"];
    const unknown = Object.keys(body).filter((k) => !known.includes(k));
    if (unknown.length) {
      throw new HttpError(400, `unknown field(s) ${unknown.join(", ")} (known: ${known.join(", ")})`);
    }
    const clip = labels.updateClip(id, {
      robotId: bodyString(body, "robot"),
      fromMs: body.from === undefined ? undefined : bodyTime(body.from, "from"),
      toMs: body.to === undefined ? undefined : bodyTime(body.to, "to", true),
      name: bodyString(body, "name"),
      note: bodyString(body, "note"),
      labels: body.labels === undefined
        ? undefined
        : labelNames(capped(bodyStrings(body, "labels"), "labels"), "labels"),
      addLabels: labelNames(capped(bodyStrings(body, "add_labels"), "add_labels"), "add_labels"),
      removeLabels: existingLabelNames(
        capped(bodyStrings(body, "remove_labels"), "remove_labels"),
        "remove_labels",
      ),
    }, { author: bodyString(body, "author") ?? null });
    return json(clipJson(catalog, clip));
  });

  router.add("DELETE", "/api/clips/{id}", ({ url, params }) => {
    const id = clipId(params.id);
    if (!labels.getClip(id)) throw new HttpError(404, `no clip ${id}`);
    labels.deleteClip(id, { author: url.searchParams.get("author") || null });
    return json({ deleted: id });
  });

  // ---- journal, export, description
  router.add("GET", "/api/changes", ({ url }) => {
    const since = url.searchParams.get("since");
    const changes = labels.changes({
      afterId: url.searchParams.get("after")
        ? intParam(url, "after", 0, 0, Number.MAX_SAFE_INTEGER)
        : undefined,
      target: url.searchParams.get("target") || undefined,
      sinceMs: since ? parseTime(since, "since") : undefined,
      limit: intParam(url, "limit", 100, 1, MAX_LIMIT),
      newest: oneOf(url, "order", ["oldest", "newest"] as const, "oldest") === "newest",
    });
    return json({
      changes: changes.map((c) => ({
        id: c.id,
        time: iso(c.atMs),
        at_ms: c.atMs,
        author: c.author,
        action: c.action,
        target: c.target,
        detail: c.detail,
      })),
    });
  });

  router.add("GET", "/api/export", async ({ url }) => {
    const wanted = url.searchParams.getAll("label").filter((l) => l !== "");
    if (wanted.length === 0) {
      throw new HttpError(400, "name at least one label to export (label=NAME, repeatable)");
    }
    // The same filter as GET /api/frames, so a search and the export of it give the same frames.
    const filter = searchFilter(url);
    const chosenId = url.searchParams.get("export_id");
    if (chosenId !== null && !EXPORT_ID.test(chosenId)) {
      throw new HttpError(
        400,
        `export_id ${JSON.stringify(chosenId.slice(0, 80))} must be 8 to 64 letters, digits, '-' or '_'`,
      );
    }
    const id = chosenId ?? crypto.randomUUID();
    // Refuses unknown labels, and labels whose folders would clash, before anything is sent.
    const plan: ExportPlan = planExport(catalog, { ...filter, labels: filter.labels ?? [] });
    const status = exports.start(id, plan.labels, plan.total);
    const started = performance.now();
    const what = `export ${id} (${plan.labels.join(", ")}; ${plan.total} frames)`;
    let sent = false;
    let stream: ReadableStream<Uint8Array>;
    try {
      stream = await openExportStream(catalog, plan, {
        fetch: (key) => fetchFrame(key, stores),
        retryDelaysMs: deps.exportRetryDelaysMs,
        onProgress: (counts) => exports.update(status, counts),
        onEnd: (end) => {
          exports.end(status, end, end.error);
          const line = `${what}: ${end.files} files from ${end.frames - end.missing} frames, ` +
            `${end.missing} missing, ${((performance.now() - started) / 1000).toFixed(1)} s`;
          if (end.error !== undefined) {
            log.error(
              `${line}; FAILED, ${
                sent ? "the download was cut short" : "answered 502 before anything was sent"
              }: ${messageOf(end.error)}`,
            );
          } else if (end.missing) {
            log.warn(`${line}; INCOMPLETE, the missing frames are listed in MISSING.txt`);
          } else log.info(line);
        },
      });
    } catch (error) {
      // Nothing has been sent: the client gets an error instead of a tar that looks complete.
      throw new HttpError(
        502,
        `the export failed before anything was sent: ${messageOf(error)}`,
        { "x-export-id": id },
      );
    }
    sent = true;
    const stamp = iso(Date.now()).replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    const folders = plan.labels.map((l) => plan.folders.get(l) ?? labelFolder(l)).join("+");
    // Cut by code points, not UTF-16 units: half a surrogate pair cannot be percent-encoded.
    const name = `frame-bucket-${Array.from(folders).slice(0, 120).join("")}-${stamp}.tar`;
    return new Response(stream, {
      headers: {
        "content-type": "application/x-tar",
        "content-disposition": attachment(name),
        "cache-control": "no-store",
        "x-frame-count": String(plan.total),
        "x-export-id": id,
      },
    });
  });

  router.add("GET", "/api/exports/{id}", ({ params }) => {
    const status = exports.get(params.id);
    if (!status) {
      throw new HttpError(
        404,
        `no export ${
          JSON.stringify(params.id.slice(0, 80))
        } (this server keeps the last 200 since it started)`,
      );
    }
    return json(status);
  });

  router.add("GET", "/openapi.json", () => json(openApiDocument(), 200, { "cache-control": "no-cache" }));

  // ---- the request handler
  const staticFile = async (path: string): Promise<Response> => {
    let rel: string;
    try {
      rel = path === "/" ? "index.html" : decodeURIComponent(path.slice(1));
    } catch {
      return errorResponse(400, "bad percent-encoding in the path");
    }
    if (!webDir || !webFiles.has(rel)) {
      return errorResponse(404, `no such page ${JSON.stringify(path.slice(0, 200))}`);
    }
    const body = await Deno.readFile(`${webDir}/${rel}`);
    const ext = rel.slice(rel.lastIndexOf(".") + 1);
    return new Response(body, {
      headers: {
        "content-type": TYPES[ext] ?? "application/octet-stream",
        "cache-control": "no-cache",
        ...(ext === "html" ? { "content-security-policy": CSP, "referrer-policy": "no-referrer" } : {}),
      },
    });
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const path = url.pathname;
    const method = request.method === "HEAD" ? "GET" : request.method;
    const host = request.headers.get("host");
    if (!hostAllowed(host, allowedHosts)) {
      return errorResponse(
        403,
        `this server does not answer to the host name ${JSON.stringify(host?.slice(0, 200))}: open it by ` +
          `its IP address or localhost, or add the name to server.allowed_hosts`,
      );
    }
    if (!path.startsWith("/api/") && path !== "/openapi.json") {
      if (method !== "GET") {
        return errorResponse(405, `${request.method} is not allowed on ${path}`, { allow: "GET" });
      }
      return await staticFile(path);
    }
    const found = router.match(method, path);
    if (!("route" in found)) {
      if (found.allowed.length) {
        return errorResponse(
          405,
          `${request.method} is not allowed on ${path} (allowed: ${found.allowed.join(", ")})`,
          {
            allow: found.allowed.join(", "),
          },
        );
      }
      return errorResponse(404, `no route ${request.method} ${path}`);
    }
    if (token && (found.route.write || readsNeedToken)) {
      // Writes take the header only: a cookie rides along on requests other sites make, a header does not.
      const given = presentedTokens(request, !found.route.write);
      if (!given.some((t) => sameSecret(t, token))) {
        return errorResponse(
          401,
          given.length
            ? "the token is wrong"
            : found.route.write
            ? "this change needs Authorization: Bearer <server.token>"
            : "this server is reachable from other machines, so reads need Authorization: Bearer <server.token> " +
              "too (or server.public_reads = true)",
          { "www-authenticate": 'Bearer realm="frame-bucket"' },
        );
      }
    }
    const ctx: RouteContext = { request, url, params: found.params };
    return await found.route.handler(ctx);
  };

  const handler = async (request: Request): Promise<Response> => {
    let response: Response;
    try {
      response = await handle(request);
    } catch (error) {
      if (error instanceof HttpError) {
        response = errorResponse(error.status, error.message, error.headers);
      } else if (error instanceof RangeError || error instanceof SyntaxError) {
        // The libraries (search, labels, time parsing) name bad values with these.
        response = errorResponse(400, messageOf(error));
      } else {
        log.error(`${request.method} ${new URL(request.url).pathname}: ${messageOf(error)}`);
        response = errorResponse(500, messageOf(error));
      }
    }
    response.headers.set("x-content-type-options", "nosniff");
    if (request.method === "HEAD") {
      // The body is never sent: cancel it, so a streamed export stops and removes its spool files.
      await response.body?.cancel().catch(() => {});
      return new Response(null, { status: response.status, headers: response.headers });
    }
    return response;
  };

  return { router, handler, thumbnails, exports };
}

// ------------------------------------------------------------------------------------------ running a server

export interface ServeOptions {
  hostname?: string;
  port?: number;
  log?: Logger;
  /** Called once listening, with the URL. */
  onListen?: (url: string) => void;
}

export interface RunningServer {
  url: string;
  app: App;
  catalog: Catalog;
  /** Stops listening and closes the catalog, stores and hasher. */
  close(): Promise<void>;
}

/** What a server bound to `hostname` exposes, given the token and server.public_reads. */
export interface Exposure {
  /** Reads need the token as well as writes. */
  readsNeedToken: boolean;
  /** Why the server must not start (bound beyond loopback with nothing to protect reads), or null. */
  refusal: string | null;
  /** What to warn about at start-up, or null. */
  warning: string | null;
}

const SEEN =
  "every frame and thumbnail, the labels, clips and change journal, and whole datasets through export";

/**
 * Bound to loopback, only this machine can connect: reads are open, writes need the token when one is set. Bound
 * beyond it, reads need the token as well unless server.public_reads = true says they are meant to be public; with
 * neither a token nor public_reads the server refuses to start.
 */
export function exposure(hostname: string, token: string, publicReads: boolean): Exposure {
  if (isLoopback(hostname)) return { readsNeedToken: false, refusal: null, warning: null };
  const where = `listening on ${hostname}, which other machines can reach`;
  if (!token && !publicReads) {
    return {
      readsNeedToken: false,
      refusal:
        `${where}, without server.token: anyone who can connect could read ${SEEN}, and change labels. ` +
        `Set server.token (or FRAME_BUCKET_TOKEN; reads and writes then need it), or set server.public_reads = ` +
        `true to serve reads to everyone on purpose, or bind to 127.0.0.1`,
      warning: null,
    };
  }
  if (!publicReads) return { readsNeedToken: true, refusal: null, warning: null };
  return {
    readsNeedToken: false,
    refusal: null,
    warning: token
      ? `warning: ${where}, with server.public_reads = true: anyone who can connect can read ${SEEN}. ` +
        `Changes need the token`
      : `warning: ${where}, with server.public_reads = true and without server.token: anyone who can connect ` +
        `can read ${SEEN}, and change or delete labels and clips. Set server.token (or FRAME_BUCKET_TOKEN) to ` +
        `protect changes, or bind to 127.0.0.1`,
  };
}

/** Opens the config's catalog, stores, hasher and similarity index, and serves the app. */
export async function startServer(config: Config, options: ServeOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logging, "server");
  const hostname = options.hostname ?? config.server.hostname;
  const port = options.port ?? config.server.port;
  const token = config.server.token;
  const exposed = exposure(hostname, token, config.server.public_reads);
  if (exposed.refusal) throw new RangeError(exposed.refusal);
  if (exposed.warning) log.warn(exposed.warning);
  // The name the server is bound to (when it is a name) is one it answers to.
  const allowedHosts = [...config.server.allowed_hosts];
  if (!/^[\d.]+$|:/.test(hostname) && hostname.toLowerCase() !== "localhost") {
    allowedHosts.push(hostname.toLowerCase());
  }
  const catalog = new Catalog(catalogPath(config));
  const cleanup: (() => unknown)[] = [() => catalog.close()];
  try {
    const local = await localStore(config);
    cleanup.push(() => local.close());
    const archive = await archiveStore(config);
    cleanup.push(() => archive.close());
    const hasher = await JpegHasher.fromConfig(config);
    cleanup.push(() => hasher.close());
    const similar = SimilarFrames.load(catalog, { hashBytes: hashBytesOf(config.filter) });
    cleanup.push(similar.startSync(500));
    const app = createApp({
      catalog,
      local,
      archive,
      archivePrefix: config.aws_s3.prefix,
      hasher,
      similar,
      token,
      readsNeedToken: exposed.readsNeedToken,
      allowedHosts,
      labelLimits: { maxPerRequest: config.labels.max_per_request, maxDistinct: config.labels.max_distinct },
      log,
    });
    const server = Deno.serve({ hostname, port, onListen: () => {} }, app.handler);
    const addr = server.addr as Deno.NetAddr;
    const shown = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    const url = `http://${shown}:${addr.port}/`;
    const frames = catalog.totals();
    log.info(
      `serving ${url} (catalog ${catalog.path}: ${
        frames.local.frames + frames.archiving.frames + frames.archive.frames
      } ` +
        `frames, ${similar.size} hashes indexed; reads ${
          exposed.readsNeedToken ? "need the token" : "are open"
        }, writes ${token ? "need the token" : "are open"}; answers to IP addresses, localhost${
          allowedHosts.length ? `, ${allowedHosts.join(", ")}` : ""
        })`,
    );
    options.onListen?.(url);
    return {
      url,
      app,
      catalog,
      async close() {
        await server.shutdown();
        for (const fn of cleanup.reverse()) await fn();
      },
    };
  } catch (error) {
    for (const fn of cleanup.reverse()) await fn();
    throw error;
  }
}
