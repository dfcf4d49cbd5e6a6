/**
 * Opens the catalog a config names: today the SQLite file `catalog.data_dir`/catalog.sqlite. The one place that
 * chooses a backend, so every command and the server open the same catalog the same way.
 */
import type { Config } from "../config.ts";
import type { Catalog } from "./catalog.ts";
import { catalogPath, SqliteCatalog } from "./sqlite.ts";

export function openCatalog(config: Pick<Config, "baseDir" | "catalog">): Catalog {
  return new SqliteCatalog(catalogPath(config));
}

export { catalogPath };
