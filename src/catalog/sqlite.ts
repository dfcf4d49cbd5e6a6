/**
 * The SQLite backend of the catalog contract (src/catalog/catalog.ts): one file under the data directory, WAL
 * mode, through Deno's node:sqlite. This module keeps the frames, the schema and its migrations, the file's care
 * (noticing it deleted or replaced, a bounded WAL); src/catalog/sqlite_labels.ts keeps labels, clips and the
 * journal, src/catalog/sqlite_search.ts the reads for search, the similar-frame index and the robot views.
 *
 * Tiers: "local" (only in the local store), "archiving" (a move to the archive is under way: the archive copy is
 * being made or verified, and once it is verified the local object is deleted), "archive" (only in the archive).
 * A crash at any point of a move leaves the row in "archiving", and eviction finishes or redoes the move.
 */
import { journalledIds } from "./copy_ids.ts";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { messageOf, ServiceError } from "../errors.ts";
import {
  type Catalog,
  type CatalogIdentity,
  COPY_TABLES,
  type CopyTable,
  type Fence,
  type FramePosition,
  type FrameRow,
  type HashRow,
  type LabelLimits,
  type LabelStore,
  type Lease,
  LeaseLostError,
  type RobotSummary,
  type SearchFilter,
  type SearchHit,
  type Tier,
  type TierCounts,
  type TimelineBucket,
} from "./catalog.ts";
import { checkStatus } from "./rules.ts";
import { SqliteLabels } from "./sqlite_labels.ts";
import * as reads from "./sqlite_search.ts";

/**
 * 1: frames. 2: labels, frame_labels, clips, clip_labels and the append-only `changes` journal (src/catalog/sqlite_labels.ts),
 * plus indexes for time-ordered search (frames_time) and "stored since" polling (frames_stored). 3: the Kafka
 * partition and offset of each frame (replay detection) and a `meta` table naming what the catalog belongs to. 4: `leases`
 * (one evictor at a time, with fencing tokens). 5: `boxes` (classes with rectangles on frames), `reviews` (status a
 * person set) and `label_set` (colour and hotkey of a label), and an index finding the entry that undid another.
 * 6: `collections` and `collection_clips` (named, ordered groups of clips) and `status` (background jobs' state).
 */
const SCHEMA_VERSION = 6;

/** The WAL is checkpointed every this many pages (4 KiB each) and truncated to `WAL_LIMIT_BYTES` after. */
const WAL_CHECKPOINT_PAGES = 256;
const WAL_LIMIT_BYTES = 1024 * 1024;

/** SQLite's primary result code of a node:sqlite error (`errcode` holds the extended one). */
function sqliteCode(error: unknown): number | undefined {
  const code = (error as { errcode?: number })?.errcode;
  return typeof code === "number" ? code & 0xff : undefined;
}

/**
 * A catalog failure as a ServiceError("catalog") that names the file, what was being done, SQLite's own words and
 * the fix. Full disk, busy and I/O errors are retriable (they clear when space is freed or the lock is released).
 */
export function catalogError(path: string, doing: string, error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  let code = sqliteCode(error);
  let said = messageOf(error);
  const folder = path.slice(0, Math.max(0, path.lastIndexOf("/"))) || ".";
  if (code === undefined && /unable to open/.test(said)) {
    // node:sqlite gives no result code when the file cannot be opened: find out whether the folder takes writes.
    const probe = `${folder}/.frame-bucket-write-test-${Deno.pid}`;
    try {
      Deno.writeFileSync(probe, new Uint8Array(0));
      Deno.removeSync(probe);
      code = 14;
    } catch (writeError) {
      said = `${said}; the folder refuses writes: ${messageOf(writeError)}`;
      code = 8;
    }
  }
  let fix = "check the file and its folder";
  let retriable = true;
  switch (code) {
    case 13: // SQLITE_FULL
      fix = `free space on the filesystem holding ${folder} (frame-bucket retries and carries on by itself)`;
      break;
    case 8: // SQLITE_READONLY
      fix =
        `make ${folder} and the catalog files in it writable, or point catalog.data_dir at a writable folder`;
      retriable = false;
      break;
    case 14: // SQLITE_CANTOPEN
      fix = `make sure ${folder} exists and is writable, or point catalog.data_dir at a writable folder`;
      retriable = false;
      break;
    case 11: // SQLITE_CORRUPT
    case 26: // SQLITE_NOTADB
      fix = `move ${path} away and rebuild it with \`deno task reindex\``;
      retriable = false;
      break;
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      fix = "another process holds the catalog's write lock for long: check for a stuck `deno task` process";
      break;
    case 10: // SQLITE_IOERR
      fix = `check the disk holding ${folder} (dmesg) and free space on it`;
      break;
  }
  return new ServiceError("catalog", `catalog ${path}: ${doing} failed (${said}): ${fix}`, {
    retriable,
    cause: error,
  });
}

/** The catalog file of a config: `catalog.data_dir` (relative to the config file's folder) + catalog.sqlite. */
export function catalogPath(config: { baseDir: string; catalog: { data_dir: string } }): string {
  const dir = config.catalog.data_dir.startsWith("/")
    ? config.catalog.data_dir
    : `${config.baseDir.replace(/\/$/, "")}/${config.catalog.data_dir}`;
  return `${dir.replace(/\/$/, "")}/catalog.sqlite`;
}

const COLUMNS =
  "key, robot_id, ts_ms, seq, size, etag, filter, distance, hash, tier, tier_changed_ms, stored_ms, kafka_partition, " +
  "kafka_offset";

/**
 * Version 5 (idempotent, so two processes opening a v4 catalog at once both get through). Boxes hang off frames by
 * key, like frame_labels (a frame's row may be rebuilt by reindex and keeps them); their class is a label id, so
 * renaming a label renames its boxes. `accepted` is 0 for a model's box until a person accepts it. A frame's review
 * row holds only what a person set (reviewed, rejected): unlabelled and labelled are derived from its labels and
 * boxes. `label_set` holds the optional colour and hotkey of a label (hotkeys unique). The partial index on the
 * journal's `undoOf` lets undo find whether an entry was undone without reading the journal.
 */
const SCHEMA_5 = `
  CREATE TABLE IF NOT EXISTS boxes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    label_id INTEGER NOT NULL,
    x REAL NOT NULL,
    y REAL NOT NULL,
    w REAL NOT NULL CHECK (w > 0),
    h REAL NOT NULL CHECK (h > 0),
    unit TEXT NOT NULL CHECK (unit IN ('px', 'norm')),
    image_w INTEGER NOT NULL CHECK (image_w > 0),
    image_h INTEGER NOT NULL CHECK (image_h > 0),
    confidence REAL,
    source TEXT NOT NULL,
    accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    author TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS boxes_key ON boxes (key);
  CREATE INDEX IF NOT EXISTS boxes_label ON boxes (label_id, key);
  CREATE TABLE IF NOT EXISTS reviews (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('reviewed', 'rejected')),
    author TEXT,
    at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS label_set (
    label_id INTEGER PRIMARY KEY,
    color TEXT,
    hotkey INTEGER UNIQUE CHECK (hotkey BETWEEN 1 AND 9)
  );
  CREATE INDEX IF NOT EXISTS changes_undo ON changes (json_extract(detail, '$.undoOf'))
    WHERE json_extract(detail, '$.undoOf') IS NOT NULL;
  PRAGMA user_version = 5;
`;

/**
 * Version 6 (idempotent, like 5). A collection is a named, ordered group of clips; `collection_clips` holds its
 * clips with their place in it (`position`, ascending), each clip once per collection, looked up by clip too
 * (deleting a clip takes it out of its collections). Names are unique. `status` holds the last state a background
 * job (the evictor) reported, as JSON, so every process on the catalog can show it.
 */
const SCHEMA_6 = `
  CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    author TEXT
  );
  CREATE TABLE IF NOT EXISTS collection_clips (
    collection_id INTEGER NOT NULL,
    clip_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (collection_id, clip_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS collection_clips_clip ON collection_clips (clip_id, collection_id);
  CREATE TABLE IF NOT EXISTS status (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (json_valid(state)),
    updated_ms INTEGER NOT NULL
  ) WITHOUT ROWID;
  PRAGMA user_version = 6;
`;

/**
 * SQL condition on `frames f`: the frame has a label of its own, a box, or lies in a labelled clip of its robot.
 */
const PINNED = `(EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = f.key)
  OR EXISTS (SELECT 1 FROM boxes b WHERE b.key = f.key)
  OR EXISTS (SELECT 1 FROM clips c WHERE c.robot_id = f.robot_id AND c.from_ms <= f.ts_ms AND c.to_ms >= f.ts_ms
    AND EXISTS (SELECT 1 FROM clip_labels cl WHERE cl.clip_id = c.id)))`;

interface RawRow {
  key: string;
  robot_id: string;
  ts_ms: number;
  seq: number;
  size: number;
  etag: string | null;
  filter: string;
  distance: number | null;
  hash: Uint8Array | null;
  tier: Tier;
  tier_changed_ms: number;
  stored_ms: number;
  kafka_partition?: number | null;
  kafka_offset?: number | null;
}

/** The frame columns for a SELECT, qualified with a table alias (`rowFromSql` reads them back). */
export function frameColumns(alias: string): string {
  return COLUMNS.split(", ").map((c) => `${alias}.${c}`).join(", ");
}

/** A FrameRow from a result row that holds the frame columns (see `frameColumns`). */
export function rowFromSql(r: Record<string, unknown>): FrameRow {
  return toRow(r as unknown as RawRow);
}

function toRow(r: RawRow): FrameRow {
  return {
    key: r.key,
    robotId: r.robot_id,
    timestampMs: Number(r.ts_ms),
    seq: Number(r.seq),
    size: Number(r.size),
    etag: r.etag,
    filter: r.filter,
    distance: r.distance,
    hash: r.hash ? new Uint8Array(r.hash) : null,
    tier: r.tier,
    tierChangedMs: Number(r.tier_changed_ms),
    storedMs: Number(r.stored_ms),
    partition: r.kafka_partition === null || r.kafka_partition === undefined
      ? null
      : Number(r.kafka_partition),
    offset: r.kafka_offset === null || r.kafka_offset === undefined ? null : Number(r.kafka_offset),
  };
}

export class SqliteCatalog implements Catalog {
  readonly path: string;
  /** For messages: the file path. */
  readonly where: string;
  #db!: DatabaseSync;
  #upsert!: StatementSync;
  #get!: StatementSync;
  #newest!: StatementSync;
  #newestOnPartition!: StatementSync;
  #oldest!: StatementSync;
  #setTier!: StatementSync;
  #remove!: StatementSync;
  #tierTotals!: StatementSync;
  #inTier!: StatementSync;
  #keysBetween!: StatementSync;
  /** The file's identity when it was opened, to notice a catalog deleted or replaced under a running process. */
  #file: { dev: number; ino: number } | null = null;

  /** Opens (creating when missing) the catalog file; `":memory:"` for a throw-away one. */
  constructor(path: string) {
    this.path = path;
    this.where = path;
    if (path !== ":memory:") {
      const folder = path.slice(0, Math.max(0, path.lastIndexOf("/"))) || ".";
      try {
        mkdirSync(folder, { recursive: true });
      } catch (error) {
        throw new ServiceError(
          "catalog",
          `cannot create the catalog folder ${folder} (${messageOf(error)}): point catalog.data_dir at a ` +
            `writable folder`,
          { retriable: false, cause: error },
        );
      }
    }
    this.#open();
  }

  #open(): void {
    const path = this.path;
    try {
      this.#db = new DatabaseSync(path);
    } catch (error) {
      throw catalogError(path, "opening", error);
    }
    try {
      // WAL lets search read while the consumer writes; NORMAL syncs at checkpoints, which is durable against a
      // process crash (the case that matters here); the frames themselves are in the object store either way.
      // The WAL is checkpointed every 1 MiB and truncated back to 1 MiB after a checkpoint, so a catalog on a
      // small or nearly full disk neither grows its WAL without bound nor keeps the space once it has it.
      this.#db.exec(
        `PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}; PRAGMA journal_size_limit = ${WAL_LIMIT_BYTES};`,
      );
      this.#migrate();
    } catch (error) {
      this.#db.close();
      throw catalogError(path, "preparing the schema", error);
    }
    // Fold what opening wrote (a new schema is ~150 KB of pages) into the file and empty the WAL: otherwise those
    // pages live only in the WAL until 1 MiB of it is written, and on a small disk that fills up meanwhile the
    // checkpoint that would free the WAL has no room to copy them into the file (it never can again).
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch { /* a full disk or a busy reader: the next checkpoint does it */ }
    this.#file = this.#stat();
    this.#prepare();
  }

  #stat(): { dev: number; ino: number } | null {
    if (this.path === ":memory:") return null;
    try {
      const st = statSync(this.path);
      return { dev: st.dev, ino: st.ino };
    } catch {
      return null;
    }
  }

  #prepare(): void {
    this.#upsert = this.#db.prepare(
      `INSERT INTO frames (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET robot_id = excluded.robot_id, ts_ms = excluded.ts_ms, seq = excluded.seq,
         size = excluded.size, etag = excluded.etag, filter = excluded.filter, distance = excluded.distance,
         hash = excluded.hash, stored_ms = excluded.stored_ms,
         kafka_partition = COALESCE(excluded.kafka_partition, frames.kafka_partition),
         kafka_offset = COALESCE(excluded.kafka_offset, frames.kafka_offset),
         tier = CASE WHEN frames.tier = 'archive' THEN 'local' ELSE excluded.tier END,
         tier_changed_ms = excluded.tier_changed_ms`,
    );
    this.#get = this.#db.prepare(`SELECT ${COLUMNS} FROM frames WHERE key = ?`);
    this.#newest = this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames WHERE robot_id = ? ORDER BY ts_ms DESC, seq DESC LIMIT 1`,
    );
    this.#newestOnPartition = this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames WHERE robot_id = ? AND kafka_partition = ?
       ORDER BY kafka_offset DESC LIMIT 1`,
    );
    this.#oldest = this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames WHERE tier = 'local' ORDER BY ts_ms, seq LIMIT ?`,
    );
    this.#inTier = this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames WHERE tier = ? ORDER BY ts_ms, seq LIMIT ?`,
    );
    this.#setTier = this.#db.prepare("UPDATE frames SET tier = ?, tier_changed_ms = ? WHERE key = ?");
    this.#remove = this.#db.prepare("DELETE FROM frames WHERE key = ?");
    this.#tierTotals = this.#db.prepare(
      "SELECT tier, COUNT(*) AS frames, COALESCE(SUM(size), 0) AS bytes FROM frames GROUP BY tier",
    );
    this.#keysBetween = this.#db.prepare("SELECT key FROM frames WHERE key >= ? AND key <= ? ORDER BY key");
  }

  #migrate(): void {
    const version = Number(
      (this.#db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
    if (version > SCHEMA_VERSION) {
      throw new RangeError(
        `catalog ${this.path} has schema version ${version}, newer than this frame-bucket (${SCHEMA_VERSION}): upgrade`,
      );
    }
    if (version < 1) {
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS frames (
          key TEXT PRIMARY KEY,
          robot_id TEXT NOT NULL,
          ts_ms INTEGER NOT NULL,
          seq INTEGER NOT NULL,
          size INTEGER NOT NULL,
          etag TEXT,
          filter TEXT NOT NULL,
          distance REAL,
          hash BLOB,
          tier TEXT NOT NULL CHECK (tier IN ('local', 'archiving', 'archive')),
          tier_changed_ms INTEGER NOT NULL,
          stored_ms INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS frames_tier_time ON frames (tier, ts_ms, seq);
        CREATE INDEX IF NOT EXISTS frames_robot_time ON frames (robot_id, ts_ms, seq);
        PRAGMA user_version = 1;
      `);
    }
    if (version < 2) this.#migrateTo2();
    if (version < 3) this.#migrateTo3();
    if (version < 4) {
      this.#transaction(() => {
        this.#db.exec(`
          CREATE TABLE IF NOT EXISTS leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            token INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL
          ) WITHOUT ROWID;
          PRAGMA user_version = 4;
        `);
      });
    }
    if (version < 5) this.#transaction(() => this.#db.exec(SCHEMA_5));
    if (version < 6) this.#transaction(() => this.#db.exec(SCHEMA_6));
  }

  /** Version 3: Kafka partition and offset per frame, and the `meta` table (see CatalogIdentity). */
  #migrateTo3(): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const now = Number(
        (this.#db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      );
      if (now < 3) {
        this.#db.exec(`
          ALTER TABLE frames ADD COLUMN kafka_partition INTEGER;
          ALTER TABLE frames ADD COLUMN kafka_offset INTEGER;
          CREATE INDEX IF NOT EXISTS frames_robot_offset ON frames (robot_id, kafka_partition, kafka_offset);
          CREATE TABLE IF NOT EXISTS meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
          ) WITHOUT ROWID;
          PRAGMA user_version = 3;
        `);
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Version 2, in place and in one transaction (a v1 catalog keeps its rows; the version is checked again under
   * the write lock, so two processes opening an old catalog at once migrate it once).
   *
   * Labels hang off frames by key (not by a foreign key: a frame's row may be rebuilt by reindex and keeps its
   * labels). A clip is a robot's time span [from_ms, to_ms] (both inclusive); its labels apply to every frame of
   * that robot inside the span, including frames stored after the clip was made.
   */
  #migrateTo2(): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const now = Number(
        (this.#db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      );
      if (now < 2) {
        this.#db.exec(`
          CREATE TABLE IF NOT EXISTS labels (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
          );
          CREATE TABLE IF NOT EXISTS frame_labels (
            key TEXT NOT NULL,
            label_id INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            author TEXT,
            PRIMARY KEY (key, label_id)
          ) WITHOUT ROWID;
          CREATE INDEX IF NOT EXISTS frame_labels_label ON frame_labels (label_id, key);
          CREATE TABLE IF NOT EXISTS clips (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            robot_id TEXT NOT NULL,
            from_ms INTEGER NOT NULL,
            to_ms INTEGER NOT NULL CHECK (to_ms >= from_ms),
            name TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL,
            author TEXT
          );
          CREATE INDEX IF NOT EXISTS clips_robot_time ON clips (robot_id, from_ms, to_ms);
          CREATE TABLE IF NOT EXISTS clip_labels (
            clip_id INTEGER NOT NULL,
            label_id INTEGER NOT NULL,
            PRIMARY KEY (clip_id, label_id)
          ) WITHOUT ROWID;
          CREATE INDEX IF NOT EXISTS clip_labels_label ON clip_labels (label_id, clip_id);
          CREATE TABLE IF NOT EXISTS changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_ms INTEGER NOT NULL,
            author TEXT,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL CHECK (json_valid(detail))
          );
          CREATE INDEX IF NOT EXISTS changes_target ON changes (target, id);
          CREATE TRIGGER IF NOT EXISTS changes_no_update BEFORE UPDATE ON changes
            BEGIN SELECT RAISE(ABORT, 'the changes journal is append-only'); END;
          CREATE TRIGGER IF NOT EXISTS changes_no_delete BEFORE DELETE ON changes
            BEGIN SELECT RAISE(ABORT, 'the changes journal is append-only'); END;
          CREATE INDEX IF NOT EXISTS frames_time ON frames (ts_ms, seq, key);
          CREATE INDEX IF NOT EXISTS frames_stored ON frames (stored_ms);
          PRAGMA user_version = 2;
        `);
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Records a stored frame (idempotent: a replayed store rewrites the same row). A frame stored again locally
   * after it was archived is local again.
   */
  #upsertSync(row: FrameRow): void {
    this.#upsert.run(
      row.key,
      row.robotId,
      row.timestampMs,
      row.seq,
      row.size,
      row.etag,
      row.filter,
      row.distance,
      row.hash,
      row.tier,
      row.tierChangedMs,
      row.storedMs,
      row.partition ?? null,
      row.offset ?? null,
    );
  }

  /** Records many rows in one transaction (reindex). */
  #upsertManySync(rows: FrameRow[]): void {
    this.#transaction(() => {
      for (const row of rows) this.#upsertSync(row);
    });
  }

  #getSync(key: string): FrameRow | null {
    const r = this.#get.get(key) as RawRow | undefined;
    return r ? toRow(r) : null;
  }

  /**
   * The robot's frame from the highest Kafka offset on `partition`: the last one the consumer stored from it,
   * whatever its capture time. Null when no row of the robot records that partition.
   */
  #lastStoredFromSync(robotId: string, partition: number): FrameRow | null {
    const r = this.#newestOnPartition.get(robotId, partition) as RawRow | undefined;
    return r ? toRow(r) : null;
  }

  /** Keys of rows with `from <= key <= to`, in key order (reconciling a bucket listing page by page). */
  #keysBetweenSync(from: string, to: string): string[] {
    return (this.#keysBetween.all(from, to) as { key: string }[]).map((r) => r.key);
  }

  /** Rows in all tiers. */
  #frameCountSync(): number {
    return Number((this.#db.prepare("SELECT COUNT(*) AS n FROM frames").get() as { n: number }).n);
  }

  /** What the catalog belongs to, as recorded by the first consumer that wrote to it; null when nothing is. */
  #identitySync(): CatalogIdentity | null {
    const rows = this.#db.prepare("SELECT name, value FROM meta").all() as { name: string; value: string }[];
    const m = new Map(rows.map((r) => [r.name, r.value]));
    if (!m.has("topic")) return null;
    return {
      topic: m.get("topic") ?? "",
      endpoint: m.get("endpoint") ?? "",
      bucket: m.get("bucket") ?? "",
      prefix: m.get("prefix") ?? "",
    };
  }

  /**
   * Records what the catalog belongs to when nothing is recorded yet; returns the fields that differ from an
   * identity already recorded (empty when it is this one).
   */
  #bindSync(identity: CatalogIdentity): (keyof CatalogIdentity)[] {
    const known = this.#identitySync();
    if (!known) {
      const put = this.#db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)");
      this.#transaction(() => {
        for (const [name, value] of Object.entries(identity)) put.run(name, value);
      });
      return [];
    }
    return (Object.keys(identity) as (keyof CatalogIdentity)[]).filter((k) => known[k] !== identity[k]);
  }

  /** Runs `work` in one write transaction (rolled back when it throws). */
  #transaction<T>(work: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = work();
      this.#db.exec("COMMIT");
      return out;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Throws a catalog ServiceError when the catalog cannot be read (the health check). */
  #pingSync(): void {
    try {
      this.#db.prepare("SELECT COUNT(*) FROM meta").get();
    } catch (error) {
      throw catalogError(this.path, "reading", error);
    }
  }

  /**
   * Writes the WAL back into the database and truncates it (after a failed write on a full disk, this is what
   * gives the space back once some is freed). Errors are returned, not thrown: it is a best effort.
   */
  #checkpointSync(): string | null {
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      return null;
    } catch (error) {
      return messageOf(error);
    }
  }

  /**
   * Whether the file at `path` is still the one this catalog opened: "deleted" (nothing there: a process that
   * keeps writing would write into an unlinked file that nobody else sees), "replaced" (another file, e.g. a
   * restored backup) or "same".
   */
  fileState(): "same" | "deleted" | "replaced" {
    if (!this.#file) return "same";
    const now = this.#stat();
    if (!now) return "deleted";
    return now.dev === this.#file.dev && now.ino === this.#file.ino ? "same" : "replaced";
  }

  /**
   * Puts the rows this process holds back where others look. A deleted file is written again from the open
   * connection (which still reads the unlinked file); into a replaced file, the rows it lacks are copied (its own
   * rows win). Either way the catalog then works on the file at `path`. Returns the rows in it afterwards and
   * how many were copied in.
   */
  #recoverFileSync(): { state: "deleted" | "replaced"; copied: number; rows: number } | null {
    const state = this.fileState();
    if (state === "same") return null;
    const copy = `${this.path}.recovered-${Deno.pid}-${Date.now()}`;
    try {
      this.#db.exec(`VACUUM INTO '${copy.replaceAll("'", "''")}'`);
    } catch (error) {
      rmSync(copy, { force: true });
      throw catalogError(this.path, `saving the rows of the ${state} catalog file into ${copy}`, error);
    }
    this.#db.close();
    let copied = 0;
    if (state === "deleted" && this.fileState() === "deleted") {
      // The -wal and -shm beside a deleted file belonged to it; a new file must not pick them up.
      rmSync(`${this.path}-wal`, { force: true });
      rmSync(`${this.path}-shm`, { force: true });
      renameSync(copy, this.path);
      this.#open();
      copied = this.#frameCountSync();
    } else {
      this.#open();
      try {
        this.#db.exec(`ATTACH DATABASE '${copy.replaceAll("'", "''")}' AS saved`);
        const before = this.#frameCountSync();
        this.#transaction(() => {
          this.#db.exec(`INSERT OR IGNORE INTO frames (${COLUMNS}) SELECT ${COLUMNS} FROM saved.frames`);
        });
        copied = this.#frameCountSync() - before;
        this.#db.exec("DETACH DATABASE saved");
      } finally {
        rmSync(copy, { force: true });
      }
    }
    return { state, copied, rows: this.#frameCountSync() };
  }

  /** A robot's newest frame in any tier (by capture time, then sequence). */
  #newestSync(robotId: string): FrameRow | null {
    const r = this.#newest.get(robotId) as RawRow | undefined;
    return r ? toRow(r) : null;
  }

  /** The globally oldest frames still only in the local tier. */
  #oldestLocalSync(limit: number): FrameRow[] {
    return (this.#oldest.all(limit) as unknown as RawRow[]).map(toRow);
  }

  /**
   * True when the frame is labelled: a label of its own, a box, or inside a clip (same robot, capture time within
   * the clip's span) that has at least one label. Eviction should keep pinned frames local as long as it can.
   */
  #isPinnedSync(key: string): boolean {
    return this.#db.prepare(`SELECT 1 AS pinned FROM frames f WHERE f.key = ? AND ${PINNED}`).get(key) !==
      undefined;
  }

  /** The globally oldest local-only frames that are not pinned (eviction's first choice), oldest first. */
  #oldestLocalUnpinnedSync(limit: number): FrameRow[] {
    return (this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames f WHERE tier = 'local' AND NOT ${PINNED} ORDER BY ts_ms, seq LIMIT ?`,
    ).all(limit) as unknown as RawRow[]).map(toRow);
  }

  /**
   * Like `oldestLocal`, but unpinned frames come first (oldest first), then pinned ones (oldest first): eviction
   * that takes from the front archives labelled frames only once nothing else is left.
   */
  #oldestLocalPinnedLastSync(limit: number): FrameRow[] {
    const rows = this.#oldestLocalUnpinnedSync(limit);
    if (rows.length >= limit) return rows;
    const pinned = this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames f WHERE tier = 'local' AND ${PINNED} ORDER BY ts_ms, seq LIMIT ?`,
    ).all(limit - rows.length) as unknown as RawRow[];
    return rows.concat(pinned.map(toRow));
  }

  /** Frames in a tier, oldest first. */
  #inTierSync(tier: Tier, limit: number): FrameRow[] {
    return (this.#inTier.all(tier, limit) as unknown as RawRow[]).map(toRow);
  }

  #setTierSync(key: string, tier: Tier, nowMs: number, fence?: Fence): void {
    if (!fence) {
      this.#setTier.run(tier, nowMs, key);
      return;
    }
    const changed = this.#db.prepare(
      `UPDATE frames SET tier = ?, tier_changed_ms = ? WHERE key = ? AND EXISTS
         (SELECT 1 FROM leases WHERE name = ? AND token = ? AND expires_ms > ?)`,
    ).run(tier, nowMs, key, fence.lease, fence.token, Date.now()).changes;
    if (Number(changed) === 0 && this.#getSync(key)) throw new LeaseLostError(fence.lease, fence.token);
  }

  /** See Catalog.claimLease; the clock is this machine's (a SQLite catalog is on one box). */
  #claimLeaseSync(name: string, holder: string, ttlMs: number, takeFrom?: string): Lease | null {
    return this.#transaction(() => {
      const now = Date.now();
      const current = this.#leaseSync(name);
      const live = current !== null && current.expiresMs > now && current.holder !== takeFrom;
      let token: number;
      if (!current) token = 1;
      else if (live && current.holder !== holder) return null;
      else token = live ? current.token : current.token + 1;
      this.#db.prepare(
        `INSERT INTO leases (name, holder, token, expires_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, token = excluded.token,
           expires_ms = excluded.expires_ms`,
      ).run(name, holder, token, now + ttlMs);
      return { name, holder, token, expiresMs: now + ttlMs };
    });
  }

  #leaseSync(name: string): Lease | null {
    const r = this.#db.prepare("SELECT holder, token, expires_ms FROM leases WHERE name = ?").get(name) as
      | { holder: string; token: number; expires_ms: number }
      | undefined;
    return r ? { name, holder: r.holder, token: Number(r.token), expiresMs: Number(r.expires_ms) } : null;
  }

  #removeSync(key: string): void {
    this.#remove.run(key);
  }

  /** Frames and bytes per tier. */
  #totalsSync(): Record<Tier, TierCounts> {
    const out: Record<Tier, TierCounts> = {
      local: { frames: 0, bytes: 0 },
      archiving: { frames: 0, bytes: 0 },
      archive: { frames: 0, bytes: 0 },
    };
    for (const r of this.#tierTotals.all() as unknown as { tier: Tier; frames: number; bytes: number }[]) {
      out[r.tier] = { frames: Number(r.frames), bytes: Number(r.bytes) };
    }
    return out;
  }

  /** Every row, in key order (tests, reindex comparison). */
  #allSync(): FrameRow[] {
    return (this.#db.prepare(`SELECT ${COLUMNS} FROM frames ORDER BY key`).all() as unknown as RawRow[]).map(
      toRow,
    );
  }

  #closeSync(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  // ---------------------------------------------------------------------------------------------- the contract
  // node:sqlite is synchronous: each method does its work at once and hands back a settled promise, so a
  // transaction inside one method is never interleaved with other work.

  upsert(row: FrameRow): Promise<void> {
    return this.#run("recording a frame", () => this.#upsertSync(row));
  }
  upsertMany(rows: FrameRow[]): Promise<void> {
    return this.#run("recording frames", () => this.#upsertManySync(rows));
  }
  get(key: string): Promise<FrameRow | null> {
    return this.#run("reading a frame", () => this.#getSync(key));
  }
  newest(robotId: string): Promise<FrameRow | null> {
    return this.#run("reading a robot's newest frame", () => this.#newestSync(robotId));
  }
  lastStoredFrom(robotId: string, partition: number): Promise<FrameRow | null> {
    return this.#run(
      "reading a robot's last stored frame",
      () => this.#lastStoredFromSync(robotId, partition),
    );
  }
  keysBetween(from: string, to: string): Promise<string[]> {
    return this.#run("reading keys", () => this.#keysBetweenSync(from, to));
  }
  frameCount(): Promise<number> {
    return this.#run("counting frames", () => this.#frameCountSync());
  }
  all(): Promise<FrameRow[]> {
    return this.#run("reading every frame", () => this.#allSync());
  }
  oldestLocal(limit: number): Promise<FrameRow[]> {
    return this.#run("reading the oldest local frames", () => this.#oldestLocalSync(limit));
  }
  oldestLocalUnpinned(limit: number): Promise<FrameRow[]> {
    return this.#run("reading the oldest local frames", () => this.#oldestLocalUnpinnedSync(limit));
  }
  oldestLocalPinnedLast(limit: number): Promise<FrameRow[]> {
    return this.#run("reading the oldest local frames", () => this.#oldestLocalPinnedLastSync(limit));
  }
  inTier(tier: Tier, limit: number): Promise<FrameRow[]> {
    return this.#run("reading a tier", () => this.#inTierSync(tier, limit));
  }
  setTier(key: string, tier: Tier, nowMs: number, fence?: Fence): Promise<void> {
    return this.#run("moving a frame to another tier", () => this.#setTierSync(key, tier, nowMs, fence));
  }
  framesAfter(afterKey: string, limit: number): Promise<FrameRow[]> {
    return this.#run(
      "reading frames",
      () =>
        (this.#db.prepare(`SELECT ${COLUMNS} FROM frames WHERE key > ? ORDER BY key LIMIT ?`)
          .all(afterKey, limit) as unknown as RawRow[]).map(toRow),
    );
  }
  lastKey(): Promise<string> {
    return this.#run(
      "reading keys",
      () => ((this.#db.prepare("SELECT MAX(key) AS k FROM frames").get() as { k: string | null }).k) ?? "",
    );
  }
  copyRows(table: CopyTable, offset: number, limit: number): Promise<Record<string, unknown>[]> {
    const { columns, order } = COPY_TABLES[table];
    return this.#run(
      `reading ${table}`,
      () =>
        (this.#db.prepare(`SELECT ${columns.join(", ")} FROM ${table} ORDER BY ${order} LIMIT ? OFFSET ?`)
          .all(limit, offset) as Record<string, unknown>[]).map((r) => ({ ...r })),
    );
  }
  pasteRows(table: CopyTable, rows: Record<string, unknown>[]): Promise<void> {
    const { columns } = COPY_TABLES[table];
    return this.#run(`writing ${table}`, () => {
      const insert = this.#db.prepare(
        `INSERT OR IGNORE INTO ${table} (${columns.join(", ")}) VALUES (${
          columns.map(() => "?").join(", ")
        })`,
      );
      this.#transaction(() => {
        for (const row of rows) {
          // PostgreSQL's booleans (boxes.accepted) are 0/1 here.
          insert.run(...columns.map((c) => {
            const v = row[c] ?? null;
            return (typeof v === "boolean" ? Number(v) : v) as string | number | null;
          }));
        }
        // AUTOINCREMENT already continues after the largest id pasted; it must also continue after every box,
        // clip and collection id the journal names (see copy_ids.ts).
        if (table === "changes") {
          const named = journalledIds(rows);
          for (
            const [name, atLeast] of [
              ["boxes", named.boxes],
              ["clips", named.clips],
              ["collections", named.collections],
            ] as const
          ) {
            if (atLeast === 0) continue;
            const bumped = this.#db.prepare("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?")
              .run(atLeast, name);
            if (Number(bumped.changes) === 0) {
              this.#db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)").run(name, atLeast);
            }
          }
        }
      });
    });
  }
  countRows(table: CopyTable): Promise<number> {
    return this.#run(
      `counting ${table}`,
      () => Number((this.#db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n),
    );
  }
  claimLease(name: string, holder: string, ttlMs: number, takeFrom?: string): Promise<Lease | null> {
    return this.#run("taking a lease", () => this.#claimLeaseSync(name, holder, ttlMs, takeFrom));
  }
  releaseLease(name: string, holder: string): Promise<void> {
    return this.#run("giving up a lease", () => {
      this.#db.prepare("UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ?").run(name, holder);
    });
  }
  lease(name: string): Promise<Lease | null> {
    return this.#run("reading a lease", () => this.#leaseSync(name));
  }
  putStatus(name: string, state: Record<string, unknown>, nowMs: number): Promise<void> {
    return this.#run(`recording the status of ${name}`, () => {
      const json = checkStatus(name, state, nowMs);
      this.#db.prepare(
        `INSERT INTO status (name, state, updated_ms) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms`,
      ).run(name, json, nowMs);
    });
  }
  status(name: string): Promise<{ state: Record<string, unknown>; updatedMs: number } | null> {
    return this.#run(`reading the status of ${name}`, () => {
      const r = this.#db.prepare("SELECT state, updated_ms FROM status WHERE name = ?").get(name) as
        | { state: string; updated_ms: number }
        | undefined;
      return r ? { state: JSON.parse(r.state), updatedMs: Number(r.updated_ms) } : null;
    });
  }
  remove(key: string): Promise<void> {
    return this.#run("removing a frame", () => this.#removeSync(key));
  }
  isPinned(key: string): Promise<boolean> {
    return this.#run("reading a frame's labels", () => this.#isPinnedSync(key));
  }
  totals(): Promise<Record<Tier, TierCounts>> {
    return this.#run("counting tiers", () => this.#totalsSync());
  }
  findFrames(
    filter: SearchFilter,
    page: { order: "newest" | "oldest"; limit: number; after?: FramePosition | null },
  ): Promise<FrameRow[]> {
    return this.#run("searching", () => reads.findFrames(this.#db, filter, page));
  }
  countFrames(filter: SearchFilter): Promise<number> {
    return this.#run("counting frames", () => reads.countFrames(this.#db, filter));
  }
  withLabels(frames: FrameRow[]): Promise<SearchHit[]> {
    return this.#run("reading labels", () => reads.withLabels(this.#db, frames));
  }
  async *hashRows(options: { sinceStoredMs?: number; filter?: SearchFilter } = {}): AsyncIterable<HashRow> {
    // In pages by row number: no statement stays open while the consumer of the rows awaits.
    let afterId = 0;
    for (;;) {
      const page = await this.#run(
        "reading hashes",
        () => reads.hashRowsPage(this.#db, { ...options, afterId, limit: 5000 }),
      );
      if (page.length === 0) return;
      yield* page;
      afterId = page[page.length - 1].id;
    }
  }
  idOf(key: string): Promise<number | null> {
    return this.#run("reading a frame", () => reads.idOf(this.#db, key));
  }
  rowsById(ids: number[]): Promise<Map<number, FrameRow>> {
    return this.#run("reading frames", () => reads.rowsById(this.#db, ids));
  }
  robotSummaries(): Promise<RobotSummary[]> {
    return this.#run("summarising robots", () => reads.robotSummaries(this.#db));
  }
  robotSummary(robotId: string): Promise<RobotSummary | null> {
    return this.#run("summarising a robot", () => reads.robotSummary(this.#db, robotId));
  }
  timeline(robotId: string, fromMs: number, toMs: number, bucketMs: number): Promise<TimelineBucket[]> {
    return this.#run("reading a timeline", () => reads.timeline(this.#db, robotId, fromMs, toMs, bucketMs));
  }
  adjacentKeys(
    robotId: string,
    at: FramePosition,
  ): Promise<{ previous: string | null; next: string | null }> {
    return this.#run("reading neighbouring frames", () => reads.adjacentKeys(this.#db, robotId, at));
  }
  labels(options: { now?: () => number; limits?: Partial<LabelLimits> } = {}): LabelStore {
    return new SqliteLabels(this.#db, options);
  }
  identity(): Promise<CatalogIdentity | null> {
    return this.#run("reading what the catalog belongs to", () => this.#identitySync());
  }
  bind(identity: CatalogIdentity): Promise<(keyof CatalogIdentity)[]> {
    return this.#run("recording what the catalog belongs to", () => this.#bindSync(identity));
  }
  ping(): Promise<void> {
    return this.#run("reading", () => this.#pingSync());
  }
  checkpoint(): Promise<string | null> {
    return Promise.resolve(this.#checkpointSync());
  }
  recoverFile(): Promise<{ state: "deleted" | "replaced"; copied: number; rows: number } | null> {
    return this.#run("restoring the catalog file", () => this.#recoverFileSync());
  }
  close(): Promise<void> {
    this.#closeSync();
    return Promise.resolve();
  }

  /** Runs synchronous work as a settled promise; SQLite failures become catalog ServiceErrors naming the file. */
  #run<T>(doing: string, work: () => T): Promise<T> {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(isSqliteError(error) ? catalogError(this.path, doing, error) : error);
    }
  }
}

/** Errors that node:sqlite raised (as opposed to our own bad-input and not-found errors). */
function isSqliteError(error: unknown): boolean {
  return (error as { code?: string })?.code === "ERR_SQLITE_ERROR";
}
