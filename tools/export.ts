/**
 * `deno task export --label L [--label L2]... [--all-labels] [--robot R]... [--from T] [--to T] [--tier T]...
 * --out DIR|FILE.tar`: the labelled frames as an ImageFolder dataset (see src/library/export.ts), fetched from whichever
 * tier holds them, with progress on stderr. The filter is search's (`deno task search` with the same flags lists
 * the same frames).
 *
 * Exit codes: 0 complete; 1 incomplete (frames no store holds, listed in MISSING.txt of the output) or failed (a
 * store kept failing: nothing is left behind); 2 bad input.
 */
import type { Tier } from "../src/catalog/catalog.ts";
import { openExistingCatalog } from "../src/catalog/open.ts";
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { messageOf, ServiceError } from "../src/errors.ts";
import { exportFrames, MISSING_FILE, tierFetcher } from "../src/library/export.ts";
import { checkRobotId } from "../src/key.ts";
import { openTiers } from "../src/store/tiers.ts";
import { countFrames, parseTimeRange, TIERS } from "../src/library/search.ts";

export const USAGE =
  `usage: deno task export --label L [--label L2]... [--all-labels] [--robot R]... [--from T]
                        [--to T] [--tier T]... --out DIR|FILE.tar [--config PATH]

Writes the frames with any of the labels (their own, or from a clip they lie in) as an image dataset:
<label>/<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq>.jpg, one folder per label (a frame with two of the labels is in
both), and metadata.jsonl (file_name, label, robot_id, capture_time, labels, clips, ...). The same flags give
deno task search the same frames.
  --label L          a label to export (repeat for several)
  --all-labels       with several --label: only frames with all of them
  --robot R          only this robot (repeat for several)
  --from T, --to T   capture time span, inclusive, UTC (ISO 8601 or ms since the epoch)
  --tier T           only frames in this tier: local, archiving or archive (repeat for several)
  --out PATH         a new or empty directory, or a file ending in .tar (written as FILE.tar.partial first)
Frames in the archive tier are read from aws_s3.bucket at aws_s3.prefix + key. Frames that no store holds are
left out and listed in MISSING.txt (exit code 1). When a store fails, the export stops, removes what it wrote
and exits 1.`;

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

export async function exportMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    label: { type: "string", multiple: true },
    "all-labels": { type: "boolean" },
    robot: { type: "string", multiple: true },
    from: { type: "string" },
    to: { type: "string" },
    tier: { type: "string", multiple: true },
    out: { type: "string", short: "o" },
  }, args);
  if (positionals.length) throw new RangeError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!values.label?.length) throw new RangeError("name at least one --label to export");
  if (!values.out) throw new RangeError("--out DIR or --out FILE.tar is required");
  const robots = (values.robot ?? []).map(checkRobotId);
  const tiers = (values.tier ?? []) as Tier[];
  for (const t of tiers) {
    if (!TIERS.includes(t)) {
      throw new RangeError(`--tier ${JSON.stringify(t)} must be one of ${TIERS.join(", ")}`);
    }
  }
  const span = parseTimeRange(values.from, values.to);
  const config = await loadConfig(values.config);
  const fix = "run the consumer or deno task reindex first";
  const filter = { labels: values.label, allLabels: values["all-labels"] ?? false, robots, ...span, tiers };
  // The archive client is made only when archived frames are part of the export (it may need AWS credentials).
  const counting = await openExistingCatalog(config, fix);
  const archived = (tiers.length === 0 || tiers.includes("archive")) &&
    (await countFrames(counting, { ...filter, tiers: ["archive"] }).finally(() => counting.close())) > 0;
  const stores = await openTiers(config, { archive: archived });
  const catalog = stores.catalog;
  try {
    const summary = await exportFrames(catalog, values.out, {
      ...filter,
      fetch: tierFetcher(stores),
      progress: (p) =>
        console.error(
          `  ${p.frames}/${p.total} frames, ${p.files} files, ${mb(p.bytes)} MB, ${p.missing} missing ` +
            `(${(p.frames / Math.max(0.001, p.elapsedMs / 1000)).toFixed(0)} frames/s)`,
        ),
      onMissing: (row) => console.error(`  missing: ${row.key} (tier ${row.tier}) is in no store; left out`),
    });
    const per = Object.entries(summary.perLabel).map(([l, n]) => `${l} ${n}`).join(", ");
    console.log(
      `exported ${summary.files} files (${per}) from ${
        summary.frames - summary.missing
      } frames to ${summary.out}`,
    );
    if (summary.missing) {
      const list = summary.format === "tar" ? `${MISSING_FILE} in the tar` : `${summary.out}/${MISSING_FILE}`;
      console.error(
        `INCOMPLETE: ${summary.missing} of ${summary.frames} frames are in no store and were left out; ` +
          `they are listed in ${list}`,
      );
    }
    return summary.missing ? 1 : 0;
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    throw new ServiceError(
      error.service,
      `export to ${values.out} failed, and nothing of it was kept: ${messageOf(error)}`,
      { retriable: error.retriable, cause: error },
    );
  } finally {
    await stores.close();
  }
}

if (import.meta.main) runMain(() => exportMain(Deno.args));
