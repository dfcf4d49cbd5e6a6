/**
 * Frame search over the catalog: by robot(s), capture-time span, labels (any or all; a frame's own labels, its
 * boxes' classes and those of clips it lies in), tier, review status, no label at all; newest or oldest first;
 * keyset pagination. And the next frame of a search that still wants labelling or review (`nextInSearch`).
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
import { BadInputError } from "../errors.ts";
import type {
  Catalog,
  FramePosition,
  FrameRow,
  ReviewStatus,
  SearchFilter,
  SearchHit,
} from "../catalog/catalog.ts";
import { REVIEW_STATUSES, TIERS } from "../catalog/catalog.ts";
export type { ClipRef, SearchFilter, SearchHit } from "../catalog/catalog.ts";
export { TIERS };

export interface SearchQuery extends SearchFilter {
  /** "newest" (default) or "oldest" first. */
  order?: "newest" | "oldest";
  /** Rows per page, 1..1000 (default 50). */
  limit?: number;
  /** The `nextCursor` of the previous page of the same query. */
  cursor?: string | null;
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
    if (!Number.isSafeInteger(ms)) throw new BadInputError(`${name} ${text} ms is out of range`);
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
        throw new BadInputError(`${name} ${JSON.stringify(value)}: a UTC offset needs a time of day`);
      }
      const sign = zone[0] === "-" ? -1 : 1;
      const digits = zone.slice(1).replace(":", "");
      const oh = Number(digits.slice(0, 2)), om = digits.length > 2 ? Number(digits.slice(2)) : 0;
      if (oh > 23 || om > 59) {
        throw new BadInputError(`${name} ${JSON.stringify(value)}: bad UTC offset ${zone}`);
      }
      offsetMin = sign * (oh * 60 + om);
    }
  } else {
    throw new BadInputError(timeHelp(name, text));
  }
  if (mo < 1 || mo > 12) throw new BadInputError(`${name} ${JSON.stringify(value)}: there is no month ${mo}`);
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d < 1 || d > days) {
    throw new BadInputError(`${name} ${JSON.stringify(value)}: ${MONTHS[mo - 1]} ${y} has no day ${d}`);
  }
  if (h > 23 || mi > 59 || s > 59) {
    throw new BadInputError(`${name} ${JSON.stringify(value)}: ${h}:${mi}:${s} is not a time of day`);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // setUTCFullYear: years below 100 stay literal
  date.setUTCHours(h, mi, s, ms);
  const out = date.getTime() - offsetMin * 60_000 + (options.end ? unit - 1 : 0);
  if (out < 0) throw new BadInputError(`${name} ${JSON.stringify(value)} is before 1970`);
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
    throw new BadInputError(
      `${names[1]} ${JSON.stringify(to)} (${new Date(toMs).toISOString()}) is before ${names[0]} ${
        JSON.stringify(from)
      } (${new Date(fromMs).toISOString()})`,
    );
  }
  return { fromMs, toMs };
}

// --------------------------------------------------------------------------------------------- SQL building

/** Refuses a filter naming an unknown tier or review status, or a time that is not a number of ms. */
export function checkFilter(filter: SearchFilter): void {
  for (const t of filter.tiers ?? []) {
    if (!TIERS.includes(t)) {
      throw new BadInputError(`unknown tier ${JSON.stringify(t)} (tiers: ${TIERS.join(", ")})`);
    }
  }
  for (const s of filter.status ?? []) {
    if (!REVIEW_STATUSES.includes(s)) {
      throw new BadInputError(
        `unknown review status ${JSON.stringify(s)} (statuses: ${REVIEW_STATUSES.join(", ")})`,
      );
    }
  }
  for (const [name, v] of [["fromMs", filter.fromMs], ["toMs", filter.toMs]] as const) {
    if (v !== undefined && !Number.isSafeInteger(v)) {
      throw new BadInputError(`${name} ${v} is not a time in ms`);
    }
  }
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
    [...new Set(query.status ?? [])].sort(),
    Boolean(query.noLabel),
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
    throw new BadInputError(`cursor ${JSON.stringify(cursor.slice(0, 40))} is not a cursor of this search`);
  }
  if (
    !state || state.v !== 1 || !Number.isSafeInteger(state.t) || !Number.isSafeInteger(state.s) ||
    typeof state.k !== "string"
  ) {
    throw new BadInputError(`cursor ${JSON.stringify(cursor.slice(0, 40))} is not a cursor of this search`);
  }
  if (state.q !== fingerprint(query)) {
    throw new BadInputError(
      "the cursor belongs to a different search (filters or order changed): start again without a cursor",
    );
  }
  return state;
}

// ------------------------------------------------------------------------------------------------- searching

/** One page of frames matching `query`, with their labels and clips. */
export async function searchFrames(catalog: Catalog, query: SearchQuery = {}): Promise<SearchPage> {
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new BadInputError(`limit ${limit} must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  const order = query.order ?? "newest";
  if (order !== "newest" && order !== "oldest") {
    throw new BadInputError(`order ${JSON.stringify(order)} must be "newest" or "oldest"`);
  }
  checkFilter(query);
  const c = query.cursor ? decodeCursor(query, query.cursor) : null;
  const rows = await catalog.findFrames(query, {
    order,
    limit: limit + 1,
    after: c ? { timestampMs: c.t, seq: c.s, key: c.k } : null,
  });
  const more = rows.length > limit;
  if (more) rows.length = limit;
  return {
    hits: await catalog.withLabels(rows),
    nextCursor: more ? encodeCursor(query, rows[rows.length - 1]) : null,
  };
}

/** How many frames match a filter (for progress and totals). */
export function countFrames(catalog: Catalog, filter: SearchFilter = {}): Promise<number> {
  checkFilter(filter);
  return catalog.countFrames(filter);
}

/**
 * What a labeller asks for next: `unlabelled` frames (no own label and no box) to label, or `review` frames
 * (labelled, not yet reviewed or rejected) to check.
 */
export type NextWanted = "unlabelled" | "review";

/**
 * The first frame after `from` in the order of the search `filter` (newest or oldest first) that still wants the
 * work `want` names; null when none is left after it. `from` need not match the filter (the frame a labeller is
 * on may just have left it by being labelled). A filter whose own status list excludes what is wanted finds none.
 */
export async function nextInSearch(
  catalog: Catalog,
  filter: SearchFilter,
  from: FramePosition,
  options: { want: NextWanted; order?: "newest" | "oldest" },
): Promise<FrameRow | null> {
  checkFilter(filter);
  const wanted: ReviewStatus = options.want === "unlabelled" ? "unlabelled" : "labelled";
  if (filter.status?.length && !filter.status.includes(wanted)) return null;
  const [row] = await catalog.findFrames(
    { ...filter, status: [wanted] },
    { order: options.order ?? "newest", limit: 1, after: from },
  );
  return row ?? null;
}

/** Every page of a search, one after the other. */
export async function* searchAll(catalog: Catalog, query: SearchQuery = {}): AsyncGenerator<SearchHit> {
  let cursor = query.cursor ?? null;
  do {
    const page = await searchFrames(catalog, { ...query, cursor, limit: query.limit ?? 200 });
    yield* page.hits;
    cursor = page.nextCursor;
  } while (cursor);
}

/** Adds each frame's labels (own and via clips) and clips; used for search pages and similarity results. */
export function attachLabels(catalog: Catalog, frames: FrameRow[]): Promise<SearchHit[]> {
  return catalog.withLabels(frames);
}
