/**
 * The SQLite backend's label store: labels, clips and the change journal (catalog schema v2).
 *
 * A label is a name ("door-open", "fall") put on frames. It reaches a frame two ways: directly (`frame_labels`,
 * one row per frame and label, with who and when), or through a clip: a robot's time span [fromMs, toMs] (both
 * inclusive) with a name, a note and labels of its own, which apply to every frame of that robot inside the span,
 * including frames stored later. Searches match both. Labelled frames are "pinned": eviction prefers to archive
 * others first.
 *
 * Every change (labels added or removed, a label renamed or deleted, a clip created, updated or deleted) is one
 * row of the append-only `changes` journal with the time, the author the client gave (optional, free text) and a
 * JSON detail; triggers refuse UPDATE and DELETE on it. A change and its journal row are one transaction (the
 * work is synchronous inside node:sqlite, so nothing else runs in between).
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import type {
  Change,
  ChangeAction,
  ChangeBy,
  ChangeFilter,
  Clip,
  ClipFilter,
  ClipInput,
  ClipUpdate,
  FrameSelector,
  LabelInfo,
  LabelLimits,
  LabelStore,
} from "./catalog.ts";
import {
  checkAuthor,
  checkClipInput,
  checkKeysFound,
  checkLabel,
  checkRoom,
  checkSpanSelector,
  clipAfterUpdate,
  clipDetail,
  DEFAULT_LABEL_LIMITS,
  describeTarget,
  labelsToAdd,
  labelsToRemove,
  mergeNeeded,
  uniqueKeys,
  unknownClip,
  unknownLabel,
} from "./rules.ts";

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

export class SqliteLabels implements LabelStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #limits: LabelLimits;

  constructor(db: DatabaseSync, options: { now?: () => number; limits?: Partial<LabelLimits> } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#limits = { ...DEFAULT_LABEL_LIMITS, ...options.limits };
  }

  /** The limits in force. */
  get limits(): Readonly<LabelLimits> {
    return this.#limits;
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
    checkRoom(fresh, have, this.#limits);
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
    if (id === null) throw unknownLabel(name);
    return id;
  }

  #ensureLabel(name: string): number {
    this.#db.prepare("INSERT OR IGNORE INTO labels (name) VALUES (?)").run(checkLabel(name));
    return this.#labelId(name)!;
  }

  /** Refuses keys that are not in the catalog, naming the first few. */
  #checkKeys(keys: string[]): string[] {
    const unique = uniqueKeys(keys);
    const found = new Set<string>();
    for (let i = 0; i < unique.length; i += CHUNK) {
      const part = unique.slice(i, i + CHUNK);
      for (
        const r of this.#db.prepare(`SELECT key FROM frames WHERE key IN (${part.map(() => "?").join(",")})`)
          .all(...part) as { key: string }[]
      ) found.add(r.key);
    }
    checkKeysFound(unique, found);
    return unique;
  }

  /**
   * Puts labels on frames (created when new). Returns how many (frame, label) pairs were new; labels a frame
   * already had keep their original author and time. A robot's time span labels the frames stored now (a clip
   * also covers frames stored later). Unknown keys are refused before anything changes.
   */
  #addLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): number {
    const names = labelsToAdd(labels, this.#limits);
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
      const { target: t, detail } = describeTarget(selector);
      this.#journal({ author, nowMs: now }, "label.add", t, { labels: names, ...detail, added });
      return added;
    });
  }

  /**
   * Takes labels off frames (their own labels; labels a frame gets from a clip stay until the clip changes).
   * Returns how many (frame, label) pairs were removed. Unknown labels are refused.
   */
  #removeLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): number {
    const names = labelsToRemove(labels, this.#limits);
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
      const { target: t, detail } = describeTarget(selector);
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
    return checkSpanSelector(target);
  }

  /**
   * Renames a label everywhere (frames and clips keep it: they refer to it by id). When `newName` already exists
   * the call is refused unless `merge` is set, which moves everything labelled `oldName` to `newName`.
   */
  #renameLabel(oldName: string, newName: string, by: ChangeBy & { merge?: boolean } = {}): void {
    checkLabel(newName);
    this.#tx(() => {
      const id = this.#existingLabelId(oldName);
      if (oldName === newName) return;
      const other = this.#labelId(newName);
      if (other !== null && !by.merge) {
        throw mergeNeeded(oldName, newName);
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
  #deleteLabel(name: string, by: ChangeBy = {}): { frames: number; clips: number } {
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
  #list(): LabelInfo[] {
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
  #labelsOf(key: string): string[] {
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
  #createClip(input: ClipInput, by: ChangeBy = {}): Clip {
    const { name, note, labels, author } = checkClipInput(input, by, this.#limits);
    return this.#tx(() => {
      const now = by.nowMs ?? this.#now();
      this.#checkRoomFor(labels);
      const id = Number(
        this.#db.prepare(
          "INSERT INTO clips (robot_id, from_ms, to_ms, name, note, created_ms, author) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ).run(input.robotId, input.fromMs, input.toMs, name, note, now, author).lastInsertRowid,
      );
      for (const label of labels) this.#linkClip(id, label);
      const clip = this.#getClip(id)!;
      this.#journal({ author, nowMs: now }, "clip.create", `clip:${id}`, { clip: clipDetail(clip) });
      return clip;
    });
  }

  #linkClip(clipId: number, label: string): void {
    this.#db.prepare("INSERT OR IGNORE INTO clip_labels (clip_id, label_id) VALUES (?, ?)")
      .run(clipId, this.#ensureLabel(label));
  }

  /** Changes a clip's span, robot, name, note or labels; refuses an unknown id. */
  #updateClip(id: number, update: ClipUpdate, by: ChangeBy = {}): Clip {
    return this.#tx(() => {
      const before = this.#getClip(id);
      if (!before) throw unknownClip(id);
      const { robotId, fromMs, toMs, name, note, labels } = clipAfterUpdate(before, update, this.#limits);
      this.#checkRoomFor(labels);
      this.#db.prepare(
        "UPDATE clips SET robot_id = ?, from_ms = ?, to_ms = ?, name = ?, note = ? WHERE id = ?",
      )
        .run(robotId, fromMs, toMs, name, note, id);
      this.#db.prepare("DELETE FROM clip_labels WHERE clip_id = ?").run(id);
      for (const label of labels) this.#linkClip(id, label);
      const after = this.#getClip(id)!;
      this.#journal(by, "clip.update", `clip:${id}`, {
        before: clipDetail(before),
        after: clipDetail(after),
      });
      return after;
    });
  }

  /** Deletes a clip (its labels stay defined); refuses an unknown id. */
  #deleteClip(id: number, by: ChangeBy = {}): void {
    this.#tx(() => {
      const clip = this.#getClip(id);
      if (!clip) throw unknownClip(id);
      this.#db.prepare("DELETE FROM clip_labels WHERE clip_id = ?").run(id);
      this.#db.prepare("DELETE FROM clips WHERE id = ?").run(id);
      this.#journal(by, "clip.delete", `clip:${id}`, { clip: clipDetail(clip) });
    });
  }

  #getClip(id: number): Clip | null {
    const r = this.#db.prepare(`${CLIP_SELECT} WHERE c.id = ?`).get(id) as ClipRaw | undefined;
    return r ? toClip(r) : null;
  }

  /** Clips, oldest span first; optionally of one robot, carrying a label, or overlapping [fromMs, toMs]. */
  #listClips(filter: { robotId?: string; label?: string; fromMs?: number; toMs?: number } = {}): Clip[] {
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
  #changes(
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

  // The contract's methods. The work is synchronous (node:sqlite), so each change with its journal row is one
  // transaction that nothing else interleaves with.
  addLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): Promise<number> {
    return run(() => this.#addLabels(target, labels, by));
  }
  removeLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): Promise<number> {
    return run(() => this.#removeLabels(target, labels, by));
  }
  changeLabels(
    target: FrameSelector,
    change: { add?: string[]; remove?: string[] },
    by: ChangeBy = {},
  ): Promise<{ added: number; removed: number }> {
    return run(() =>
      this.#tx(() => ({
        added: change.add?.length ? this.#addLabels(target, change.add, by) : 0,
        removed: change.remove?.length ? this.#removeLabels(target, change.remove, by) : 0,
      }))
    );
  }
  renameLabel(oldName: string, newName: string, by: ChangeBy & { merge?: boolean } = {}): Promise<void> {
    return run(() => this.#renameLabel(oldName, newName, by));
  }
  deleteLabel(name: string, by: ChangeBy = {}): Promise<{ frames: number; clips: number }> {
    return run(() => this.#deleteLabel(name, by));
  }
  list(): Promise<LabelInfo[]> {
    return run(() => this.#list());
  }
  exists(name: string): Promise<boolean> {
    return run(() => this.#labelId(name) !== null);
  }
  labelsOf(key: string): Promise<string[]> {
    return run(() => this.#labelsOf(key));
  }
  createClip(input: ClipInput, by: ChangeBy = {}): Promise<Clip> {
    return run(() => this.#createClip(input, by));
  }
  updateClip(id: number, update: ClipUpdate, by: ChangeBy = {}): Promise<Clip> {
    return run(() => this.#updateClip(id, update, by));
  }
  deleteClip(id: number, by: ChangeBy = {}): Promise<void> {
    return run(() => this.#deleteClip(id, by));
  }
  getClip(id: number): Promise<Clip | null> {
    return run(() => this.#getClip(id));
  }
  listClips(filter: ClipFilter = {}): Promise<Clip[]> {
    return run(() => this.#listClips(filter));
  }
  changes(filter: ChangeFilter = {}): Promise<Change[]> {
    return run(() => this.#changes(filter));
  }
}

/** A synchronous call as a promise: its throw becomes the rejection. */
function run<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error);
  }
}
