/**
 * Opens the catalog a config names: `catalog.url` (env FRAME_BUCKET_CATALOG_URL) empty or `sqlite:PATH` for the
 * SQLite file of one box (empty: `catalog.data_dir`/catalog.sqlite), `postgres://...` for the PostgreSQL catalog a
 * fleet shares. The one place that chooses a backend, so every command and the server open the same catalog the
 * same way.
 */
import type { Config } from "../config.ts";
import type { Catalog } from "./catalog.ts";
import { redactUrl } from "./url.ts";
import { catalogPath as defaultPath, SqliteCatalog } from "./sqlite.ts";

type CatalogConfig = Pick<Config, "baseDir" | "catalog">;

/** Which backend and where: the SQLite file's path or the PostgreSQL URL. */
export type CatalogTarget = { backend: "sqlite"; path: string } | { backend: "postgres"; url: string };

/** Parses a catalog URL (`sqlite:PATH`, `postgres://...`); relative SQLite paths are relative to `baseDir`. */
export function catalogTargetOf(url: string, baseDir = "."): CatalogTarget {
  if (/^postgres(ql)?:\/\//.test(url)) return { backend: "postgres", url };
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (!path) throw new RangeError('sqlite: needs a file path ("sqlite:.data/catalog.sqlite")');
    return { backend: "sqlite", path: path.startsWith("/") ? path : `${baseDir.replace(/\/$/, "")}/${path}` };
  }
  throw new RangeError(
    `catalog ${JSON.stringify(redactUrl(url))} is neither sqlite:PATH nor ` +
      "postgres://USER:PASSWORD@HOST:PORT/DATABASE",
  );
}

export function catalogTarget(config: CatalogConfig): CatalogTarget {
  if (config.catalog.url === "") return { backend: "sqlite", path: defaultPath(config) };
  return catalogTargetOf(config.catalog.url, config.baseDir);
}

/** Where the config's catalog is, for messages: the file path, or the server URL without its password. */
export function catalogPath(config: CatalogConfig): string {
  const target = catalogTarget(config);
  return target.backend === "sqlite" ? target.path : redactUrl(target.url);
}

/**
 * The config's catalog, ready for use: a PostgreSQL catalog has connected and brought its schema up to date, so a
 * wrong URL or password fails here, before any frame flows.
 */
export async function openCatalog(config: CatalogConfig): Promise<Catalog> {
  return await openCatalogAt(catalogTarget(config), { poolSize: config.catalog.pool_size });
}

export async function openCatalogAt(
  target: CatalogTarget,
  options: { poolSize?: number } = {},
): Promise<Catalog> {
  if (target.backend === "sqlite") return new SqliteCatalog(target.path);
  // Loaded only for a PostgreSQL catalog: the driver's modules cost a SQLite box's processes memory for nothing.
  const { PostgresCatalog } = await import("./postgres.ts");
  return await PostgresCatalog.open(target.url, options);
}

/**
 * The config's catalog for commands that only read it: a SQLite file that does not exist is an error naming
 * `fix` (opening would create an empty one and answer "nothing found"); a PostgreSQL catalog is opened as usual.
 */
export async function openExistingCatalog(config: CatalogConfig, fix: string): Promise<Catalog> {
  const target = catalogTarget(config);
  if (target.backend === "sqlite") {
    try {
      await Deno.stat(target.path);
    } catch {
      throw new Deno.errors.NotFound(`no catalog at ${target.path}: ${fix}`);
    }
  }
  return await openCatalogAt(target, { poolSize: config.catalog.pool_size });
}
