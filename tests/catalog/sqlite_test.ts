/** The catalog contract on SQLite, in memory and in a file. */
import { SqliteCatalog } from "../../src/catalog/sqlite.ts";
import { catalogSuite } from "./catalog_suite.ts";

catalogSuite("sqlite in memory", () => new SqliteCatalog(":memory:"));
catalogSuite(
  "sqlite file",
  () => new SqliteCatalog(Deno.makeTempFileSync({ prefix: "catalog-suite-", suffix: ".sqlite" })),
);
