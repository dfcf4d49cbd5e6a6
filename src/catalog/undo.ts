/**
 * Undo of any journal entry, over the LabelStore interface (so every backend undoes alike): the inverse of the
 * entry is made of ordinary label-store calls, each journalled with `undoOf: id`, so an undo is itself in the
 * journal and can be undone in turn. What each inverse needs is in the entry's detail (see the journal detail
 * shapes in src/catalog/sqlite_labels.ts and postgres_labels.ts); entries written before undo existed, or too
 * large to list their frames (rules.ts: UNDO_KEY_CAP), are refused with the reason.
 *
 * An inverse that takes several calls (a merge split apart again, a deleted label brought back with its frames,
 * clips and boxes, a deleted clip put back into its collections) is not one transaction: each call is. The calls are ordered so that the ones most likely to
 * be refused (a name or hotkey taken since) come first; a refusal later on leaves the earlier calls done and in
 * the journal, where they can be seen and undone.
 */
import { BadInputError, ConflictError, NotFoundError } from "../errors.ts";
import { MAX_BOXES_PER_CALL } from "./boxes.ts";
import type { Box, BoxInput, Change, ChangeBy, LabelStore } from "./catalog.ts";
import { type LabelLook, UNDO_KEY_CAP } from "./rules.ts";

/** Journal entries read per page when collecting the entries an undo wrote. */
const PAGE = 500;

/**
 * Undoes journal entry `id`: NotFoundError when there is none, ConflictError when another entry undid it already
 * (or nothing it changed is left), BadInputError when it lacks the data to undo it. Returns the entries the undo
 * wrote (each with `undoOf: id`), oldest first.
 */
export async function undoChange(store: LabelStore, id: number, by: ChangeBy = {}): Promise<Change[]> {
  const entry = Number.isSafeInteger(id) ? await store.change(id) : null;
  if (!entry) throw new NotFoundError(`no change #${id} in the journal`);
  const done = await store.undoneBy(id);
  if (done) throw new ConflictError(`change #${id} was already undone by #${done.id}`);
  const mark = (await store.changes({ newest: true, limit: 1 }))[0]?.id ?? 0;
  await INVERSES[entry.action](store, entry, { ...by, undoOf: id });
  // The entries written since the mark that say they undo this one (other clients' changes are left out).
  const out: Change[] = [];
  for (let after = mark;;) {
    const page = await store.changes({ afterId: after, limit: PAGE });
    out.push(...page.filter((c) => c.detail.undoOf === id));
    if (page.length < PAGE) return out;
    after = page[page.length - 1].id;
  }
}

type Inverse = (store: LabelStore, entry: Change, by: ChangeBy) => Promise<void>;

/** The refusal of an entry whose detail lacks what undo needs. */
function noUndoData(entry: Change, why = "it was written before undo kept what it needs"): BadInputError {
  return new BadInputError(`change #${entry.id} (${entry.action}) cannot be undone: ${why}`);
}

/** A field of the entry's detail, refused as missing undo data when absent. */
function need<T>(entry: Change, field: string, why?: string): T {
  const v = entry.detail[field];
  if (v === undefined || v === null) throw noUndoData(entry, why);
  return v as T;
}

/** `{label: keys}` of a label.add / label.remove entry, refusing one that was too large to list them. */
function keysPerLabel(entry: Change, field: string, fix: string): [string, string[]][] {
  const total = Number(entry.detail[entry.action === "label.add" ? "added" : "removed"] ?? 0);
  const perLabel = need<Record<string, string[]>>(
    entry,
    field,
    total > UNDO_KEY_CAP ? `it is too large to undo, ${fix}` : undefined,
  );
  const pairs = Object.entries(perLabel).filter(([, keys]) => keys.length > 0);
  if (pairs.length === 0) {
    throw new BadInputError(`change #${entry.id} (${entry.action}) changed nothing: nothing to undo`);
  }
  return pairs;
}

/** The clip id of a clip.* entry: its detail's `id`, or the target `clip:ID` of older entries. */
function clipId(entry: Change): number {
  const id = Number(entry.detail.id ?? entry.target.replace(/^clip:/, ""));
  if (!Number.isSafeInteger(id)) throw noUndoData(entry);
  return id;
}

/** A clip as clip.* entries record it (see clipDetail in rules.ts) as the fields of a clip. */
function clipFields(entry: Change, field: string) {
  const c = need<{ robot: string; from: string; to: string; name: string; note: string; labels: string[] }>(
    entry,
    field,
  );
  return {
    robotId: c.robot,
    fromMs: Date.parse(c.from),
    toMs: Date.parse(c.to),
    name: c.name,
    note: c.note,
    labels: c.labels,
  };
}

/** The collection id of a collection.* entry: its detail's `id`, or its target `collection:ID`. */
function collectionId(entry: Change): number {
  const id = Number(entry.detail.id ?? entry.target.replace(/^collection:/, ""));
  if (!Number.isSafeInteger(id)) throw noUndoData(entry);
  return id;
}

/** A collection as collection.* entries record it (see collectionDetail in rules.ts). */
function collectionFields(entry: Change, field: string): { name: string; note: string; clipIds: number[] } {
  const c = need<{ name: string; note?: string; clipIds?: number[] }>(entry, field);
  return { name: c.name, note: c.note ?? "", clipIds: c.clipIds ?? [] };
}

/** Of these clip ids, those still there (a clip deleted since cannot be put back into a collection). */
async function clipsLeft(store: LabelStore, ids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const id of ids) if (await store.getClip(id)) out.push(id);
  return out;
}

/** A label's look as recorded (missing: none). */
function look(v: unknown): LabelLook {
  const l = (v ?? {}) as Partial<LabelLook>;
  return { color: l.color ?? null, hotkey: l.hotkey ?? null };
}

/** Puts boxes back as they were recorded (new ids; author and times are the undo's), acceptance included. */
async function restoreBoxes(store: LabelStore, boxes: Box[], by: ChangeBy): Promise<void> {
  for (let i = 0; i < boxes.length; i += MAX_BOXES_PER_CALL) {
    const part = boxes.slice(i, i + MAX_BOXES_PER_CALL);
    const inputs: BoxInput[] = part.map((b) => ({
      key: b.key,
      label: b.label,
      x: b.x,
      y: b.y,
      w: b.w,
      h: b.h,
      unit: b.unit,
      imageWidth: b.imageWidth,
      imageHeight: b.imageHeight,
      confidence: b.confidence,
      source: b.source,
    }));
    const added = await store.addBoxes(inputs, by);
    // addBoxes starts a model's boxes unaccepted and others accepted: match what they were.
    const accept = added.filter((b, j) => part[j].accepted && !b.accepted).map((b) => b.id);
    if (accept.length) await store.acceptBoxes({ ids: accept }, by);
    for (const [j, b] of added.entries()) {
      if (!part[j].accepted && b.accepted) await store.updateBox(b.id, { accepted: false }, by);
    }
  }
}

/** Of these box ids, those still there. */
async function remaining(store: LabelStore, ids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const id of ids) if (await store.getBox(id)) out.push(id);
  return out;
}

const INVERSES: Record<Change["action"], Inverse> = {
  async "label.add"(store, entry, by) {
    for (const [label, keys] of keysPerLabel(entry, "addedKeys", "remove the labels with a span instead")) {
      await store.removeLabels({ keys }, [label], by);
    }
  },

  async "label.remove"(store, entry, by) {
    for (const [label, keys] of keysPerLabel(entry, "removedKeys", "add the labels with a span instead")) {
      await store.addLabels({ keys }, [label], by);
    }
  },

  async "label.rename"(store, entry, by) {
    const from = need<string>(entry, "from"), to = need<string>(entry, "to");
    if (!entry.detail.merged) {
      await store.renameLabel(to, from, by);
      return;
    }
    // A merge: bring the old label back, then give it back its frames, clips and boxes, and take the new one off
    // those that only had the old one.
    const tooLarge = `it moved more than ${UNDO_KEY_CAP} frames or boxes, too many to list`;
    const oldKeys = need<string[]>(entry, "oldKeys", tooLarge);
    const both = new Set(need<string[]>(entry, "bothKeys", tooLarge));
    const oldClips = need<number[]>(entry, "oldClips");
    const bothClips = new Set(need<number[]>(entry, "bothClips"));
    const oldBoxes = need<number[]>(entry, "oldBoxes", tooLarge);
    if (!(await store.exists(to))) {
      throw new NotFoundError(
        `label ${JSON.stringify(to)} no longer exists (renamed or deleted since): undo that first`,
      );
    }
    await store.defineLabel(from, look(entry.detail.definition), by);
    if (oldKeys.length) await store.addLabels({ keys: oldKeys }, [from], by);
    const onlyOld = oldKeys.filter((k) => !both.has(k));
    if (onlyOld.length) await store.removeLabels({ keys: onlyOld }, [to], by);
    for (const id of oldClips) {
      if (!(await store.getClip(id))) continue; // deleted since: nothing to give back
      await store.updateClip(
        id,
        { addLabels: [from], ...(bothClips.has(id) ? {} : { removeLabels: [to] }) },
        by,
      );
    }
    for (const id of await remaining(store, oldBoxes)) await store.updateBox(id, { label: from }, by);
  },

  async "label.delete"(store, entry, by) {
    const name = need<string>(entry, "name");
    const tooLarge = `it took the label off more than ${UNDO_KEY_CAP} frames or boxes, too many to list`;
    const keys = need<string[]>(entry, "keys", tooLarge);
    const clipIds = need<number[]>(entry, "clipIds");
    const boxes = need<Box[]>(entry, "deletedBoxes", tooLarge);
    if (await store.exists(name)) {
      throw new ConflictError(
        `label ${JSON.stringify(name)} exists again (made since it was deleted): rename it, then undo`,
      );
    }
    await store.defineLabel(name, look(entry.detail.definition), by);
    if (keys.length) await store.addLabels({ keys }, [name], by);
    for (const id of clipIds) {
      if (await store.getClip(id)) await store.updateClip(id, { addLabels: [name] }, by);
    }
    if (boxes.length) await restoreBoxes(store, boxes, by);
  },

  async "label.define"(store, entry, by) {
    const name = need<string>(entry, "name");
    if (!(await store.exists(name))) {
      throw new NotFoundError(`label ${JSON.stringify(name)} no longer exists (renamed or deleted since)`);
    }
    if (entry.detail.created) {
      const info = (await store.list()).find((l) => l.name === name);
      if (info && info.frames === 0 && info.clips === 0 && info.boxes === 0) {
        await store.deleteLabel(name, by);
        return;
      }
    }
    await store.defineLabel(name, look(entry.detail.before), by);
  },

  async "clip.create"(store, entry, by) {
    await store.deleteClip(clipId(entry), by);
  },

  async "clip.update"(store, entry, by) {
    await store.updateClip(clipId(entry), clipFields(entry, "before"), by);
  },

  async "clip.delete"(store, entry, by) {
    const clip = await store.createClip(clipFields(entry, "clip"), by);
    // The clip comes back under a new id: into each collection it was taken out of (still there) at its place.
    const places = (entry.detail.collections ?? []) as { id: number; position: number }[];
    for (const { id, position } of places) {
      const collection = await store.getCollection(id);
      if (!collection) continue;
      const clipIds = [...collection.clipIds];
      clipIds.splice(Math.min(position, clipIds.length), 0, clip.id);
      await store.updateCollection(id, { clipIds }, by);
    }
  },

  async "collection.create"(store, entry, by) {
    await store.deleteCollection(collectionId(entry), by);
  },

  async "collection.update"(store, entry, by) {
    const before = collectionFields(entry, "before");
    await store.updateCollection(
      collectionId(entry),
      { ...before, clipIds: await clipsLeft(store, before.clipIds) },
      by,
    );
  },

  async "collection.delete"(store, entry, by) {
    const collection = collectionFields(entry, "collection");
    await store.createCollection({ ...collection, clipIds: await clipsLeft(store, collection.clipIds) }, by);
  },

  async "box.add"(store, entry, by) {
    const ids = need<Box[]>(entry, "boxes").map((b) => b.id);
    const left = await remaining(store, ids);
    if (left.length === 0) {
      throw new ConflictError(`change #${entry.id} (box.add): none of its boxes is left to take away`);
    }
    await store.deleteBoxes(left, by);
  },

  async "box.update"(store, entry, by) {
    const before = need<Box[]>(entry, "before");
    const left = new Set(await remaining(store, before.map((b) => b.id)));
    if (left.size === 0) {
      throw new ConflictError(`change #${entry.id} (box.update): its boxes were deleted since`);
    }
    for (const b of before) {
      if (!left.has(b.id)) continue;
      await store.updateBox(
        b.id,
        { label: b.label, rect: { x: b.x, y: b.y, w: b.w, h: b.h, unit: b.unit }, accepted: b.accepted },
        by,
      );
    }
  },

  async "box.delete"(store, entry, by) {
    await restoreBoxes(store, need<Box[]>(entry, "boxes"), by);
  },

  async "review.set"(store, entry, by) {
    const before = need<Record<string, "reviewed" | "rejected" | null>>(entry, "before");
    const groups = new Map<"reviewed" | "rejected" | null, string[]>();
    for (const [key, status] of Object.entries(before)) {
      const list = groups.get(status);
      if (list) list.push(key);
      else groups.set(status, [key]);
    }
    if (groups.size === 0) {
      throw new BadInputError(`change #${entry.id} (review.set) changed nothing: nothing to undo`);
    }
    for (const [status, keys] of groups) await store.setReview(keys, status, by);
  },
};
