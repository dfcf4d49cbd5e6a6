/**
 * Frame search over the catalog: by robot(s), capture-time span, labels (any or all; a frame's own labels and
 * those of clips it lies in), tier; newest or oldest first; keyset pagination.
 *
 * Pages are cut on (ts_ms, seq, key), the total order of frames, and the cursor carries the last row's values:
 * the next page is "everything strictly after that row" in the chosen order. Frames that arrive between two
 * page requests therefore never shift a page: newer frames land before the first page when newest-first, and
 * are simply reached later when oldest-first. The cursor is an opaque string that also carries a fingerprint of
 * the query, so it cannot be replayed against different filters.
 *
 * Times are UTC. `parseTime` accepts ISO 8601 (date, date + time, optional fraction, `Z` or an offset; no zone
 * means UTC), the compact form of object keys (`20260218T093616735Z`) and milliseconds since the epoch, and throws
 * a RangeError naming the flag and the value. Spans are inclusive at both ends; an end given at a coarser
 * precision covers its whole last unit (`--to 2026-02-18` runs to 23:59:59.999 that day).
 */
import type { SQLInputValue } from "node:sqlite";
import { type Catalog, frameColumns, type FrameRow, rowFromSql, type Tier } from "../catalog/sqlite.ts";

export const TIERS: readonly Tier[] = ["local", "archiving", "archive"];

/** What to look for. Every field is optional: no filters lists all frames. */
export interface SearchFilter {
  /** Only these robots. */
  robots?: string[];
  /** Capture time at or after this (ms since the epoch). */
  fromMs?: number;
  /** Capture time at or before this. */
  toMs?: number;
  /** Label names; a frame matches a label it has itself or gets from a clip it lies in. */
  labels?: string[];
  /** With `labels`: true = the frame must match every label; false (default) = at least one. */
  allLabels?: boolean;
  /** Only frames in these tiers. */
  tiers?: Tier[];
}

export interface SearchQuery extends SearchFilter {
  /** "newest" (default) or "oldest" first. */
  order?: "newest" | "oldest";
  /** Rows per page, 1..1000 (default 50). */
  limit?: number;
  /** The `nextCursor` of the previous page of the same query. */
  cursor?: string | null;
}

export interface ClipRef {
  id: number;
  name: string;
  labels: string[];
}

export interface SearchHit {
  frame: FrameRow;
  /** All labels of the frame, its own and its clips', sorted, each once. */
  labels: string[];
  /** The frame's own labels. */
  directLabels: string[];
  /** Clips the frame lies in (with or without labels). */
  clips: ClipRef[];
}

export interface SearchPage {
  hits: SearchHit[];
  /** Pass as `cursor` for the next page; null when this page is the last. */
  nextCursor: string | null;
}

export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 50;

// ---------------------------------------------------------------------------------------------- time parsing

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const COMPACT = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})?Z$/;
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

function timeHelp(name: string, value: string): string {
  return `${name} ${
    JSON.stringify(value)
  } is not a time: give ISO 8601 in UTC (2026-02-18, 2026-02-18T09:36:16Z, ` +
    `2026-02-18T09:36:16.735+02:00) or milliseconds since the epoch (1771407376735)`;
}

/**
 * Parses a capture time to ms since the epoch. `name` is how the caller calls the value in the error
 * (e.g. "--from"). With `end`, a value given at a coarser precision than ms means the last ms of its unit
 * (a date: the day's last ms; a minute: its last ms), so an inclusive range up to it covers the whole unit.
 */
export function parseTime(value: string, name = "time", options: { end?: boolean } = {}): number {
  const text = String(value).trim();
  if (/^\d{1,16}$/.test(text)) {
    const ms = Number(text);
    if (!Number.isSafeInteger(ms)) throw new RangeError(`${name} ${text} ms is out of range`);
    return ms;
  }
  let y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0;
  let unit: number; // the precision given, in ms
  let offsetMin = 0;
  const c = COMPACT.exec(text);
  const m = c ? null : ISO.exec(text);
  if (c) {
    [y, mo, d, h, mi, s] = c.slice(1, 7).map(Number);
    ms = c[7] ? Number(c[7]) : 0;
    unit = c[7] ? 1 : 1000;
  } else if (m) {
    [y, mo, d] = [m[1], m[2], m[3]].map(Number);
    unit = 86_400_000;
    if (m[4] !== undefined) {
      h = Number(m[4]);
      mi = Number(m[5]);
      unit = 60_000;
    }
    if (m[6] !== undefined) {
      s = Number(m[6]);
      unit = 1000;
    }
    if (m[7] !== undefined) {
      const digits = m[7];
      ms = Number(digits.slice(0, 3).padEnd(3, "0"));
      unit = digits.length >= 3 ? 1 : 10 ** (3 - digits.length);
    }
    const zone = m[8];
    if (zone && zone !== "Z" && zone !== "z") {
      if (m[4] === undefined) {
        throw new RangeError(`${name} ${JSON.stringify(value)}: a UTC offset needs a time of day`);
      }
      const sign = zone[0] === "-" ? -1 : 1;
      const digits = zone.slice(1).replace(":", "");
      const oh = Number(digits.slice(0, 2)), om = digits.length > 2 ? Number(digits.slice(2)) : 0;
      if (oh > 23 || om > 59) {
        throw new RangeError(`${name} ${JSON.stringify(value)}: bad UTC offset ${zone}`);
      }
      offsetMin = sign * (oh * 60 + om);
    }
  } else {
    throw new RangeError(timeHelp(name, text));
  }
  if (mo < 1 || mo > 12) throw new RangeError(`${name} ${JSON.stringify(value)}: there is no month ${mo}`);
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d < 1 || d > days) {
    throw new RangeError(`${name} ${JSON.stringify(value)}: ${MONTHS[mo - 1]} ${y} has no day ${d}`);
  }
  if (h > 23 || mi > 59 || s > 59) {
    throw new RangeError(`${name} ${JSON.stringify(value)}: ${h}:${mi}:${s} is not a time of day`);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // setUTCFullYear: years below 100 stay literal
  date.setUTCHours(h, mi, s, ms);
  const out = date.getTime() - offsetMin * 60_000 + (options.end ? unit - 1 : 0);
  if (out < 0) throw new RangeError(`${name} ${JSON.stringify(value)} is before 1970`);
  return out;
}

/** Parses optional from/to flags into an inclusive span; refuses a span that ends before it starts. */
export function parseTimeRange(
  from?: string | null,
  to?: string | null,
  names: [string, string] = ["--from", "--to"],
): { fromMs?: number; toMs?: number } {
  const fromMs = from === undefined || from === null || from === "" ? undefined : parseTime(from, names[0]);
  const toMs = to === undefined || to === null || to === ""
    ? undefined
    : parseTime(to, names[1], { end: true });
  if (fromMs !== undefined && toMs !== undefined && toMs < fromMs) {
    throw new RangeError(
      `${names[1]} ${JSON.stringify(to)} (${new Date(toMs).toISOString()}) is before ${names[0]} ${
        JSON.stringify(from)
      } (${new Date(fromMs).toISOString()})`,
    );
  }
  return { fromMs, toMs };
}

// --------------------------------------------------------------------------------------------- SQL building

/** Resolves label names to ids; an unknown label is an error (a typo should not look like "no frames"). */
function labelIds(catalog: Catalog, names: string[]): number[] {
  const ids: number[] = [];
  for (const name of new Set(names)) {
    const r = catalog.db.prepare("SELECT id FROM labels WHERE name = ?").get(name) as
      | { id: number }
      | undefined;
    if (!r) throw new RangeError(`unknown label ${JSON.stringify(name)}`);
    ids.push(Number(r.id));
  }
  return ids;
}

function checkFilter(filter: SearchFilter): void {
  for (const t of filter.tiers ?? []) {
    if (!TIERS.includes(t)) {
      throw new RangeError(`unknown tier ${JSON.stringify(t)} (tiers: ${TIERS.join(", ")})`);
    }
  }
  for (const [name, v] of [["fromMs", filter.fromMs], ["toMs", filter.toMs]] as const) {
    if (v !== undefined && !Number.isSafeInteger(v)) throw new RangeError(`${name} ${v} is not a time in ms`);
  }
}

/**
 * The WHERE condition (on `frames f`) and its parameters for a filter; shared by search, the catalog-backed
 * similarity search and export.
 */
export function filterSql(
  catalog: Catalog,
  filter: SearchFilter,
): { where: string; params: SQLInputValue[] } {
  checkFilter(filter);
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.robots?.length) {
    where.push(`f.robot_id IN (${filter.robots.map(() => "?").join(", ")})`);
    params.push(...filter.robots);
  }
  if (filter.fromMs !== undefined) {
    where.push("f.ts_ms >= ?");
    params.push(filter.fromMs);
  }
  if (filter.toMs !== undefined) {
    where.push("f.ts_ms <= ?");
    params.push(filter.toMs);
  }
  if (filter.tiers?.length) {
    where.push(`f.tier IN (${filter.tiers.map(() => "?").join(", ")})`);
    params.push(...filter.tiers);
  }
  if (filter.labels?.length) {
    const ids = labelIds(catalog, filter.labels);
    const list = ids.map(() => "?").join(", ");
    // The set of (frame, label) matches is built from the label side (direct rows, then clips expanded to the
    // frames of their span), which stays small when labels are sparse, as hand-made labels are.
    const matches =
      `SELECT fl.key AS key, fl.label_id AS lid FROM frame_labels fl WHERE fl.label_id IN (${list})
      UNION SELECT f2.key, cl.label_id FROM clip_labels cl JOIN clips c ON c.id = cl.clip_id
        JOIN frames f2 ON f2.robot_id = c.robot_id AND f2.ts_ms >= c.from_ms AND f2.ts_ms <= c.to_ms
        WHERE cl.label_id IN (${list})`;
    if (filter.allLabels && ids.length > 1) {
      where.push(`f.key IN (SELECT key FROM (${matches}) GROUP BY key HAVING COUNT(DISTINCT lid) = ?)`);
      params.push(...ids, ...ids, ids.length);
    } else {
      where.push(`f.key IN (SELECT key FROM (${matches}))`);
      params.push(...ids, ...ids);
    }
  }
  return { where: where.length ? where.join(" AND ") : "1", params };
}

// ----------------------------------------------------------------------------------------------- the cursor

interface CursorState {
  v: 1;
  /** Fingerprint of the query the cursor belongs to. */
  q: string;
  t: number;
  s: number;
  k: string;
}

function fingerprint(query: SearchQuery): string {
  const canonical = JSON.stringify([
    [...new Set(query.robots ?? [])].sort(),
    query.fromMs ?? null,
    query.toMs ?? null,
    [...new Set(query.labels ?? [])].sort(),
    Boolean(query.allLabels && (query.labels?.length ?? 0) > 1),
    [...new Set(query.tiers ?? [])].sort(),
    query.order ?? "newest",
  ]);
  let h = 0x811c9dc5; // FNV-1a, 32 bits: a guard against mix-ups, not a secret
  for (let i = 0; i < canonical.length; i++) h = Math.imul(h ^ canonical.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string {
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

function encodeCursor(query: SearchQuery, last: FrameRow): string {
  const state: CursorState = { v: 1, q: fingerprint(query), t: last.timestampMs, s: last.seq, k: last.key };
  return toBase64Url(JSON.stringify(state));
}

function decodeCursor(query: SearchQuery, cursor: string): CursorState {
  let state: CursorState;
  try {
    state = JSON.parse(fromBase64Url(cursor));
  } catch {
    throw new RangeError(`cursor ${JSON.stringify(cursor.slice(0, 40))} is not a cursor of this search`);
  }
  if (
    !state || state.v !== 1 || !Number.isSafeInteger(state.t) || !Number.isSafeInteger(state.s) ||
    typeof state.k !== "string"
  ) {
    throw new RangeError(`cursor ${JSON.stringify(cursor.slice(0, 40))} is not a cursor of this search`);
  }
  if (state.q !== fingerprint(query)) {
    throw new RangeError(
      "the cursor belongs to a different search (filters or order changed): start again without a cursor",
    );
  }
  return state;
}

// ------------------------------------------------------------------------------------------------- searching

/** One page of frames matching `query`, with their labels and clips. */
export function searchFrames(catalog: Catalog, query: SearchQuery = {}): SearchPage {
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new RangeError(`limit ${limit} must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  const order = query.order ?? "newest";
  if (order !== "newest" && order !== "oldest") {
    throw new RangeError(`order ${JSON.stringify(order)} must be "newest" or "oldest"`);
  }
  const { where, params } = filterSql(catalog, query);
  const conditions = [where];
  if (query.cursor) {
    const c = decodeCursor(query, query.cursor);
    const op = order === "newest" ? "<" : ">";
    // The redundant bound on ts_ms alone lets SQLite range-scan the time index.
    conditions.push(`f.ts_ms ${op}= ? AND (f.ts_ms, f.seq, f.key) ${op} (?, ?, ?)`);
    params.push(c.t, c.t, c.s, c.k);
  }
  const dir = order === "newest" ? "DESC" : "ASC";
  const sql = `SELECT ${frameColumns("f")} FROM frames f WHERE ${conditions.join(" AND ")}
    ORDER BY f.ts_ms ${dir}, f.seq ${dir}, f.key ${dir} LIMIT ?`;
  const rows = (catalog.db.prepare(sql).all(...params, limit + 1) as Record<string, unknown>[]).map(
    rowFromSql,
  );
  const more = rows.length > limit;
  if (more) rows.length = limit;
  return {
    hits: attachLabels(catalog, rows),
    nextCursor: more ? encodeCursor(query, rows[rows.length - 1]) : null,
  };
}

/** How many frames match a filter (for progress and totals). */
export function countFrames(catalog: Catalog, filter: SearchFilter = {}): number {
  const { where, params } = filterSql(catalog, filter);
  const r = catalog.db.prepare(`SELECT COUNT(*) AS n FROM frames f WHERE ${where}`).get(...params) as {
    n: number;
  };
  return Number(r.n);
}

/** Every page of a search, one after the other (the statement is not held open between pages). */
export function* searchAll(catalog: Catalog, query: SearchQuery = {}): Generator<SearchHit> {
  let cursor = query.cursor ?? null;
  do {
    const page = searchFrames(catalog, { ...query, cursor, limit: query.limit ?? 200 });
    yield* page.hits;
    cursor = page.nextCursor;
  } while (cursor);
}

/** Adds each frame's labels (own and via clips) and clips; used for search pages and similarity results. */
export function attachLabels(catalog: Catalog, frames: FrameRow[]): SearchHit[] {
  if (frames.length === 0) return [];
  const db = catalog.db;
  const direct = new Map<string, string[]>();
  for (let i = 0; i < frames.length; i += 500) {
    const part = frames.slice(i, i + 500).map((f) => f.key);
    const rows = db.prepare(
      `SELECT fl.key, l.name FROM frame_labels fl JOIN labels l ON l.id = fl.label_id
       WHERE fl.key IN (${part.map(() => "?").join(", ")}) ORDER BY l.name`,
    ).all(...part) as { key: string; name: string }[];
    for (const r of rows) {
      const list = direct.get(r.key);
      if (list) list.push(r.name);
      else direct.set(r.key, [r.name]);
    }
  }
  // Clips overlapping each robot's span on this page, matched to frames here.
  const spans = new Map<string, { from: number; to: number }>();
  for (const f of frames) {
    const s = spans.get(f.robotId);
    if (!s) spans.set(f.robotId, { from: f.timestampMs, to: f.timestampMs });
    else {
      s.from = Math.min(s.from, f.timestampMs);
      s.to = Math.max(s.to, f.timestampMs);
    }
  }
  const clipsOf = new Map<string, { ref: ClipRef; from: number; to: number }[]>();
  const clipQuery = db.prepare(
    `SELECT c.id, c.name, c.from_ms, c.to_ms,
       (SELECT json_group_array(name) FROM (SELECT l.name FROM clip_labels cl JOIN labels l ON l.id = cl.label_id
         WHERE cl.clip_id = c.id ORDER BY l.name)) AS labels
     FROM clips c WHERE c.robot_id = ? AND c.from_ms <= ? AND c.to_ms >= ? ORDER BY c.from_ms, c.id`,
  );
  for (const [robot, span] of spans) {
    const rows = clipQuery.all(robot, span.to, span.from) as {
      id: number;
      name: string;
      from_ms: number;
      to_ms: number;
      labels: string;
    }[];
    if (rows.length) {
      clipsOf.set(
        robot,
        rows.map((r) => ({
          ref: { id: Number(r.id), name: r.name, labels: JSON.parse(r.labels) as string[] },
          from: Number(r.from_ms),
          to: Number(r.to_ms),
        })),
      );
    }
  }
  return frames.map((frame) => {
    const own = direct.get(frame.key) ?? [];
    const clips = (clipsOf.get(frame.robotId) ?? []).filter((c) =>
      c.from <= frame.timestampMs && c.to >= frame.timestampMs
    ).map((c) => c.ref);
    const all = new Set(own);
    for (const c of clips) for (const l of c.labels) all.add(l);
    return { frame, labels: [...all].sort(), directLabels: own, clips };
  });
}

/** A hit as one JSON object (stable field names; the HTTP layer may reuse it). */
export function hitJson(hit: SearchHit & { distance?: number }): Record<string, unknown> {
  const f = hit.frame;
  return {
    key: f.key,
    robot_id: f.robotId,
    capture_time: new Date(f.timestampMs).toISOString(),
    timestamp_ms: f.timestampMs,
    seq: f.seq,
    size: f.size,
    tier: f.tier,
    labels: hit.labels,
    direct_labels: hit.directLabels,
    clips: hit.clips.map((c) => ({ id: c.id, name: c.name, labels: c.labels })),
    ...(hit.distance === undefined ? {} : { distance: hit.distance }),
  };
}
