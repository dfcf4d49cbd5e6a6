/**
 * The PostgreSQL connection of the catalog: a pool (node-postgres), the catalog's schema with its versioned
 * migrations, transactions, and PostgreSQL's errors as catalog ServiceErrors that name the server and the fix.
 * src/catalog/postgres.ts (frames, tiers, leases), postgres_search.ts and postgres_labels.ts build on it.
 *
 * The client is npm `pg` (node-postgres), chosen by measurement against npm `postgres` (`deno task bench
 * pg-clients`): on this project's row shape both do 4,000-5,000 single upserts/s and ~10,000/s with 8 in flight;
 * `pg` was faster at batched inserts (90,000 vs 69,000-78,000 rows/s, what reindex and migrate do) and used less
 * memory (80 vs 125-130 MB), postgres.js at point reads (16,000-18,000 vs 9,000-12,000/s, far above what a
 * request needs). `pg`'s pool hands out a connection for a transaction explicitly, which is what the label
 * store's multi-statement changes need.
 */
// @ts-types="@types/pg"
import pg from "pg";
import { messageOf, ServiceError } from "../errors.ts";
import { redactUrl, SCHEMA_NAME } from "./url.ts";

/** What a statement runs on: the pool (one statement, autocommit) or a connection inside a transaction. */
export interface Queryable {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/** Where the catalog is, parsed from `catalog.url`. */
export interface PostgresTarget {
  /** The URL as given (with its password): what the pool connects with. */
  url: string;
  /** The URL without the password, for messages. */
  where: string;
  /** The schema the catalog's tables live in (`?schema=NAME`, default `public`). */
  schema: string;
}

/** Parses a `postgres://` / `postgresql://` URL; `?schema=NAME` puts the tables in that schema (made when missing). */
export function postgresTarget(url: string): PostgresTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(
      `catalog.url ${
        JSON.stringify(redactUrl(url))
      } is not a URL: write postgres://USER:PASSWORD@HOST:PORT/DATABASE`,
    );
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new RangeError(`catalog.url ${JSON.stringify(redactUrl(url))} is not a postgres:// URL`);
  }
  const schema = u.searchParams.get("schema") ?? "public";
  if (!SCHEMA_NAME.test(schema)) {
    throw new RangeError(
      `catalog.url schema ${
        JSON.stringify(schema)
      } is not a plain name: use lower-case letters, digits and _`,
    );
  }
  u.searchParams.delete("schema");
  const where = redactUrl(url);
  return { url: u.toString(), where, schema };
}

/** SQLSTATE codes that clear by themselves: connection loss, shutdown, too many clients, conflicts. */
const RETRIABLE_STATES = new Set([
  "40001",
  "40P01",
  "53300",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08003",
  "08006",
]);

/** A PostgreSQL failure as a ServiceError("catalog") naming the server, what was being done and the fix. */
export function pgError(where: string, doing: string, error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  const state = (error as { code?: string })?.code ?? "";
  let fix = "check the PostgreSQL server and catalog.url";
  let retriable = RETRIABLE_STATES.has(state) || /^(ECONN|ETIMEDOUT|EPIPE|EHOSTUNREACH)/.test(state) ||
    /Connection terminated|connect ECONNREFUSED|timeout/i.test(messageOf(error));
  if (state === "28P01" || state === "28000") {
    fix = "the user or password in catalog.url (env FRAME_BUCKET_CATALOG_URL) is wrong";
    retriable = false;
  } else if (state === "3D000") {
    fix = "create the database (createdb), or name an existing one in catalog.url";
    retriable = false;
  } else if (state === "42501") {
    fix = "grant the catalog's user the rights it needs on its schema (CREATE, USAGE), or use the owner";
    retriable = false;
  } else if (state === "53100") {
    fix = "free disk space on the PostgreSQL server";
    retriable = true;
  } else if (retriable) {
    fix = "is the PostgreSQL server running and reachable? frame-bucket retries by itself";
  }
  return new ServiceError(
    "catalog",
    `catalog ${where}: ${doing} failed (${messageOf(error)}${state ? `, SQLSTATE ${state}` : ""}): ${fix}`,
    { retriable, cause: error },
  );
}

/**
 * The catalog's schema, one entry per version; a database at version N gets entries N+1.. in one transaction
 * each, under an advisory lock so processes starting together migrate once. Keys, robot ids and label names use
 * the "C" collation: their order is byte order whatever the database's locale, as in SQLite and in S3 listings
 * (reconciliation walks both side by side).
 */
const MIGRATIONS: string[] = [
  // 1: frames, labels, clips, the journal, what the catalog belongs to, and leases (one evictor at a time).
  `CREATE TABLE frames (
     id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
     key text COLLATE "C" PRIMARY KEY,
     robot_id text COLLATE "C" NOT NULL,
     ts_ms bigint NOT NULL,
     seq bigint NOT NULL,
     size bigint NOT NULL,
     etag text,
     filter text NOT NULL,
     distance double precision,
     hash bytea,
     tier text NOT NULL CHECK (tier IN ('local', 'archiving', 'archive')),
     tier_changed_ms bigint NOT NULL,
     stored_ms bigint NOT NULL,
     kafka_partition integer,
     kafka_offset bigint
   );
   CREATE INDEX frames_tier_time ON frames (tier, ts_ms, seq);
   CREATE INDEX frames_robot_time ON frames (robot_id, ts_ms, seq);
   CREATE INDEX frames_time ON frames (ts_ms, seq, key);
   CREATE INDEX frames_stored ON frames (stored_ms);
   CREATE INDEX frames_robot_offset ON frames (robot_id, kafka_partition, kafka_offset);
   CREATE TABLE labels (
     id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     name text COLLATE "C" NOT NULL UNIQUE
   );
   CREATE TABLE frame_labels (
     key text COLLATE "C" NOT NULL,
     label_id bigint NOT NULL,
     created_ms bigint NOT NULL,
     author text,
     PRIMARY KEY (key, label_id)
   );
   CREATE INDEX frame_labels_label ON frame_labels (label_id, key);
   CREATE TABLE clips (
     id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     robot_id text COLLATE "C" NOT NULL,
     from_ms bigint NOT NULL,
     to_ms bigint NOT NULL CHECK (to_ms >= from_ms),
     name text NOT NULL,
     note text NOT NULL DEFAULT '',
     created_ms bigint NOT NULL,
     author text
   );
   CREATE INDEX clips_robot_time ON clips (robot_id, from_ms, to_ms);
   CREATE TABLE clip_labels (
     clip_id bigint NOT NULL,
     label_id bigint NOT NULL,
     PRIMARY KEY (clip_id, label_id)
   );
   CREATE INDEX clip_labels_label ON clip_labels (label_id, clip_id);
   CREATE TABLE changes (
     id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     at_ms bigint NOT NULL,
     author text,
     action text NOT NULL,
     target text COLLATE "C" NOT NULL,
     detail json NOT NULL
   );
   CREATE INDEX changes_target ON changes (target, id);
   CREATE FUNCTION changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION 'the changes journal is append-only'; END $$;
   CREATE TRIGGER changes_no_change BEFORE UPDATE OR DELETE ON changes
     FOR EACH ROW EXECUTE FUNCTION changes_append_only();
   CREATE TABLE meta (
     name text PRIMARY KEY,
     value text NOT NULL
   );
   CREATE TABLE leases (
     name text PRIMARY KEY,
     holder text NOT NULL,
     token bigint NOT NULL,
     expires_at timestamptz NOT NULL
   );`,
  // 2: boxes (a class and a rectangle on a frame, kept in the unit given, with the frame's size), review status
  // set by people, the label set's colours and hotkeys; and the journal looked up by the entry an entry undid.
  // Boxes and reviews refer to frames by key without a foreign key, like frame_labels: a frame row removed and
  // recorded again (reindex) finds them again.
  `CREATE TABLE boxes (
     id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     key text COLLATE "C" NOT NULL,
     label_id bigint NOT NULL,
     x double precision NOT NULL,
     y double precision NOT NULL,
     w double precision NOT NULL,
     h double precision NOT NULL,
     unit text NOT NULL CHECK (unit IN ('px', 'norm')),
     image_w integer NOT NULL CHECK (image_w > 0),
     image_h integer NOT NULL CHECK (image_h > 0),
     confidence double precision CHECK (confidence >= 0 AND confidence <= 1),
     source text NOT NULL,
     accepted boolean NOT NULL,
     author text,
     created_ms bigint NOT NULL,
     updated_ms bigint NOT NULL
   );
   CREATE INDEX boxes_key ON boxes (key, label_id);
   CREATE INDEX boxes_label ON boxes (label_id, key);
   CREATE TABLE reviews (
     key text COLLATE "C" PRIMARY KEY,
     status text NOT NULL CHECK (status IN ('reviewed', 'rejected')),
     author text,
     at_ms bigint NOT NULL
   );
   CREATE INDEX reviews_status ON reviews (status, key);
   CREATE TABLE label_set (
     label_id bigint PRIMARY KEY,
     color text,
     hotkey integer UNIQUE CHECK (hotkey BETWEEN 1 AND 9)
   );
   CREATE INDEX changes_undo_of ON changes ((detail->>'undoOf')) WHERE detail->>'undoOf' IS NOT NULL;`,
  // 3: collections (named, ordered groups of clips: each clip once per collection, its place in `position`,
  // looked up by clip too, since deleting a clip takes it out of its collections) and `status` (the last state a
  // background job such as the evictor reported, shown by every server on the catalog). No foreign keys, like the
  // other label-side tables: a copy pastes them table by table.
  `CREATE TABLE collections (
     id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     name text COLLATE "C" NOT NULL UNIQUE,
     note text NOT NULL DEFAULT '',
     created_ms bigint NOT NULL,
     author text
   );
   CREATE TABLE collection_clips (
     collection_id bigint NOT NULL,
     clip_id bigint NOT NULL,
     position integer NOT NULL,
     PRIMARY KEY (collection_id, clip_id)
   );
   CREATE INDEX collection_clips_clip ON collection_clips (clip_id, collection_id);
   CREATE TABLE status (
     name text PRIMARY KEY,
     state json NOT NULL,
     updated_ms bigint NOT NULL
   );`,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** Arbitrary constant: the advisory lock key that serialises migrations of one schema. */
const MIGRATION_LOCK = 0x66625f6d;

/** PostgreSQL's bigint (int8) as a JS number: every value the catalog keeps (ms, offsets, ids) is below 2^53. */
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20 && format !== "binary") return (v: string) => Number(v);
    // deno-lint-ignore no-explicit-any
    return (pg.types.getTypeParser as any)(oid, format);
  },
};

/** The pool and the schema: what every PostgreSQL catalog module works through. */
export class PgDb {
  readonly target: PostgresTarget;
  readonly pool: pg.Pool;
  #ready: Promise<void> | null = null;
  #closed = false;

  constructor(target: PostgresTarget, options: { poolSize?: number } = {}) {
    this.target = target;
    this.pool = new pg.Pool({
      connectionString: target.url,
      max: options.poolSize ?? 8,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      // Every connection works in the catalog's schema.
      options: `-c search_path=${target.schema}`,
      types,
      application_name: "frame-bucket",
    });
    // An idle connection the server drops (restart, network) must not crash the process: the pool makes a new
    // one for the next query, and that query's error is what the caller sees.
    this.pool.on("error", () => {});
  }

  get where(): string {
    return this.target.where;
  }

  /** Creates the schema or brings it to the current version (once per process; later calls wait for it). */
  ready(): Promise<void> {
    this.#ready ??= this.#migrate().catch((error) => {
      this.#ready = null;
      throw pgError(this.where, "preparing the schema", error);
    });
    return this.#ready;
  }

  async #migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.target.schema}`).catch(async (error) => {
        // A user without CREATE on the database may still own an existing schema.
        const r = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [this.target.schema]);
        if (r.rowCount === 0) throw error;
      });
      for (;;) {
        await client.query("BEGIN");
        try {
          await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [
            MIGRATION_LOCK,
            this.target.schema,
          ]);
          await client.query(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, applied_ms bigint NOT NULL)",
          );
          const r = await client.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version");
          const version = Number(r.rows[0].v);
          if (version > MIGRATIONS.length) {
            throw new ServiceError(
              "catalog",
              `catalog ${this.where} has schema version ${version}, newer than this frame-bucket ` +
                `(${MIGRATIONS.length}): upgrade frame-bucket`,
              { retriable: false },
            );
          }
          if (version === MIGRATIONS.length) {
            await client.query("COMMIT");
            return;
          }
          await client.query(MIGRATIONS[version]);
          await client.query("INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)", [
            version + 1,
            Date.now(),
          ]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          throw error;
        }
      }
    } finally {
      client.release();
    }
  }

  /** One statement on the pool (autocommit); failures become catalog ServiceErrors saying what was being done. */
  async query(
    doing: string,
    text: string,
    values: unknown[] = [],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount: number }> {
    await this.ready();
    try {
      const r = await this.pool.query(text, values);
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    } catch (error) {
      throw pgError(this.where, doing, error);
    }
  }

  /**
   * Runs `work` in one transaction on one connection (rolled back when it throws). A serialization failure or a
   * deadlock is tried again (up to 5 times): PostgreSQL asks for exactly that. Our own errors (bad input, not
   * found) pass through as they are.
   */
  async tx<T>(doing: string, work: (q: Queryable) => Promise<T>, isolation = "READ COMMITTED"): Promise<T> {
    await this.ready();
    for (let attempt = 1;; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        throw pgError(this.where, doing, error);
      }
      let broken = false;
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
        const q: Queryable = {
          query: async (text, values) => {
            const r = await client.query(text, values);
            return { rows: r.rows, rowCount: r.rowCount ?? 0 };
          },
        };
        const out = await work(q);
        await client.query("COMMIT");
        return out;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => (broken = true));
        const state = (error as { code?: string })?.code;
        if ((state === "40001" || state === "40P01") && attempt < 5) continue;
        if (isPgError(error)) throw pgError(this.where, doing, error);
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

/** Errors from the server or the connection (as opposed to the project's own bad-input and not-found errors). */
export function isPgError(error: unknown): boolean {
  if (error instanceof ServiceError) return false;
  const e = error as { code?: unknown; severity?: unknown } | null;
  return typeof e?.code === "string" && (e.severity !== undefined || /^[A-Z]/.test(e.code)) ||
    /Connection terminated|ECONNREFUSED|timeout exceeded/i.test(messageOf(error));
}
