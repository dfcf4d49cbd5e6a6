/**
 * The PostgreSQL backend's label store: labels, clips, boxes, the label set, review status and the change journal,
 * with the behaviour, messages, journal rows and return values of the SQLite one (src/catalog/sqlite_labels.ts,
 * which explains the model). The pure parts, checks, refusals and the journal's detail objects, are shared with it
 * (src/catalog/rules.ts, src/catalog/boxes.ts).
 *
 * What PostgreSQL adds: any number of servers change labels at once. So
 * - every change and its journal row are one transaction (`PgDb.tx`); `changeLabels` runs its add and its remove
 *   in the same one (both or neither);
 * - every change first takes one transaction-level advisory lock (LOCK): changes are made one at a time across
 *   all servers. That keeps `labels.max_distinct` true (the count is read and checked under the lock, so two
 *   servers cannot each add the last free label), keeps a hotkey on one label only (the holder is looked up under
 *   the lock; the UNIQUE constraint backs it), keeps a label from being deleted or merged away while another
 *   change links frames or boxes to it, keeps the "before" of a journal entry (what undo restores) true at
 *   commit, and makes journal ids follow commit order (a client polling `afterId` never skips an entry that
 *   commits late). Changes are made by people, so the serialisation costs nothing that matters; reads take no
 *   lock.
 * - PostgreSQL text cannot hold NUL (U+0000): an author, clip name or note with one is refused as bad input, and
 *   a key or name with one is simply not found, where SQLite would have stored or looked it up.
 */
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
  ReviewStatus,
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
import type { PgDb, Queryable } from "./pg_db.ts";
import { Params } from "./postgres_search.ts";
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
  notInLabelSet,
  UNDO_KEY_CAP,
  uniqueKeys,
  unknownClip,
  unknownCollection,
  unknownLabel,
} from "./rules.ts";

/** Taken first by every change (see above); released by the transaction's end. */
const LOCK = "SELECT pg_advisory_xact_lock(hashtext('frame-bucket labels'))";

const CLIP_SELECT = `SELECT c.id, c.robot_id, c.from_ms, c.to_ms, c.name, c.note, c.created_ms, c.author,
  (SELECT COALESCE(json_agg(l.name ORDER BY l.name), '[]'::json) FROM clip_labels cl
    JOIN labels l ON l.id = cl.label_id WHERE cl.clip_id = c.id) AS labels
  FROM clips c`;

const COLLECTION_SELECT = `SELECT k.id, k.name, k.note, k.created_ms, k.author,
  (SELECT COALESCE(json_agg(cc.clip_id ORDER BY cc.position), '[]'::json) FROM collection_clips cc
    WHERE cc.collection_id = k.id) AS clip_ids
  FROM collections k`;

function toCollection(r: Record<string, unknown>): Collection {
  return {
    id: Number(r.id),
    name: r.name as string,
    note: r.note as string,
    clipIds: Array.isArray(r.clip_ids) ? (r.clip_ids as unknown[]).map(Number) : [],
    createdMs: Number(r.created_ms),
    author: r.author as string | null,
  };
}

/** A label with its use counts and its look, for `list` and `defineLabel` (add a WHERE and an ORDER BY). */
const LABEL_INFO_SELECT = `SELECT l.id, l.name,
    (SELECT COUNT(*) FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = l.id) AS frames,
    (SELECT COUNT(*) FROM clip_labels cl WHERE cl.label_id = l.id) AS clips,
    (SELECT COUNT(*) FROM boxes b WHERE b.label_id = l.id) AS boxes,
    s.color, s.hotkey
  FROM labels l LEFT JOIN label_set s ON s.label_id = l.id`;

/** The look of a label without a row in `label_set`. */
const NO_LOOK: LabelLook = { color: null, hotkey: null };

function toClip(r: Record<string, unknown>): Clip {
  return {
    id: Number(r.id),
    robotId: r.robot_id as string,
    fromMs: Number(r.from_ms),
    toMs: Number(r.to_ms),
    name: r.name as string,
    note: r.note as string,
    labels: Array.isArray(r.labels) ? r.labels as string[] : [],
    createdMs: Number(r.created_ms),
    author: r.author as string | null,
  };
}

function toLabelInfo(r: Record<string, unknown>): LabelInfo {
  return {
    id: Number(r.id),
    name: r.name as string,
    frames: Number(r.frames),
    clips: Number(r.clips),
    boxes: Number(r.boxes),
    color: (r.color as string | null) ?? null,
    hotkey: r.hotkey === null || r.hotkey === undefined ? null : Number(r.hotkey),
  };
}

function toChange(row: Record<string, unknown>): Change {
  return {
    id: Number(row.id),
    atMs: Number(row.at_ms),
    author: row.author as string | null,
    action: row.action as ChangeAction,
    target: row.target as string,
    detail: row.detail as Record<string, unknown>,
  };
}

/** True when PostgreSQL text can hold `s` (no NUL): a key or name that cannot is in no row. */
const storable = (s: string) => typeof s === "string" && !s.includes("\0");

/** Refuses free text PostgreSQL cannot store (NUL); returns it otherwise. */
function storableText<T extends string | null>(value: T, what: string): T {
  if (value !== null && !storable(value)) {
    throw new BadInputError(`${what} contains a NUL character (U+0000), which the catalog cannot store`);
  }
  return value;
}

/** A clip or journal id that can be in the table (a bigint); any other is simply not found. */
const idOk = (id: number) => Number.isSafeInteger(id);

export class PostgresLabels implements LabelStore {
  readonly #db: PgDb;
  readonly #now: () => number;
  readonly #limits: LabelLimits;

  constructor(db: PgDb, options: { now?: () => number; limits?: Partial<LabelLimits> } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#limits = { ...DEFAULT_LABEL_LIMITS, ...options.limits };
  }

  /** The limits in force. */
  get limits(): Readonly<LabelLimits> {
    return this.#limits;
  }

  /** Runs a change in one transaction, under the label lock. */
  #change<T>(doing: string, work: (q: Queryable) => Promise<T>): Promise<T> {
    return this.#db.tx(doing, async (q) => {
      await q.query(LOCK);
      return await work(q);
    });
  }

  /** Statements on the pool, one at a time (reads). */
  #reads(doing: string): Queryable {
    return { query: (text, values) => this.#db.query(doing, text, values ?? []) };
  }

  /** Appends a journal row; `by.undoOf` (the entry this change undoes) goes into the detail. */
  async #journal(
    q: Queryable,
    by: ChangeBy,
    action: ChangeAction,
    target: string,
    detail: Record<string, unknown>,
  ): Promise<void> {
    if (by.undoOf !== undefined && !(Number.isSafeInteger(by.undoOf) && by.undoOf > 0)) {
      throw new BadInputError(`undoOf ${by.undoOf} is not a journal entry id (a positive whole number)`);
    }
    await q.query(
      "INSERT INTO changes (at_ms, author, action, target, detail) VALUES ($1, $2, $3, $4, $5::json)",
      [
        by.nowMs ?? this.#now(),
        storableText(checkAuthor(by.author), "author"),
        action,
        target,
        JSON.stringify(by.undoOf === undefined ? detail : { ...detail, undoOf: by.undoOf }),
      ],
    );
  }

  async #labelId(q: Queryable, name: string): Promise<number | null> {
    if (!storable(name)) return null;
    const r = await q.query("SELECT id FROM labels WHERE name = $1", [name]);
    return r.rows.length ? Number(r.rows[0].id) : null;
  }

  async #existingLabelId(q: Queryable, name: string): Promise<number> {
    const id = await this.#labelId(q, name);
    if (id === null) throw unknownLabel(name);
    return id;
  }

  /**
   * The label's id, the label created when new (concurrent creators of one name get the same row). Looked up
   * first: an INSERT that finds the name would still draw an id from the sequence.
   */
  async #ensureLabel(q: Queryable, name: string): Promise<number> {
    const known = await this.#labelId(q, name);
    if (known !== null) return known;
    await q.query("INSERT INTO labels (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [checkLabel(name)]);
    return (await this.#labelId(q, name))!;
  }

  /**
   * Refuses a change that would create labels implicitly: any in strict mode (labels.strict, naming the label
   * set), or beyond labels.max_distinct (inside the change's transaction, under the lock). Labels that exist
   * already never count. `defineLabel` passes `explicit`: it may create also in strict mode.
   */
  async #checkRoomFor(q: Queryable, names: string[], explicit = false): Promise<void> {
    if (names.length === 0) return;
    const r = await q.query("SELECT name FROM labels WHERE name = ANY($1::text[])", [names.filter(storable)]);
    const known = new Set(r.rows.map((row) => row.name as string));
    const fresh = names.filter((n) => !known.has(n));
    if (fresh.length === 0) return;
    if (this.#limits.strict && !explicit) {
      const set = await q.query("SELECT name FROM labels ORDER BY name");
      throw notInLabelSet(fresh[0], set.rows.map((row) => row.name as string));
    }
    const have = Number((await q.query("SELECT COUNT(*) AS n FROM labels")).rows[0].n);
    checkRoom(fresh, have, this.#limits);
  }

  /** Refuses keys that are not in the catalog, naming the first few. */
  async #checkKeys(q: Queryable, keys: string[]): Promise<string[]> {
    const unique = uniqueKeys(keys);
    const r = await q.query("SELECT key FROM frames WHERE key = ANY($1::text[])", [unique.filter(storable)]);
    checkKeysFound(unique, new Set(r.rows.map((row) => row.key as string)));
    return unique;
  }

  async #normalize(q: Queryable, target: FrameSelector): Promise<FrameSelector> {
    if ("keys" in target) return { keys: await this.#checkKeys(q, target.keys) };
    return checkSpanSelector(target);
  }

  /**
   * Runs a data-changing statement that RETURNs `key` and gives how many rows it changed and their keys in key
   * order, at most UNDO_KEY_CAP of them (more are not journalled: a span over a million frames does not come back
   * row by row). Keys of a request's list are journalled in the request's order, spans' in key order.
   */
  async #keysOf(q: Queryable, statement: string, values: unknown[]): Promise<{ n: number; keys: string[] }> {
    const r = await q.query(
      `WITH changed AS (${statement})
       SELECT (SELECT COUNT(*) FROM changed) AS n,
         (SELECT COALESCE(json_agg(key ORDER BY key), '[]'::json)
            FROM (SELECT key FROM changed LIMIT ${UNDO_KEY_CAP}) k) AS keys`,
      values,
    );
    return { n: Number(r.rows[0].n), keys: r.rows[0].keys as string[] };
  }

  /**
   * Checks an add request and returns its work, to run in a transaction: puts the labels on the frames (created
   * when new) and returns how many (frame, label) pairs were new; pairs that exist keep their author and time.
   * Unknown keys are refused before anything changes. The journal lists the keys each label newly got (undo).
   */
  #add(target: FrameSelector, labels: string[], by: ChangeBy): (q: Queryable) => Promise<number> {
    const names = labelsToAdd(labels, this.#limits);
    const author = storableText(checkAuthor(by.author), "author");
    return async (q) => {
      const now = by.nowMs ?? this.#now();
      const selector = await this.#normalize(q, target);
      await this.#checkRoomFor(q, names);
      let added = 0;
      const addedKeys = new Map<string, string[]>();
      for (const name of names) {
        const id = await this.#ensureLabel(q, name);
        const { n, keys } = "keys" in selector
          ? await this.#keysOf(
            q,
            `INSERT INTO frame_labels (key, label_id, created_ms, author)
             SELECT k, $2::bigint, $3::bigint, $4::text FROM unnest($1::text[]) AS k ON CONFLICT DO NOTHING
             RETURNING key`,
            [selector.keys, id, now, author],
          )
          : await this.#keysOf(
            q,
            `INSERT INTO frame_labels (key, label_id, created_ms, author)
             SELECT key, $1::bigint, $2::bigint, $3::text FROM frames
             WHERE robot_id = $4 AND ts_ms >= $5 AND ts_ms <= $6 ON CONFLICT DO NOTHING RETURNING key`,
            [id, now, author, selector.robotId, selector.fromMs, selector.toMs],
          );
        added += n;
        addedKeys.set(name, "keys" in selector ? inRequestOrder(selector.keys, keys) : keys);
      }
      const { target: t, detail } = describeTarget(selector);
      const forUndo = added > UNDO_KEY_CAP ? undefined : keysForUndo(addedKeys);
      await this.#journal(q, { ...by, author, nowMs: now }, "label.add", t, {
        labels: names,
        ...detail,
        added,
        ...(forUndo ? { addedKeys: forUndo } : {}),
      });
      return added;
    };
  }

  /**
   * Checks a remove request and returns its work: takes the labels off the frames (their own labels; labels from
   * a clip stay until the clip changes) and returns how many (frame, label) pairs were removed. Unknown labels
   * are refused. The journal lists the keys each label was taken off (undo).
   */
  #remove(target: FrameSelector, labels: string[], by: ChangeBy): (q: Queryable) => Promise<number> {
    const names = labelsToRemove(labels, this.#limits);
    return async (q) => {
      const now = by.nowMs ?? this.#now();
      const selector = await this.#normalize(q, target);
      let removed = 0;
      const removedKeys = new Map<string, string[]>();
      for (const name of names) {
        const id = await this.#existingLabelId(q, name);
        const { n, keys } = "keys" in selector
          ? await this.#keysOf(
            q,
            "DELETE FROM frame_labels WHERE label_id = $1 AND key = ANY($2::text[]) RETURNING key",
            [id, selector.keys],
          )
          : await this.#keysOf(
            q,
            `DELETE FROM frame_labels WHERE label_id = $1 AND key IN
               (SELECT key FROM frames WHERE robot_id = $2 AND ts_ms >= $3 AND ts_ms <= $4) RETURNING key`,
            [id, selector.robotId, selector.fromMs, selector.toMs],
          );
        removed += n;
        removedKeys.set(name, "keys" in selector ? inRequestOrder(selector.keys, keys) : keys);
      }
      const { target: t, detail } = describeTarget(selector);
      const forUndo = removed > UNDO_KEY_CAP ? undefined : keysForUndo(removedKeys);
      await this.#journal(q, { ...by, nowMs: now }, "label.remove", t, {
        labels: names,
        ...detail,
        removed,
        ...(forUndo ? { removedKeys: forUndo } : {}),
      });
      return removed;
    };
  }

  /** A label's colour and hotkey (none when it has no row in the label set). */
  async #look(q: Queryable, id: number): Promise<LabelLook> {
    const r = await q.query("SELECT color, hotkey FROM label_set WHERE label_id = $1", [id]);
    if (!r.rows.length) return { ...NO_LOOK };
    return {
      color: (r.rows[0].color as string | null) ?? null,
      hotkey: r.rows[0].hotkey === null ? null : Number(r.rows[0].hotkey),
    };
  }

  /**
   * The first column (`v`) of a query's rows (give it an ORDER BY), or undefined when there are more than
   * UNDO_KEY_CAP: undo data a journal row leaves out (undo then refuses the entry) rather than grow to megabytes.
   */
  async #capped<T>(q: Queryable, sql: string, values: unknown[]): Promise<T[] | undefined> {
    const r = await q.query(`${sql} LIMIT ${UNDO_KEY_CAP + 1}`, values);
    return r.rows.length > UNDO_KEY_CAP ? undefined : r.rows.map((row) => row.v as T);
  }

  /** Removes a label with everything that refers to it: frames' and clips' links, its boxes, its look. */
  async #deleteLabelRows(
    q: Queryable,
    id: number,
  ): Promise<{ frames: number; clips: number; boxes: number }> {
    const frames = (await q.query("DELETE FROM frame_labels WHERE label_id = $1", [id])).rowCount ?? 0;
    const clips = (await q.query("DELETE FROM clip_labels WHERE label_id = $1", [id])).rowCount ?? 0;
    const boxes = (await q.query("DELETE FROM boxes WHERE label_id = $1", [id])).rowCount ?? 0;
    await q.query("DELETE FROM label_set WHERE label_id = $1", [id]);
    await q.query("DELETE FROM labels WHERE id = $1", [id]);
    return { frames, clips, boxes };
  }

  async #linkClip(q: Queryable, clipId: number, label: string): Promise<void> {
    await q.query("INSERT INTO clip_labels (clip_id, label_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", [
      clipId,
      await this.#ensureLabel(q, label),
    ]);
  }

  async #getClip(q: Queryable, id: number): Promise<Clip | null> {
    if (!idOk(id)) return null;
    const r = await q.query(`${CLIP_SELECT} WHERE c.id = $1`, [id]);
    return r.rows.length ? toClip(r.rows[0]) : null;
  }

  async #boxes(q: Queryable, ids: number[]): Promise<Box[]> {
    const r = await q.query(`${BOX_SELECT} WHERE b.id = ANY($1::bigint[]) ORDER BY b.id`, [ids]);
    return r.rows.map(boxFromRow);
  }

  // The contract's methods.

  /** Puts labels on frames (created when new); see #add. */
  async addLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): Promise<number> {
    return await this.#change("labelling frames", this.#add(target, labels, by));
  }

  /** Takes labels off frames; see #remove. */
  async removeLabels(target: FrameSelector, labels: string[], by: ChangeBy = {}): Promise<number> {
    return await this.#change("taking labels off frames", this.#remove(target, labels, by));
  }

  /** Adds some labels and removes others in one transaction (both or neither), each checked as on its own. */
  async changeLabels(
    target: FrameSelector,
    change: { add?: string[]; remove?: string[] },
    by: ChangeBy = {},
  ): Promise<{ added: number; removed: number }> {
    return await this.#change("changing labels", async (q) => ({
      added: change.add?.length ? await this.#add(target, change.add, by)(q) : 0,
      removed: change.remove?.length ? await this.#remove(target, change.remove, by)(q) : 0,
    }));
  }

  /**
   * Renames a label everywhere (frames, clips and boxes refer to it by id). When `newName` exists the call is
   * refused unless `merge` is set, which moves everything labelled `oldName` to `newName`; the journal then keeps
   * what undo needs to split them again (which frames, clips and boxes had the old label, which had both, and
   * the old label's colour and hotkey). Allowed in strict mode: it changes the set deliberately.
   */
  async renameLabel(
    oldName: string,
    newName: string,
    by: ChangeBy & { merge?: boolean } = {},
  ): Promise<void> {
    checkLabel(newName);
    await this.#change("renaming a label", async (q) => {
      const id = await this.#existingLabelId(q, oldName);
      if (oldName === newName) return;
      const other = await this.#labelId(q, newName);
      if (other !== null && !by.merge) throw mergeNeeded(oldName, newName);
      if (other === null) {
        await q.query("UPDATE labels SET name = $1 WHERE id = $2", [newName, id]);
        await this.#journal(q, by, "label.rename", `label:${oldName}`, {
          from: oldName,
          to: newName,
          merged: false,
        });
        return;
      }
      // What undo needs to split the labels again, read before the rows move: frames (in the catalog) and clips
      // with the old label and those with both, the boxes that move, the old label's look.
      const undo: Record<string, unknown> = {};
      const old = "FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = $1";
      const oldKeys = await this.#capped<string>(q, `SELECT fl.key AS v ${old} ORDER BY fl.key`, [id]);
      if (oldKeys) {
        undo.oldKeys = oldKeys;
        undo.bothKeys = (await q.query(
          `SELECT fl.key AS v ${old}
             AND EXISTS (SELECT 1 FROM frame_labels o WHERE o.key = fl.key AND o.label_id = $2) ORDER BY fl.key`,
          [id, other],
        )).rows.map((row) => row.v as string);
      }
      undo.oldClips =
        (await q.query("SELECT clip_id FROM clip_labels WHERE label_id = $1 ORDER BY clip_id", [id]))
          .rows.map((row) => Number(row.clip_id));
      undo.bothClips = (await q.query(
        `SELECT clip_id FROM clip_labels cl WHERE label_id = $1
           AND EXISTS (SELECT 1 FROM clip_labels o WHERE o.clip_id = cl.clip_id AND o.label_id = $2) ORDER BY clip_id`,
        [id, other],
      )).rows.map((row) => Number(row.clip_id));
      const oldBoxes = await this.#capped<number>(
        q,
        "SELECT id AS v FROM boxes WHERE label_id = $1 ORDER BY id",
        [id],
      );
      if (oldBoxes) undo.oldBoxes = oldBoxes.map(Number);
      undo.definition = await this.#look(q, id);
      await q.query(
        `INSERT INTO frame_labels (key, label_id, created_ms, author)
         SELECT key, $1::bigint, created_ms, author FROM frame_labels WHERE label_id = $2 ON CONFLICT DO NOTHING`,
        [other, id],
      );
      await q.query(
        `INSERT INTO clip_labels (clip_id, label_id)
         SELECT clip_id, $1::bigint FROM clip_labels WHERE label_id = $2 ON CONFLICT DO NOTHING`,
        [other, id],
      );
      await q.query("UPDATE boxes SET label_id = $1 WHERE label_id = $2", [other, id]);
      await this.#deleteLabelRows(q, id);
      await this.#journal(q, by, "label.rename", `label:${oldName}`, {
        from: oldName,
        to: newName,
        merged: true,
        ...undo,
      });
    });
  }

  /**
   * Deletes a label from every frame and clip, with its boxes. The journal keeps what undo needs to put it all
   * back: the frames and clips that had it, the boxes as they were, its colour and hotkey.
   */
  async deleteLabel(name: string, by: ChangeBy = {}): Promise<{ frames: number; clips: number }> {
    return await this.#change("deleting a label", async (q) => {
      const id = await this.#existingLabelId(q, name);
      // What undo needs to put it all back, read before it goes: the frames (in the catalog) and clips that had
      // it, its boxes as they were, its look.
      const undo: Record<string, unknown> = {};
      const keys = await this.#capped<string>(
        q,
        "SELECT fl.key AS v FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = $1 ORDER BY fl.key",
        [id],
      );
      if (keys) undo.keys = keys;
      undo.clipIds =
        (await q.query("SELECT clip_id FROM clip_labels WHERE label_id = $1 ORDER BY clip_id", [id]))
          .rows.map((row) => Number(row.clip_id));
      const boxes = await q.query(
        `${BOX_SELECT} WHERE b.label_id = $1 ORDER BY b.id LIMIT ${UNDO_KEY_CAP + 1}`,
        [
          id,
        ],
      );
      if (boxes.rows.length <= UNDO_KEY_CAP) undo.deletedBoxes = boxes.rows.map(boxFromRow);
      undo.definition = await this.#look(q, id);
      const counts = await this.#deleteLabelRows(q, id);
      await this.#journal(q, by, "label.delete", `label:${name}`, { name, ...counts, ...undo });
      return { frames: counts.frames, clips: counts.clips };
    });
  }

  /**
   * Every label with its number of directly labelled frames in the catalog, of clips and of boxes, its colour and
   * hotkey, by name. (Labels of a frame whose row is removed stay, unseen, and come back with the row, e.g. after
   * a reindex.)
   */
  async list(): Promise<LabelInfo[]> {
    const r = await this.#db.query("listing labels", `${LABEL_INFO_SELECT} ORDER BY l.name`);
    return r.rows.map(toLabelInfo);
  }

  async exists(name: string): Promise<boolean> {
    return await this.#labelId(this.#reads("reading a label"), name) !== null;
  }

  /** A frame's labels: its own and those of clips it lies in (sorted, each once); [] for an unknown key. */
  async labelsOf(key: string): Promise<string[]> {
    if (!storable(key)) return [];
    const r = await this.#db.query(
      "reading a frame's labels",
      `SELECT l.name FROM frame_labels fl JOIN labels l ON l.id = fl.label_id WHERE fl.key = $1
       UNION
       SELECT l.name FROM frames f JOIN clips c ON c.robot_id = f.robot_id AND c.from_ms <= f.ts_ms
         AND c.to_ms >= f.ts_ms JOIN clip_labels cl ON cl.clip_id = c.id JOIN labels l ON l.id = cl.label_id
       WHERE f.key = $1
       ORDER BY 1`,
      [key],
    );
    return r.rows.map((row) => row.name as string);
  }

  /** Creates a clip; its labels are created when new (refused in strict mode). */
  async createClip(input: ClipInput, by: ChangeBy = {}): Promise<Clip> {
    const { name, note, labels, author } = checkClipInput(input, by, this.#limits);
    storableText(name, "clip name");
    storableText(note, "note");
    storableText(author, "author");
    return await this.#change("creating a clip", async (q) => {
      const now = by.nowMs ?? this.#now();
      await this.#checkRoomFor(q, labels);
      const r = await q.query(
        `INSERT INTO clips (robot_id, from_ms, to_ms, name, note, created_ms, author)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
        [input.robotId, input.fromMs, input.toMs, name, note, now, author],
      );
      const id = Number(r.rows[0].id);
      for (const label of labels) await this.#linkClip(q, id, label);
      const clip = (await this.#getClip(q, id))!;
      await this.#journal(q, { ...by, author, nowMs: now }, "clip.create", `clip:${id}`, {
        id,
        clip: clipDetail(clip),
      });
      return clip;
    });
  }

  /** Changes a clip's span, robot, name, note or labels; refuses an unknown id. */
  async updateClip(id: number, update: ClipUpdate, by: ChangeBy = {}): Promise<Clip> {
    return await this.#change("changing a clip", async (q) => {
      const before = await this.#getClip(q, id);
      if (!before) throw unknownClip(id);
      const { robotId, fromMs, toMs, name, note, labels } = clipAfterUpdate(before, update, this.#limits);
      storableText(name, "clip name");
      storableText(note, "note");
      await this.#checkRoomFor(q, labels);
      await q.query(
        "UPDATE clips SET robot_id = $1, from_ms = $2, to_ms = $3, name = $4, note = $5 WHERE id = $6",
        [robotId, fromMs, toMs, name, note, id],
      );
      await q.query("DELETE FROM clip_labels WHERE clip_id = $1", [id]);
      for (const label of labels) await this.#linkClip(q, id, label);
      const after = (await this.#getClip(q, id))!;
      await this.#journal(q, by, "clip.update", `clip:${id}`, {
        before: clipDetail(before),
        after: clipDetail(after),
      });
      return after;
    });
  }

  /** Deletes a clip (its labels stay defined); refuses an unknown id. */
  async deleteClip(id: number, by: ChangeBy = {}): Promise<void> {
    await this.#change("deleting a clip", async (q) => {
      const clip = await this.#getClip(q, id);
      if (!clip) throw unknownClip(id);
      // Where the clip was in collections (id and index in its order), so undo puts it back there.
      const collections = (await q.query(
        `SELECT cc.collection_id AS id, (SELECT COUNT(*) FROM collection_clips o
           WHERE o.collection_id = cc.collection_id AND o.position < cc.position) AS position
         FROM collection_clips cc WHERE cc.clip_id = $1 ORDER BY cc.collection_id`,
        [id],
      )).rows.map((r) => ({ id: Number(r.id), position: Number(r.position) }));
      await q.query("DELETE FROM collection_clips WHERE clip_id = $1", [id]);
      await q.query("DELETE FROM clip_labels WHERE clip_id = $1", [id]);
      await q.query("DELETE FROM clips WHERE id = $1", [id]);
      await this.#journal(q, by, "clip.delete", `clip:${id}`, {
        id,
        clip: clipDetail(clip),
        ...(collections.length ? { collections } : {}),
      });
    });
  }

  async getClip(id: number): Promise<Clip | null> {
    return await this.#getClip(this.#reads("reading a clip"), id);
  }

  // ---------------------------------------------------------------------------------------------- collections

  async #getCollection(q: Queryable, id: number): Promise<Collection | null> {
    if (!idOk(id)) return null;
    const r = await q.query(`${COLLECTION_SELECT} WHERE k.id = $1`, [id]);
    return r.rows.length ? toCollection(r.rows[0]) : null;
  }

  /** Refuses clip ids that are not in the catalog, naming the first few. */
  async #checkClips(q: Queryable, ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    const r = await q.query("SELECT id FROM clips WHERE id = ANY($1::bigint[])", [ids]);
    checkClipsFound(ids, new Set(r.rows.map((row) => Number(row.id))));
  }

  /** Refuses a name another collection than `self` has. */
  async #checkNameFree(q: Queryable, name: string, self: number | null): Promise<void> {
    const r = await q.query("SELECT id FROM collections WHERE name = $1", [name]);
    const holder = r.rows.length ? Number(r.rows[0].id) : null;
    if (holder !== null && holder !== self) throw collectionNameTaken(name, holder);
  }

  /** Writes a collection's clips in order (positions 0, 1, ...), replacing what it had. */
  async #setCollectionClips(q: Queryable, id: number, clipIds: number[]): Promise<void> {
    await q.query("DELETE FROM collection_clips WHERE collection_id = $1", [id]);
    if (clipIds.length === 0) return;
    await q.query(
      `INSERT INTO collection_clips (collection_id, clip_id, position)
       SELECT $1, clip_id, (n - 1)::integer FROM unnest($2::bigint[]) WITH ORDINALITY AS u (clip_id, n)`,
      [id, clipIds],
    );
  }

  /** Creates a collection; refuses a taken name and unknown clips. */
  async createCollection(input: CollectionInput, by: ChangeBy = {}): Promise<Collection> {
    const { name, note, clipIds, author } = checkCollectionInput(input, by);
    storableText(name, "collection name");
    storableText(note, "note");
    return await this.#change("creating a collection", async (q) => {
      const now = by.nowMs ?? this.#now();
      await this.#checkNameFree(q, name, null);
      await this.#checkClips(q, clipIds);
      const r = await q.query(
        "INSERT INTO collections (name, note, created_ms, author) VALUES ($1, $2, $3, $4) RETURNING id",
        [name, note, now, author],
      );
      const id = Number(r.rows[0].id);
      await this.#setCollectionClips(q, id, clipIds);
      const collection = (await this.#getCollection(q, id))!;
      await this.#journal(q, { ...by, author, nowMs: now }, "collection.create", `collection:${id}`, {
        id,
        collection: collectionDetail(collection),
      });
      return collection;
    });
  }

  /** Renames a collection, changes its note or its clips; refuses an unknown id, a taken name, unknown clips. */
  async updateCollection(id: number, update: CollectionUpdate, by: ChangeBy = {}): Promise<Collection> {
    return await this.#change("changing a collection", async (q) => {
      const before = await this.#getCollection(q, id);
      if (!before) throw unknownCollection(id);
      const { name, note, clipIds, added } = collectionAfterUpdate(before, update);
      storableText(name, "collection name");
      storableText(note, "note");
      await this.#checkNameFree(q, name, id);
      await this.#checkClips(q, added);
      await q.query("UPDATE collections SET name = $1, note = $2 WHERE id = $3", [name, note, id]);
      await this.#setCollectionClips(q, id, clipIds);
      const after = (await this.#getCollection(q, id))!;
      await this.#journal(q, by, "collection.update", `collection:${id}`, {
        id,
        before: collectionDetail(before),
        after: collectionDetail(after),
      });
      return after;
    });
  }

  /** Deletes a collection (its clips stay); refuses an unknown id. */
  async deleteCollection(id: number, by: ChangeBy = {}): Promise<void> {
    await this.#change("deleting a collection", async (q) => {
      const collection = await this.#getCollection(q, id);
      if (!collection) throw unknownCollection(id);
      await q.query("DELETE FROM collection_clips WHERE collection_id = $1", [id]);
      await q.query("DELETE FROM collections WHERE id = $1", [id]);
      await this.#journal(q, by, "collection.delete", `collection:${id}`, {
        id,
        collection: collectionDetail(collection),
      });
    });
  }

  async getCollection(id: number): Promise<Collection | null> {
    return await this.#getCollection(this.#reads("reading a collection"), id);
  }

  async collectionByName(name: string): Promise<Collection | null> {
    if (!storable(name)) return null;
    const r = await this.#db.query("reading a collection", `${COLLECTION_SELECT} WHERE k.name = $1`, [name]);
    return r.rows.length ? toCollection(r.rows[0]) : null;
  }

  async listCollections(): Promise<Collection[]> {
    const r = await this.#db.query("listing collections", `${COLLECTION_SELECT} ORDER BY k.name, k.id`);
    return r.rows.map(toCollection);
  }

  /** Clips, oldest span first; optionally of one robot, carrying a label, or overlapping [fromMs, toMs]. */
  async listClips(filter: ClipFilter = {}): Promise<Clip[]> {
    if ([filter.robotId, filter.label].some((s) => s !== undefined && !storable(s))) return [];
    const where: string[] = [];
    const p = new Params();
    if (filter.robotId !== undefined) where.push(`c.robot_id = ${p.add(filter.robotId)}`);
    if (filter.label !== undefined) {
      where.push(
        `c.id IN (SELECT cl.clip_id FROM clip_labels cl JOIN labels l ON l.id = cl.label_id WHERE l.name = ${
          p.add(filter.label)
        })`,
      );
    }
    if (filter.fromMs !== undefined) where.push(`c.to_ms >= ${p.add(filter.fromMs)}`);
    if (filter.toMs !== undefined) where.push(`c.from_ms <= ${p.add(filter.toMs)}`);
    const r = await this.#db.query(
      "listing clips",
      `${CLIP_SELECT}${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY c.from_ms, c.id`,
      p.values,
    );
    return r.rows.map(toClip);
  }

  /**
   * The journal, oldest first: entries after `afterId` (for polling), optionally for one target or since a time,
   * at most `limit` (default 100). With `newest`, the newest entries first instead.
   */
  async changes(filter: ChangeFilter = {}): Promise<Change[]> {
    if (filter.target !== undefined && !storable(filter.target)) return [];
    const where: string[] = [];
    const p = new Params();
    if (filter.afterId !== undefined) where.push(`id > ${p.add(filter.afterId)}`);
    if (filter.target !== undefined) where.push(`target = ${p.add(filter.target)}`);
    if (filter.sinceMs !== undefined) where.push(`at_ms >= ${p.add(filter.sinceMs)}`);
    const r = await this.#db.query(
      "reading the journal",
      `SELECT id, at_ms, author, action, target, detail FROM changes${
        where.length ? ` WHERE ${where.join(" AND ")}` : ""
      } ORDER BY id ${filter.newest ? "DESC" : "ASC"} LIMIT ${p.add(filter.limit ?? 100)}`,
      p.values,
    );
    return r.rows.map(toChange);
  }

  async change(id: number): Promise<Change | null> {
    if (!idOk(id)) return null;
    const r = await this.#db.query(
      "reading the journal",
      "SELECT id, at_ms, author, action, target, detail FROM changes WHERE id = $1",
      [id],
    );
    return r.rows.length ? toChange(r.rows[0]) : null;
  }

  /** The first entry whose detail says it undid entry `id` (found by the changes_undo_of index). */
  async undoneBy(id: number): Promise<Change | null> {
    if (!idOk(id)) return null;
    const r = await this.#db.query(
      "reading the journal",
      `SELECT id, at_ms, author, action, target, detail FROM changes
       WHERE detail->>'undoOf' IS NOT NULL AND detail->>'undoOf' = $1 ORDER BY id LIMIT 1`,
      [String(id)],
    );
    return r.rows.length ? toChange(r.rows[0]) : null;
  }

  // The label set.

  /**
   * Creates the label when new (counted against labels.max_distinct; allowed in strict mode: this is how the set
   * grows) and sets its colour and hotkey. A hotkey another label holds is refused, naming that label: it is
   * looked up under the label lock, so two servers giving one key to two labels at once cannot both succeed.
   */
  async defineLabel(name: string, definition: LabelDefinition, by: ChangeBy = {}): Promise<LabelInfo> {
    if (typeof name !== "string" || name === "") throw new BadInputError("a label name must not be empty");
    definitionAfter(NO_LOOK, definition);
    return await this.#change("defining a label", async (q) => {
      let id = await this.#labelId(q, name);
      const created = id === null;
      if (id === null) {
        checkLabel(name);
        await this.#checkRoomFor(q, [name], true);
        id = await this.#ensureLabel(q, name);
      }
      const before = created ? null : await this.#look(q, id);
      const after = definitionAfter(before ?? NO_LOOK, definition);
      if (after.hotkey !== null) {
        const holder = await q.query(
          "SELECT l.name FROM label_set s JOIN labels l ON l.id = s.label_id WHERE s.hotkey = $1 AND s.label_id <> $2",
          [after.hotkey, id],
        );
        if (holder.rows.length) throw hotkeyTaken(after.hotkey, holder.rows[0].name as string);
      }
      // An existing label whose look stays the same: nothing changes, nothing is journalled.
      const same = before !== null && before.color === after.color && before.hotkey === after.hotkey;
      if (!same) {
        if (after.color === null && after.hotkey === null) {
          await q.query("DELETE FROM label_set WHERE label_id = $1", [id]);
        } else {
          await q.query(
            `INSERT INTO label_set (label_id, color, hotkey) VALUES ($1, $2, $3)
             ON CONFLICT (label_id) DO UPDATE SET color = excluded.color, hotkey = excluded.hotkey`,
            [id, after.color, after.hotkey],
          );
        }
        await this.#journal(q, by, "label.define", `label:${name}`, { name, created, before, after });
      }
      return toLabelInfo((await q.query(`${LABEL_INFO_SELECT} WHERE l.id = $1`, [id])).rows[0]);
    });
  }

  // Boxes.

  /**
   * Adds boxes in one transaction with one journal entry (the boxes as stored, with their ids). Their frames must
   * be in the catalog; their classes are created when new (refused in strict mode and beyond max_distinct).
   */
  async addBoxes(inputs: BoxInput[], by: ChangeBy = {}): Promise<Box[]> {
    const boxes = checkBoxInputs(inputs);
    const author = storableText(checkAuthor(by.author), "author");
    return await this.#change("adding boxes", async (q) => {
      const now = by.nowMs ?? this.#now();
      await this.#checkKeys(q, boxes.map((b) => b.key));
      const names = [...new Set(boxes.map((b) => b.label))];
      await this.#checkRoomFor(q, names);
      const ids = new Map<string, number>();
      for (const name of names) ids.set(name, await this.#ensureLabel(q, name));
      const column = <T>(f: (b: (typeof boxes)[number]) => T) => boxes.map(f);
      const r = await q.query(
        `INSERT INTO boxes (key, label_id, x, y, w, h, unit, image_w, image_h, confidence, source, accepted, author,
           created_ms, updated_ms)
         SELECT k, l, x, y, w, h, u, iw, ih, c, s, a, $13::text, $14::bigint, $14::bigint
         FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::text[],
           $8::integer[], $9::integer[], $10::float8[], $11::text[], $12::boolean[])
           WITH ORDINALITY AS t(k, l, x, y, w, h, u, iw, ih, c, s, a, n)
         ORDER BY n
         RETURNING id`,
        [
          column((b) => b.key),
          column((b) => ids.get(b.label)!),
          column((b) => b.x),
          column((b) => b.y),
          column((b) => b.w),
          column((b) => b.h),
          column((b) => b.unit),
          column((b) => b.imageWidth),
          column((b) => b.imageHeight),
          column((b) => b.confidence),
          column((b) => b.source),
          column((b) => b.accepted),
          author,
          now,
        ],
      );
      const stored = await this.#boxes(q, r.rows.map((row) => Number(row.id)));
      await this.#journal(q, { ...by, author, nowMs: now }, "box.add", keysTarget(stored.map((b) => b.key)), {
        boxes: stored,
      });
      return stored;
    });
  }

  /**
   * Changes a box's class, rectangle or acceptance (one journal entry with the box before and after). A new class
   * is created unless strict mode forbids it.
   */
  async updateBox(id: number, update: BoxUpdate, by: ChangeBy = {}): Promise<Box> {
    return await this.#change("changing a box", async (q) => {
      const before = idOk(id) ? (await this.#boxes(q, [id]))[0] : undefined;
      if (!before) throw unknownBox(id);
      const next = boxAfterUpdate(before, update);
      await this.#checkRoomFor(q, [next.label]);
      const labelId = next.label === before.label
        ? await this.#existingLabelId(q, before.label)
        : await this.#ensureLabel(q, next.label);
      await q.query(
        `UPDATE boxes SET label_id = $2, x = $3, y = $4, w = $5, h = $6, unit = $7, accepted = $8, updated_ms = $9
         WHERE id = $1`,
        [id, labelId, next.x, next.y, next.w, next.h, next.unit, next.accepted, by.nowMs ?? this.#now()],
      );
      const after = (await this.#boxes(q, [id]))[0];
      await this.#journal(q, { ...by, nowMs: after.updatedMs }, "box.update", after.key, {
        before: [before],
        after: [after],
      });
      return after;
    });
  }

  /** Deletes boxes (one journal entry with the boxes as they were); an unknown id refuses the whole call. */
  async deleteBoxes(ids: number[], by: ChangeBy = {}): Promise<number> {
    const unique = checkBoxIds(ids);
    return await this.#change("deleting boxes", async (q) => {
      const boxes = await this.#boxes(q, unique);
      checkBoxesFound(unique, new Set(boxes.map((b) => b.id)));
      await q.query("DELETE FROM boxes WHERE id = ANY($1::bigint[])", [unique]);
      await this.#journal(q, by, "box.delete", keysTarget(boxes.map((b) => b.key)), { boxes });
      return boxes.length;
    });
  }

  /**
   * Accepts boxes (a model's prediction becomes a person's): the given ones, or every unaccepted box of a frame.
   * Returns how many changed; boxes already accepted are left as they are, and nothing changing writes no entry.
   */
  async acceptBoxes(target: { ids: number[] } | { key: string }, by: ChangeBy = {}): Promise<number> {
    const ids = "ids" in target ? checkBoxIds(target.ids) : null;
    if (!ids && (typeof (target as { key?: unknown }).key !== "string")) {
      throw new BadInputError("acceptBoxes needs box ids or a frame key");
    }
    return await this.#change("accepting boxes", async (q) => {
      let before: Box[];
      if (ids) {
        const boxes = await this.#boxes(q, ids);
        checkBoxesFound(ids, new Set(boxes.map((b) => b.id)));
        before = boxes.filter((b) => !b.accepted);
      } else {
        const [key] = await this.#checkKeys(q, [(target as { key: string }).key]);
        before = (await q.query(`${BOX_SELECT} WHERE b.key = $1 AND NOT b.accepted ORDER BY b.id`, [key]))
          .rows
          .map(boxFromRow);
      }
      if (before.length === 0) return 0;
      const now = by.nowMs ?? this.#now();
      await q.query("UPDATE boxes SET accepted = TRUE, updated_ms = $2 WHERE id = ANY($1::bigint[])", [
        before.map((b) => b.id),
        now,
      ]);
      const after = await this.#boxes(q, before.map((b) => b.id));
      await this.#journal(q, { ...by, nowMs: now }, "box.update", keysTarget(before.map((b) => b.key)), {
        before,
        after,
      });
      return before.length;
    });
  }

  async getBox(id: number): Promise<Box | null> {
    if (!idOk(id)) return null;
    return (await this.#boxes(this.#reads("reading a box"), [id]))[0] ?? null;
  }

  async boxesOf(keys: string[]): Promise<Map<string, Box[]>> {
    const wanted = [...new Set(keys)].filter(storable);
    if (wanted.length === 0) return new Map();
    const r = await this.#db.query(
      "reading boxes",
      `${BOX_SELECT} WHERE b.key = ANY($1::text[]) ORDER BY b.id`,
      [wanted],
    );
    return boxesByKey(r.rows.map(boxFromRow));
  }

  // Review.

  /**
   * Sets `reviewed` or `rejected` on frames, or clears it (null: back to the derived status). Frames already in
   * that state are left as they are; the journal lists the ones that changed with their status before (undo).
   */
  async setReview(
    keys: string[],
    status: "reviewed" | "rejected" | null,
    by: ChangeBy = {},
  ): Promise<number> {
    const wanted = checkReviewSet(status);
    const author = storableText(checkAuthor(by.author), "author");
    return await this.#change("setting review status", async (q) => {
      const now = by.nowMs ?? this.#now();
      const unique = await this.#checkKeys(q, keys);
      const r = await q.query("SELECT key, status FROM reviews WHERE key = ANY($1::text[])", [unique]);
      const current = new Map(
        r.rows.map((row) => [row.key as string, row.status as "reviewed" | "rejected"]),
      );
      const changed = unique.filter((k) => (current.get(k) ?? null) !== wanted);
      if (changed.length === 0) return 0;
      if (wanted === null) {
        await q.query("DELETE FROM reviews WHERE key = ANY($1::text[])", [changed]);
      } else {
        await q.query(
          `INSERT INTO reviews (key, status, author, at_ms) SELECT k, $2, $3, $4 FROM unnest($1::text[]) AS k
           ON CONFLICT (key) DO UPDATE SET status = excluded.status, author = excluded.author, at_ms = excluded.at_ms`,
          [changed, wanted, author, now],
        );
      }
      const before = Object.fromEntries(changed.map((k) => [k, current.get(k) ?? null]));
      await this.#journal(q, { ...by, author, nowMs: now }, "review.set", keysTarget(changed), {
        status: wanted,
        before,
      });
      return changed.length;
    });
  }

  /** Review status of these frames, every key given in order (unknown keys are simply unlabelled). */
  async reviews(keys: string[]): Promise<Review[]> {
    const wanted = [...new Set(keys)].filter(storable);
    const found = new Map<string, Review>();
    if (wanted.length) {
      const r = await this.#db.query(
        "reading review status",
        `SELECT k AS key, r.status, r.author, r.at_ms,
           (EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = k)
             OR EXISTS (SELECT 1 FROM boxes b WHERE b.key = k)) AS labelled
         FROM unnest($1::text[]) AS k LEFT JOIN reviews r ON r.key = k`,
        [wanted],
      );
      for (const row of r.rows) {
        const key = row.key as string;
        found.set(
          key,
          row.status
            ? {
              key,
              status: row.status as ReviewStatus,
              author: (row.author as string | null) ?? null,
              atMs: Number(row.at_ms),
            }
            : { key, status: row.labelled ? "labelled" : "unlabelled", author: null, atMs: null },
        );
      }
    }
    return keys.map((key) => found.get(key) ?? { key, status: "unlabelled", author: null, atMs: null });
  }
}

/** `changed` (keys a statement touched) in the order of the request's list `requested`. */
function inRequestOrder(requested: string[], changed: string[]): string[] {
  const set = new Set(changed);
  return requested.filter((k) => set.has(k));
}
