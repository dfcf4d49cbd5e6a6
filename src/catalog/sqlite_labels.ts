/**
 * The SQLite backend's label store: labels, clips and the change journal (catalog schema v2).
 *
 * A label is a name ("door-open", "fall") put on frames. It reaches a frame two ways: directly (`frame_labels`,
 * one row per frame and label, with who and when), or through a clip: a robot's time span [fromMs, toMs] (both
 * inclusive) with a name, a note and labels of its own, which apply to every frame of that robot inside the span,
 * including frames stored later. Searches match both. Labelled frames are "pinned": eviction prefers to archive
 * others first.
 *
 * Boxes (schema v5) are classes with rectangles on frames; the class is a label (same table), so a box's class
 * counts as a label of its frame for search and pinning, and renaming or deleting a label carries its boxes. The
 * label set gives labels a colour and a hotkey (`label_set`); with `labels.strict` only `defineLabel` creates
 * labels. A frame's review status is what a person set (`reviews`: reviewed, rejected) or else derived from its
 * own labels and boxes (labelled, unlabelled).
 *
 * Every change (labels added or removed, a label renamed, deleted or defined, a clip created, updated or deleted,
 * boxes added, changed or deleted, review statuses set) is one row of the append-only `changes` journal with the
 * time, the author the client gave (optional, free text) and a JSON detail holding what undo needs
 * (src/catalog/undo.ts); triggers refuse UPDATE and DELETE on it. A change and its journal row are one
 * transaction (the work is synchronous inside node:sqlite, so nothing else runs in between).
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { BadInputError } from "../errors.ts";
import type {
  Box,
  BoxInput,
  BoxUpdate,
  Change,
  ChangeAction,
  ChangeBy,
  ChangeFilter,
  Clip,
  ClipFilter,
  ClipInput,
  ClipUpdate,
  Collection,
  CollectionInput,
  CollectionUpdate,
  FrameSelector,
  LabelDefinition,
  LabelInfo,
  LabelLimits,
  LabelStore,
  Review,
} from "./catalog.ts";
import {
  BOX_SELECT,
  boxAfterUpdate,
  boxesByKey,
  boxFromRow,
  checkBoxesFound,
  checkBoxIds,
  checkBoxInputs,
  keysTarget,
  unknownBox,
} from "./boxes.ts";
import { derivedStatus } from "./hits.ts";
import {
  checkAuthor,
  checkClipInput,
  checkClipsFound,
  checkCollectionInput,
  checkKeysFound,
  checkLabel,
  checkReviewSet,
  checkRoom,
  checkSpanSelector,
  checkStrict,
  clipAfterUpdate,
  clipDetail,
  collectionAfterUpdate,
  collectionDetail,
  collectionNameTaken,
  DEFAULT_LABEL_LIMITS,
  definitionAfter,
  describeTarget,
  hotkeyTaken,
  keysForUndo,
  type LabelLook,
  labelsToAdd,
  labelsToRemove,
  mergeNeeded,
  UNDO_KEY_CAP,
  uniqueKeys,
  unknownClip,
  unknownCollection,
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

const COLLECTION_SELECT = `SELECT k.id, k.name, k.note, k.created_ms, k.author,
  (SELECT json_group_array(clip_id) FROM (SELECT cc.clip_id FROM collection_clips cc
    WHERE cc.collection_id = k.id ORDER BY cc.position)) AS clip_ids
  FROM collections k`;

function toCollection(r: Record<string, unknown>): Collection {
  return {
    id: Number(r.id),
    name: r.name as string,
    note: r.note as string,
    clipIds: r.clip_ids ? (JSON.parse(r.clip_ids as string) as number[]).map(Number) : [],
    createdMs: Number(r.created_ms),
    author: r.author as string | null,
  };
}

/** Most prepared statements a label store keeps. */
const STATEMENT_CACHE = 256;

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

  /**
   * Prepared statements by SQL text. Preparing anew on every call leaves each statement's native memory to the
   * garbage collector, which lets it pile up (20 MB per 1,000 box updates); the cache keeps at most
   * STATEMENT_CACHE statements (texts with long IN lists vary, so it starts over when full).
   */
  readonly #statements = new Map<string, StatementSync>();

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      if (this.#statements.size >= STATEMENT_CACHE) this.#statements.clear();
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** The limits in force. */
  get limits(): Readonly<LabelLimits> {
    return this.#limits;
  }

  /**
   * Refuses, inside the write transaction, a change that would create labels: in strict mode any (`labels.strict`:
   * only `defineLabel` creates), else beyond labels.max_distinct. Labels that exist already never count.
   */
  #checkRoomFor(names: string[], strict = true): void {
    const fresh = names.filter((n) => this.#labelId(n) === null);
    if (fresh.length === 0) return;
    if (strict) checkStrict(fresh, this.#limits, () => this.#names());
    const have = Number(
      (this.#prepare("SELECT COUNT(*) AS n FROM labels").get() as { n: number }).n,
    );
    checkRoom(fresh, have, this.#limits);
  }

  /** Every label's name (the label set), sorted. */
  #names(): string[] {
    return (this.#prepare("SELECT name FROM labels ORDER BY name").all() as { name: string }[]).map((r) =>
      r.name
    );
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

  /** Writes the journal row of a change; an undo (`by.undoOf`) says which entry it undoes. */
  #journal(by: ChangeBy, action: ChangeAction, target: string, detail: Record<string, unknown>): void {
    const full = by.undoOf === undefined ? detail : { ...detail, undoOf: checkUndoOf(by.undoOf) };
    this.#prepare("INSERT INTO changes (at_ms, author, action, target, detail) VALUES (?, ?, ?, ?, ?)")
      .run(by.nowMs ?? this.#now(), checkAuthor(by.author), action, target, JSON.stringify(full));
  }

  #labelId(name: string): number | null {
    const r = this.#prepare("SELECT id FROM labels WHERE name = ?").get(name) as
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
    this.#prepare("INSERT OR IGNORE INTO labels (name) VALUES (?)").run(checkLabel(name));
    return this.#labelId(name)!;
  }

  /** Refuses keys that are not in the catalog, naming the first few. */
  #checkKeys(keys: string[]): string[] {
    const unique = uniqueKeys(keys);
    const found = new Set<string>();
    for (let i = 0; i < unique.length; i += CHUNK) {
      const part = unique.slice(i, i + CHUNK);
      for (
        const r of this.#prepare(`SELECT key FROM frames WHERE key IN (${part.map(() => "?").join(",")})`)
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
      // The keys newly given each label, for undo; dropped once there are more than UNDO_KEY_CAP pairs.
      let addedKeys: Map<string, string[]> | null = new Map();
      for (const name of names) {
        const id = this.#ensureLabel(name);
        if ("keys" in selector) {
          const insert = this.#prepare(
            "INSERT OR IGNORE INTO frame_labels (key, label_id, created_ms, author) VALUES (?, ?, ?, ?)",
          );
          const fresh: string[] = [];
          for (const key of selector.keys) {
            if (Number(insert.run(key, id, now, author).changes)) fresh.push(key);
          }
          added += fresh.length;
          addedKeys?.set(name, fresh);
        } else {
          const span = [selector.robotId, selector.fromMs, selector.toMs];
          const missing = `FROM frames f WHERE f.robot_id = ? AND f.ts_ms >= ? AND f.ts_ms <= ?
            AND NOT EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = f.key AND fl.label_id = ?)`;
          addedKeys = this.#keysForUndo(addedKeys, name, missing, [...span, id], added);
          added += Number(
            this.#prepare(
              `INSERT OR IGNORE INTO frame_labels (key, label_id, created_ms, author)
               SELECT key, ?, ?, ? FROM frames WHERE robot_id = ? AND ts_ms >= ? AND ts_ms <= ?`,
            ).run(id, now, author, ...span).changes,
          );
        }
      }
      const { target: t, detail } = describeTarget(selector);
      this.#journal({ ...by, author, nowMs: now }, "label.add", t, {
        labels: names,
        ...detail,
        added,
        ...undoKeys("addedKeys", addedKeys),
      });
      return added;
    });
  }

  /**
   * Adds to `perLabel` the keys of `from` (a FROM ... WHERE on `frames f` with its parameters) for `name`, when
   * they keep the pairs so far (`pairs`) within UNDO_KEY_CAP; null (no keys kept) once they would not. Counts
   * first, so a span of a million frames never loads its keys.
   */
  #keysForUndo(
    perLabel: Map<string, string[]> | null,
    name: string,
    from: string,
    params: SQLInputValue[],
    pairs: number,
  ): Map<string, string[]> | null {
    if (perLabel === null) return null;
    const n = Number((this.#prepare(`SELECT COUNT(*) AS n ${from}`).get(...params) as { n: number }).n);
    if (pairs + n > UNDO_KEY_CAP) return null;
    perLabel.set(
      name,
      (this.#prepare(`SELECT f.key ${from} ORDER BY f.key`).all(...params) as { key: string }[]).map((r) =>
        r.key
      ),
    );
    return perLabel;
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
      let removedKeys: Map<string, string[]> | null = new Map();
      for (const name of names) {
        const id = this.#existingLabelId(name);
        if ("keys" in selector) {
          const del = this.#prepare("DELETE FROM frame_labels WHERE key = ? AND label_id = ?");
          const gone: string[] = [];
          for (const key of selector.keys) if (Number(del.run(key, id).changes)) gone.push(key);
          removed += gone.length;
          removedKeys?.set(name, gone);
        } else {
          const span = [selector.robotId, selector.fromMs, selector.toMs];
          const having = `FROM frames f WHERE f.robot_id = ? AND f.ts_ms >= ? AND f.ts_ms <= ?
            AND EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = f.key AND fl.label_id = ?)`;
          removedKeys = this.#keysForUndo(removedKeys, name, having, [...span, id], removed);
          removed += Number(
            this.#prepare(
              `DELETE FROM frame_labels WHERE label_id = ? AND key IN
                 (SELECT key FROM frames WHERE robot_id = ? AND ts_ms >= ? AND ts_ms <= ?)`,
            ).run(id, ...span).changes,
          );
        }
      }
      const { target: t, detail } = describeTarget(selector);
      this.#journal({ ...by, nowMs: now }, "label.remove", t, {
        labels: names,
        ...detail,
        removed,
        ...undoKeys("removedKeys", removedKeys),
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
        // Boxes, frames and clips refer to the label by id: they are renamed with it.
        this.#prepare("UPDATE labels SET name = ? WHERE id = ?").run(newName, id);
        this.#journal(by, "label.rename", `label:${oldName}`, { from: oldName, to: newName, merged: false });
        return;
      }
      // What undo needs to split the labels again (frames and clips that had the old one, and those that had
      // both), taken before the rows move.
      const undo = this.#mergeUndo(id, other);
      this.#prepare(
        "INSERT OR IGNORE INTO frame_labels (key, label_id, created_ms, author) " +
          "SELECT key, ?, created_ms, author FROM frame_labels WHERE label_id = ?",
      ).run(other, id);
      this.#prepare(
        "INSERT OR IGNORE INTO clip_labels (clip_id, label_id) SELECT clip_id, ? FROM clip_labels WHERE label_id = ?",
      ).run(other, id);
      this.#prepare("UPDATE boxes SET label_id = ? WHERE label_id = ?").run(other, id);
      this.#deleteLabelRows(id);
      this.#journal(by, "label.rename", `label:${oldName}`, {
        from: oldName,
        to: newName,
        merged: true,
        ...undo,
      });
    });
  }

  /**
   * The undo data of merging label `id` into `other`: frames (in the catalog) and clips with the old label, those
   * with both, the boxes that move, and the old label's colour and hotkey. Keys are left out (undo refuses) when
   * there are more than UNDO_KEY_CAP.
   */
  #mergeUndo(id: number, other: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const old = "FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = ?";
    const both = `${old} AND EXISTS (SELECT 1 FROM frame_labels o WHERE o.key = fl.key AND o.label_id = ?)`;
    const count = Number((this.#prepare(`SELECT COUNT(*) AS n ${old}`).get(id) as { n: number }).n);
    if (count <= UNDO_KEY_CAP) {
      out.oldKeys = this.#column(`SELECT fl.key AS v ${old} ORDER BY fl.key`, [id]);
      out.bothKeys = this.#column(`SELECT fl.key AS v ${both} ORDER BY fl.key`, [id, other]);
    }
    out.oldClips = this.#column("SELECT clip_id AS v FROM clip_labels WHERE label_id = ? ORDER BY clip_id", [
      id,
    ])
      .map(Number);
    out.bothClips = this.#column(
      `SELECT clip_id AS v FROM clip_labels cl WHERE label_id = ? AND EXISTS
         (SELECT 1 FROM clip_labels o WHERE o.clip_id = cl.clip_id AND o.label_id = ?) ORDER BY clip_id`,
      [id, other],
    ).map(Number);
    const boxes = Number(
      (this.#prepare("SELECT COUNT(*) AS n FROM boxes WHERE label_id = ?").get(id) as { n: number }).n,
    );
    if (boxes <= UNDO_KEY_CAP) {
      out.oldBoxes = this.#column("SELECT id AS v FROM boxes WHERE label_id = ? ORDER BY id", [id]).map(
        Number,
      );
    }
    out.definition = this.#look(id);
    return out;
  }

  /** The first column (`v`) of a query's rows. */
  #column(sql: string, params: SQLInputValue[]): unknown[] {
    return (this.#prepare(sql).all(...params) as { v: unknown }[]).map((r) => r.v);
  }

  /** A label's colour and hotkey (both null when it has none). */
  #look(id: number): LabelLook {
    const r = this.#prepare("SELECT color, hotkey FROM label_set WHERE label_id = ?").get(id) as
      | { color: string | null; hotkey: number | null }
      | undefined;
    return {
      color: r?.color ?? null,
      hotkey: r?.hotkey === null || r?.hotkey === undefined ? null : Number(r.hotkey),
    };
  }

  #deleteLabelRows(id: number): { frames: number; clips: number; boxes: number } {
    const frames = Number(this.#prepare("DELETE FROM frame_labels WHERE label_id = ?").run(id).changes);
    const clips = Number(this.#prepare("DELETE FROM clip_labels WHERE label_id = ?").run(id).changes);
    const boxes = Number(this.#prepare("DELETE FROM boxes WHERE label_id = ?").run(id).changes);
    this.#prepare("DELETE FROM label_set WHERE label_id = ?").run(id);
    this.#prepare("DELETE FROM labels WHERE id = ?").run(id);
    return { frames, clips, boxes };
  }

  /** Deletes a label from every frame and clip, with its boxes. */
  #deleteLabel(name: string, by: ChangeBy = {}): { frames: number; clips: number } {
    return this.#tx(() => {
      const id = this.#existingLabelId(name);
      // What undo needs to put it all back, read before it goes (keys and boxes within UNDO_KEY_CAP).
      const undo: Record<string, unknown> = {};
      const withIt = "FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = ?";
      if (
        Number((this.#prepare(`SELECT COUNT(*) AS n ${withIt}`).get(id) as { n: number }).n) <=
          UNDO_KEY_CAP
      ) {
        undo.keys = this.#column(`SELECT fl.key AS v ${withIt} ORDER BY fl.key`, [id]);
      }
      undo.clipIds = this.#column(
        "SELECT clip_id AS v FROM clip_labels WHERE label_id = ? ORDER BY clip_id",
        [id],
      )
        .map(Number);
      const boxCount = Number(
        (this.#prepare("SELECT COUNT(*) AS n FROM boxes WHERE label_id = ?").get(id) as { n: number }).n,
      );
      if (boxCount <= UNDO_KEY_CAP) {
        undo.deletedBoxes = this.#boxesWhere("b.label_id = ?", [id]);
      }
      undo.definition = this.#look(id);
      const { frames, clips, boxes } = this.#deleteLabelRows(id);
      this.#journal(by, "label.delete", `label:${name}`, { name, frames, clips, boxes, ...undo });
      return { frames, clips };
    });
  }

  /**
   * Every label with its number of directly labelled frames in the catalog and of clips, by name. (Labels of a
   * frame whose row is removed stay, unseen, and come back with the row, e.g. after a reindex.)
   */
  #list(where = "1", params: SQLInputValue[] = []): LabelInfo[] {
    return (this.#prepare(
      `SELECT l.id, l.name,
         (SELECT COUNT(*) FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = l.id) AS frames,
         (SELECT COUNT(*) FROM clip_labels cl WHERE cl.label_id = l.id) AS clips,
         (SELECT COUNT(*) FROM boxes b WHERE b.label_id = l.id) AS boxes,
         s.color, s.hotkey
       FROM labels l LEFT JOIN label_set s ON s.label_id = l.id WHERE ${where} ORDER BY l.name`,
    ).all(...params) as {
      id: number;
      name: string;
      frames: number;
      clips: number;
      boxes: number;
      color: string | null;
      hotkey: number | null;
    }[]).map((r) => ({
      id: Number(r.id),
      name: r.name,
      frames: Number(r.frames),
      clips: Number(r.clips),
      boxes: Number(r.boxes),
      color: r.color ?? null,
      hotkey: r.hotkey === null || r.hotkey === undefined ? null : Number(r.hotkey),
    }));
  }

  /** A frame's labels: its own and those of clips it lies in (sorted, each once); [] for an unknown key. */
  #labelsOf(key: string): string[] {
    return (this.#prepare(
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
        this.#prepare(
          "INSERT INTO clips (robot_id, from_ms, to_ms, name, note, created_ms, author) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ).run(input.robotId, input.fromMs, input.toMs, name, note, now, author).lastInsertRowid,
      );
      for (const label of labels) this.#linkClip(id, label);
      const clip = this.#getClip(id)!;
      this.#journal({ ...by, author, nowMs: now }, "clip.create", `clip:${id}`, {
        id,
        clip: clipDetail(clip),
      });
      return clip;
    });
  }

  #linkClip(clipId: number, label: string): void {
    this.#prepare("INSERT OR IGNORE INTO clip_labels (clip_id, label_id) VALUES (?, ?)")
      .run(clipId, this.#ensureLabel(label));
  }

  /** Changes a clip's span, robot, name, note or labels; refuses an unknown id. */
  #updateClip(id: number, update: ClipUpdate, by: ChangeBy = {}): Clip {
    return this.#tx(() => {
      const before = this.#getClip(id);
      if (!before) throw unknownClip(id);
      const { robotId, fromMs, toMs, name, note, labels } = clipAfterUpdate(before, update, this.#limits);
      this.#checkRoomFor(labels);
      this.#prepare(
        "UPDATE clips SET robot_id = ?, from_ms = ?, to_ms = ?, name = ?, note = ? WHERE id = ?",
      )
        .run(robotId, fromMs, toMs, name, note, id);
      this.#prepare("DELETE FROM clip_labels WHERE clip_id = ?").run(id);
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
      // Where the clip was in collections (id and index in its order), so undo puts it back there.
      const collections = (this.#prepare(
        `SELECT cc.collection_id AS id, (SELECT COUNT(*) FROM collection_clips o
           WHERE o.collection_id = cc.collection_id AND o.position < cc.position) AS position
         FROM collection_clips cc WHERE cc.clip_id = ? ORDER BY cc.collection_id`,
      ).all(id) as { id: number; position: number }[]).map((r) => ({
        id: Number(r.id),
        position: Number(r.position),
      }));
      this.#prepare("DELETE FROM collection_clips WHERE clip_id = ?").run(id);
      this.#prepare("DELETE FROM clip_labels WHERE clip_id = ?").run(id);
      this.#prepare("DELETE FROM clips WHERE id = ?").run(id);
      this.#journal(by, "clip.delete", `clip:${id}`, {
        id,
        clip: clipDetail(clip),
        ...(collections.length ? { collections } : {}),
      });
    });
  }

  #getClip(id: number): Clip | null {
    const r = this.#prepare(`${CLIP_SELECT} WHERE c.id = ?`).get(id) as ClipRaw | undefined;
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
    return (this.#prepare(sql).all(...params) as unknown as ClipRaw[]).map(toClip);
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
    return this.#changesWhere(
      where.length ? where.join(" AND ") : "1",
      params,
      `ORDER BY id ${filter.newest ? "DESC" : "ASC"} LIMIT ?`,
    );
  }

  /** Journal rows matching a condition, with an ORDER BY / LIMIT tail. */
  #changesWhere(where: string, params: SQLInputValue[], tail: string): Change[] {
    return (this.#prepare(
      `SELECT id, at_ms, author, action, target, detail FROM changes WHERE ${where} ${tail}`,
    ).all(...params) as {
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

  /** One journal row; null when there is none with that id. */
  #change(id: number): Change | null {
    if (!Number.isSafeInteger(id)) return null;
    return this.#changesWhere("id = ?", [id], "LIMIT 1")[0] ?? null;
  }

  /** The first entry that undid entry `id` (found through the changes_undo index); null when none did. */
  #undoneBy(id: number): Change | null {
    if (!Number.isSafeInteger(id)) return null;
    return this.#changesWhere("json_extract(detail, '$.undoOf') = ?", [id], "ORDER BY id LIMIT 1")[0] ?? null;
  }

  // ---------------------------------------------------------------------------------------------- collections

  #getCollection(id: number): Collection | null {
    if (!Number.isSafeInteger(id)) return null;
    const r = this.#prepare(`${COLLECTION_SELECT} WHERE k.id = ?`).get(id) as
      | Record<string, unknown>
      | undefined;
    return r ? toCollection(r) : null;
  }

  #collectionByName(name: string): Collection | null {
    if (typeof name !== "string") return null;
    const r = this.#prepare(`${COLLECTION_SELECT} WHERE k.name = ?`).get(name) as
      | Record<string, unknown>
      | undefined;
    return r ? toCollection(r) : null;
  }

  /** Refuses clip ids that are not in the catalog, naming the first few. */
  #checkClips(ids: number[]): void {
    const found = new Set<number>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      for (
        const r of this.#prepare(`SELECT id FROM clips WHERE id IN (${part.map(() => "?").join(",")})`)
          .all(...part) as { id: number }[]
      ) found.add(Number(r.id));
    }
    checkClipsFound(ids, found);
  }

  /** Refuses a name another collection than `self` has. */
  #checkNameFree(name: string, self: number | null): void {
    const holder = this.#prepare("SELECT id FROM collections WHERE name = ?").get(name) as
      | { id: number }
      | undefined;
    if (holder && Number(holder.id) !== self) throw collectionNameTaken(name, Number(holder.id));
  }

  /** Writes a collection's clips in order (positions 0, 1, ...), replacing what it had. */
  #setCollectionClips(id: number, clipIds: number[]): void {
    this.#prepare("DELETE FROM collection_clips WHERE collection_id = ?").run(id);
    const insert = this.#prepare(
      "INSERT INTO collection_clips (collection_id, clip_id, position) VALUES (?, ?, ?)",
    );
    clipIds.forEach((clipId, position) => insert.run(id, clipId, position));
  }

  /** Creates a collection; refuses a taken name and unknown clips. */
  #createCollection(input: CollectionInput, by: ChangeBy = {}): Collection {
    const { name, note, clipIds, author } = checkCollectionInput(input, by);
    return this.#tx(() => {
      const now = by.nowMs ?? this.#now();
      this.#checkNameFree(name, null);
      this.#checkClips(clipIds);
      const id = Number(
        this.#prepare("INSERT INTO collections (name, note, created_ms, author) VALUES (?, ?, ?, ?)")
          .run(name, note, now, author).lastInsertRowid,
      );
      this.#setCollectionClips(id, clipIds);
      const collection = this.#getCollection(id)!;
      this.#journal({ ...by, author, nowMs: now }, "collection.create", `collection:${id}`, {
        id,
        collection: collectionDetail(collection),
      });
      return collection;
    });
  }

  /** Renames a collection, changes its note or its clips; refuses an unknown id, a taken name, unknown clips. */
  #updateCollection(id: number, update: CollectionUpdate, by: ChangeBy = {}): Collection {
    return this.#tx(() => {
      const before = this.#getCollection(id);
      if (!before) throw unknownCollection(id);
      const { name, note, clipIds, added } = collectionAfterUpdate(before, update);
      this.#checkNameFree(name, id);
      this.#checkClips(added);
      this.#prepare("UPDATE collections SET name = ?, note = ? WHERE id = ?").run(name, note, id);
      this.#setCollectionClips(id, clipIds);
      const after = this.#getCollection(id)!;
      this.#journal(by, "collection.update", `collection:${id}`, {
        id,
        before: collectionDetail(before),
        after: collectionDetail(after),
      });
      return after;
    });
  }

  /** Deletes a collection (its clips stay); refuses an unknown id. */
  #deleteCollection(id: number, by: ChangeBy = {}): void {
    this.#tx(() => {
      const collection = this.#getCollection(id);
      if (!collection) throw unknownCollection(id);
      this.#prepare("DELETE FROM collection_clips WHERE collection_id = ?").run(id);
      this.#prepare("DELETE FROM collections WHERE id = ?").run(id);
      this.#journal(by, "collection.delete", `collection:${id}`, {
        id,
        collection: collectionDetail(collection),
      });
    });
  }

  // ---------------------------------------------------------------------------------------------- the label set

  /**
   * Creates the label when new (also in strict mode: this is how the set grows; it counts against
   * labels.max_distinct) and sets its colour and hotkey. A hotkey another label holds is refused, naming it.
   * Nothing is journalled when an existing label's look stays the same.
   */
  #defineLabel(name: string, definition: LabelDefinition, by: ChangeBy = {}): LabelInfo {
    return this.#tx(() => {
      let id = this.#labelId(name);
      const created = id === null;
      const before = created ? null : this.#look(id!);
      const after = definitionAfter(before ?? { color: null, hotkey: null }, definition);
      if (created) {
        checkLabel(name);
        this.#checkRoomFor([name], false);
        id = this.#ensureLabel(name);
      }
      if (after.hotkey !== null) {
        const holder = this.#prepare(
          "SELECT l.name FROM label_set s JOIN labels l ON l.id = s.label_id WHERE s.hotkey = ? AND s.label_id <> ?",
        ).get(after.hotkey, id) as { name: string } | undefined;
        if (holder) throw hotkeyTaken(after.hotkey, holder.name);
      }
      const same = before !== null && before.color === after.color && before.hotkey === after.hotkey;
      if (!same) {
        if (after.color === null && after.hotkey === null) {
          this.#prepare("DELETE FROM label_set WHERE label_id = ?").run(id);
        } else {
          this.#prepare(
            `INSERT INTO label_set (label_id, color, hotkey) VALUES (?, ?, ?)
             ON CONFLICT(label_id) DO UPDATE SET color = excluded.color, hotkey = excluded.hotkey`,
          ).run(id, after.color, after.hotkey);
        }
        this.#journal(by, "label.define", `label:${name}`, { name, created, before, after });
      }
      return this.#list("l.id = ?", [id])[0];
    });
  }

  // ---------------------------------------------------------------------------------------------- boxes

  /** Boxes matching a condition on `boxes b`, in id order. */
  #boxesWhere(where: string, params: SQLInputValue[]): Box[] {
    return (this.#prepare(`${BOX_SELECT} WHERE ${where} ORDER BY b.id`).all(...params) as Record<
      string,
      unknown
    >[]).map(boxFromRow);
  }

  /** Boxes by id (chunked), in id order; refuses ids that are not there. */
  #boxesById(ids: number[]): Box[] {
    const out: Box[] = [];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      out.push(...this.#boxesWhere(`b.id IN (${part.map(() => "?").join(",")})`, part));
    }
    checkBoxesFound(ids, new Set(out.map((b) => b.id)));
    return out.sort((a, b) => a.id - b.id);
  }

  /**
   * Adds boxes to frames in the catalog (unknown keys refused). Their classes are created when new, unless
   * strict; a model's boxes start unaccepted. One journal entry with the boxes as stored.
   */
  #addBoxes(inputs: BoxInput[], by: ChangeBy = {}): Box[] {
    const boxes = checkBoxInputs(inputs);
    const author = checkAuthor(by.author);
    return this.#tx(() => {
      const now = by.nowMs ?? this.#now();
      this.#checkKeys(boxes.map((b) => b.key));
      this.#checkRoomFor([...new Set(boxes.map((b) => b.label))]);
      const insert = this.#prepare(
        `INSERT INTO boxes (key, label_id, x, y, w, h, unit, image_w, image_h, confidence, source, accepted, author,
           created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const ids = boxes.map((b) =>
        Number(
          insert.run(
            b.key,
            this.#ensureLabel(b.label),
            b.x,
            b.y,
            b.w,
            b.h,
            b.unit,
            b.imageWidth,
            b.imageHeight,
            b.confidence,
            b.source,
            b.accepted ? 1 : 0,
            author,
            now,
            now,
          ).lastInsertRowid,
        )
      );
      const stored = this.#boxesById(ids);
      this.#journal({ ...by, author, nowMs: now }, "box.add", keysTarget(stored.map((b) => b.key)), {
        boxes: stored,
      });
      return stored;
    });
  }

  /** Changes a box's class (created when new, unless strict), rectangle or acceptance; refuses an unknown id. */
  #updateBox(id: number, update: BoxUpdate, by: ChangeBy = {}): Box {
    return this.#tx(() => {
      const before = Number.isSafeInteger(id) ? this.#boxesWhere("b.id = ?", [id])[0] : undefined;
      if (!before) throw unknownBox(id);
      const next = boxAfterUpdate(before, update);
      this.#checkRoomFor([next.label]);
      const now = by.nowMs ?? this.#now();
      this.#prepare(
        "UPDATE boxes SET label_id = ?, x = ?, y = ?, w = ?, h = ?, unit = ?, accepted = ?, updated_ms = ? WHERE id = ?",
      ).run(
        this.#ensureLabel(next.label),
        next.x,
        next.y,
        next.w,
        next.h,
        next.unit,
        next.accepted ? 1 : 0,
        now,
        id,
      );
      const after = this.#boxesWhere("b.id = ?", [id])[0];
      this.#journal({ ...by, nowMs: now }, "box.update", before.key, { before: [before], after: [after] });
      return after;
    });
  }

  /** Deletes boxes by id (all there, or nothing happens); returns how many. */
  #deleteBoxes(ids: number[], by: ChangeBy = {}): number {
    const unique = checkBoxIds(ids);
    return this.#tx(() => {
      const boxes = this.#boxesById(unique);
      const del = this.#prepare("DELETE FROM boxes WHERE id = ?");
      for (const b of boxes) del.run(b.id);
      this.#journal(by, "box.delete", keysTarget(boxes.map((b) => b.key)), { boxes });
      return boxes.length;
    });
  }

  /** Accepts boxes by id, or all unaccepted boxes of a frame; returns how many were not accepted before. */
  #acceptBoxes(target: { ids: number[] } | { key: string }, by: ChangeBy = {}): number {
    if (typeof target !== "object" || target === null) throw new BadInputError("give box ids or a frame key");
    const ids = "ids" in target ? checkBoxIds(target.ids) : null;
    return this.#tx(() => {
      let before: Box[];
      if (ids) before = this.#boxesById(ids).filter((b) => !b.accepted);
      else {
        const [key] = this.#checkKeys([(target as { key: string }).key]);
        before = this.#boxesWhere("b.key = ? AND b.accepted = 0", [key]);
      }
      if (before.length === 0) return 0;
      const now = by.nowMs ?? this.#now();
      const accept = this.#prepare("UPDATE boxes SET accepted = 1, updated_ms = ? WHERE id = ?");
      for (const b of before) accept.run(now, b.id);
      const after = this.#boxesById(before.map((b) => b.id));
      this.#journal({ ...by, nowMs: now }, "box.update", keysTarget(before.map((b) => b.key)), {
        before,
        after,
      });
      return before.length;
    });
  }

  /** Boxes of these frames, by key (frames without boxes left out), each frame's in id order. */
  #boxesOf(keys: string[]): Map<string, Box[]> {
    const unique = [...new Set(keys)];
    const boxes: Box[] = [];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const part = unique.slice(i, i + CHUNK);
      boxes.push(...this.#boxesWhere(`b.key IN (${part.map(() => "?").join(",")})`, part));
    }
    return boxesByKey(boxes);
  }

  // ---------------------------------------------------------------------------------------------- review

  /** What a person set on these frames (keys without a review row left out). */
  #setStatuses(
    keys: string[],
  ): Map<string, { status: "reviewed" | "rejected"; author: string | null; atMs: number }> {
    const out = new Map<string, { status: "reviewed" | "rejected"; author: string | null; atMs: number }>();
    for (let i = 0; i < keys.length; i += CHUNK) {
      const part = keys.slice(i, i + CHUNK);
      for (
        const r of this.#prepare(
          `SELECT key, status, author, at_ms FROM reviews WHERE key IN (${part.map(() => "?").join(",")})`,
        ).all(...part) as {
          key: string;
          status: "reviewed" | "rejected";
          author: string | null;
          at_ms: number;
        }[]
      ) out.set(r.key, { status: r.status, author: r.author, atMs: Number(r.at_ms) });
    }
    return out;
  }

  /**
   * Sets reviewed/rejected on frames in the catalog, or clears it (null). Frames already in that state are left
   * as they are (their author and time stay); one journal entry lists the others with their state before.
   */
  #setReview(keys: string[], status: "reviewed" | "rejected" | null, by: ChangeBy = {}): number {
    const next = checkReviewSet(status);
    const author = checkAuthor(by.author);
    return this.#tx(() => {
      const unique = this.#checkKeys(keys);
      const now = by.nowMs ?? this.#now();
      const current = this.#setStatuses(unique);
      const before: Record<string, "reviewed" | "rejected" | null> = {};
      for (const key of unique) {
        const was = current.get(key)?.status ?? null;
        if (was !== next) before[key] = was;
      }
      const changed = Object.keys(before);
      if (changed.length === 0) return 0;
      const write = next === null ? this.#prepare("DELETE FROM reviews WHERE key = ?") : this.#prepare(
        `INSERT INTO reviews (key, status, author, at_ms) VALUES (?, ?, ?, ?)
           ON CONFLICT(key) DO UPDATE SET status = excluded.status, author = excluded.author, at_ms = excluded.at_ms`,
      );
      for (const key of changed) {
        if (next === null) write.run(key);
        else write.run(key, next, author, now);
      }
      this.#journal({ ...by, author, nowMs: now }, "review.set", keysTarget(changed), {
        status: next,
        before,
      });
      return changed.length;
    });
  }

  /** Review status of these frames, every key in order (derived for frames no person reviewed). */
  #reviews(keys: string[]): Review[] {
    const unique = [...new Set(keys)];
    const set = this.#setStatuses(unique);
    const own = new Map<string, number>();
    for (let i = 0; i < unique.length; i += CHUNK) {
      const part = unique.slice(i, i + CHUNK);
      const marks = part.map(() => "?").join(",");
      for (
        const r of this.#prepare(
          `SELECT key FROM frame_labels WHERE key IN (${marks}) UNION SELECT key FROM boxes WHERE key IN (${marks})`,
        ).all(...part, ...part) as { key: string }[]
      ) own.set(r.key, 1);
    }
    return keys.map((key) => {
      const s = set.get(key);
      if (s) return { key, status: s.status, author: s.author, atMs: s.atMs };
      return { key, status: derivedStatus(null, own.get(key) ?? 0, 0), author: null, atMs: null };
    });
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
  createCollection(input: CollectionInput, by: ChangeBy = {}): Promise<Collection> {
    return run(() => this.#createCollection(input, by));
  }
  updateCollection(id: number, update: CollectionUpdate, by: ChangeBy = {}): Promise<Collection> {
    return run(() => this.#updateCollection(id, update, by));
  }
  deleteCollection(id: number, by: ChangeBy = {}): Promise<void> {
    return run(() => this.#deleteCollection(id, by));
  }
  getCollection(id: number): Promise<Collection | null> {
    return run(() => this.#getCollection(id));
  }
  collectionByName(name: string): Promise<Collection | null> {
    return run(() => this.#collectionByName(name));
  }
  listCollections(): Promise<Collection[]> {
    return run(() =>
      (this.#prepare(`${COLLECTION_SELECT} ORDER BY k.name, k.id`).all() as Record<string, unknown>[]).map(
        toCollection,
      )
    );
  }
  changes(filter: ChangeFilter = {}): Promise<Change[]> {
    return run(() => this.#changes(filter));
  }
  change(id: number): Promise<Change | null> {
    return run(() => this.#change(id));
  }
  undoneBy(id: number): Promise<Change | null> {
    return run(() => this.#undoneBy(id));
  }
  defineLabel(name: string, definition: LabelDefinition, by: ChangeBy = {}): Promise<LabelInfo> {
    return run(() => this.#defineLabel(name, definition, by));
  }
  addBoxes(boxes: BoxInput[], by: ChangeBy = {}): Promise<Box[]> {
    return run(() => this.#addBoxes(boxes, by));
  }
  updateBox(id: number, update: BoxUpdate, by: ChangeBy = {}): Promise<Box> {
    return run(() => this.#updateBox(id, update, by));
  }
  deleteBoxes(ids: number[], by: ChangeBy = {}): Promise<number> {
    return run(() => this.#deleteBoxes(ids, by));
  }
  acceptBoxes(target: { ids: number[] } | { key: string }, by: ChangeBy = {}): Promise<number> {
    return run(() => this.#acceptBoxes(target, by));
  }
  getBox(id: number): Promise<Box | null> {
    return run(() => (Number.isSafeInteger(id) ? this.#boxesWhere("b.id = ?", [id])[0] ?? null : null));
  }
  boxesOf(keys: string[]): Promise<Map<string, Box[]>> {
    return run(() => this.#boxesOf(keys));
  }
  setReview(keys: string[], status: "reviewed" | "rejected" | null, by: ChangeBy = {}): Promise<number> {
    return run(() => this.#setReview(keys, status, by));
  }
  reviews(keys: string[]): Promise<Review[]> {
    return run(() => this.#reviews(keys));
  }
}

/** The `undoOf` of a change: the id of a journal entry. */
function checkUndoOf(id: number): number {
  if (!Number.isSafeInteger(id) || id <= 0) throw new BadInputError(`undoOf ${id} is not a journal entry id`);
  return id;
}

/** `{[field]: keys per label}` for a journal detail, or nothing when the keys were over UNDO_KEY_CAP. */
function undoKeys(field: string, perLabel: Map<string, string[]> | null): Record<string, unknown> {
  if (perLabel === null) return {};
  const keys = keysForUndo(perLabel);
  return keys === undefined ? {} : { [field]: keys };
}

/** A synchronous call as a promise: its throw becomes the rejection. */
function run<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error);
  }
}
