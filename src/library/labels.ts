/**
 * Labels, clips and the change journal (catalog schema v2).
 *
 * A label is a name ("door-open", "fall") put on frames. It reaches a frame two ways: directly (`frame_labels`,
 * one row per frame and label, with who and when), or through a clip: a robot's time span [fromMs, toMs] (both
 * inclusive) with a name, a note and labels of its own, which apply to every frame of that robot inside the span,
 * including frames stored later. Searches match both (src/library/search.ts). Labelled frames are "pinned": eviction
 * prefers to archive others first (`Catalog.isPinned`, `Catalog.oldestLocalUnpinned`).
 *
 * Every change (labels added or removed, a label renamed or deleted, a clip created, updated or deleted) is one
 * row of the append-only `changes` journal with the time, the author the client gave (optional, free text) and a
 * JSON detail; triggers refuse UPDATE and DELETE on it. A change and its journal row are one transaction.
 *
 * All methods are synchronous (node:sqlite) and throw RangeError naming the bad value (unknown label, key or
 * clip, a name that is not allowed, an empty time span): the HTTP layer can map RangeError to 400/404.
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import type { Catalog } from "../catalog/sqlite.ts";
import { checkRobotId } from "../key.ts";

/** Which frames a label operation applies to: explicit keys, or all stored frames of a robot in a time span. */
export type FrameSelector =
  | { keys: string[] }
  | { robotId: string; fromMs: number; toMs: number };

export interface LabelInfo {
  id: number;
  name: string;
  /** Frames labelled directly. */
  frames: number;
  /** Clips carrying the label. */
  clips: number;
}

export interface Clip {
  id: number;
  robotId: string;
  /** First capture time in the clip (ms since the epoch, inclusive). */
  fromMs: number;
  /** Last capture time in the clip (inclusive). */
  toMs: number;
  name: string;
  note: string;
  labels: string[];
  createdMs: number;
  author: string | null;
}

export interface ClipInput {
  robotId: string;
  fromMs: number;
  toMs: number;
  name: string;
  note?: string;
  labels?: string[];
}

/** Fields of a clip to change; `labels` replaces the set, `addLabels`/`removeLabels` edit it. */
export interface ClipUpdate {
  robotId?: string;
  fromMs?: number;
  toMs?: number;
  name?: string;
  note?: string;
  labels?: string[];
  addLabels?: string[];
  removeLabels?: string[];
}

export type ChangeAction =
  | "label.add"
  | "label.remove"
  | "label.rename"
  | "label.delete"
  | "clip.create"
  | "clip.update"
  | "clip.delete";

/** One journal row. */
export interface Change {
  id: number;
  atMs: number;
  author: string | null;
  action: ChangeAction;
  /**
   * What changed: a frame key (one frame), `frames` (a list of keys, in the detail), `robot:ID` (a robot's time
   * span), `label:NAME` (rename/delete, the name before the change) or `clip:ID`.
   */
  target: string;
  detail: Record<string, unknown>;
}

/** Who makes a change. `author` is whatever the client calls itself (optional); `nowMs` defaults to the clock. */
export interface ChangeBy {
  author?: string | null;
  nowMs?: number;
}

const MAX_LABEL = 64;
const MAX_AUTHOR = 200;
const MAX_CLIP_NAME = 200;
const MAX_NOTE = 10_000;

/** How many labels a request may name, and how many distinct labels the catalog may hold (`[labels]`). */
export interface LabelLimits {
  /** Most labels in each list of one call (add, remove, a clip's labels). */
  maxPerRequest: number;
  /** Most distinct labels in the catalog; a change that would create more is refused. */
  maxDistinct: number;
}

/**
 * The defaults of `labels.max_per_request` and `labels.max_distinct`: far above what people label by hand, far
 * below what makes the label list (one checkbox each in the UI) or a request's transaction unwieldy.
 */
export const DEFAULT_LABEL_LIMITS: Readonly<LabelLimits> = { maxPerRequest: 100, maxDistinct: 1000 };

/**
 * Bidirectional-text controls (they make "txt.exe" display as "exe.txt": a label, or the export folder named after
 * it, would not show what it is) and the Unicode line and paragraph separators (they break line-based files such
 * as MISSING.txt).
 */
const INVISIBLE_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;

/** The first character of `name` that INVISIBLE_CONTROLS matches, as U+XXXX. */
function codePointOf(name: string): string {
  const ch = INVISIBLE_CONTROLS.exec(name)?.[0] ?? "";
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Why a label name is not allowed, or null. Names become folder names in exports, so: 1 to 64 characters (at most
 * 192 bytes of UTF-8, well inside every file system's 255-byte name limit), no '/', '\\' or control characters
 * (C0, DEL, C1), no bidirectional-text controls or line separators, no spaces at either end, not "." or "..".
 * Characters that only Windows refuses in file names (`:*?|<>"`, `CON`, ...) are allowed: export writes them
 * escaped in folder names (see `labelFolder` in src/library/export.ts) and keeps the label itself in metadata.jsonl.
 */
export function labelProblem(name: string): string | null {
  if (typeof name !== "string" || name.length === 0) return "a label name must not be empty";
  if (name.length > MAX_LABEL) {
    return `label ${
      JSON.stringify(name.slice(0, 80))
    } is ${name.length} characters long (at most ${MAX_LABEL})`;
  }
  if (name !== name.trim()) return `label ${JSON.stringify(name)} starts or ends with white space`;
  if (name === "." || name === "..") return `label ${JSON.stringify(name)} is not allowed`;
  // deno-lint-ignore no-control-regex
  if (/[/\\\x00-\x1f\x7f-\x9f]/.test(name)) {
    return `label ${JSON.stringify(name)} may not contain '/', '\\' or control characters`;
  }
  if (INVISIBLE_CONTROLS.test(name)) {
    return `label ${JSON.stringify(name)} contains the invisible control character ${
      codePointOf(name)
    } (bidirectional text or a line separator), which would disguise the name: type it without`;
  }
  return null;
}

export function checkLabel(name: string): string {
  const problem = labelProblem(name);
  if (problem) throw new RangeError(problem);
  return name;
}

function checkAuthor(author: string | null | undefined): string | null {
  if (author === undefined || author === null || author === "") return null;
  if (typeof author !== "string" || author.length > MAX_AUTHOR) {
    throw new RangeError(`author must be a string of at most ${MAX_AUTHOR} characters`);
  }
  return author;
}

function checkSpan(fromMs: number, toMs: number): void {
  for (const [name, v] of [["from", fromMs], ["to", toMs]] as const) {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${name} time ${v} is not a whole number of ms`);
  }
  if (toMs < fromMs) {
    throw new RangeError(
      `time span ends (${new Date(toMs).toISOString()}) before it starts (${new Date(fromMs).toISOString()})`,
    );
  }
}

function uniqueLabels(names: string[]): string[] {
  return [...new Set(names.map(checkLabel))];
}

/**
 * Names of existing labels to take off or delete, each once. They are looked up, not checked against today's
 * naming rules, so a label made before a rule was tightened can still be removed or renamed.
 */
function existingNames(names: string[]): string[] {
  for (const n of names) {
    if (typeof n !== "string" || n === "") throw new RangeError("a label name must not be empty");
  }
  return [...new Set(names)];
}

interface ClipRaw {
  id: number;
  robot_id: string;
  from_ms: number;
  to_ms: number;
  name: string;
  note: string;
  created_ms: number;
  author: string | null;
  labels: string | null;
}

const CLIP_SELECT = `SELECT c.id, c.robot_id, c.from_ms, c.to_ms, c.name, c.note, c.created_ms, c.author,
  (SELECT json_group_array(name) FROM (SELECT l.name FROM clip_labels cl JOIN labels l ON l.id = cl.label_id
    WHERE cl.clip_id = c.id ORDER BY l.name)) AS labels
  FROM clips c`;

function toClip(r: ClipRaw): Clip {
  return {
    id: Number(r.id),
    robotId: r.robot_id,
    fromMs: Number(r.from_ms),
    toMs: Number(r.to_ms),
    name: r.name,
    note: r.note,
    labels: r.labels ? JSON.parse(r.labels) as string[] : [],
    createdMs: Number(r.created_ms),
    author: r.author,
  };
}

/** Keys per statement when a list of keys is checked or changed (below SQLite's parameter limit). */
const CHUNK = 500;

export class Labels {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #limits: LabelLimits;

  constructor(catalog: Catalog, options: { now?: () => number; limits?: Partial<LabelLimits> } = {}) {
    this.#db = catalog.db;
    this.#now = options.now ?? Date.now;
    this.#limits = { ...DEFAULT_LABEL_LIMITS, ...options.limits };
  }

  /** The limits in force. */
  get limits(): Readonly<LabelLimits> {
    return this.#limits;
  }

  /** Refuses a list naming more labels than one request may (before anything is looked up or changed). */
  #checkCount(names: string[], what: string): string[] {
    const max = this.#limits.maxPerRequest;
    if (names.length > max) {
      throw new RangeError(
        `${names.length} labels ${what} in one request; at most ${max} are allowed (labels.max_per_request): ` +
          `send them in several requests, or raise labels.max_per_request`,
      );
    }
    return names;
  }

  /**
   * Refuses, inside the write transaction, a change that would create labels beyond labels.max_distinct; labels
   * that exist already never count.
   */
  #checkRoomFor(names: string[]): void {
    const fresh = names.filter((n) => this.#labelId(n) === null);
    if (fresh.length === 0) return;
    const have = Number(
      (this.#db.prepare("SELECT COUNT(*) AS n FROM labels").get() as { n: number }).n,
    );
    const max = this.#limits.maxDistinct;
    if (have + fresh.length > max) {
      throw new RangeError(
        `${fresh.length} new label(s) (${fresh.slice(0, 3).map((n) => JSON.stringify(n)).join(", ")}${
          fresh.length > 3 ? ", ..." : ""
        }) would make ${have + fresh.length} distinct labels, over ` +
          `labels.max_distinct (${max}): use existing labels, delete unused ones, or raise labels.max_distinct`,
      );
    }
  }

  /** Runs `fn` in one write transaction (or inside the caller's, when one is open). */
  #tx<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      return out;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  #journal(by: ChangeBy, action: ChangeAction, target: string, detail: Record<string, unknown>): void {
    this.#db.prepare("INSERT INTO changes (at_ms, author, action, target, detail) VALUES (?, ?, ?, ?, ?)")
      .run(by.nowMs ?? this.#now(), checkAuthor(by.author), action, target, JSON.stringify(detail));
  }

  #labelId(name: string): number | null {
    const r = this.#db.prepare("SELECT id FROM labels WHERE name = ?").get(name) as
      | { id: number }
      | undefined;
    return r ? Number(r.id) : null;
  }

  #existingLabelId(name: string): number {
    const id = this.#labelId(name);
    if (id === null) throw new RangeError(`unknown label ${JSON.stringify(name)}`);
    return id;
  }

  #ensureLabel(name: string): number {
    this.#db.prepare("INSERT OR IGNORE INTO labels (name) VALUES (?)").run(checkLabel(name));
    return this.#labelId(name)!;
  }

  /** Refuses keys that are not in the catalog, naming the first few. */
  #checkKeys(keys: string[]): string[] {
    const unique = [...new Set(keys)];
    if (unique.length === 0) throw new RangeError("no frame keys given");
    const missing: string[] = [];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const part = unique.slice(i, i + CHUNK);
      const found = new Set(
        (this.#db.prepare(`SELECT key FROM frames WHERE key IN (${part.map(() => "?").join(",")})`)
          .all(...part) as { key: string }[]).map((r) => r.key),
      );
      for (const k of part) if (!found.has(k)) missing.push(k);
    }
    if (missing.length) {
      throw new RangeError(
        `${missing.length} frame key(s) not in the catalog: ${
          missing.slice(0, 3).map((k) => JSON.stringify(k)).join(", ")
        }${missing.length > 3 ? ", ..." : ""}`,
      );
    }
    return unique;
  }

  #describe(target: FrameSelector): { target: string; detail: Record<string, unknown> } {
    if ("keys" in target) {
      return target.keys.length === 1
        ? { target: target.keys[0], detail: {} }
        : { target: "frames", detail: { keys: target.keys } };
    }
    return {
      target: `robot:${target.robotId}`,
      detail: {
        robot: target.robotId,
        from: new Date(target.fromMs).toISOString(),
        to: new Date(target.toMs).toISOString(),
      },
    };
  }

  /**
   * Puts labels on frames (created when new). Returns how many (frame, label) pairs were new; labels a frame
   * already had keep their original author and time. A robot's time span labels the frames stored now (a clip
   * also covers frames stored later). Unknown keys are refused before anything changes.
   */
  addLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): number {
    const names = this.#checkCount(uniqueLabels(labels), "to add");
    if (names.length === 0) throw new RangeError("no labels given");
    const author = checkAuthor(by.author);
    return this.#tx(() => {
      const now = by.nowMs ?? this.#now();
      const selector = this.#normalize(target);
      this.#checkRoomFor(names);
      let added = 0;
      for (const name of names) {
        const id = this.#ensureLabel(name);
        if ("keys" in selector) {
          const insert = this.#db.prepare(
            "INSERT OR IGNORE INTO frame_labels (key, label_id, created_ms, author) VALUES (?, ?, ?, ?)",
          );
          for (const key of selector.keys) added += Number(insert.run(key, id, now, author).changes);
        } else {
          added += Number(
            this.#db.prepare(
              `INSERT OR IGNORE INTO frame_labels (key, label_id, created_ms, author)
               SELECT key, ?, ?, ? FROM frames WHERE robot_id = ? AND ts_ms >= ? AND ts_ms <= ?`,
            ).run(id, now, author, selector.robotId, selector.fromMs, selector.toMs).changes,
          );
        }
      }
      const { target: t, detail } = this.#describe(selector);
      this.#journal({ author, nowMs: now }, "label.add", t, { labels: names, ...detail, added });
      return added;
    });
  }

  /**
   * Takes labels off frames (their own labels; labels a frame gets from a clip stay until the clip changes).
   * Returns how many (frame, label) pairs were removed. Unknown labels are refused.
   */
  removeLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): number {
    const names = this.#checkCount(existingNames(labels), "to remove");
    if (names.length === 0) throw new RangeError("no labels given");
    return this.#tx(() => {
      const now = by.nowMs ?? this.#now();
      const selector = this.#normalize(target);
      let removed = 0;
      for (const name of names) {
        const id = this.#existingLabelId(name);
        if ("keys" in selector) {
          const del = this.#db.prepare("DELETE FROM frame_labels WHERE key = ? AND label_id = ?");
          for (const key of selector.keys) removed += Number(del.run(key, id).changes);
        } else {
          removed += Number(
            this.#db.prepare(
              `DELETE FROM frame_labels WHERE label_id = ? AND key IN
                 (SELECT key FROM frames WHERE robot_id = ? AND ts_ms >= ? AND ts_ms <= ?)`,
            ).run(id, selector.robotId, selector.fromMs, selector.toMs).changes,
          );
        }
      }
      const { target: t, detail } = this.#describe(selector);
      this.#journal({ author: by.author, nowMs: now }, "label.remove", t, {
        labels: names,
        ...detail,
        removed,
      });
      return removed;
    });
  }

  #normalize(target: FrameSelector): FrameSelector {
    if ("keys" in target) return { keys: this.#checkKeys(target.keys) };
    checkRobotId(target.robotId);
    checkSpan(target.fromMs, target.toMs);
    return { robotId: target.robotId, fromMs: target.fromMs, toMs: target.toMs };
  }

  /**
   * Renames a label everywhere (frames and clips keep it: they refer to it by id). When `newName` already exists
   * the call is refused unless `merge` is set, which moves everything labelled `oldName` to `newName`.
   */
  renameLabel(oldName: string, newName: string, by: ChangeBy & { merge?: boolean } = {}): void {
    checkLabel(newName);
    this.#tx(() => {
      const id = this.#existingLabelId(oldName);
      if (oldName === newName) return;
      const other = this.#labelId(newName);
      if (other !== null && !by.merge) {
        throw new RangeError(
          `label ${JSON.stringify(newName)} already exists: merge ${
            JSON.stringify(oldName)
          } into it explicitly (merge)`,
        );
      }
      if (other === null) {
        this.#db.prepare("UPDATE labels SET name = ? WHERE id = ?").run(newName, id);
      } else {
        this.#db.prepare(
          "INSERT OR IGNORE INTO frame_labels (key, label_id, created_ms, author) " +
            "SELECT key, ?, created_ms, author FROM frame_labels WHERE label_id = ?",
        ).run(other, id);
        this.#db.prepare(
          "INSERT OR IGNORE INTO clip_labels (clip_id, label_id) SELECT clip_id, ? FROM clip_labels WHERE label_id = ?",
        ).run(other, id);
        this.#deleteLabelRows(id);
      }
      this.#journal(by, "label.rename", `label:${oldName}`, {
        from: oldName,
        to: newName,
        merged: other !== null,
      });
    });
  }

  #deleteLabelRows(id: number): { frames: number; clips: number } {
    const frames = Number(this.#db.prepare("DELETE FROM frame_labels WHERE label_id = ?").run(id).changes);
    const clips = Number(this.#db.prepare("DELETE FROM clip_labels WHERE label_id = ?").run(id).changes);
    this.#db.prepare("DELETE FROM labels WHERE id = ?").run(id);
    return { frames, clips };
  }

  /** Deletes a label from every frame and clip. */
  deleteLabel(name: string, by: ChangeBy = {}): { frames: number; clips: number } {
    return this.#tx(() => {
      const counts = this.#deleteLabelRows(this.#existingLabelId(name));
      this.#journal(by, "label.delete", `label:${name}`, { name, ...counts });
      return counts;
    });
  }

  /**
   * Every label with its number of directly labelled frames in the catalog and of clips, by name. (Labels of a
   * frame whose row is removed stay, unseen, and come back with the row, e.g. after a reindex.)
   */
  list(): LabelInfo[] {
    return (this.#db.prepare(
      `SELECT l.id, l.name,
         (SELECT COUNT(*) FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = l.id) AS frames,
         (SELECT COUNT(*) FROM clip_labels cl WHERE cl.label_id = l.id) AS clips
       FROM labels l ORDER BY l.name`,
    ).all() as { id: number; name: string; frames: number; clips: number }[]).map((r) => ({
      id: Number(r.id),
      name: r.name,
      frames: Number(r.frames),
      clips: Number(r.clips),
    }));
  }

  /** A frame's labels: its own and those of clips it lies in (sorted, each once); [] for an unknown key. */
  labelsOf(key: string): string[] {
    return (this.#db.prepare(
      `SELECT l.name FROM frame_labels fl JOIN labels l ON l.id = fl.label_id WHERE fl.key = ?
       UNION
       SELECT l.name FROM frames f JOIN clips c ON c.robot_id = f.robot_id AND c.from_ms <= f.ts_ms
         AND c.to_ms >= f.ts_ms JOIN clip_labels cl ON cl.clip_id = c.id JOIN labels l ON l.id = cl.label_id
       WHERE f.key = ?
       ORDER BY 1`,
    ).all(key, key) as { name: string }[]).map((r) => r.name);
  }

  /** Creates a clip; its labels are created when new. */
  createClip(input: ClipInput, by: ChangeBy = {}): Clip {
    checkRobotId(input.robotId);
    checkSpan(input.fromMs, input.toMs);
    const name = checkClipName(input.name);
    const note = checkNote(input.note ?? "");
    const labels = this.#checkCount(uniqueLabels(input.labels ?? []), "on the clip");
    const author = checkAuthor(by.author);
    return this.#tx(() => {
      const now = by.nowMs ?? this.#now();
      this.#checkRoomFor(labels);
      const id = Number(
        this.#db.prepare(
          "INSERT INTO clips (robot_id, from_ms, to_ms, name, note, created_ms, author) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ).run(input.robotId, input.fromMs, input.toMs, name, note, now, author).lastInsertRowid,
      );
      for (const label of labels) this.#linkClip(id, label);
      const clip = this.getClip(id)!;
      this.#journal({ author, nowMs: now }, "clip.create", `clip:${id}`, { clip: clipDetail(clip) });
      return clip;
    });
  }

  #linkClip(clipId: number, label: string): void {
    this.#db.prepare("INSERT OR IGNORE INTO clip_labels (clip_id, label_id) VALUES (?, ?)")
      .run(clipId, this.#ensureLabel(label));
  }

  /** Changes a clip's span, robot, name, note or labels; refuses an unknown id. */
  updateClip(id: number, update: ClipUpdate, by: ChangeBy = {}): Clip {
    return this.#tx(() => {
      const before = this.getClip(id);
      if (!before) throw new RangeError(`no clip ${id}`);
      const robotId = update.robotId === undefined ? before.robotId : checkRobotId(update.robotId);
      const fromMs = update.fromMs ?? before.fromMs, toMs = update.toMs ?? before.toMs;
      checkSpan(fromMs, toMs);
      const name = update.name === undefined ? before.name : checkClipName(update.name);
      const note = update.note === undefined ? before.note : checkNote(update.note);
      let labels = update.labels === undefined
        ? before.labels
        : this.#checkCount(uniqueLabels(update.labels), "on the clip");
      if (update.addLabels) {
        const more = this.#checkCount(uniqueLabels(update.addLabels), "to add");
        labels = [...new Set([...labels, ...more])];
      }
      if (update.removeLabels) {
        const gone = new Set(this.#checkCount(existingNames(update.removeLabels), "to remove"));
        labels = labels.filter((l) => !gone.has(l));
      }
      this.#checkRoomFor(labels);
      this.#db.prepare(
        "UPDATE clips SET robot_id = ?, from_ms = ?, to_ms = ?, name = ?, note = ? WHERE id = ?",
      )
        .run(robotId, fromMs, toMs, name, note, id);
      this.#db.prepare("DELETE FROM clip_labels WHERE clip_id = ?").run(id);
      for (const label of labels) this.#linkClip(id, label);
      const after = this.getClip(id)!;
      this.#journal(by, "clip.update", `clip:${id}`, {
        before: clipDetail(before),
        after: clipDetail(after),
      });
      return after;
    });
  }

  /** Deletes a clip (its labels stay defined); refuses an unknown id. */
  deleteClip(id: number, by: ChangeBy = {}): void {
    this.#tx(() => {
      const clip = this.getClip(id);
      if (!clip) throw new RangeError(`no clip ${id}`);
      this.#db.prepare("DELETE FROM clip_labels WHERE clip_id = ?").run(id);
      this.#db.prepare("DELETE FROM clips WHERE id = ?").run(id);
      this.#journal(by, "clip.delete", `clip:${id}`, { clip: clipDetail(clip) });
    });
  }

  getClip(id: number): Clip | null {
    const r = this.#db.prepare(`${CLIP_SELECT} WHERE c.id = ?`).get(id) as ClipRaw | undefined;
    return r ? toClip(r) : null;
  }

  /** Clips, oldest span first; optionally of one robot, carrying a label, or overlapping [fromMs, toMs]. */
  listClips(filter: { robotId?: string; label?: string; fromMs?: number; toMs?: number } = {}): Clip[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.robotId !== undefined) {
      where.push("c.robot_id = ?");
      params.push(filter.robotId);
    }
    if (filter.label !== undefined) {
      where.push(
        "c.id IN (SELECT cl.clip_id FROM clip_labels cl JOIN labels l ON l.id = cl.label_id WHERE l.name = ?)",
      );
      params.push(filter.label);
    }
    if (filter.fromMs !== undefined) {
      where.push("c.to_ms >= ?");
      params.push(filter.fromMs);
    }
    if (filter.toMs !== undefined) {
      where.push("c.from_ms <= ?");
      params.push(filter.toMs);
    }
    const sql = `${CLIP_SELECT}${
      where.length ? ` WHERE ${where.join(" AND ")}` : ""
    } ORDER BY c.from_ms, c.id`;
    return (this.#db.prepare(sql).all(...params) as unknown as ClipRaw[]).map(toClip);
  }

  /**
   * The journal, oldest first: entries after `afterId` (for polling), optionally for one target or since a time,
   * at most `limit` (default 100). With `newest`, the newest entries first instead.
   */
  changes(
    filter: { afterId?: number; target?: string; sinceMs?: number; limit?: number; newest?: boolean } = {},
  ): Change[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.afterId !== undefined) {
      where.push("id > ?");
      params.push(filter.afterId);
    }
    if (filter.target !== undefined) {
      where.push("target = ?");
      params.push(filter.target);
    }
    if (filter.sinceMs !== undefined) {
      where.push("at_ms >= ?");
      params.push(filter.sinceMs);
    }
    params.push(filter.limit ?? 100);
    const sql = `SELECT id, at_ms, author, action, target, detail FROM changes${
      where.length ? ` WHERE ${where.join(" AND ")}` : ""
    } ORDER BY id ${filter.newest ? "DESC" : "ASC"} LIMIT ?`;
    return (this.#db.prepare(sql).all(...params) as {
      id: number;
      at_ms: number;
      author: string | null;
      action: ChangeAction;
      target: string;
      detail: string;
    }[]).map((r) => ({
      id: Number(r.id),
      atMs: Number(r.at_ms),
      author: r.author,
      action: r.action,
      target: r.target,
      detail: JSON.parse(r.detail),
    }));
  }
}

function checkClipName(name: string): string {
  if (typeof name !== "string" || name.trim() === "") throw new RangeError("a clip needs a name");
  if (name.length > MAX_CLIP_NAME) {
    throw new RangeError(`clip name is ${name.length} characters long (at most ${MAX_CLIP_NAME})`);
  }
  return name;
}

function checkNote(note: string): string {
  if (typeof note !== "string") throw new RangeError("a clip's note must be text");
  if (note.length > MAX_NOTE) {
    throw new RangeError(`note is ${note.length} characters long (at most ${MAX_NOTE})`);
  }
  return note;
}

function clipDetail(c: Clip): Record<string, unknown> {
  return {
    robot: c.robotId,
    from: new Date(c.fromMs).toISOString(),
    to: new Date(c.toMs).toISOString(),
    name: c.name,
    note: c.note,
    labels: c.labels,
  };
}
