/**
 * `deno task catalog migrate --from URL --to URL`: copies a catalog to another backend (a single box's SQLite file
 * to the PostgreSQL catalog of a fleet, or back): frames with their tiers and Kafka offsets, labels, clips, boxes,
 * review status, the label set (colours and hotkeys), the journal and what the catalog belongs to. Every table of
 * COPY_TABLES (src/catalog/catalog.ts) is copied as raw rows with their ids, so journal entries keep pointing at
 * the same clips and boxes (and undo still works on the copy). Progress is printed as it goes; an interrupted copy
 * resumes where it stopped when run again (frames are copied in key order, each batch in one transaction, so the
 * destination's largest key is the resume point); the end compares row counts table by table.
 *
 * `deno task catalog status [--config PATH]`: which catalog a config opens, its rows per tier and the evictor
 * lease.
 */
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { type Catalog, COPY_TABLES, type CopyTable, TIERS } from "../src/catalog/catalog.ts";
import { catalogPath, catalogTargetOf, openCatalog, openCatalogAt } from "../src/catalog/open.ts";
import { EVICTOR_LEASE } from "../src/retention/leader.ts";

export const USAGE = `usage: deno task catalog migrate --from URL --to URL [--batch N]
       deno task catalog status [--config PATH]

migrate   copies every frame row, label, clip, box, review status, label colour/hotkey and journal entry
          from one catalog to another:
            --from sqlite:.data/catalog.sqlite --to postgres://USER:PASSWORD@HOST:5432/DATABASE
          Stop the consumers first (rows they write during the copy may be missed). Run it again after an
          interruption: it resumes after the last copied frame. It ends by comparing row counts.
          --batch N   frames per transaction (default 5000)
status    which catalog the config opens, its frames per tier and who holds the evictor lease`;

const OPTIONS = {
  from: { type: "string" },
  to: { type: "string" },
  batch: { type: "string" },
  config: { type: "string", short: "c" },
} as const;

/** What a copy did. */
export interface MigrateResult {
  frames: number;
  copiedFrames: number;
  tables: Record<CopyTable, number>;
  seconds: number;
}

/**
 * Copies `from` into `to` (see the module comment); `progress` gets a line now and then. Throws when the counts
 * differ at the end.
 */
export async function migrate(
  from: Catalog,
  to: Catalog,
  options: { batch?: number; progress?: (line: string) => void } = {},
): Promise<MigrateResult> {
  const batch = options.batch ?? 5000;
  const progress = options.progress ?? (() => {});
  const started = performance.now();
  const identity = await from.identity();
  if (identity) {
    const differs = await to.bind(identity);
    if (differs.length) {
      throw new RangeError(
        `${to.where} already belongs to another deployment (${
          differs.join(", ")
        } differ from ${from.where}): ` +
          "copy into an empty catalog",
      );
    }
  }
  const total = await from.frameCount();
  let after = await to.lastKey();
  if (after) progress(`resuming after ${after}`);
  let copied = 0;
  let lastLine = performance.now();
  for (;;) {
    const rows = await from.framesAfter(after, batch);
    if (rows.length === 0) break;
    await to.upsertMany(rows);
    copied += rows.length;
    after = rows[rows.length - 1].key;
    if (performance.now() - lastLine > 2000) {
      lastLine = performance.now();
      const seconds = (lastLine - started) / 1000;
      progress(
        `frames: ${copied} copied this run (${
          Math.round(copied / seconds)
        }/s), at ${after} of ${total} in total`,
      );
    }
  }
  progress(`frames: ${copied} copied this run`);
  const tables = {} as Record<CopyTable, number>;
  for (const table of Object.keys(COPY_TABLES) as CopyTable[]) {
    let n = 0;
    for (let offset = 0;; offset += batch) {
      const rows = await from.copyRows(table, offset, batch);
      if (rows.length === 0) break;
      await to.pasteRows(table, rows);
      n += rows.length;
    }
    tables[table] = n;
    progress(`${table}: ${n} rows`);
  }
  // Verified by counts: frames per tier and every label-side table.
  const problems: string[] = [];
  const [a, b] = [await from.totals(), await to.totals()];
  for (const tier of TIERS) {
    if (a[tier].frames !== b[tier].frames) {
      problems.push(`${tier} frames ${a[tier].frames} != ${b[tier].frames}`);
    }
  }
  for (const table of Object.keys(COPY_TABLES) as CopyTable[]) {
    const [x, y] = [await from.countRows(table), await to.countRows(table)];
    if (x !== y) problems.push(`${table} ${x} != ${y}`);
  }
  if (problems.length) {
    throw new Error(
      `the copy differs from ${from.where} (${
        problems.join("; ")
      }): was something writing to either catalog? ` +
        "stop the consumers and run the migrate again",
    );
  }
  return { frames: total, copiedFrames: copied, tables, seconds: (performance.now() - started) / 1000 };
}

async function migrateMain(values: { from?: string; to?: string; batch?: string }): Promise<number> {
  if (!values.from || !values.to) throw new RangeError(`migrate needs --from and --to\n\n${USAGE}`);
  const batch = values.batch === undefined ? 5000 : Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
    throw new RangeError(`--batch ${JSON.stringify(values.batch)} must be a whole number from 1 to 100000`);
  }
  const fromTarget = catalogTargetOf(values.from, Deno.cwd());
  const toTarget = catalogTargetOf(values.to, Deno.cwd());
  if (fromTarget.backend === "sqlite") {
    try {
      await Deno.stat(fromTarget.path);
    } catch {
      throw new Deno.errors.NotFound(`no catalog at ${fromTarget.path}: check --from`);
    }
  }
  const from = await openCatalogAt(fromTarget);
  try {
    const to = await openCatalogAt(toTarget);
    try {
      console.error(`copying ${from.where} -> ${to.where}`);
      const r = await migrate(from, to, { batch, progress: (line) => console.error(line) });
      console.log(JSON.stringify({
        from: from.where,
        to: to.where,
        frames: r.frames,
        copied_frames: r.copiedFrames,
        ...r.tables,
        seconds: Number(r.seconds.toFixed(1)),
        verified: true,
      }));
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
  return 0;
}

async function statusMain(configPath: string | undefined): Promise<number> {
  const config = await loadConfig(configPath);
  const catalog = await openCatalog(config);
  try {
    const totals = await catalog.totals();
    const lease = await catalog.lease(EVICTOR_LEASE);
    console.log(JSON.stringify({
      catalog: catalogPath(config),
      tiers: totals,
      evictor: lease && lease.expiresMs > Date.now()
        ? { holder: lease.holder, token: lease.token, expires: new Date(lease.expiresMs).toISOString() }
        : null,
    }));
  } finally {
    await catalog.close();
  }
  return 0;
}

export async function catalogMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, OPTIONS, args);
  const [command, ...rest] = positionals;
  if (rest.length) throw new RangeError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (command === "migrate") return await migrateMain(values);
  if (command === "status") return await statusMain(values.config);
  throw new RangeError(`name a command: migrate or status\n\n${USAGE}`);
}

if (import.meta.main) runMain(() => catalogMain(Deno.args));
