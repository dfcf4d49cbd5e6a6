/**
 * PostgreSQL for tests: which server, empty schemas of their own on it (`?schema=t_...`: `scratchPostgresUrl` for
 * catalogs other processes open too, `freshPostgresCatalog` for a catalog whose schema is dropped when it is
 * closed), and plain SQL behind a catalog's back. Schemas a crashed run left behind are dropped by a later run once
 * they are an hour old, so the test database does not grow without bound.
 *
 * The server: env FRAME_BUCKET_TEST_POSTGRES_URL when set (any server, e.g. a developer's); else the project
 * stack's PostgreSQL (tools/stack.ts `stackEndpoints().postgresUrl`), started with the rest of the stack when
 * nothing answers (tests/support/stack.ts `ensureStack`); a stack without PostgreSQL falls back to the
 * development server at DEV_URL.
 */
// @ts-types="@types/pg"
import pg from "pg";
import type { Catalog } from "../../src/catalog/catalog.ts";
import { PostgresCatalog } from "../../src/catalog/postgres.ts";
import { stackEndpoints } from "../../tools/stack.ts";
import { ensureStack } from "./stack.ts";

const ENV = "FRAME_BUCKET_TEST_POSTGRES_URL";
const DEV_URL = "postgres://postgres:fb@127.0.0.1:25432/postgres";
/** Test schemas: `t_` + creation time (ms, base 36) + `_` + random hex, then `_` + a name when given. */
const TEST_SCHEMA = /^t_([0-9a-z]+)_[0-9a-f]{12}(_[a-z0-9_]*)?$/;
/** Test schemas older than this are left over from a run that did not finish (or were never dropped): dropped. */
const STALE_MS = 3600_000;

/** The stack's PostgreSQL URL, when tools/stack.ts has one. */
function stackUrl(): string | undefined {
  return (stackEndpoints() as { postgresUrl?: string }).postgresUrl;
}

/** The URL of the PostgreSQL server tests use (see above). */
export function postgresUrl(): string {
  return Deno.env.get(ENV) || stackUrl() || DEV_URL;
}

/** Catalog → its URL with `?schema=` (for `postgresSql`). */
const urls = new WeakMap<Catalog, string>();
let swept: Promise<void> | null = null;

/** A connection of its own to `url` (with `?schema=NAME`: working in that schema). */
async function connect(url: string): Promise<pg.Client> {
  const u = new URL(url);
  const schema = u.searchParams.get("schema");
  u.searchParams.delete("schema");
  const client = new pg.Client({
    connectionString: u.toString(),
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  await client.connect();
  return client;
}

/** Runs `work` on a connection of its own to `url`, closed after. */
async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Drops this user's test schemas older than STALE_MS. */
function sweep(url: string): Promise<void> {
  return withClient(url, async (client) => {
    const r = await client.query(
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%' AND nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
    );
    for (const { nspname } of r.rows as { nspname: string }[]) {
      const made = TEST_SCHEMA.exec(nspname);
      if (made && Date.now() - parseInt(made[1], 36) > STALE_MS) {
        await client.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`);
      }
    }
  });
}

/** The server's URL, after starting the stack when the server is the stack's and sweeping stale test schemas. */
async function server(): Promise<string> {
  if (!Deno.env.get(ENV) && stackUrl()) await ensureStack();
  const url = postgresUrl();
  swept ??= sweep(url);
  await swept;
  return url;
}

/**
 * The URL of an empty schema of its own on the test server (`?schema=t_..._NAME`, made here), for catalogs that
 * other processes open too. Nothing drops it at the end: the sweep of the next run does, an hour later.
 */
export async function scratchPostgresUrl(name = ""): Promise<string> {
  const base = await server();
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0"))
    .join("");
  const suffix = name.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 30);
  const schema = `t_${Date.now().toString(36)}_${hex}${suffix ? `_${suffix}` : ""}`;
  await withClient(base, (client) => client.query(`CREATE SCHEMA ${schema}`));
  const u = new URL(base);
  u.searchParams.set("schema", schema);
  return u.toString();
}

/** A PostgresCatalog on an empty schema of its own (see scratchPostgresUrl); closing it drops the schema. */
export async function freshPostgresCatalog(): Promise<PostgresCatalog> {
  const url = await scratchPostgresUrl();
  const schema = new URL(url).searchParams.get("schema")!;
  const dropSchema = () =>
    withClient(postgresUrl(), async (client) => {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    });
  let catalog: PostgresCatalog;
  try {
    catalog = await PostgresCatalog.open(url, { poolSize: 4 });
  } catch (error) {
    await dropSchema();
    throw error;
  }
  const close = catalog.close.bind(catalog);
  let closing: Promise<void> | null = null;
  catalog.close = () => closing ??= close().finally(dropSchema);
  urls.set(catalog, url);
  return catalog;
}

/**
 * Another PostgresCatalog (another pool: another server, as far as the catalog can tell) on the schema of a
 * catalog from `freshPostgresCatalog`; closing it leaves the schema.
 */
export function anotherServer(catalog: Catalog): Promise<PostgresCatalog> {
  return PostgresCatalog.open(urlOf(catalog), { poolSize: 4 });
}

function urlOf(catalog: Catalog): string {
  const url = urls.get(catalog);
  if (!url) throw new Error("not a catalog from freshPostgresCatalog");
  return url;
}

/**
 * Plain SQL on the tables of a catalog from `freshPostgresCatalog`, on a connection of its own (opened by the
 * first query): `?` marks a parameter, as in SQLite.
 */
export function postgresSql(catalog: Catalog): {
  query(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
} {
  const url = urlOf(catalog);
  let client: Promise<pg.Client> | null = null;
  return {
    async query(text, params = []) {
      client ??= connect(url);
      let n = 0;
      const r = await (await client).query(text.replace(/\?/g, () => `$${++n}`), params);
      return r.rows;
    },
    async close() {
      if (client) await (await client).end();
    },
  };
}
