/**
 * The PostgreSQL backend of the catalog contract (src/catalog/catalog.ts): the shared catalog of a fleet, where
 * any number of consumers, API servers and evictor candidates on any number of hosts work on one set of rows.
 * `catalog.url = "postgres://USER:PASSWORD@HOST:PORT/DATABASE[?schema=NAME]"` selects it.
 *
 * This module keeps frames, tiers, identity and leases; postgres_search.ts the reads for search and the robot
 * views; postgres_labels.ts labels, clips and the journal; pg_db.ts the pool, the schema and its migrations.
 *
 * What differs from SQLite, on purpose:
 * - Row numbers (the similar-frame index's ids) come from an identity column, so they never change (no VACUUM
 *   renumbering).
 * - Leases use the server's clock (`clock_timestamp()`), so hosts whose clocks disagree still agree on who leads.
 * - Nothing of the file care (fileState, recoverFile, checkpoint): the server owns durability.
 */
import { journalledIds } from "./copy_ids.ts";
import {
  type Catalog,
  type CatalogIdentity,
  COPY_TABLES,
  type CopyTable,
  type Fence,
  type FramePosition,
  type FrameRow,
  type HashRow,
  JSON_COLUMNS,
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
import { PgDb, postgresTarget, type Queryable } from "./pg_db.ts";
import { PostgresLabels } from "./postgres_labels.ts";
import { checkStatus } from "./rules.ts";
import * as reads from "./postgres_search.ts";
import { FRAME_COLUMNS, Params, pgRow } from "./postgres_search.ts";

const INSERT_COLUMNS =
  "key, robot_id, ts_ms, seq, size, etag, filter, distance, hash, tier, tier_changed_ms, " +
  "stored_ms, kafka_partition, kafka_offset";

/** What an upsert does to a row that exists: the same rule as SQLite's (an archived frame stored again is local). */
const ON_CONFLICT = `ON CONFLICT (key) DO UPDATE SET robot_id = excluded.robot_id, ts_ms = excluded.ts_ms,
  seq = excluded.seq, size = excluded.size, etag = excluded.etag, filter = excluded.filter,
  distance = excluded.distance, hash = excluded.hash, stored_ms = excluded.stored_ms,
  kafka_partition = COALESCE(excluded.kafka_partition, frames.kafka_partition),
  kafka_offset = COALESCE(excluded.kafka_offset, frames.kafka_offset),
  tier = CASE WHEN frames.tier = 'archive' THEN 'local' ELSE excluded.tier END,
  tier_changed_ms = excluded.tier_changed_ms`;

/** Rows per INSERT of `upsertMany` (14 parameters each, far below PostgreSQL's 65,535). */
const BATCH = 1000;

function values(row: FrameRow): unknown[] {
  return [
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
  ];
}

const SELECT = `SELECT ${FRAME_COLUMNS} FROM frames f`;

/**
 * SQL condition on `frames f`: the frame has a label of its own or a box (its class is a label of the frame), or
 * lies in a labelled clip of its robot.
 */
const PINNED = `(EXISTS (SELECT 1 FROM frame_labels fl WHERE fl.key = f.key)
  OR EXISTS (SELECT 1 FROM boxes b WHERE b.key = f.key)
  OR EXISTS (SELECT 1 FROM clips c WHERE c.robot_id = f.robot_id AND c.from_ms <= f.ts_ms AND c.to_ms >= f.ts_ms
    AND EXISTS (SELECT 1 FROM clip_labels cl WHERE cl.clip_id = c.id)))`;

export class PostgresCatalog implements Catalog {
  readonly #db: PgDb;
  /** The server URL without its password. */
  readonly where: string;

  /** Connects lazily: the schema is made or migrated by the first call (or `open`). */
  constructor(url: string, options: { poolSize?: number } = {}) {
    this.#db = new PgDb(postgresTarget(url), options);
    this.where = this.#db.where;
  }

  /** A catalog whose schema is ready (a connection or migration failure is thrown here, before any frame flows). */
  static async open(url: string, options: { poolSize?: number } = {}): Promise<PostgresCatalog> {
    const catalog = new PostgresCatalog(url, options);
    try {
      await catalog.#db.ready();
    } catch (error) {
      await catalog.close();
      throw error;
    }
    return catalog;
  }

  #rows(doing: string, text: string, params: unknown[] = []): Promise<FrameRow[]> {
    return this.#db.query(doing, text, params).then((r) => r.rows.map(pgRow));
  }

  async #one(doing: string, text: string, params: unknown[] = []): Promise<FrameRow | null> {
    return (await this.#rows(doing, text, params))[0] ?? null;
  }

  /** Reads through one pooled statement at a time (the read modules take a Queryable). */
  async #read<T>(doing: string, work: (q: Queryable) => Promise<T>): Promise<T> {
    const q: Queryable = {
      query: (text, params) => this.#db.query(doing, text, params ?? []),
    };
    return await work(q);
  }

  async upsert(row: FrameRow): Promise<void> {
    await this.#db.query(
      "recording a frame",
      `INSERT INTO frames (${INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
       ${ON_CONFLICT}`,
      values(row),
    );
  }

  async upsertMany(rows: FrameRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#db.tx("recording frames", async (q) => {
      for (let i = 0; i < rows.length; i += BATCH) {
        // A key twice in one INSERT ... ON CONFLICT is refused by PostgreSQL: the last row of a key wins, as
        // consecutive upserts would.
        const part = [...new Map(rows.slice(i, i + BATCH).map((r) => [r.key, r])).values()];
        const p = new Params();
        const tuples = part.map((r) => `(${p.list(values(r))})`).join(", ");
        await q.query(`INSERT INTO frames (${INSERT_COLUMNS}) VALUES ${tuples} ${ON_CONFLICT}`, p.values);
      }
    });
  }

  get(key: string): Promise<FrameRow | null> {
    return this.#one("reading a frame", `${SELECT} WHERE f.key = $1`, [key]);
  }

  newest(robotId: string): Promise<FrameRow | null> {
    return this.#one(
      "reading a robot's newest frame",
      `${SELECT} WHERE f.robot_id = $1 ORDER BY f.ts_ms DESC, f.seq DESC LIMIT 1`,
      [robotId],
    );
  }

  lastStoredFrom(robotId: string, partition: number): Promise<FrameRow | null> {
    return this.#one(
      "reading a robot's last stored frame",
      `${SELECT} WHERE f.robot_id = $1 AND f.kafka_partition = $2 ORDER BY f.kafka_offset DESC NULLS LAST LIMIT 1`,
      [robotId, partition],
    );
  }

  async keysBetween(from: string, to: string): Promise<string[]> {
    const r = await this.#db.query(
      "reading keys",
      "SELECT key FROM frames WHERE key >= $1 AND key <= $2 ORDER BY key",
      [from, to],
    );
    return r.rows.map((row) => row.key as string);
  }

  async frameCount(): Promise<number> {
    return Number((await this.#db.query("counting frames", "SELECT COUNT(*) AS n FROM frames")).rows[0].n);
  }

  all(): Promise<FrameRow[]> {
    return this.#rows("reading every frame", `${SELECT} ORDER BY f.key`);
  }

  oldestLocal(limit: number): Promise<FrameRow[]> {
    return this.#rows(
      "reading the oldest local frames",
      `${SELECT} WHERE f.tier = 'local' ORDER BY f.ts_ms, f.seq LIMIT $1`,
      [limit],
    );
  }

  oldestLocalUnpinned(limit: number): Promise<FrameRow[]> {
    return this.#rows(
      "reading the oldest local frames",
      `${SELECT} WHERE f.tier = 'local' AND NOT ${PINNED} ORDER BY f.ts_ms, f.seq LIMIT $1`,
      [limit],
    );
  }

  async oldestLocalPinnedLast(limit: number): Promise<FrameRow[]> {
    const rows = await this.oldestLocalUnpinned(limit);
    if (rows.length >= limit) return rows;
    const pinned = await this.#rows(
      "reading the oldest local frames",
      `${SELECT} WHERE f.tier = 'local' AND ${PINNED} ORDER BY f.ts_ms, f.seq LIMIT $1`,
      [limit - rows.length],
    );
    return rows.concat(pinned);
  }

  inTier(tier: Tier, limit: number): Promise<FrameRow[]> {
    return this.#rows("reading a tier", `${SELECT} WHERE f.tier = $1 ORDER BY f.ts_ms, f.seq LIMIT $2`, [
      tier,
      limit,
    ]);
  }

  async setTier(key: string, tier: Tier, nowMs: number, fence?: Fence): Promise<void> {
    if (!fence) {
      await this.#db.query(
        "moving a frame to another tier",
        "UPDATE frames SET tier = $1, tier_changed_ms = $2 WHERE key = $3",
        [tier, nowMs, key],
      );
      return;
    }
    // The lease row is read FOR SHARE: a new holder taking the lease waits for this change, and this change
    // waits for a take-over in progress, so a change is never made under a token that has just lost.
    const r = await this.#db.query(
      "moving a frame to another tier",
      `WITH held AS (SELECT 1 FROM leases WHERE name = $4 AND token = $5 AND expires_at > clock_timestamp()
         FOR SHARE)
       UPDATE frames SET tier = $1, tier_changed_ms = $2 WHERE key = $3 AND EXISTS (SELECT 1 FROM held)`,
      [tier, nowMs, key, fence.lease, fence.token],
    );
    if (r.rowCount === 0 && await this.get(key)) throw new LeaseLostError(fence.lease, fence.token);
  }

  async remove(key: string): Promise<void> {
    await this.#db.query("removing a frame", "DELETE FROM frames WHERE key = $1", [key]);
  }

  async isPinned(key: string): Promise<boolean> {
    const r = await this.#db.query(
      "reading a frame's labels",
      `SELECT 1 FROM frames f WHERE f.key = $1 AND ${PINNED}`,
      [key],
    );
    return r.rows.length > 0;
  }

  async totals(): Promise<Record<Tier, TierCounts>> {
    const out: Record<Tier, TierCounts> = {
      local: { frames: 0, bytes: 0 },
      archiving: { frames: 0, bytes: 0 },
      archive: { frames: 0, bytes: 0 },
    };
    const r = await this.#db.query(
      "counting tiers",
      "SELECT tier, COUNT(*) AS frames, COALESCE(SUM(size), 0) AS bytes FROM frames GROUP BY tier",
    );
    for (const row of r.rows) {
      out[row.tier as Tier] = { frames: Number(row.frames), bytes: Number(row.bytes) };
    }
    return out;
  }

  findFrames(
    filter: SearchFilter,
    page: { order: "newest" | "oldest"; limit: number; after?: FramePosition | null },
  ): Promise<FrameRow[]> {
    return this.#read("searching", (q) => reads.findFrames(q, filter, page));
  }

  countFrames(filter: SearchFilter): Promise<number> {
    return this.#read("counting frames", (q) => reads.countFrames(q, filter));
  }

  withLabels(frames: FrameRow[]): Promise<SearchHit[]> {
    return this.#read("reading labels", (q) => reads.withLabels(q, frames));
  }

  async *hashRows(options: { sinceStoredMs?: number; filter?: SearchFilter } = {}): AsyncIterable<HashRow> {
    let afterId = 0;
    for (;;) {
      const page = await this.#read(
        "reading hashes",
        (q) => reads.hashRowsPage(q, { ...options, afterId, limit: 5000 }),
      );
      if (page.length === 0) return;
      yield* page;
      afterId = page[page.length - 1].id;
    }
  }

  async idOf(key: string): Promise<number | null> {
    const r = await this.#db.query("reading a frame", "SELECT id FROM frames WHERE key = $1", [key]);
    return r.rows.length ? Number(r.rows[0].id) : null;
  }

  rowsById(ids: number[]): Promise<Map<number, FrameRow>> {
    return this.#read("reading frames", (q) => reads.rowsById(q, ids));
  }

  robotSummaries(): Promise<RobotSummary[]> {
    return this.#read("summarising robots", (q) => reads.robotSummaries(q));
  }

  robotSummary(robotId: string): Promise<RobotSummary | null> {
    return this.#read("summarising a robot", (q) => reads.robotSummary(q, robotId));
  }

  timeline(robotId: string, fromMs: number, toMs: number, bucketMs: number): Promise<TimelineBucket[]> {
    return this.#read("reading a timeline", (q) => reads.timeline(q, robotId, fromMs, toMs, bucketMs));
  }

  adjacentKeys(
    robotId: string,
    at: FramePosition,
  ): Promise<{ previous: string | null; next: string | null }> {
    return this.#read("reading neighbouring frames", (q) => reads.adjacentKeys(q, robotId, at));
  }

  labels(options: { now?: () => number; limits?: Partial<LabelLimits> } = {}): LabelStore {
    return new PostgresLabels(this.#db, options);
  }

  framesAfter(afterKey: string, limit: number): Promise<FrameRow[]> {
    return this.#rows("reading frames", `${SELECT} WHERE f.key > $1 ORDER BY f.key LIMIT $2`, [
      afterKey,
      limit,
    ]);
  }

  async lastKey(): Promise<string> {
    const r = await this.#db.query("reading keys", "SELECT MAX(key) AS k FROM frames");
    return (r.rows[0].k as string | null) ?? "";
  }

  async copyRows(table: CopyTable, offset: number, limit: number): Promise<Record<string, unknown>[]> {
    const { columns, order } = COPY_TABLES[table];
    // Raw rows as SQLite keeps them, so a copy goes either way: the journal's detail and a status's state as
    // JSON text, a box's `accepted` as 0/1.
    const list = columns.map((c: string) =>
      JSON_COLUMNS.has(c) ? `${c}::text AS ${c}` : c === "accepted" ? "accepted::int AS accepted" : c
    ).join(", ");
    const r = await this.#db.query(
      `reading ${table}`,
      `SELECT ${list} FROM ${table} ORDER BY ${order} LIMIT $1 OFFSET $2`,
      [limit, offset],
    );
    return r.rows;
  }

  async pasteRows(table: CopyTable, rows: Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    const { columns } = COPY_TABLES[table];
    await this.#db.tx(`writing ${table}`, async (q) => {
      for (let i = 0; i < rows.length; i += BATCH) {
        const p = new Params();
        const tuples = rows.slice(i, i + BATCH).map((row) =>
          `(${
            columns.map((c) => `${p.add(row[c] ?? null)}${JSON_COLUMNS.has(c) ? "::json" : ""}`).join(", ")
          })`
        ).join(", ");
        await q.query(
          `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples} ON CONFLICT DO NOTHING`,
          p.values,
        );
      }
      // Rows written with their ids: the identity sequences continue after the largest, and after every box,
      // clip and collection id the journal names. A box or clip deleted at the top of the source's range is gone from its table
      // but not from the journal, and undo acts on journalled ids: a new box given such an id would be taken
      // for the old one (undoing the old box.add would delete it).
      const raise = async (name: CopyTable, atLeast: number) =>
        await q.query(
          `SELECT setval(s, GREATEST(COALESCE(pg_sequence_last_value(s::regclass), 0),
             (SELECT COALESCE(MAX(id), 0) FROM ${name}), $1::bigint, 1))
           FROM pg_get_serial_sequence('${name}', 'id') AS s`,
          [atLeast],
        );
      if (columns[0] === "id") await raise(table, 0);
      if (table === "changes") {
        const named = journalledIds(rows);
        await raise("boxes", named.boxes);
        await raise("clips", named.clips);
        await raise("collections", named.collections);
      }
    });
  }

  async countRows(table: CopyTable): Promise<number> {
    return Number(
      (await this.#db.query(`counting ${table}`, `SELECT COUNT(*) AS n FROM ${table}`)).rows[0].n,
    );
  }

  async claimLease(name: string, holder: string, ttlMs: number, takeFrom?: string): Promise<Lease | null> {
    return await this.#db.tx("taking a lease", async (q) => {
      // The row lock makes concurrent claims take turns; a first claim races on the primary key instead.
      await q.query(
        `INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, '', 0, '-infinity')
         ON CONFLICT (name) DO NOTHING`,
        [name],
      );
      const r = await q.query(
        `SELECT holder, token, expires_at > clock_timestamp() AS live FROM leases WHERE name = $1 FOR UPDATE`,
        [name],
      );
      const current = r.rows[0];
      const live = current.live && current.holder !== takeFrom;
      if (live && current.holder !== holder) return null;
      const token = live ? Number(current.token) : Number(current.token) + 1;
      const w = await q.query(
        `UPDATE leases SET holder = $2, token = $3,
           expires_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
         WHERE name = $1 RETURNING (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms`,
        [name, holder, token, ttlMs],
      );
      return { name, holder, token, expiresMs: Number(w.rows[0].expires_ms) };
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#db.query(
      "giving up a lease",
      "UPDATE leases SET expires_at = '-infinity' WHERE name = $1 AND holder = $2",
      [name, holder],
    );
  }

  async lease(name: string): Promise<Lease | null> {
    const r = await this.#db.query(
      "reading a lease",
      `SELECT holder, token, CASE WHEN expires_at = '-infinity' THEN 0
         ELSE (extract(epoch FROM expires_at) * 1000)::bigint END AS expires_ms
       FROM leases WHERE name = $1 AND token > 0`,
      [name],
    );
    const row = r.rows[0];
    return row
      ? { name, holder: row.holder as string, token: Number(row.token), expiresMs: Number(row.expires_ms) }
      : null;
  }

  async putStatus(name: string, state: Record<string, unknown>, nowMs: number): Promise<void> {
    const json = checkStatus(name, state, nowMs);
    await this.#db.query(
      `recording the status of ${name}`,
      `INSERT INTO status (name, state, updated_ms) VALUES ($1, $2::json, $3)
       ON CONFLICT (name) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms`,
      [name, json, nowMs],
    );
  }

  async status(name: string): Promise<{ state: Record<string, unknown>; updatedMs: number } | null> {
    if (typeof name !== "string" || name.includes("\0")) return null;
    const r = await this.#db.query(
      `reading the status of ${name}`,
      "SELECT state, updated_ms FROM status WHERE name = $1",
      [name],
    );
    const row = r.rows[0];
    return row ? { state: row.state as Record<string, unknown>, updatedMs: Number(row.updated_ms) } : null;
  }

  async identity(): Promise<CatalogIdentity | null> {
    const r = await this.#db.query("reading what the catalog belongs to", "SELECT name, value FROM meta");
    const m = new Map(r.rows.map((row) => [row.name as string, row.value as string]));
    if (!m.has("topic")) return null;
    return {
      topic: m.get("topic") ?? "",
      endpoint: m.get("endpoint") ?? "",
      bucket: m.get("bucket") ?? "",
      prefix: m.get("prefix") ?? "",
    };
  }

  async bind(identity: CatalogIdentity): Promise<(keyof CatalogIdentity)[]> {
    // Inserted when absent (the first consumer wins a race), then compared with what is there.
    await this.#db.tx("recording what the catalog belongs to", async (q) => {
      for (const [name, value] of Object.entries(identity)) {
        await q.query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [
          name,
          value,
        ]);
      }
    });
    const known = (await this.identity())!;
    return (Object.keys(identity) as (keyof CatalogIdentity)[]).filter((k) => known[k] !== identity[k]);
  }

  async ping(): Promise<void> {
    await this.#db.query("reading", "SELECT COUNT(*) FROM meta");
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}
