/**
 * Storage health: per tier the frames and bytes the catalog counts, the local tier's usage against the eviction
 * thresholds (the byte budget from the catalog, the watched disk measured here when this host sees it), and the
 * evictor's state as it last recorded it in the catalog's status store (src/retention/evictor.ts): idle, moving,
 * paused at the hard limit, archive unreachable since T, with its counters, or "not reporting" when its record is
 * older than three checks. The robots page shows it, so that an archive outage is seen before the local disk
 * fills.
 */
import type { Catalog } from "../../catalog/catalog.ts";
import { messageOf } from "../../errors.ts";
import type { EvictorHealth } from "../../retention/evictor.ts";
import { diskPercent, type EvictionSettings, statfsUsage } from "../../retention/plan.ts";
import { ok, reply, type Route, route } from "../route.ts";
import { boolean, integer, literal, named, nullable, number, object, string } from "../schema.ts";

/** Least age, in seconds, at which an evictor's record counts as stale (more when checks are rarer). */
export const STALE_MIN_SECS = 90;

const TIER = object({ frames: integer(), bytes: integer() });

const THRESHOLDS = object({
  threshold_percent: number("Usage that starts archiving."),
  target_percent: number("Usage archiving brings it back to."),
  hard_limit_percent: number("Usage at which the consumer pauses fetching."),
  max_bytes: integer("The local tier's byte budget (0: none)."),
  watch_path: nullable(string(), "The folder whose disk is watched (null: none)."),
  check_interval_secs: number(),
  on_archive_failure: string(),
});

const STATES = [
  "idle",
  "moving",
  "paused at the hard limit",
  "archive unreachable",
  "archive refusing copies",
  "local store unreachable",
] as const;

const EVICTOR = named(
  "EvictorHealth",
  object({
    state: literal(
      [...STATES, "not reporting", "never reported"] as const,
      'What the evictor does; "not reporting" when its last record is stale, "never reported" when none is.',
    ),
    reported_state: nullable(literal(STATES), "The state it last recorded (also when stale)."),
    updated_ms: nullable(integer(), "When it last recorded its state."),
    age_secs: nullable(number(), "How long ago."),
    stale_after_secs: number("A record older than this counts as not reporting."),
    since_ms: nullable(integer(), "Since when the archive (or local store) fails."),
    failure: nullable(string(), "The last failure's message while failing."),
    failed_attempts: integer(),
    paused: boolean("The consumer is asked to stop fetching."),
    frames_archived: integer("Frames archived by the evictor since its process started."),
    bytes_archived: integer(),
    frames_dropped: integer("Frames deleted without an archive copy (drop_oldest)."),
    frames_lost: integer("Frames found gone without an archive copy."),
    recovered: integer(),
    failures: integer(),
    rounds: integer(),
    usage_percent: nullable(number(), "Usage after its last check, percent (the highest trigger)."),
    pending_free_bytes: integer("Bytes it deleted that the watched disk does not show as free yet."),
    last_round: nullable(object({
      at_ms: integer(),
      archived: integer(),
      archived_bytes: integer(),
      dropped: integer(),
      lost: integer(),
      seconds: number(),
      failure: nullable(string()),
      evicting: boolean(),
      bytes_to_free: integer(),
    })),
    thresholds: nullable(THRESHOLDS, "The thresholds it works with."),
    host: nullable(string()),
    pid: nullable(integer()),
  }),
);

const USAGE = object({
  threshold_percent: number(),
  target_percent: number(),
  hard_limit_percent: number(),
  budget: nullable(
    object({ max_bytes: integer(), used_bytes: integer(), percent: number() }),
    "The local tier's bytes (local and archiving) against eviction.max_bytes; null when no budget is set.",
  ),
  disk: nullable(
    object({
      watch_path: string(),
      used_bytes: nullable(integer()),
      total_bytes: nullable(integer()),
      percent: nullable(number()),
      error: nullable(string({ description: "Why this server cannot measure it (another host's disk)." })),
    }),
    "The filesystem at eviction.watch_path as df shows it, measured by this server; null when none is watched.",
  ),
  percent: nullable(number(), "The highest of the two, percent."),
  level: literal(
    ["ok", "over threshold", "at hard limit", "unknown"] as const,
    "Where the highest usage is against the thresholds.",
  ),
});

const STORAGE = object({
  tiers: object({ local: TIER, archiving: TIER, archive: TIER }),
  usage: nullable(USAGE, "Null when no thresholds are known (no config given and no evictor record)."),
  evictor: EVICTOR,
});

export type StorageJson = ReturnType<typeof STORAGE.read>;

function emptyEvictor(stale: number): ReturnType<typeof EVICTOR.read> {
  return {
    state: "never reported",
    reported_state: null,
    updated_ms: null,
    age_secs: null,
    stale_after_secs: stale,
    since_ms: null,
    failure: null,
    failed_attempts: 0,
    paused: false,
    frames_archived: 0,
    bytes_archived: 0,
    frames_dropped: 0,
    frames_lost: 0,
    recovered: 0,
    failures: 0,
    rounds: 0,
    usage_percent: null,
    pending_free_bytes: 0,
    last_round: null,
    thresholds: null,
    host: null,
    pid: null,
  };
}

/** The storage health as GET /api/storage answers it. */
export async function storageHealth(
  catalog: Catalog,
  settings: EvictionSettings | null,
  nowMs = Date.now(),
): Promise<StorageJson> {
  const totals = await catalog.totals();
  const record = await catalog.status("evictor");
  const health = record?.state as Partial<EvictorHealth> | undefined;
  const thresholds = settings ?? health?.thresholds ?? null;
  const stale = Math.max(STALE_MIN_SECS, 3 * (thresholds?.check_interval_secs ?? 30));
  let evictor = emptyEvictor(stale);
  if (record && health) {
    const age = Math.max(0, (nowMs - record.updatedMs) / 1000);
    const reported = STATES.includes(health.state as typeof STATES[number])
      ? health.state as typeof STATES[number]
      : null;
    evictor = {
      ...evictor,
      ...pick(health),
      state: age > stale ? "not reporting" : reported ?? "not reporting",
      reported_state: reported,
      updated_ms: record.updatedMs,
      age_secs: Math.round(age * 10) / 10,
      stale_after_secs: stale,
    };
  }

  const localBytes = totals.local.bytes + totals.archiving.bytes;
  let usage: StorageJson["usage"] = null;
  if (thresholds) {
    const budget = thresholds.max_bytes > 0
      ? {
        max_bytes: thresholds.max_bytes,
        used_bytes: localBytes,
        percent: round1((localBytes / thresholds.max_bytes) * 100),
      }
      : null;
    let disk: NonNullable<StorageJson["usage"]>["disk"] = null;
    if (thresholds.watch_path) {
      try {
        const d = statfsUsage(thresholds.watch_path);
        disk = {
          watch_path: thresholds.watch_path,
          used_bytes: d.usedBytes,
          total_bytes: d.usedBytes + d.availBytes,
          percent: round1(diskPercent(d)),
          error: null,
        };
      } catch (error) {
        disk = {
          watch_path: thresholds.watch_path,
          used_bytes: null,
          total_bytes: null,
          percent: null,
          error: `cannot measure it from this server: ${messageOf(error)}`,
        };
      }
    }
    const percents = [budget?.percent, disk?.percent].filter((p): p is number => typeof p === "number");
    const percent = percents.length ? Math.max(...percents) : null;
    usage = {
      threshold_percent: thresholds.threshold_percent,
      target_percent: thresholds.target_percent,
      hard_limit_percent: thresholds.hard_limit_percent,
      budget,
      disk,
      percent,
      level: percent === null
        ? "unknown"
        : percent >= thresholds.hard_limit_percent
        ? "at hard limit"
        : percent >= thresholds.threshold_percent
        ? "over threshold"
        : "ok",
    };
  }
  return {
    tiers: {
      local: { frames: totals.local.frames, bytes: totals.local.bytes },
      archiving: { frames: totals.archiving.frames, bytes: totals.archiving.bytes },
      archive: { frames: totals.archive.frames, bytes: totals.archive.bytes },
    },
    usage,
    evictor,
  };
}

/** The recorded fields the answer lists (a record from another version may hold more or fewer). */
function pick(h: Partial<EvictorHealth>): Partial<ReturnType<typeof EVICTOR.read>> {
  const out: Record<string, unknown> = {};
  const numbers = [
    "failed_attempts",
    "frames_archived",
    "bytes_archived",
    "frames_dropped",
    "frames_lost",
    "recovered",
    "failures",
    "rounds",
    "pending_free_bytes",
  ] as const;
  for (const k of numbers) if (typeof h[k] === "number") out[k] = h[k];
  if (typeof h.since_ms === "number") out.since_ms = h.since_ms;
  if (typeof h.failure === "string") out.failure = h.failure;
  if (typeof h.paused === "boolean") out.paused = h.paused;
  if (typeof h.usage_percent === "number") out.usage_percent = round1(h.usage_percent);
  if (h.last_round && typeof h.last_round === "object") out.last_round = h.last_round;
  if (h.thresholds && typeof h.thresholds === "object") out.thresholds = h.thresholds;
  if (typeof h.host === "string") out.host = h.host;
  if (typeof h.pid === "number") out.pid = h.pid;
  return out;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** GET /api/storage; `settings`: the config's `[eviction]` (thresholds), else those the evictor recorded. */
export function storageRoutes(catalog: Catalog, settings: EvictionSettings | null): Route[] {
  return [
    route({
      method: "get",
      path: "/api/storage",
      summary: "Storage health: frames and bytes per tier, usage against the eviction thresholds, the " +
        "evictor's state (idle, moving, paused at the hard limit, archive unreachable since T, not reporting).",
      ok: ok("Storage health.", STORAGE),
      handler: async () => reply(await storageHealth(catalog, settings), { "cache-control": "no-store" }),
    }),
  ];
}
