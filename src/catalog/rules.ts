/**
 * The rules for what the catalog accepts as label names, authors, clip names, notes and time spans: pure checks,
 * one place, used by every backend's label store (callers do not re-check names). Each throws a BadInputError
 * naming the value. Below them, the label stores' other pure parts: request checks, refusal messages and the
 * journal's detail objects.
 */
import { BadInputError, ConflictError, NotFoundError } from "../errors.ts";
import { checkRobotId } from "../key.ts";
import {
  type ChangeBy,
  type Clip,
  type ClipInput,
  type ClipUpdate,
  type Collection,
  type CollectionInput,
  type CollectionUpdate,
  type FrameSelector,
  type LabelLimits,
  REVIEW_STATUSES,
  type ReviewStatus,
} from "./catalog.ts";

export const MAX_LABEL = 64;
const MAX_AUTHOR = 200;
const MAX_CLIP_NAME = 200;
const MAX_NOTE = 10_000;

/**
 * The defaults of `labels.max_per_request` and `labels.max_distinct`: far above what people label by hand, far
 * below what makes the label list (one checkbox each in the UI) or a request's transaction unwieldy.
 */
export const DEFAULT_LABEL_LIMITS: Readonly<LabelLimits> = {
  maxPerRequest: 100,
  maxDistinct: 1000,
  strict: false,
};

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
  if (problem) throw new BadInputError(problem);
  return name;
}

export function checkAuthor(author: string | null | undefined): string | null {
  if (author === undefined || author === null || author === "") return null;
  if (typeof author !== "string" || author.length > MAX_AUTHOR) {
    throw new BadInputError(`author must be a string of at most ${MAX_AUTHOR} characters`);
  }
  return author;
}

export function checkSpan(fromMs: number, toMs: number): void {
  for (const [name, v] of [["from", fromMs], ["to", toMs]] as const) {
    if (!Number.isSafeInteger(v)) throw new BadInputError(`${name} time ${v} is not a whole number of ms`);
  }
  if (toMs < fromMs) {
    throw new BadInputError(
      `time span ends (${new Date(toMs).toISOString()}) before it starts (${new Date(fromMs).toISOString()})`,
    );
  }
}

export function uniqueLabels(names: string[]): string[] {
  return [...new Set(names.map(checkLabel))];
}

/**
 * Names of existing labels to take off or delete, each once. They are looked up, not checked against today's
 * naming rules, so a label made before a rule was tightened can still be removed or renamed.
 */
export function existingNames(names: string[]): string[] {
  for (const n of names) {
    if (typeof n !== "string" || n === "") throw new BadInputError("a label name must not be empty");
  }
  return [...new Set(names)];
}

export function checkClipName(name: string): string {
  if (typeof name !== "string" || name.trim() === "") throw new BadInputError("a clip needs a name");
  if (name.length > MAX_CLIP_NAME) {
    throw new BadInputError(`clip name is ${name.length} characters long (at most ${MAX_CLIP_NAME})`);
  }
  return name;
}

export function checkNote(note: string, what = "a clip's note"): string {
  if (typeof note !== "string") throw new BadInputError(`${what} must be text`);
  if (note.length > MAX_NOTE) {
    throw new BadInputError(`note is ${note.length} characters long (at most ${MAX_NOTE})`);
  }
  return note;
}

// ------------------------------------------------------------------------------------------------ label store
// The pure parts of the label stores (src/catalog/sqlite_labels.ts, postgres_labels.ts): request checks, the
// messages of refusals, and the journal's detail objects. One copy, so every backend refuses and records alike.

/**
 * Refuses a list naming more labels than one request may (`labels.max_per_request`), before anything is looked up
 * or changed. `what` says which list ("to add", "to remove", "on the clip").
 */
export function checkLabelCount(names: string[], what: string, limits: Readonly<LabelLimits>): string[] {
  const max = limits.maxPerRequest;
  if (names.length > max) {
    throw new BadInputError(
      `${names.length} labels ${what} in one request; at most ${max} are allowed (labels.max_per_request): ` +
        `send them in several requests, or raise labels.max_per_request`,
    );
  }
  return names;
}

/** The labels of an add request: valid names, each once, within the per-request limit, at least one. */
export function labelsToAdd(labels: string[], limits: Readonly<LabelLimits>): string[] {
  const names = checkLabelCount(uniqueLabels(labels), "to add", limits);
  if (names.length === 0) throw new BadInputError("no labels given");
  return names;
}

/** The labels of a remove request: names to look up (see `existingNames`), within the limit, at least one. */
export function labelsToRemove(labels: string[], limits: Readonly<LabelLimits>): string[] {
  const names = checkLabelCount(existingNames(labels), "to remove", limits);
  if (names.length === 0) throw new BadInputError("no labels given");
  return names;
}

/**
 * Refuses a change that would create the labels `fresh` (those that do not exist yet) when the catalog holds
 * `have` labels, beyond `labels.max_distinct`; labels that exist already never count. Backends call it inside the
 * write transaction, with the count read there.
 */
export function checkRoom(fresh: string[], have: number, limits: Readonly<LabelLimits>): void {
  if (fresh.length === 0) return;
  const max = limits.maxDistinct;
  if (have + fresh.length > max) {
    throw new BadInputError(
      `${fresh.length} new label(s) (${fresh.slice(0, 3).map((n) => JSON.stringify(n)).join(", ")}${
        fresh.length > 3 ? ", ..." : ""
      }) would make ${have + fresh.length} distinct labels, over ` +
        `labels.max_distinct (${max}): use existing labels, delete unused ones, or raise labels.max_distinct`,
    );
  }
}

/** The frame keys of a request, each once; refuses an empty list. */
export function uniqueKeys(keys: string[]): string[] {
  const unique = [...new Set(keys)];
  if (unique.length === 0) throw new BadInputError("no frame keys given");
  return unique;
}

/** Refuses `keys` unless every one is in `found` (the keys the catalog has), naming the first few missing. */
export function checkKeysFound(keys: string[], found: ReadonlySet<string>): void {
  const missing = keys.filter((k) => !found.has(k));
  if (missing.length) {
    throw new NotFoundError(
      `${missing.length} frame key(s) not in the catalog: ${
        missing.slice(0, 3).map((k) => JSON.stringify(k)).join(", ")
      }${missing.length > 3 ? ", ..." : ""}`,
    );
  }
}

/** A robot's time span as a selector: the robot id and the span checked. */
export function checkSpanSelector(target: { robotId: string; fromMs: number; toMs: number }): FrameSelector {
  checkRobotId(target.robotId);
  checkSpan(target.fromMs, target.toMs);
  return { robotId: target.robotId, fromMs: target.fromMs, toMs: target.toMs };
}

/** The refusal of a label name that does not exist. */
export function unknownLabel(name: string): NotFoundError {
  return new NotFoundError(`unknown label ${JSON.stringify(name)}`);
}

/** The refusal of a clip id that does not exist. */
export function unknownClip(id: number): NotFoundError {
  return new NotFoundError(`no clip ${id}`);
}

/** The refusal of a rename onto an existing label without `merge`. */
export function mergeNeeded(oldName: string, newName: string): ConflictError {
  return new ConflictError(
    `label ${JSON.stringify(newName)} already exists: merge ${
      JSON.stringify(oldName)
    } into it explicitly (merge)`,
  );
}

/**
 * The journal's target and detail for a (normalised) selector: the key of one frame, `frames` with the keys, or
 * `robot:ID` with the robot and the span as ISO times.
 */
export function describeTarget(target: FrameSelector): { target: string; detail: Record<string, unknown> } {
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

/** A clip as the journal records it (span as ISO times). */
export function clipDetail(c: Clip): Record<string, unknown> {
  return {
    robot: c.robotId,
    from: new Date(c.fromMs).toISOString(),
    to: new Date(c.toMs).toISOString(),
    name: c.name,
    note: c.note,
    labels: c.labels,
  };
}

/** A new clip's fields checked: robot id, span, name, note and labels (within the per-request limit), author. */
export function checkClipInput(
  input: ClipInput,
  by: ChangeBy,
  limits: Readonly<LabelLimits>,
): { name: string; note: string; labels: string[]; author: string | null } {
  checkRobotId(input.robotId);
  checkSpan(input.fromMs, input.toMs);
  const name = checkClipName(input.name);
  const note = checkNote(input.note ?? "");
  const labels = checkLabelCount(uniqueLabels(input.labels ?? []), "on the clip", limits);
  const author = checkAuthor(by.author);
  return { name, note, labels, author };
}

/**
 * A clip's fields after `update` (checked): unchanged fields from `before`; `labels` replaces the set, then
 * `addLabels` adds and `removeLabels` takes off (each list within the per-request limit).
 */
export function clipAfterUpdate(
  before: Clip,
  update: ClipUpdate,
  limits: Readonly<LabelLimits>,
): { robotId: string; fromMs: number; toMs: number; name: string; note: string; labels: string[] } {
  const robotId = update.robotId === undefined ? before.robotId : checkRobotId(update.robotId);
  const fromMs = update.fromMs ?? before.fromMs, toMs = update.toMs ?? before.toMs;
  checkSpan(fromMs, toMs);
  const name = update.name === undefined ? before.name : checkClipName(update.name);
  const note = update.note === undefined ? before.note : checkNote(update.note);
  let labels = update.labels === undefined
    ? before.labels
    : checkLabelCount(uniqueLabels(update.labels), "on the clip", limits);
  if (update.addLabels) {
    const more = checkLabelCount(uniqueLabels(update.addLabels), "to add", limits);
    labels = [...new Set([...labels, ...more])];
  }
  if (update.removeLabels) {
    const gone = new Set(checkLabelCount(existingNames(update.removeLabels), "to remove", limits));
    labels = labels.filter((l) => !gone.has(l));
  }
  return { robotId, fromMs, toMs, name, note, labels };
}

// ------------------------------------------------------------------------------------------------ collections

const MAX_COLLECTION_NAME = 200;

/** Most clips one collection holds: far above a hand-picked dataset, small enough for one journal row. */
export const MAX_COLLECTION_CLIPS = 10_000;

/**
 * A collection's name: 1 to 200 characters, not only white space, no control characters, bidirectional-text
 * controls or line separators (it is shown in lists and may name an exported dataset).
 */
export function checkCollectionName(name: string): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw new BadInputError('a collection needs a name (e.g. "docking attempts, week 47")');
  }
  if (name.length > MAX_COLLECTION_NAME) {
    throw new BadInputError(
      `collection name is ${name.length} characters long (at most ${MAX_COLLECTION_NAME})`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(name) || INVISIBLE_CONTROLS.test(name)) {
    throw new BadInputError(
      `collection name ${JSON.stringify(name)} contains a control character: type it on one line without`,
    );
  }
  return name;
}

/** A list of clip ids: whole positive numbers, each once (the first place a repeated id is given counts). */
export function checkClipIds(ids: unknown, what = "clipIds"): number[] {
  if (!Array.isArray(ids)) throw new BadInputError(`${what} must be a list of clip ids`);
  for (const id of ids) {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
      throw new BadInputError(`${what}: ${JSON.stringify(id)} is not a clip id (a whole number above 0)`);
    }
  }
  return [...new Set(ids as number[])];
}

/** Refuses a collection of more than MAX_COLLECTION_CLIPS clips. */
function checkCollectionSize(ids: number[]): number[] {
  if (ids.length > MAX_COLLECTION_CLIPS) {
    throw new BadInputError(
      `a collection holds at most ${MAX_COLLECTION_CLIPS} clips (${ids.length} given): split it into several`,
    );
  }
  return ids;
}

/** A new collection's fields checked: name, note, clips (each once, in order), author. */
export function checkCollectionInput(
  input: CollectionInput,
  by: ChangeBy,
): { name: string; note: string; clipIds: number[]; author: string | null } {
  if (typeof input !== "object" || input === null) {
    throw new BadInputError("a collection needs at least a name: { name, note?, clipIds? }");
  }
  return {
    name: checkCollectionName(input.name),
    note: checkNote(input.note ?? "", "a collection's note"),
    clipIds: checkCollectionSize(checkClipIds(input.clipIds ?? [])),
    author: checkAuthor(by.author),
  };
}

/**
 * A collection's fields after `update` (checked): unchanged fields from `before`; `clipIds` replaces the list,
 * then `addClipIds` appends those not in it yet and `removeClipIds` takes clips out. Also gives the clips the
 * update names that were not in the collection before (the store checks those exist).
 */
export function collectionAfterUpdate(
  before: Collection,
  update: CollectionUpdate,
): { name: string; note: string; clipIds: number[]; added: number[] } {
  if (typeof update !== "object" || update === null) {
    throw new BadInputError(
      "a collection update is an object: { name?, note?, clipIds?, addClipIds?, removeClipIds? }",
    );
  }
  const name = update.name === undefined ? before.name : checkCollectionName(update.name);
  const note = update.note === undefined ? before.note : checkNote(update.note, "a collection's note");
  let clipIds = update.clipIds === undefined ? before.clipIds : checkClipIds(update.clipIds);
  if (update.addClipIds !== undefined) {
    const have = new Set(clipIds);
    clipIds = [...clipIds, ...checkClipIds(update.addClipIds, "addClipIds").filter((id) => !have.has(id))];
  }
  if (update.removeClipIds !== undefined) {
    const gone = new Set(checkClipIds(update.removeClipIds, "removeClipIds"));
    clipIds = clipIds.filter((id) => !gone.has(id));
  }
  checkCollectionSize(clipIds);
  const had = new Set(before.clipIds);
  return { name, note, clipIds, added: clipIds.filter((id) => !had.has(id)) };
}

/** The refusal of a collection id that does not exist. */
export function unknownCollection(id: number): NotFoundError {
  return new NotFoundError(`no collection ${id}`);
}

/** The refusal of a collection name another collection has. */
export function collectionNameTaken(name: string, holder: number): ConflictError {
  return new ConflictError(
    `a collection named ${
      JSON.stringify(name)
    } exists already (collection ${holder}): pick another name, or ` +
      `add the clips to that one`,
  );
}

/** Refuses `ids` unless every one is in `found` (the clips the catalog has), naming the first few missing. */
export function checkClipsFound(ids: number[], found: ReadonlySet<number>): void {
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length) {
    throw new NotFoundError(
      `${missing.length === 1 ? "no clip" : `${missing.length} clips do not exist:`} ${
        missing.slice(0, 5).join(", ")
      }${missing.length > 5 ? ", ..." : ""}: list clips with GET /api/clips`,
    );
  }
}

/** A collection as the journal records it. */
export function collectionDetail(c: Collection): { name: string; note: string; clipIds: number[] } {
  return { name: c.name, note: c.note, clipIds: c.clipIds };
}

// ------------------------------------------------------------------------------------------------ status

const MAX_STATUS_NAME = 200;

/** A status entry's name and state checked: a short non-empty name and a plain object (stored as JSON). */
export function checkStatus(name: string, state: Record<string, unknown>, nowMs: number): string {
  if (typeof name !== "string" || name === "" || name.length > MAX_STATUS_NAME || name.includes("\0")) {
    throw new BadInputError(`status name ${JSON.stringify(name)} must be 1 to ${MAX_STATUS_NAME} characters`);
  }
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new BadInputError(`the state of status ${JSON.stringify(name)} must be an object`);
  }
  if (!Number.isSafeInteger(nowMs)) {
    throw new BadInputError(`status time ${nowMs} is not a whole number of ms`);
  }
  return JSON.stringify(state);
}

// ------------------------------------------------------------------------------------------------ the label set

/** Names of the label set listed in a strict-mode refusal: enough to spot the intended one, not a wall of text. */
const STRICT_LISTED = 10;

/** Edit distance between two short names (the order of the suggestions in a strict-mode refusal). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}

/**
 * The refusal, in strict mode (`labels.strict`), of a label that is not in the label set. It names the label and
 * lists at most ten of the set, the closest names first (the one a typo meant is usually the first).
 */
export function notInLabelSet(name: string, known: readonly string[]): BadInputError {
  const fix = "add it to the set first (Labels page or POST /api/labels)";
  if (known.length === 0) {
    return new BadInputError(
      `label ${
        JSON.stringify(name)
      } is not in the label set (labels.strict = true): the set is empty; ${fix}`,
    );
  }
  const ranked = [...known].sort((a, b) =>
    distance(name, a) - distance(name, b) || (a < b ? -1 : a > b ? 1 : 0)
  );
  const listed = ranked.slice(0, STRICT_LISTED).join(", ") + (ranked.length > STRICT_LISTED ? ", …" : "");
  return new BadInputError(
    `label ${
      JSON.stringify(name)
    } is not in the label set (labels.strict = true): use one of ${listed} or ${fix}`,
  );
}

/**
 * In strict mode, refuses `fresh` (labels of a call that do not exist yet) naming the first; otherwise nothing.
 * `known` reads the names of the set only when a refusal needs them.
 */
export function checkStrict(
  fresh: readonly string[],
  limits: Readonly<LabelLimits>,
  known: () => readonly string[],
): void {
  if (limits.strict && fresh.length > 0) throw notInLabelSet(fresh[0], known());
}

/** A label's colour: `#rrggbb` (stored lower-case), null to clear it, undefined to keep it. */
export function checkColor(color: string | null | undefined): string | null | undefined {
  if (color === undefined || color === null) return color;
  if (typeof color !== "string" || !/^#[0-9a-f]{6}$/i.test(color)) {
    throw new BadInputError(
      `colour ${JSON.stringify(color)} is not of the form #rrggbb (six hex digits, e.g. "#1f77b4")`,
    );
  }
  return color.toLowerCase();
}

/** A label's hotkey: a whole number 1–9, null to clear it, undefined to keep it. */
export function checkHotkey(hotkey: number | null | undefined): number | null | undefined {
  if (hotkey === undefined || hotkey === null) return hotkey;
  if (typeof hotkey !== "number" || !Number.isInteger(hotkey) || hotkey < 1 || hotkey > 9) {
    throw new BadInputError(`hotkey ${JSON.stringify(hotkey)} is not a key 1 to 9: pick one of 1-9, or none`);
  }
  return hotkey;
}

/** The refusal of a hotkey another label holds. */
export function hotkeyTaken(hotkey: number, holder: string): ConflictError {
  return new ConflictError(
    `hotkey ${hotkey} belongs to ${JSON.stringify(holder)}: clear it there first, or pick another`,
  );
}

/** A label's colour and hotkey as the journal and undo keep them. */
export interface LabelLook {
  color: string | null;
  hotkey: number | null;
}

/** The colour and hotkey after `defineLabel` (checked): a field left out is kept, null clears it. */
export function definitionAfter(
  before: LabelLook,
  definition: { color?: string | null; hotkey?: number | null },
): LabelLook {
  if (typeof definition !== "object" || definition === null) {
    throw new BadInputError("a label definition must be an object with color and/or hotkey");
  }
  const color = checkColor(definition.color);
  const hotkey = checkHotkey(definition.hotkey);
  return {
    color: color === undefined ? before.color : color,
    hotkey: hotkey === undefined ? before.hotkey : hotkey,
  };
}

// ------------------------------------------------------------------------------------------------ review

/** A status a person sets (or null: back to the derived one). */
export function checkReviewSet(status: unknown): "reviewed" | "rejected" | null {
  if (status === null || status === "reviewed" || status === "rejected") return status;
  throw new BadInputError(
    `review status ${JSON.stringify(status)} cannot be set: use "reviewed", "rejected" or null (back to ` +
      `unlabelled/labelled, which follow the frame's labels)`,
  );
}

/** The statuses of a search filter, each once; refuses unknown ones. */
export function checkStatusFilter(status: readonly string[]): ReviewStatus[] {
  for (const s of status) {
    if (!(REVIEW_STATUSES as readonly string[]).includes(s)) {
      throw new BadInputError(
        `review status ${JSON.stringify(s)} is unknown: use ${REVIEW_STATUSES.join(", ")}`,
      );
    }
  }
  return [...new Set(status)] as ReviewStatus[];
}

// ------------------------------------------------------------------------------------------------ undo data

/**
 * The most (frame, label) pairs a `label.add` / `label.remove` entry lists for undo (`addedKeys`, `removedKeys`):
 * above it the keys are left out (a journal row of megabytes helps nobody) and undo refuses the entry.
 */
export const UNDO_KEY_CAP = 10_000;

/** Keys per label for the journal, or undefined when there are more than UNDO_KEY_CAP pairs in all. */
export function keysForUndo(perLabel: Map<string, string[]>): Record<string, string[]> | undefined {
  let pairs = 0;
  for (const keys of perLabel.values()) pairs += keys.length;
  if (pairs > UNDO_KEY_CAP) return undefined;
  return Object.fromEntries(perLabel);
}
