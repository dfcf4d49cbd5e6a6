/**
 * `deno task reindex [--no-archive] [--config PATH]`: rebuilds the catalog from the local bucket and the
 * archive bucket, with progress.
 */
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { openTiers } from "../src/store/tiers.ts";
import { reindex } from "../src/store/reindex.ts";

const USAGE = `usage: deno task reindex [--no-archive] [--config PATH]

Rebuilds the catalog (catalog.data_dir/catalog.sqlite) from the objects in rustfs.bucket and aws_s3.bucket.
Existing rows are updated in place; the consumer may keep running.
  --no-archive   only the local bucket (no archive configured or reachable)`;

runMain(async () => {
  const { values } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    "no-archive": { type: "boolean" },
  });
  const config = await loadConfig(values.config);
  const stores = await openTiers(config, { archive: !values["no-archive"] });
  const { local, catalog } = stores;
  const archive = stores.archive ?? undefined;
  const path = catalog.where;
  console.error(
    `reindexing ${config.rustfs.bucket}/${config.rustfs.prefix}` +
      (archive ? ` and ${config.aws_s3.bucket}/${config.aws_s3.prefix}${config.rustfs.prefix}` : "") +
      ` into ${path}`,
  );
  try {
    const counts = await reindex({
      local,
      archive,
      catalog,
      localPrefix: config.rustfs.prefix,
      archivePrefix: config.aws_s3.prefix,
      progress: (c) =>
        console.error(
          `  ${c.local} local, ${c.archive} archived, ${c.both} in both, ${c.skipped} skipped (${c.perSecond}/s)`,
        ),
    });
    const totals = await catalog.totals();
    console.log(
      `catalog rebuilt: ${counts.local} local, ${counts.archive} archived, ${counts.both} in both tiers (to be ` +
        `verified by eviction), ${counts.skipped} objects that are not frames; catalog now holds ` +
        `${totals.local.frames + totals.archiving.frames + totals.archive.frames} frames`,
    );
  } finally {
    await stores.close();
  }
});
