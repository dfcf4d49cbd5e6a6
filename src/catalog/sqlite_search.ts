/**
 * The SQLite backend's reads for search, the similar-frame index and the robot views: the WHERE clause of a
 * search filter, pages of frames in capture order, labels and clips of a page, and the per-robot summaries.
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { BadInputError } from "../errors.ts";
import {
  type Box,
  type FramePosition,
  type FrameRow,
  type HashRow,
  REVIEW_STATUSES,
  type ReviewStatus,
  type RobotSummary,
  type SearchFilter,
  type SearchHit,
  type TimelineBucket,
} from "./catalog.ts";
import { BOX_SELECT, boxesByKey, boxFromRow } from "./boxes.ts";
import { assembleHits, robotSpans, type SpanClip } from "./hits.ts";
import { checkStatusFilter } from "./rules.ts";
import { frameColumns, rowFromSql } from "./sqlite.ts";

/** Resolves label names to ids; an unknown label is an error (a typo should not look like "no frames"). */
function labelIds(db: DatabaseSync, names: string[]): number[] {
  const ids: number[] = [];
  const find = db.prepare("SELECT id FROM labels WHERE name = ?");
  for (const name of new Set(names)) {
    const r = find.get(name) as { id: number } | undefined;
    if (!r) {
      throw new BadInputError(`unknown label ${JSON.stringify(name)}: no frame or clip has it (a typo?)`);
    }
    ids.push(Number(r.id));
  }
  return ids;
}

/** The WHERE condition (on `frames f`) and its parameters for a filter. */
export function filterSql(
  db: DatabaseSync,
  filter: SearchFilter,
): { where: string; params: SQLInputValue[] } {
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
    const ids = labelIds(db, filter.labels);
    const list = ids.map(() => "?").join(", ");
    // The set of (frame, label) matches is built from the label side (direct rows, then clips expanded to the
    // frames of their span), which stays small when labels are sparse, as hand-made labels are.
    // A box's class is a label of its frame, like its own labels.
    const matches =
      `SELECT fl.key AS key, fl.label_id AS lid FROM frame_labels fl WHERE fl.label_id IN (${list})
      UNION SELECT b.key, b.label_id FROM boxes b WHERE b.label_id IN (${list})
      UNION SELECT f2.key, cl.label_id FROM clip_labels cl JOIN clips c ON c.id = cl.clip_id
        JOIN frames f2 ON f2.robot_id = c.robot_id AND f2.ts_ms >= c.from_ms AND f2.ts_ms <= c.to_ms
        WHERE cl.label_id IN (${list})`;
    if (filter.allLabels && ids.length > 1) {
      where.push(`f.key IN (SELECT key FROM (${matches}) GROUP BY key HAVING COUNT(DISTINCT lid) = ?)`);
      params.push(...ids, ...ids, ...ids, ids.length);
    } else {
      // Any of the labels: a test per frame, so a newest-first page walks the time index and stops after
      // `limit` matches instead of collecting every labelled frame first (see postgres_search.ts).
      where.push(`(EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = f.key AND fl.label_id IN (${list}))
        OR EXISTS (SELECT 1 FROM boxes b WHERE b.key = f.key AND b.label_id IN (${list}))
        OR EXISTS (SELECT 1 FROM clips c JOIN clip_labels cl ON cl.clip_id = c.id WHERE c.robot_id = f.robot_id
          AND c.from_ms <= f.ts_ms AND c.to_ms >= f.ts_ms AND cl.label_id IN (${list})))`);
      params.push(...ids, ...ids, ...ids);
    }
  }
  if (filter.status?.length) {
    // Tests per frame on primary keys and the boxes_key index, like the labels filter: a page stops early.
    const statuses = checkStatusFilter(filter.status);
    if (statuses.length < REVIEW_STATUSES.length) {
      where.push(`(${statuses.map((s) => STATUS_SQL[s]).join(" OR ")})`);
    }
  }
  if (filter.noLabel) where.push(NO_LABEL_SQL);
  return { where: where.length ? where.join(" AND ") : "1", params };
}

/** SQL conditions on `frames f`: the frame has a label of its own or a box. */
const HAS_OWN = `(EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = f.key)
  OR EXISTS (SELECT 1 FROM boxes b WHERE b.key = f.key))`;

/** One SQL condition on `frames f` per review status (see `derivedStatus` in hits.ts). */
const STATUS_SQL: Record<ReviewStatus, string> = {
  reviewed: "EXISTS (SELECT 1 FROM reviews r WHERE r.key = f.key AND r.status = 'reviewed')",
  rejected: "EXISTS (SELECT 1 FROM reviews r WHERE r.key = f.key AND r.status = 'rejected')",
  labelled: `(NOT EXISTS (SELECT 1 FROM reviews r WHERE r.key = f.key) AND ${HAS_OWN})`,
  unlabelled: `(NOT EXISTS (SELECT 1 FROM reviews r WHERE r.key = f.key) AND NOT ${HAS_OWN})`,
};

/** SQL condition on `frames f`: no label of its own, no box, and in no labelled clip of its robot. */
const NO_LABEL_SQL = `(NOT ${HAS_OWN} AND NOT EXISTS (SELECT 1 FROM clips c WHERE c.robot_id = f.robot_id
  AND c.from_ms <= f.ts_ms AND c.to_ms >= f.ts_ms AND EXISTS (SELECT 1 FROM clip_labels cl WHERE cl.clip_id = c.id)))`;

/** Frames matching `filter` in capture order, strictly after `after` in that order. */
export function findFrames(
  db: DatabaseSync,
  filter: SearchFilter,
  page: { order: "newest" | "oldest"; limit: number; after?: FramePosition | null },
): FrameRow[] {
  const { where, params } = filterSql(db, filter);
  const conditions = [where];
  const op = page.order === "newest" ? "<" : ">";
  if (page.after) {
    // The redundant bound on ts_ms alone lets SQLite range-scan the time index.
    conditions.push(`f.ts_ms ${op}= ? AND (f.ts_ms, f.seq, f.key) ${op} (?, ?, ?)`);
    params.push(page.after.timestampMs, page.after.timestampMs, page.after.seq, page.after.key);
  }
  const dir = page.order === "newest" ? "DESC" : "ASC";
  const sql = `SELECT ${frameColumns("f")} FROM frames f WHERE ${conditions.join(" AND ")}
    ORDER BY f.ts_ms ${dir}, f.seq ${dir}, f.key ${dir} LIMIT ?`;
  return (db.prepare(sql).all(...params, page.limit) as Record<string, unknown>[]).map(rowFromSql);
}

/** How many frames match a filter. */
export function countFrames(db: DatabaseSync, filter: SearchFilter): number {
  const { where, params } = filterSql(db, filter);
  const r = db.prepare(`SELECT COUNT(*) AS n FROM frames f WHERE ${where}`).get(...params) as { n: number };
  return Number(r.n);
}

/** Adds each frame's labels (own, its boxes' classes and via clips), clips, boxes and review status. */
export function withLabels(db: DatabaseSync, frames: FrameRow[]): SearchHit[] {
  if (frames.length === 0) return [];
  const direct = new Map<string, string[]>();
  const boxes: Box[] = [];
  const reviewed = new Map<string, "reviewed" | "rejected">();
  for (let i = 0; i < frames.length; i += 500) {
    const part = frames.slice(i, i + 500).map((f) => f.key);
    const marks = part.map(() => "?").join(", ");
    const rows = db.prepare(
      `SELECT fl.key, l.name FROM frame_labels fl JOIN labels l ON l.id = fl.label_id
       WHERE fl.key IN (${marks}) ORDER BY l.name`,
    ).all(...part) as { key: string; name: string }[];
    for (const r of rows) {
      const list = direct.get(r.key);
      if (list) list.push(r.name);
      else direct.set(r.key, [r.name]);
    }
    for (const r of db.prepare(`${BOX_SELECT} WHERE b.key IN (${marks})`).all(...part)) {
      boxes.push(boxFromRow(r as Record<string, unknown>));
    }
    for (
      const r of db.prepare(`SELECT key, status FROM reviews WHERE key IN (${marks})`).all(...part) as {
        key: string;
        status: "reviewed" | "rejected";
      }[]
    ) reviewed.set(r.key, r.status);
  }
  // Clips overlapping each robot's span on this page, matched to frames here.
  const spans = robotSpans(frames);
  const clipsOf = new Map<string, SpanClip[]>();
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
  return assembleHits(frames, direct, clipsOf, boxesByKey(boxes), reviewed);
}

/** Rows with a hash (the similar-frame index's feed), in pages so no statement stays open across awaits. */
export function hashRowsPage(
  db: DatabaseSync,
  options: { sinceStoredMs?: number; filter?: SearchFilter; afterId: number; limit: number },
): HashRow[] {
  const { where, params } = options.filter ? filterSql(db, options.filter) : { where: "1", params: [] };
  const since = options.sinceStoredMs === undefined ? "" : " AND f.stored_ms >= ?";
  if (options.sinceStoredMs !== undefined) params.push(options.sinceStoredMs);
  const rows = db.prepare(
    `SELECT f.rowid AS id, f.key, f.robot_id, f.ts_ms, f.stored_ms, f.hash FROM frames f
     WHERE ${where} AND f.hash IS NOT NULL${since} AND f.rowid > ? ORDER BY f.rowid LIMIT ?`,
  ).all(...params, options.afterId, options.limit) as {
    id: number;
    key: string;
    robot_id: string;
    ts_ms: number;
    stored_ms: number;
    hash: Uint8Array;
  }[];
  return rows.map((r) => ({
    id: Number(r.id),
    key: r.key,
    robotId: r.robot_id,
    timestampMs: Number(r.ts_ms),
    storedMs: Number(r.stored_ms),
    hash: new Uint8Array(r.hash),
  }));
}

export function idOf(db: DatabaseSync, key: string): number | null {
  const r = db.prepare("SELECT rowid AS id FROM frames WHERE key = ?").get(key) as { id: number } | undefined;
  return r ? Number(r.id) : null;
}

export function rowsById(db: DatabaseSync, ids: number[]): Map<number, FrameRow> {
  const out = new Map<number, FrameRow>();
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    const rows = db.prepare(
      `SELECT f.rowid AS id, ${frameColumns("f")} FROM frames f WHERE f.rowid IN (${
        part.map(() => "?").join(",")
      })`,
    ).all(...part) as Record<string, unknown>[];
    for (const r of rows) out.set(Number(r.id), rowFromSql(r));
  }
  return out;
}

interface SummaryRaw {
  robot_id: string;
  frames: number;
  bytes: number;
  first_ms: number;
  last_ms: number;
}

const toSummary = (r: SummaryRaw): RobotSummary => ({
  robotId: r.robot_id,
  frames: Number(r.frames),
  bytes: Number(r.bytes),
  firstMs: Number(r.first_ms),
  lastMs: Number(r.last_ms),
});

const SUMMARY = `SELECT robot_id, COUNT(*) AS frames, COALESCE(SUM(size), 0) AS bytes, MIN(ts_ms) AS first_ms,
  MAX(ts_ms) AS last_ms FROM frames`;

export function robotSummaries(db: DatabaseSync): RobotSummary[] {
  return (db.prepare(`${SUMMARY} GROUP BY robot_id ORDER BY robot_id`).all() as unknown as SummaryRaw[]).map(
    toSummary,
  );
}

export function robotSummary(db: DatabaseSync, robotId: string): RobotSummary | null {
  const r = db.prepare(`${SUMMARY} WHERE robot_id = ? GROUP BY robot_id`).get(robotId) as
    | SummaryRaw
    | undefined;
  return r ? toSummary(r) : null;
}

export function timeline(
  db: DatabaseSync,
  robotId: string,
  fromMs: number,
  toMs: number,
  bucketMs: number,
): TimelineBucket[] {
  const rows = db.prepare(
    `SELECT ts_ms / CAST(? AS INTEGER) AS b, COUNT(*) AS n FROM frames WHERE robot_id = ? AND ts_ms >= ? AND ts_ms <= ?
     GROUP BY b ORDER BY b`,
  ).all(bucketMs, robotId, fromMs, toMs) as { b: number; n: number }[];
  return rows.map((r) => ({ startMs: Number(r.b) * bucketMs, frames: Number(r.n) }));
}

export function adjacentKeys(
  db: DatabaseSync,
  robotId: string,
  at: FramePosition,
): { previous: string | null; next: string | null } {
  const near = (op: "<" | ">") => {
    const dir = op === "<" ? "DESC" : "ASC";
    const r = db.prepare(
      `SELECT key FROM frames WHERE robot_id = ? AND ts_ms ${op}= ? AND (ts_ms, seq, key) ${op} (?, ?, ?)
       ORDER BY ts_ms ${dir}, seq ${dir}, key ${dir} LIMIT 1`,
    ).get(robotId, at.timestampMs, at.timestampMs, at.seq, at.key) as { key: string } | undefined;
    return r?.key ?? null;
  };
  return { previous: near("<"), next: near(">") };
}
