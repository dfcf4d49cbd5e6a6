/**
 * `deno task search [filters] [--similar FILE.jpg | --like KEY] [--json]`: finds frames in the catalog.
 *
 * Without --similar/--like it lists matching frames a page at a time, newest first (keyset pages: `--cursor`
 * continues exactly where the previous page ended, however many frames arrived meanwhile). With them it ranks
 * the matching frames by hamming distance of their aHash to the upload (hashed by the consumer's own filter) or
 * to a stored frame, and prints the top --k.
 */
import type { Tier } from "../src/catalog/catalog.ts";
import { openExistingCatalog } from "../src/catalog/open.ts";
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { checkRobotId } from "../src/key.ts";
import {
  parseTimeRange,
  type SearchFilter,
  searchFrames,
  type SearchHit,
  TIERS,
} from "../src/library/search.ts";
import { JpegHasher, similarFromCatalog } from "../src/library/similar.ts";
import { frameJson } from "../src/server/shapes.ts";

export const USAGE = `usage: deno task search [--robot R]... [--from T] [--to T] [--label L]... [--all-labels]
                        [--tier local|archiving|archive] [--oldest] [--limit N] [--cursor C]
                        [--similar FILE.jpg | --like KEY] [--k 20] [--max-distance D] [--json] [--config PATH]

Finds frames in the catalog (catalog.data_dir/catalog.sqlite), newest first.
  --robot R          only this robot (repeat for several)
  --from T, --to T   capture time span, inclusive, UTC: ISO 8601 (2026-02-18, 2026-02-18T09:36:16Z,
                     2026-02-18T11:36+02:00) or ms since the epoch; --to 2026-02-18 means to the end of that day
  --label L          frames with label L, their own or from a clip they lie in (repeat: any of them)
  --all-labels       with several --label: frames with all of them
  --tier T           only frames in this tier (repeat for several)
  --oldest           oldest first
  --limit N          frames per page (default 50, at most 1000)
  --cursor C         the next page of the same search (printed after each page that has a next one)
  --similar FILE     rank frames by likeness to this JPEG, hashed by the consumer's filter (config [filter],
                     or the robot's own when exactly one --robot is given)
  --like KEY         rank frames by likeness to this stored frame (the frame itself is left out)
  --k N              with --similar/--like: how many (default 20)
  --max-distance D   with --similar/--like: only frames at most D bits away
  --json             one JSON object per line (then {"next_cursor": ...} when there is a next page)`;

function intFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`--${name} ${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Rows as an aligned text table. */
export function table(hits: (SearchHit & { distance?: number })[], withDistance: boolean): string {
  const head = ["KEY", "ROBOT", "CAPTURED (UTC)", "TIER", "LABELS", ...(withDistance ? ["DISTANCE"] : [])];
  const rows = hits.map((h) => [
    h.frame.key,
    h.frame.robotId,
    new Date(h.frame.timestampMs).toISOString(),
    h.frame.tier,
    h.labels.join(",") || "-",
    ...(withDistance ? [String(h.distance)] : []),
  ]);
  const widths = head.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")
  )
    .join("\n");
}

export async function searchMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    robot: { type: "string", multiple: true },
    from: { type: "string" },
    to: { type: "string" },
    label: { type: "string", multiple: true },
    "all-labels": { type: "boolean" },
    tier: { type: "string", multiple: true },
    oldest: { type: "boolean" },
    limit: { type: "string" },
    cursor: { type: "string" },
    similar: { type: "string" },
    like: { type: "string" },
    k: { type: "string" },
    "max-distance": { type: "string" },
    json: { type: "boolean" },
  }, args);
  if (positionals.length) throw new RangeError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const robots = (values.robot ?? []).map(checkRobotId);
  const tiers = (values.tier ?? []) as Tier[];
  for (const t of tiers) {
    if (!TIERS.includes(t)) {
      throw new RangeError(`--tier ${JSON.stringify(t)} must be one of ${TIERS.join(", ")}`);
    }
  }
  const filter: SearchFilter = {
    robots,
    ...parseTimeRange(values.from, values.to),
    labels: values.label ?? [],
    allLabels: values["all-labels"] ?? false,
    tiers,
  };
  if (filter.allLabels && (filter.labels?.length ?? 0) < 1) {
    throw new RangeError("--all-labels needs --label");
  }
  const similar = values.similar !== undefined || values.like !== undefined;
  if (values.similar !== undefined && values.like !== undefined) {
    throw new RangeError("give --similar FILE or --like KEY, not both");
  }
  if (similar && (values.cursor !== undefined || values.oldest || values.limit !== undefined)) {
    throw new RangeError("--cursor, --limit and --oldest page a search; with --similar/--like use --k");
  }
  if (!similar && (values.k !== undefined || values["max-distance"] !== undefined)) {
    throw new RangeError("--k and --max-distance go with --similar FILE or --like KEY");
  }

  const config = await loadConfig(values.config);
  const catalog = await openExistingCatalog(
    config,
    "the consumer creates it (deno task consume), or rebuild it with deno task reindex",
  );
  try {
    let hits: (SearchHit & { distance?: number })[];
    let next: string | null = null;
    if (similar) {
      const k = intFlag(values.k, "k", 20, 1, 10_000);
      const maxDistance = values["max-distance"] === undefined
        ? undefined
        : intFlag(values["max-distance"], "max-distance", 0, 0, 4096);
      let hash: Uint8Array;
      let excludeKey: string | undefined;
      if (values.like !== undefined) {
        const row = await catalog.get(values.like);
        if (!row) throw new RangeError(`--like: no frame ${JSON.stringify(values.like)} in the catalog`);
        if (!row.hash) {
          throw new RangeError(`--like: frame ${values.like} has no hash (filter ${row.filter})`);
        }
        hash = row.hash;
        excludeKey = row.key;
      } else {
        const jpeg = await Deno.readFile(values.similar!);
        const hasher = await JpegHasher.fromConfig(config);
        try {
          hash = await hasher.hash(jpeg, robots.length === 1 ? robots[0] : "");
        } finally {
          await hasher.close();
        }
      }
      hits = await similarFromCatalog(catalog, hash, { ...filter, k, maxDistance, excludeKey });
    } else {
      const page = await searchFrames(catalog, {
        ...filter,
        order: values.oldest ? "oldest" : "newest",
        limit: intFlag(values.limit, "limit", 50, 1, 1000),
        cursor: values.cursor ?? null,
      });
      hits = page.hits;
      next = page.nextCursor;
    }
    if (values.json) {
      for (const h of hits) console.log(JSON.stringify(frameJson(h)));
      if (next) console.log(JSON.stringify({ next_cursor: next }));
    } else {
      if (hits.length) console.log(table(hits, similar));
      console.error(
        `${hits.length} frame${hits.length === 1 ? "" : "s"}` +
          (next ? `; next page: --cursor ${next}` : similar ? "" : "; no more pages"),
      );
    }
  } finally {
    await catalog.close();
  }
  return 0;
}

if (import.meta.main) runMain(() => searchMain(Deno.args));
