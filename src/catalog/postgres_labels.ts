/**
 * The PostgreSQL backend's label store: labels, clips and the change journal, with the behaviour, messages,
 * journal rows and return values of the SQLite one (src/catalog/sqlite_labels.ts, which explains the model). The
 * pure parts, checks, refusals and the journal's detail objects, are shared with it (src/catalog/rules.ts).
 *
 * What PostgreSQL adds: any number of servers change labels at once. So
 * - every change and its journal row are one transaction (`PgDb.tx`); `changeLabels` runs its add and its remove
 *   in the same one (both or neither);
 * - every change first takes one transaction-level advisory lock (LOCK): changes are made one at a time across
 *   all servers. That keeps `labels.max_distinct` true (the count is read and checked under the lock, so two
 *   servers cannot each add the last free label), keeps a label from being deleted or merged away while another
 *   change links frames to it, and makes journal ids follow commit order (a client polling `afterId` never
 *   skips an entry that commits late). Changes are made by people, so the serialisation costs nothing that
 *   matters; reads take no lock.
 * - PostgreSQL text cannot hold NUL (U+0000): an author, clip name or note with one is refused as bad input, and
 *   a key or name with one is simply not found, where SQLite would have stored or looked it up.
 */
import { BadInputError } from "../errors.ts";
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
import type { PgDb, Queryable } from "./pg_db.ts";
import { Params } from "./postgres_search.ts";
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

/** Taken first by every change (see above); released by the transaction's end. */
const LOCK = "SELECT pg_advisory_xact_lock(hashtext('frame-bucket labels'))";

const CLIP_SELECT = `SELECT c.id, c.robot_id, c.from_ms, c.to_ms, c.name, c.note, c.created_ms, c.author,
  (SELECT COALESCE(json_agg(l.name ORDER BY l.name), '[]'::json) FROM clip_labels cl
    JOIN labels l ON l.id = cl.label_id WHERE cl.clip_id = c.id) AS labels
  FROM clips c`;

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

/** True when PostgreSQL text can hold `s` (no NUL): a key or name that cannot is in no row. */
const storable = (s: string) => !s.includes("\0");

/** Refuses free text PostgreSQL cannot store (NUL); returns it otherwise. */
function storableText<T extends string | null>(value: T, what: string): T {
  if (value !== null && !storable(value)) {
    throw new BadInputError(`${what} contains a NUL character (U+0000), which the catalog cannot store`);
  }
  return value;
}

/** A clip id that can be in the table (a bigint); any other is simply not found. */
const clipIdOk = (id: number) => Number.isSafeInteger(id);

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

  async #journal(
    q: Queryable,
    by: ChangeBy,
    action: ChangeAction,
    target: string,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await q.query(
      "INSERT INTO changes (at_ms, author, action, target, detail) VALUES ($1, $2, $3, $4, $5::json)",
      [
        by.nowMs ?? this.#now(),
        storableText(checkAuthor(by.author), "author"),
        action,
        target,
        JSON.stringify(detail),
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

  /** The label's id, the label created when new (concurrent creators of one name get the same row). */
  async #ensureLabel(q: Queryable, name: string): Promise<number> {
    await q.query("INSERT INTO labels (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [checkLabel(name)]);
    return (await this.#labelId(q, name))!;
  }

  /**
   * Refuses a change that would create labels beyond labels.max_distinct (inside the change's transaction, under
   * the lock); labels that exist already never count.
   */
  async #checkRoomFor(q: Queryable, names: string[]): Promise<void> {
    if (names.length === 0) return;
    const r = await q.query("SELECT name FROM labels WHERE name = ANY($1::text[])", [names.filter(storable)]);
    const known = new Set(r.rows.map((row) => row.name as string));
    const fresh = names.filter((n) => !known.has(n));
    if (fresh.length === 0) return;
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
   * Checks an add request and returns its work, to run in a transaction: puts the labels on the frames (created
   * when new) and returns how many (frame, label) pairs were new; pairs that exist keep their author and time.
   * Unknown keys are refused before anything changes.
   */
  #add(target: FrameSelector, labels: string[], by: ChangeBy): (q: Queryable) => Promise<number> {
    const names = labelsToAdd(labels, this.#limits);
    const author = storableText(checkAuthor(by.author), "author");
    return async (q) => {
      const now = by.nowMs ?? this.#now();
      const selector = await this.#normalize(q, target);
      await this.#checkRoomFor(q, names);
      let added = 0;
      for (const name of names) {
        const id = await this.#ensureLabel(q, name);
        const r = "keys" in selector
          ? await q.query(
            `INSERT INTO frame_labels (key, label_id, created_ms, author)
             SELECT k, $2::bigint, $3::bigint, $4::text FROM unnest($1::text[]) AS k ON CONFLICT DO NOTHING`,
            [selector.keys, id, now, author],
          )
          : await q.query(
            `INSERT INTO frame_labels (key, label_id, created_ms, author)
             SELECT key, $1::bigint, $2::bigint, $3::text FROM frames
             WHERE robot_id = $4 AND ts_ms >= $5 AND ts_ms <= $6 ON CONFLICT DO NOTHING`,
            [id, now, author, selector.robotId, selector.fromMs, selector.toMs],
          );
        added += r.rowCount ?? 0;
      }
      const { target: t, detail } = describeTarget(selector);
      await this.#journal(q, { author, nowMs: now }, "label.add", t, { labels: names, ...detail, added });
      return added;
    };
  }

  /**
   * Checks a remove request and returns its work: takes the labels off the frames (their own labels; labels from
   * a clip stay until the clip changes) and returns how many (frame, label) pairs were removed. Unknown labels
   * are refused.
   */
  #remove(target: FrameSelector, labels: string[], by: ChangeBy): (q: Queryable) => Promise<number> {
    const names = labelsToRemove(labels, this.#limits);
    return async (q) => {
      const now = by.nowMs ?? this.#now();
      const selector = await this.#normalize(q, target);
      let removed = 0;
      for (const name of names) {
        const id = await this.#existingLabelId(q, name);
        const r = "keys" in selector
          ? await q.query("DELETE FROM frame_labels WHERE label_id = $1 AND key = ANY($2::text[])", [
            id,
            selector.keys,
          ])
          : await q.query(
            `DELETE FROM frame_labels WHERE label_id = $1 AND key IN
               (SELECT key FROM frames WHERE robot_id = $2 AND ts_ms >= $3 AND ts_ms <= $4)`,
            [id, selector.robotId, selector.fromMs, selector.toMs],
          );
        removed += r.rowCount ?? 0;
      }
      const { target: t, detail } = describeTarget(selector);
      await this.#journal(q, { author: by.author, nowMs: now }, "label.remove", t, {
        labels: names,
        ...detail,
        removed,
      });
      return removed;
    };
  }

  async #deleteLabelRows(q: Queryable, id: number): Promise<{ frames: number; clips: number }> {
    const frames = (await q.query("DELETE FROM frame_labels WHERE label_id = $1", [id])).rowCount ?? 0;
    const clips = (await q.query("DELETE FROM clip_labels WHERE label_id = $1", [id])).rowCount ?? 0;
    await q.query("DELETE FROM labels WHERE id = $1", [id]);
    return { frames, clips };
  }

  async #linkClip(q: Queryable, clipId: number, label: string): Promise<void> {
    await q.query("INSERT INTO clip_labels (clip_id, label_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", [
      clipId,
      await this.#ensureLabel(q, label),
    ]);
  }

  async #getClip(q: Queryable, id: number): Promise<Clip | null> {
    if (!clipIdOk(id)) return null;
    const r = await q.query(`${CLIP_SELECT} WHERE c.id = $1`, [id]);
    return r.rows.length ? toClip(r.rows[0]) : null;
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
   * Renames a label everywhere (frames and clips refer to it by id). When `newName` exists the call is refused
   * unless `merge` is set, which moves everything labelled `oldName` to `newName`.
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
      } else {
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
        await this.#deleteLabelRows(q, id);
      }
      await this.#journal(q, by, "label.rename", `label:${oldName}`, {
        from: oldName,
        to: newName,
        merged: other !== null,
      });
    });
  }

  /** Deletes a label from every frame and clip. */
  async deleteLabel(name: string, by: ChangeBy = {}): Promise<{ frames: number; clips: number }> {
    return await this.#change("deleting a label", async (q) => {
      const counts = await this.#deleteLabelRows(q, await this.#existingLabelId(q, name));
      await this.#journal(q, by, "label.delete", `label:${name}`, { name, ...counts });
      return counts;
    });
  }

  /**
   * Every label with its number of directly labelled frames in the catalog and of clips, by name. (Labels of a
   * frame whose row is removed stay, unseen, and come back with the row, e.g. after a reindex.)
   */
  async list(): Promise<LabelInfo[]> {
    const r = await this.#db.query(
      "listing labels",
      `SELECT l.id, l.name,
         (SELECT COUNT(*) FROM frame_labels fl JOIN frames f ON f.key = fl.key WHERE fl.label_id = l.id) AS frames,
         (SELECT COUNT(*) FROM clip_labels cl WHERE cl.label_id = l.id) AS clips
       FROM labels l ORDER BY l.name`,
    );
    return r.rows.map((row) => ({
      id: Number(row.id),
      name: row.name as string,
      frames: Number(row.frames),
      clips: Number(row.clips),
    }));
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

  /** Creates a clip; its labels are created when new. */
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
      await this.#journal(q, { author, nowMs: now }, "clip.create", `clip:${id}`, { clip: clipDetail(clip) });
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
      await q.query("DELETE FROM clip_labels WHERE clip_id = $1", [id]);
      await q.query("DELETE FROM clips WHERE id = $1", [id]);
      await this.#journal(q, by, "clip.delete", `clip:${id}`, { clip: clipDetail(clip) });
    });
  }

  async getClip(id: number): Promise<Clip | null> {
    return await this.#getClip(this.#reads("reading a clip"), id);
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
    return r.rows.map((row) => ({
      id: Number(row.id),
      atMs: Number(row.at_ms),
      author: row.author as string | null,
      action: row.action as ChangeAction,
      target: row.target as string,
      detail: row.detail as Record<string, unknown>,
    }));
  }
}
