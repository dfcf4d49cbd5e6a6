/**
 * The catalog contract: what frame-bucket keeps about its frames, and the one interface every backend implements
 * (SQLite on one box: src/catalog/sqlite.ts; PostgreSQL for a fleet, next). All SQL lives behind it, in
 * src/catalog/; the rest of the project sees typed rows and these methods, never a connection.
 *
 * Every method is asynchronous, so a backend may talk to a server. Bad input (an unknown label, key or clip, a
 * name that is not allowed, an empty time span) is a `BadInputError` or `NotFoundError` naming the value; trouble
 * with the backend itself is a `ServiceError("catalog")` with `retriable` and the cause.
 *
 * What is kept:
 * - frames: one row per stored frame (key, robot, capture time, sequence, size, entity tag, filter, distance, hash
 *   bits, tier, Kafka partition and offset);
 * - labels on frames, clips (a robot's time span with a name, a note and labels of its own that apply to every
 *   frame of the robot inside the span, also frames stored later), collections (named, ordered groups of clips,
 *   exported as one dataset), and an append-only journal of every change;
 * - what the catalog belongs to (topic, bucket, prefix, endpoint).
 */

/** Where a frame is: only in the local store, on its way to the archive, or only in the archive. */
export type Tier = "local" | "archiving" | "archive";

export const TIERS: readonly Tier[] = ["local", "archiving", "archive"];

export interface FrameRow {
  /** Object key in the local store (the archive key is aws_s3.prefix + this). */
  key: string;
  robotId: string;
  timestampMs: number;
  seq: number;
  size: number;
  /** Entity tag of the stored object as the server reported it (the MD5 of a single-part upload). */
  etag: string | null;
  filter: string;
  /** Distance to the robot's previous stored frame; null for a robot's first frame. */
  distance: number | null;
  /** Perceptual hash bits, when the filter has them. */
  hash: Uint8Array | null;
  tier: Tier;
  /** When the row last changed tier (ms since the epoch). */
  tierChangedMs: number;
  /** When the frame was stored. */
  storedMs: number;
  /**
   * The Kafka partition and offset of the message the frame came from (null for rows from before they were kept
   * or for objects stored without them). Replays after a restart are recognised by these, not by capture time.
   */
  partition?: number | null;
  offset?: number | null;
}

export interface TierCounts {
  frames: number;
  bytes: number;
}

/** What a catalog belongs to: recorded by the first consumer that writes to it, checked by every later one. */
export interface CatalogIdentity {
  topic: string;
  endpoint: string;
  bucket: string;
  prefix: string;
}

// ------------------------------------------------------------------------------------------------ search

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
  /** Only frames whose review status is one of these (see ReviewStatus). */
  status?: ReviewStatus[];
  /** Only frames with no label at all: none of their own, no box, and in no labelled clip. */
  noLabel?: boolean;
}

/** A position in the total order of frames (capture time, sequence, key): a page starts strictly after it. */
export interface FramePosition {
  timestampMs: number;
  seq: number;
  key: string;
}

export interface ClipRef {
  id: number;
  name: string;
  labels: string[];
}

export interface SearchHit {
  frame: FrameRow;
  /** All labels of the frame, its own, its boxes' classes and its clips', sorted, each once. */
  labels: string[];
  /** The frame's own labels. */
  directLabels: string[];
  /** Clips the frame lies in (with or without labels). */
  clips: ClipRef[];
  /** The frame's boxes, by id. */
  boxes: Box[];
  /** Where the frame is in review. */
  status: ReviewStatus;
}

/** A row with its hash, as the similar-frame index reads them. `id` is the backend's stable row number. */
export interface HashRow {
  id: number;
  key: string;
  robotId: string;
  timestampMs: number;
  storedMs: number;
  hash: Uint8Array;
}

/** Per robot: how many frames and bytes, and the first and last capture time. */
export interface RobotSummary {
  robotId: string;
  frames: number;
  bytes: number;
  firstMs: number;
  lastMs: number;
}

/** Frames of a robot counted per time bucket (the timeline). */
export interface TimelineBucket {
  /** Start of the bucket (ms since the epoch, a multiple of the bucket width). */
  startMs: number;
  frames: number;
}

// ------------------------------------------------------------------------------------------------ labels

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
  /** Boxes of this class. */
  boxes: number;
  /** Display colour, `#rrggbb`; null = the UI picks one from the name. */
  color: string | null;
  /** Key 1–9 that picks this class in the UI; null = none. Unique across labels. */
  hotkey: number | null;
}

/** What `defineLabel` sets on a label of the label set; a field left out is kept, null clears it. */
export interface LabelDefinition {
  color?: string | null;
  hotkey?: number | null;
}

// ------------------------------------------------------------------------------------------------ boxes

/**
 * Where a frame is in review. `unlabelled` and `labelled` are derived (no own label and no box / at least one);
 * `reviewed` and `rejected` are set by a person and stay until changed (a reviewed frame with no label is a
 * checked negative).
 */
export type ReviewStatus = "unlabelled" | "labelled" | "reviewed" | "rejected";

export const REVIEW_STATUSES: readonly ReviewStatus[] = ["unlabelled", "labelled", "reviewed", "rejected"];

/** The unit a box was given in: pixels of the frame, or fractions (0..1) of its width and height. */
export type BoxUnit = "px" | "norm";

/**
 * A rectangle with a class on a frame. The four numbers are stored exactly as given, in the unit given, with the
 * frame's size: an export in the same unit (COCO pixels, YOLO fractions) writes them back unchanged, and one in
 * the other unit converts once (see src/catalog/boxes.ts).
 */
export interface Box {
  id: number;
  key: string;
  /** The class: a label name. */
  label: string;
  /** Left edge, top edge, width and height in `unit`, origin at the top-left corner. */
  x: number;
  y: number;
  w: number;
  h: number;
  unit: BoxUnit;
  /** The frame's width and height in pixels. */
  imageWidth: number;
  imageHeight: number;
  /** A model's score in [0, 1]; null for people's boxes. */
  confidence: number | null;
  /** `human`, `import` (from another tool's dataset) or `model:NAME` (a prediction). */
  source: string;
  /** False for a model's box until a person accepts it (pre-labels); true for every other box. */
  accepted: boolean;
  author: string | null;
  createdMs: number;
  updatedMs: number;
}

/** A new box. `unit` defaults to px, `source` to human; boxes from `model:*` start unaccepted. */
export interface BoxInput {
  key: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  unit?: BoxUnit;
  imageWidth: number;
  imageHeight: number;
  confidence?: number | null;
  source?: string;
}

/** Changes to a box: a new class, a new rectangle (all four numbers, in `unit`, default px), acceptance. */
export interface BoxUpdate {
  label?: string;
  rect?: { x: number; y: number; w: number; h: number; unit?: BoxUnit };
  accepted?: boolean;
}

/** A frame's review status with who set it (null for the derived states). */
export interface Review {
  key: string;
  status: ReviewStatus;
  author: string | null;
  atMs: number | null;
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

export interface ClipFilter {
  robotId?: string;
  label?: string;
  fromMs?: number;
  toMs?: number;
}

/**
 * A named, ordered group of clips ("docking attempts, week 47"): listed, exported as one dataset. A clip may be in
 * any number of collections, at most once in each; deleting a clip takes it out of them (the clip.delete journal
 * entry records where it was, so undo puts it back).
 */
export interface Collection {
  id: number;
  /** Unique across collections (exactly as typed: case and spaces count). */
  name: string;
  note: string;
  /** The clips, in the collection's order. */
  clipIds: number[];
  createdMs: number;
  author: string | null;
}

export interface CollectionInput {
  name: string;
  note?: string;
  /** The clips in order (each once); unknown ids are refused. */
  clipIds?: number[];
}

/**
 * Fields of a collection to change: `clipIds` replaces the list (its order is the new order), then `addClipIds`
 * appends clips not in it yet and `removeClipIds` takes clips out.
 */
export interface CollectionUpdate {
  name?: string;
  note?: string;
  clipIds?: number[];
  addClipIds?: number[];
  removeClipIds?: number[];
}

export type ChangeAction =
  | "label.add"
  | "label.remove"
  | "label.rename"
  | "label.delete"
  | "label.define"
  | "clip.create"
  | "clip.update"
  | "clip.delete"
  | "box.add"
  | "box.update"
  | "box.delete"
  | "review.set"
  | "collection.create"
  | "collection.update"
  | "collection.delete";

/** One journal row. */
export interface Change {
  id: number;
  atMs: number;
  author: string | null;
  action: ChangeAction;
  /**
   * What changed: a frame key (one frame), `frames` (a list of keys, in the detail), `robot:ID` (a robot's time
   * span), `label:NAME` (rename/delete, the name before the change), `clip:ID` or `collection:ID`.
   */
  target: string;
  detail: Record<string, unknown>;
}

/**
 * Who makes a change. `author` is whatever the client calls itself (optional); `nowMs` defaults to the clock.
 * `undoOf` marks the change as undoing journal entry N (written into its detail as `undoOf`).
 */
export interface ChangeBy {
  author?: string | null;
  nowMs?: number;
  undoOf?: number;
}

export interface ChangeFilter {
  /** Entries after this id (polling). */
  afterId?: number;
  /** Only changes to this target (a frame key, `robot:ID`, `label:NAME`, `clip:ID`, `collection:ID`, `frames`). */
  target?: string;
  /** Only changes at or after this time. */
  sinceMs?: number;
  /** At most this many (default 100). */
  limit?: number;
  /** Newest first instead of oldest first. */
  newest?: boolean;
}

/** How many labels a request may name, and how many distinct labels the catalog may hold (`[labels]`). */
export interface LabelLimits {
  /** Most labels in each list of one call (add, remove, a clip's labels). */
  maxPerRequest: number;
  /** Most distinct labels in the catalog; a change that would create more is refused. */
  maxDistinct: number;
  /**
   * A fixed label set (`labels.strict`): only `defineLabel` creates labels; labels, clips and boxes naming an
   * unknown one are refused (so a typo never becomes a class).
   */
  strict: boolean;
}

/**
 * Labels, clips and the change journal. Every change and its journal row are one transaction; names are
 * validated here (the one place), so callers do not re-check them.
 */
export interface LabelStore {
  readonly limits: Readonly<LabelLimits>;
  /** Puts labels on frames (created when new); returns how many (frame, label) pairs were new. */
  addLabels(target: FrameSelector, labels: string[], by?: ChangeBy): Promise<number>;
  /** Takes labels off frames; returns how many (frame, label) pairs were removed. */
  removeLabels(target: FrameSelector, labels: string[], by?: ChangeBy): Promise<number>;
  /** Adds some labels and removes others in one transaction (both or neither). */
  changeLabels(
    target: FrameSelector,
    change: { add?: string[]; remove?: string[] },
    by?: ChangeBy,
  ): Promise<{ added: number; removed: number }>;
  /** Renames a label everywhere; `merge` moves everything onto an existing `newName`. */
  renameLabel(oldName: string, newName: string, by?: ChangeBy & { merge?: boolean }): Promise<void>;
  /** Deletes a label from every frame and clip. */
  deleteLabel(name: string, by?: ChangeBy): Promise<{ frames: number; clips: number }>;
  /** Every label with its use counts, by name. */
  list(): Promise<LabelInfo[]>;
  /** True when a label of that name exists. */
  exists(name: string): Promise<boolean>;
  /** A frame's own labels, sorted. */
  labelsOf(key: string): Promise<string[]>;
  createClip(input: ClipInput, by?: ChangeBy): Promise<Clip>;
  updateClip(id: number, update: ClipUpdate, by?: ChangeBy): Promise<Clip>;
  deleteClip(id: number, by?: ChangeBy): Promise<void>;
  getClip(id: number): Promise<Clip | null>;
  listClips(filter?: ClipFilter): Promise<Clip[]>;
  /** Journal rows, oldest first (newest first with `newest`). */
  changes(filter?: ChangeFilter): Promise<Change[]>;
  /** One journal row; null when there is none with that id. */
  change(id: number): Promise<Change | null>;
  /** The entry that undid entry `id` (its detail has `undoOf: id`); null when none did. */
  undoneBy(id: number): Promise<Change | null>;

  // Collections.
  /** Creates a collection: its name must be new (ConflictError), its clips must exist (NotFoundError naming them). */
  createCollection(input: CollectionInput, by?: ChangeBy): Promise<Collection>;
  /** Renames, re-notes or changes the clips of a collection; refuses an unknown id, a taken name, unknown clips. */
  updateCollection(id: number, update: CollectionUpdate, by?: ChangeBy): Promise<Collection>;
  /** Deletes a collection (its clips stay); refuses an unknown id. */
  deleteCollection(id: number, by?: ChangeBy): Promise<void>;
  getCollection(id: number): Promise<Collection | null>;
  collectionByName(name: string): Promise<Collection | null>;
  /** Every collection, by name. */
  listCollections(): Promise<Collection[]>;

  // The label set.
  /** Creates the label when new (also in strict mode) and sets its colour and hotkey; a hotkey held by another
   * label is refused (ConflictError naming it). */
  defineLabel(name: string, definition: LabelDefinition, by?: ChangeBy): Promise<LabelInfo>;

  // Boxes.
  /** Adds boxes (one transaction, one journal entry); classes are created when new unless strict. */
  addBoxes(boxes: BoxInput[], by?: ChangeBy): Promise<Box[]>;
  updateBox(id: number, update: BoxUpdate, by?: ChangeBy): Promise<Box>;
  /** Deletes boxes (unknown ids refused); returns how many. */
  deleteBoxes(ids: number[], by?: ChangeBy): Promise<number>;
  /** Accepts boxes (pre-labels become a person's): by ids, or all unaccepted boxes of a frame. */
  acceptBoxes(target: { ids: number[] } | { key: string }, by?: ChangeBy): Promise<number>;
  getBox(id: number): Promise<Box | null>;
  /** Boxes of these frames, by key (frames without boxes left out). */
  boxesOf(keys: string[]): Promise<Map<string, Box[]>>;

  // Review.
  /** Sets reviewed/rejected on frames, or clears it (null: back to the derived status). Returns how many changed. */
  setReview(keys: string[], status: "reviewed" | "rejected" | null, by?: ChangeBy): Promise<number>;
  /** Review status of these frames (every key given, in order). */
  reviews(keys: string[]): Promise<Review[]>;
}

// ------------------------------------------------------------------------------------------------ leases

/**
 * Leadership of one job among all processes sharing the catalog (the evictor: one at a time across hosts). A
 * lease is held until it expires unless its holder renews it; each new holder gets a larger `token` (a fencing
 * token), and tier changes made under a lease (`setTier` with a `Fence`) only apply while that token holds it.
 */
export interface Lease {
  name: string;
  /** Who holds it (host, pid and a random part). */
  holder: string;
  token: number;
  /** When it runs out unless renewed (ms since the epoch, by the catalog's clock). */
  expiresMs: number;
}

/** A lease a change is made under: the change is refused once another holder has taken the lease. */
export interface Fence {
  lease: string;
  token: number;
}

/** Thrown by a fenced change when the lease has passed to another holder (or ran out). */
export class LeaseLostError extends Error {
  constructor(readonly lease: string, readonly token: number) {
    super(
      `the ${lease} lease (token ${token}) has passed to another holder or ran out: stop and let it work`,
    );
    this.name = "LeaseLostError";
  }
}

// ------------------------------------------------------------------------------------------------ copying

/**
 * The label-side tables a copy carries besides frames, with their columns and the order they are read in. Raw
 * rows keep their ids (clips, collections and journal entries are referred to by id); `changes.detail` and
 * `status.state` are JSON strings.
 */
export const COPY_TABLES = {
  labels: { columns: ["id", "name"], order: "id" },
  frame_labels: { columns: ["key", "label_id", "created_ms", "author"], order: "key, label_id" },
  clips: {
    columns: ["id", "robot_id", "from_ms", "to_ms", "name", "note", "created_ms", "author"],
    order: "id",
  },
  clip_labels: { columns: ["clip_id", "label_id"], order: "clip_id, label_id" },
  changes: { columns: ["id", "at_ms", "author", "action", "target", "detail"], order: "id" },
  boxes: {
    columns: [
      "id",
      "key",
      "label_id",
      "x",
      "y",
      "w",
      "h",
      "unit",
      "image_w",
      "image_h",
      "confidence",
      "source",
      "accepted",
      "author",
      "created_ms",
      "updated_ms",
    ],
    order: "id",
  },
  reviews: { columns: ["key", "status", "author", "at_ms"], order: "key" },
  label_set: { columns: ["label_id", "color", "hotkey"], order: "label_id" },
  collections: { columns: ["id", "name", "note", "created_ms", "author"], order: "id" },
  collection_clips: {
    columns: ["collection_id", "clip_id", "position"],
    order: "collection_id, position",
  },
  status: { columns: ["name", "state", "updated_ms"], order: "name" },
} as const;

/** Columns of COPY_TABLES that hold JSON (text in raw rows, whatever type the backend keeps them in). */
export const JSON_COLUMNS: ReadonlySet<string> = new Set(["detail", "state"]);

export type CopyTable = keyof typeof COPY_TABLES;

// ------------------------------------------------------------------------------------------------ the catalog

export interface Catalog {
  /** Where the catalog is, for messages: a file path or a server URL without its password. */
  readonly where: string;

  // Frames.
  /** Records a stored frame (idempotent); a frame stored again locally after it was archived is local again. */
  upsert(row: FrameRow): Promise<void>;
  /** Records many rows in one transaction (reindex, reconciliation). */
  upsertMany(rows: FrameRow[]): Promise<void>;
  get(key: string): Promise<FrameRow | null>;
  /** A robot's newest frame in any tier (by capture time, then sequence). */
  newest(robotId: string): Promise<FrameRow | null>;
  /** The robot's frame from the highest Kafka offset on `partition`: the last one stored from it. */
  lastStoredFrom(robotId: string, partition: number): Promise<FrameRow | null>;
  /** Keys of rows with `from <= key <= to`, in key order. */
  keysBetween(from: string, to: string): Promise<string[]>;
  /** Rows in all tiers. */
  frameCount(): Promise<number>;
  /** Every row in key order (tests and small tools). */
  all(): Promise<FrameRow[]>;

  // Tiers (eviction).
  /** The globally oldest frames still only in the local tier. */
  oldestLocal(limit: number): Promise<FrameRow[]>;
  /** The oldest local frames that are not pinned (labelled, or in a labelled clip). */
  oldestLocalUnpinned(limit: number): Promise<FrameRow[]>;
  /** Unpinned oldest first, then pinned oldest first. */
  oldestLocalPinnedLast(limit: number): Promise<FrameRow[]>;
  /** Frames in a tier, oldest first. */
  inTier(tier: Tier, limit: number): Promise<FrameRow[]>;
  /**
   * Moves a frame to another tier. With `fence`, only while that lease token holds the lease: otherwise nothing
   * changes and a LeaseLostError is thrown.
   */
  setTier(key: string, tier: Tier, nowMs: number, fence?: Fence): Promise<void>;
  remove(key: string): Promise<void>;
  /** True when the frame is labelled or inside a labelled clip of its robot. */
  isPinned(key: string): Promise<boolean>;
  /** Frames and bytes per tier. */
  totals(): Promise<Record<Tier, TierCounts>>;

  // Search.
  /** Frames matching `filter` in capture order ("newest" or "oldest" first), strictly after `after`. */
  findFrames(
    filter: SearchFilter,
    page: { order: "newest" | "oldest"; limit: number; after?: FramePosition | null },
  ): Promise<FrameRow[]>;
  /** How many frames match. */
  countFrames(filter: SearchFilter): Promise<number>;
  /** Each frame with its labels (own and via clips) and its clips. */
  withLabels(frames: FrameRow[]): Promise<SearchHit[]>;
  /** Rows with a hash, optionally only those stored at or after `sinceStoredMs` (the similar-frame index). */
  hashRows(options?: { sinceStoredMs?: number; filter?: SearchFilter }): AsyncIterable<HashRow>;
  /** The stable row number of a frame (the similar-frame index refers to rows by it). */
  idOf(key: string): Promise<number | null>;
  /** Rows by their row numbers. */
  rowsById(ids: number[]): Promise<Map<number, FrameRow>>;
  /** Frames, bytes and capture span per robot, by robot id. */
  robotSummaries(): Promise<RobotSummary[]>;
  /** One robot's summary; null when it has no frames. */
  robotSummary(robotId: string): Promise<RobotSummary | null>;
  /** A robot's frames counted per `bucketMs` between `fromMs` and `toMs` (inclusive), empty buckets left out. */
  timeline(robotId: string, fromMs: number, toMs: number, bucketMs: number): Promise<TimelineBucket[]>;
  /** The keys of the robot's frames right before and after `at` in capture order. */
  adjacentKeys(robotId: string, at: FramePosition): Promise<{ previous: string | null; next: string | null }>;

  // Labels, clips, journal.
  /** The label store over this catalog, with the given limits and clock. */
  labels(options?: { now?: () => number; limits?: Partial<LabelLimits> }): LabelStore;

  // Leases (one evictor at a time).
  /**
   * Takes the lease `name` for `ttlMs` when it is free or ran out (with a new, larger token), or renews it when
   * `holder` holds it (same token). Null when another holder's lease is live, unless that holder is `takeFrom`
   * (a holder known to be dead: its lease is taken at once, with a new token).
   */
  claimLease(name: string, holder: string, ttlMs: number, takeFrom?: string): Promise<Lease | null>;
  /** Gives the lease up when `holder` holds it (another process may take it at once). */
  releaseLease(name: string, holder: string): Promise<void>;
  /** The lease as it is now (live or run out), null when never taken. */
  lease(name: string): Promise<Lease | null>;

  // Copying to another catalog (`deno task catalog migrate`).
  /** Frames in key order strictly after `afterKey` ("" for the first page). */
  framesAfter(afterKey: string, limit: number): Promise<FrameRow[]>;
  /** The largest key ("" when there are no frames): where a copy in key order resumes. */
  lastKey(): Promise<string>;
  /** Raw rows of a label-side table in a stable order (see COPY_TABLES), `offset` rows in. */
  copyRows(table: CopyTable, offset: number, limit: number): Promise<Record<string, unknown>[]>;
  /** Writes raw rows of a table as they are (ids kept); rows already there are left as they are. */
  pasteRows(table: CopyTable, rows: Record<string, unknown>[]): Promise<void>;
  /** Rows in a table (verifying a copy). */
  countRows(table: CopyTable): Promise<number>;

  // Status of background jobs (the evictor's storage health), shared by every process on the catalog.
  /** Records the state of `name` (replacing what was there) at `nowMs`. */
  putStatus(name: string, state: Record<string, unknown>, nowMs: number): Promise<void>;
  /** The last state recorded for `name` and when; null when none was. */
  status(name: string): Promise<{ state: Record<string, unknown>; updatedMs: number } | null>;

  // Identity and health.
  /** What the catalog belongs to; null when nothing is recorded yet. */
  identity(): Promise<CatalogIdentity | null>;
  /** Records the identity when none is; returns the fields that differ from one already recorded. */
  bind(identity: CatalogIdentity): Promise<(keyof CatalogIdentity)[]>;
  /** Throws a ServiceError("catalog") when the catalog cannot be read. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Optional care of a file-based catalog (SQLite): whether the file at its path is still the one it opened, and
   * putting its rows back when it was deleted or replaced; a checkpoint after a failed write on a full disk.
   */
  fileState?(): "same" | "deleted" | "replaced";
  recoverFile?(): Promise<{ state: "deleted" | "replaced"; copied: number; rows: number } | null>;
  checkpoint?(): Promise<string | null>;
}
