/**
 * The catalog: one row per stored frame, in SQLite (node:sqlite, WAL mode), one file under the data directory.
 *
 * The consumer writes a frame's row after its object is stored and before its offset is committed; eviction
 * moves rows through the tiers; search (later) reads it. Every statement is here, so the rest of the project
 * sees typed rows, not SQL.
 *
 * Tiers: "local" (only in the local store), "archiving" (an archive copy is being made; the local object is
 * untouched), "archive" (the archive copy is verified; the local object may still exist until it is deleted).
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";

export type Tier = "local" | "archiving" | "archive";

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
}

export interface TierCounts {
  frames: number;
  bytes: number;
}

const SCHEMA_VERSION = 1;

/** The catalog file of a config: `catalog.data_dir` (relative to the config file's folder) + catalog.sqlite. */
export function catalogPath(config: { baseDir: string; catalog: { data_dir: string } }): string {
  const dir = config.catalog.data_dir.startsWith("/")
    ? config.catalog.data_dir
    : `${config.baseDir.replace(/\/$/, "")}/${config.catalog.data_dir}`;
  return `${dir.replace(/\/$/, "")}/catalog.sqlite`;
}

const COLUMNS =
  "key, robot_id, ts_ms, seq, size, etag, filter, distance, hash, tier, tier_changed_ms, stored_ms";

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
  };
}

export class Catalog {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #upsert: StatementSync;
  readonly #get: StatementSync;
  readonly #newest: StatementSync;
  readonly #oldest: StatementSync;
  readonly #setTier: StatementSync;
  readonly #remove: StatementSync;
  readonly #tierTotals: StatementSync;
  readonly #inTier: StatementSync;

  /** Opens (creating when missing) the catalog file; `":memory:"` for a throw-away one. */
  constructor(path: string) {
    this.path = path;
    if (path !== ":memory:") {
      mkdirSync(path.slice(0, Math.max(0, path.lastIndexOf("/"))) || ".", { recursive: true });
    }
    try {
      this.#db = new DatabaseSync(path);
    } catch (error) {
      throw new Error(`cannot open the catalog ${path}: ${(error as Error).message}`, { cause: error });
    }
    // WAL lets search read while the consumer writes; NORMAL syncs at checkpoints, which is durable against a
    // process crash (the case that matters here); the frames themselves are in the object store either way.
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
    this.#migrate();
    this.#upsert = this.#db.prepare(
      `INSERT INTO frames (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET robot_id = excluded.robot_id, ts_ms = excluded.ts_ms, seq = excluded.seq,
         size = excluded.size, etag = excluded.etag, filter = excluded.filter, distance = excluded.distance,
         hash = excluded.hash, stored_ms = excluded.stored_ms,
         tier = CASE WHEN frames.tier = 'archive' THEN 'local' ELSE excluded.tier END,
         tier_changed_ms = excluded.tier_changed_ms`,
    );
    this.#get = this.#db.prepare(`SELECT ${COLUMNS} FROM frames WHERE key = ?`);
    this.#newest = this.#db.prepare(
      `SELECT ${COLUMNS} FROM frames WHERE robot_id = ? ORDER BY ts_ms DESC, seq DESC LIMIT 1`,
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
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
    }
  }

  /**
   * Records a stored frame (idempotent: a replayed store rewrites the same row). A frame stored again locally
   * after it was archived is local again.
   */
  upsert(row: FrameRow): void {
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
    );
  }

  /** Records many rows in one transaction (reindex). */
  upsertMany(rows: FrameRow[]): void {
    this.#db.exec("BEGIN");
    try {
      for (const row of rows) this.upsert(row);
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  get(key: string): FrameRow | null {
    const r = this.#get.get(key) as RawRow | undefined;
    return r ? toRow(r) : null;
  }

  /** A robot's newest frame in any tier (by capture time, then sequence). */
  newest(robotId: string): FrameRow | null {
    const r = this.#newest.get(robotId) as RawRow | undefined;
    return r ? toRow(r) : null;
  }

  /** The globally oldest frames still only in the local tier. */
  oldestLocal(limit: number): FrameRow[] {
    return (this.#oldest.all(limit) as unknown as RawRow[]).map(toRow);
  }

  /** Frames in a tier, oldest first. */
  inTier(tier: Tier, limit: number): FrameRow[] {
    return (this.#inTier.all(tier, limit) as unknown as RawRow[]).map(toRow);
  }

  setTier(key: string, tier: Tier, nowMs: number): void {
    this.#setTier.run(tier, nowMs, key);
  }

  remove(key: string): void {
    this.#remove.run(key);
  }

  /** Frames and bytes per tier. */
  totals(): Record<Tier, TierCounts> {
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
  all(): FrameRow[] {
    return (this.#db.prepare(`SELECT ${COLUMNS} FROM frames ORDER BY key`).all() as unknown as RawRow[]).map(
      toRow,
    );
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
