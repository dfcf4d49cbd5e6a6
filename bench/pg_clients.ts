/**
 * `deno task bench pg-clients [--url URL] [--rows N] [--reads N]`: the two PostgreSQL clients for Deno on the
 * catalog's row shape, the measurement behind choosing npm `pg` (node-postgres) for src/catalog/pg_db.ts.
 *
 * Both clients get the same table (a text key, robot, capture time, sequence, size and a 32-byte hash, the
 * frames table's heart) in a fresh schema of their own, dropped at the end, and the same work, each with a pool of
 * 4 connections:
 *  - single:       N upserts (`INSERT ... ON CONFLICT (key) DO UPDATE`) one after the other, as the consumer;
 *  - batched:      the N rows as 500-row multi-row INSERTs;
 *  - concurrent8:  the N rows as single inserts, 8 in flight (pg queues them on its pool; postgres.js pipelines);
 *  - point_reads:  reads of single rows by key.
 * `pg` runs prepared (named) statements for the single ones; postgres.js prepares by default. One JSON line per
 * client, e.g. {"bench":"pg-clients","client":"pg@8.23.1","rows":5000,"single_per_s":..,"batched_per_s":..,
 * "concurrent8_per_s":..,"point_reads_per_s":..,"rss_mb":..}. The clients run in turn, in the order given by
 * `--order` (default pg first); rss_mb is the whole process's after that client, so the second includes the first's
 * leftovers. npm `postgres` is imported here only (inline specifier), so the project does not depend on it.
 */
import { parseArgs } from "node:util";
// @ts-types="@types/pg"
import pg from "pg";
// Inline on purpose: only this comparison uses npm `postgres`; the project itself must not depend on it.
// deno-lint-ignore no-import-prefix
import postgres from "npm:postgres@3.4.9";
import { dropSchema, freshSchema, postgresServer } from "./catalog.ts";

export const USAGE =
  `usage: deno task bench pg-clients [--url URL] [--rows N] [--reads N] [--order pg,postgres]

Compares npm pg@8.23.1 and npm postgres@3.4.9 on the catalog's row shape, each in a fresh schema: single upserts,
500-row batched inserts, single inserts 8 in flight, and point reads by key. One JSON line per client.
  --url URL      the PostgreSQL server (default: the stack's, started when nothing answers)
  --rows N       rows per write measure (default 5000)
  --reads N      point reads (default 2000)
  --order LIST   which client runs first (default pg,postgres)`;

const PG = "pg@8.23.1";
const POSTGRES_JS = "postgres@3.4.9";

type Row = [key: string, robot: string, ts: number, seq: number, size: number, hash: Uint8Array];

function row(i: number): Row {
  const robot = `robot-${String(i % 20).padStart(3, "0")}`;
  const hash = new Uint8Array(32);
  for (let b = 0; b < 32; b++) hash[b] = (i * 31 + b * 7) & 255;
  return [
    `${robot}/2026-01-05/20260105T${String(i).padStart(9, "0")}Z_${i}.jpg`,
    robot,
    1767571200000 + i * 100,
    i,
    150_000 + (i % 60_000),
    hash,
  ];
}

const DDL = (schema: string) =>
  `CREATE SCHEMA ${schema};
   CREATE TABLE ${schema}.t (key text PRIMARY KEY, robot_id text NOT NULL, ts_ms bigint NOT NULL, seq integer NOT NULL,
     size integer NOT NULL, hash bytea)`;
const UPSERT = (schema: string) =>
  `INSERT INTO ${schema}.t (key, robot_id, ts_ms, seq, size, hash) VALUES ($1, $2, $3, $4, $5, $6)
   ON CONFLICT (key) DO UPDATE SET size = excluded.size`;

interface Result {
  single_per_s: number;
  batched_per_s: number;
  concurrent8_per_s: number;
  point_reads_per_s: number;
}

/** Times `work` over `n` items: items per second. */
async function rate(n: number, work: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await work();
  return Math.round(n / ((performance.now() - t) / 1000));
}

async function withPg(url: string, schema: string, n: number, reads: number): Promise<Result> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await pool.query(DDL(schema));
    const upsert = UPSERT(schema);
    const single = await rate(n, async () => {
      for (let i = 0; i < n; i++) await pool.query({ name: "upsert", text: upsert, values: row(i) });
    });
    await pool.query(`TRUNCATE ${schema}.t`);
    const batched = await rate(n, async () => {
      for (let b = 0; b < n; b += 500) {
        const values: unknown[] = [];
        const tuples: string[] = [];
        for (let i = b; i < Math.min(n, b + 500); i++) {
          const o = values.length;
          tuples.push(`($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5}, $${o + 6})`);
          values.push(...row(i));
        }
        await pool.query(
          `INSERT INTO ${schema}.t (key, robot_id, ts_ms, seq, size, hash) VALUES ${tuples.join(", ")}
           ON CONFLICT (key) DO NOTHING`,
          values,
        );
      }
    });
    await pool.query(`TRUNCATE ${schema}.t`);
    const concurrent8 = await rate(n, async () => {
      await Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; i < n; i += 8) await pool.query({ name: "upsert", text: upsert, values: row(i) });
      }));
    });
    const select = `SELECT key, ts_ms, hash FROM ${schema}.t WHERE key = $1`;
    const pointReads = await rate(reads, async () => {
      for (let i = 0; i < reads; i++) {
        const r = await pool.query({ name: "read", text: select, values: [row(i % n)[0]] });
        if (r.rows.length !== 1) throw new Error(`pg: row ${i % n} not found`);
      }
    });
    return {
      single_per_s: single,
      batched_per_s: batched,
      concurrent8_per_s: concurrent8,
      point_reads_per_s: pointReads,
    };
  } finally {
    await pool.end();
  }
}

async function withPostgresJs(url: string, schema: string, n: number, reads: number): Promise<Result> {
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  const t = sql(`${schema}.t`);
  const upsert = (r: Row) =>
    sql`INSERT INTO ${t} (key, robot_id, ts_ms, seq, size, hash)
        VALUES (${r[0]}, ${r[1]}, ${r[2]}, ${r[3]}, ${r[4]}, ${r[5]})
        ON CONFLICT (key) DO UPDATE SET size = excluded.size`;
  try {
    await sql.unsafe(DDL(schema));
    const single = await rate(n, async () => {
      for (let i = 0; i < n; i++) await upsert(row(i));
    });
    await sql.unsafe(`TRUNCATE ${schema}.t`);
    const batched = await rate(n, async () => {
      for (let b = 0; b < n; b += 500) {
        const rows = [];
        for (let i = b; i < Math.min(n, b + 500); i++) {
          const [key, robot_id, ts_ms, seq, size, hash] = row(i);
          rows.push({ key, robot_id, ts_ms, seq, size, hash });
        }
        await sql`INSERT INTO ${t} ${sql(rows)} ON CONFLICT (key) DO NOTHING`;
      }
    });
    await sql.unsafe(`TRUNCATE ${schema}.t`);
    const concurrent8 = await rate(n, async () => {
      await Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; i < n; i += 8) await upsert(row(i));
      }));
    });
    const pointReads = await rate(reads, async () => {
      for (let i = 0; i < reads; i++) {
        const r = await sql`SELECT key, ts_ms, hash FROM ${t} WHERE key = ${row(i % n)[0]}`;
        if (r.length !== 1) throw new Error(`postgres.js: row ${i % n} not found`);
      }
    });
    return {
      single_per_s: single,
      batched_per_s: batched,
      concurrent8_per_s: concurrent8,
      point_reads_per_s: pointReads,
    };
  } finally {
    await sql.end();
  }
}

export async function benchPgClients(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      rows: { type: "string", default: "5000" },
      reads: { type: "string", default: "2000" },
      order: { type: "string", default: "pg,postgres" },
    },
    strict: true,
  });
  const url = await postgresServer(values.url);
  const n = Number(values.rows), reads = Number(values.reads);
  for (const [name, v] of [["--rows", n], ["--reads", reads]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number >= 1`);
  }
  const order = values.order.split(",").map((s) => s.trim());
  if (order.length !== 2 || !order.includes("pg") || !order.includes("postgres")) {
    throw new RangeError(`--order ${values.order} must name pg and postgres once each`);
  }
  for (const client of order) {
    const schema = freshSchema("bench_client");
    console.error(`${client}: schema ${schema}`);
    try {
      const result = client === "pg"
        ? await withPg(url, schema, n, reads)
        : await withPostgresJs(url, schema, n, reads);
      console.log(JSON.stringify({
        bench: "pg-clients",
        client: client === "pg" ? PG : POSTGRES_JS,
        rows: n,
        reads,
        ...result,
        rss_mb: Math.round(Deno.memoryUsage().rss / 1024 / 1024),
      }));
    } finally {
      await dropSchema(url, schema);
    }
  }
}
