/**
 * Eviction's decisions, pure: how full the local tier is (a watched disk measured as `df` does, and/or the
 * catalog's local bytes against `eviction.max_bytes`), whether to evict, how many bytes to free, and the usage to
 * expect once they are freed. The round loop (src/retention/evictor.ts) measures and acts; nothing here does I/O
 * except `statfsUsage`, whose `statfs` is the seam for tests.
 *
 * Two triggers, either or both:
 * - disk: the filesystem holding the local store's data (`eviction.watch_path`), measured as `df` does:
 *   used / (used + available). Evict at `threshold_percent`, down to `target_percent`.
 * - bytes budget: the catalog's local bytes against `eviction.max_bytes`. The budget is treated as the size of a
 *   virtual disk: evict once local bytes reach threshold_percent of max_bytes, down to target_percent of it (the
 *   same 80 -> 70 hysteresis), and the hard limit is hard_limit_percent of max_bytes.
 * A round frees the larger of the two amounts, planned once from the catalog's frame sizes: servers that free
 * disk space late (RustFS, MinIO) leave `df` behind, so a round never keeps deleting because df has not moved
 * yet; the next check measures again, and subtracts what this process deleted that the disk does not show yet
 * (`withPending`, estimated by src/retention/ledger.ts), so the next rounds do not evict the same bytes again.
 */
import { statfsSync } from "node:fs";
import type { Config } from "../config.ts";

export type EvictionSettings = Config["eviction"];

// ---------------------------------------------------------------------------------------------------------------
// Pure decisions

/** Filesystem figures as `df` shows them. */
export interface DiskUsage {
  /** Bytes in use (blocks - free blocks). */
  usedBytes: number;
  /** Bytes available to unprivileged writers (reserved blocks excluded, as df). */
  availBytes: number;
}

/** What a check measured. */
export interface Usage {
  /** The filesystem at `eviction.watch_path`, or null when no path is watched. */
  disk: DiskUsage | null;
  /** Bytes of frames the catalog has in the local store (tiers "local" and "archiving"). */
  localBytes: number;
}

/** One trigger's view of the usage. */
export interface TriggerState {
  /** Usage in percent of the disk or of max_bytes. */
  percent: number;
  /** At or above threshold_percent. */
  over: boolean;
  /** At or above hard_limit_percent. */
  hard: boolean;
  /** Bytes to free to bring usage to target_percent (0 when not over). */
  bytesToFree: number;
}

export interface EvictionPlan {
  /** Some trigger is at or above its threshold. */
  evict: boolean;
  /** Bytes to free in this round: the larger of the triggers' needs. */
  bytesToFree: number;
  /** Some trigger is at or above the hard limit. */
  hardLimit: boolean;
  /** The highest usage percent of the active triggers (0 when none is configured). */
  percent: number;
  disk: TriggerState | null;
  budget: TriggerState | null;
  /** Human-readable reasons, e.g. `disk 83.0% >= 80%`. */
  reasons: string[];
}

/** `df`'s Use%: used / (used + available), in percent. */
export function diskPercent(d: DiskUsage): number {
  const total = d.usedBytes + d.availBytes;
  return total > 0 ? (d.usedBytes / total) * 100 : 0;
}

/** Statfs figures of `path` as `df` computes them. `statfs` is the seam for tests. */
export function statfsUsage(
  path: string,
  statfs: (path: string) => { bsize: number; blocks: number; bfree: number; bavail: number } = statfsSync,
): DiskUsage {
  const s = statfs(path);
  return {
    usedBytes: Number(s.blocks - s.bfree) * Number(s.bsize),
    availBytes: Number(s.bavail) * Number(s.bsize),
  };
}

function trigger(percent: number, bytesToTarget: number, s: EvictionSettings): TriggerState {
  const over = percent >= s.threshold_percent;
  return {
    percent,
    over,
    hard: percent >= s.hard_limit_percent,
    bytesToFree: over ? Math.max(0, Math.ceil(bytesToTarget)) : 0,
  };
}

/**
 * Bytes to delete locally so that every configured trigger is at or below `percent` (of the disk, of max_bytes).
 */
export function bytesAbove(usage: Usage, s: EvictionSettings, percent: number): number {
  let bytes = 0;
  if (s.watch_path && usage.disk) {
    const total = usage.disk.usedBytes + usage.disk.availBytes;
    bytes = Math.max(bytes, usage.disk.usedBytes - (percent / 100) * total);
  }
  if (s.max_bytes > 0) bytes = Math.max(bytes, usage.localBytes - (percent / 100) * s.max_bytes);
  return Math.max(0, Math.ceil(bytes));
}

/** Why the settings cannot trigger eviction at all, or null. */
export function triggerProblem(s: EvictionSettings): string | null {
  if (!s.watch_path && s.max_bytes <= 0) {
    return "eviction has no trigger: set eviction.watch_path (a folder on the local store's disk) and/or " +
      "eviction.max_bytes (a byte budget for the local tier)";
  }
  return null;
}

/** Decides from one measurement whether to evict, how many bytes to free, and whether the hard limit is hit. */
export function planEviction(usage: Usage, s: EvictionSettings): EvictionPlan {
  let disk: TriggerState | null = null;
  let budget: TriggerState | null = null;
  const reasons: string[] = [];
  if (s.watch_path && usage.disk) {
    const total = usage.disk.usedBytes + usage.disk.availBytes;
    // Deleting x bytes moves x from used to available: used+avail stays, so the target is a share of it.
    disk = trigger(diskPercent(usage.disk), usage.disk.usedBytes - (s.target_percent / 100) * total, s);
    if (disk.over) reasons.push(`disk ${disk.percent.toFixed(1)}% >= ${s.threshold_percent}%`);
  }
  if (s.max_bytes > 0) {
    const percent = (usage.localBytes / s.max_bytes) * 100;
    budget = trigger(percent, usage.localBytes - (s.target_percent / 100) * s.max_bytes, s);
    if (budget.over) {
      reasons.push(
        `local tier ${fmtBytes(usage.localBytes)} = ${percent.toFixed(1)}% of max_bytes ${
          fmtBytes(s.max_bytes)
        } >= ${s.threshold_percent}%`,
      );
    }
  }
  const active = [disk, budget].filter((t): t is TriggerState => t !== null);
  return {
    evict: active.some((t) => t.over),
    bytesToFree: Math.max(0, ...active.map((t) => t.bytesToFree)),
    hardLimit: active.some((t) => t.hard),
    percent: Math.max(0, ...active.map((t) => t.percent)),
    disk,
    budget,
    reasons,
  };
}

/**
 * The usage with `pendingBytes` deleted by this process that the disk does not show as free yet counted as free
 * (the disk trigger's view; the catalog's local bytes already dropped with the deletes).
 */
export function withPending(usage: Usage, pendingBytes: number): Usage {
  if (!usage.disk || pendingBytes <= 0) return usage;
  const freed = Math.min(pendingBytes, usage.disk.usedBytes);
  return {
    ...usage,
    disk: { usedBytes: usage.disk.usedBytes - freed, availBytes: usage.disk.availBytes + freed },
  };
}

/** The usage expected once `bytes` of local objects are deleted (the disk may report it later). */
export function afterFreeing(usage: Usage, bytes: number): Usage {
  return {
    disk: usage.disk
      ? {
        usedBytes: Math.max(0, usage.disk.usedBytes - bytes),
        availBytes: usage.disk.availBytes + Math.min(bytes, usage.disk.usedBytes),
      }
      : null,
    localBytes: Math.max(0, usage.localBytes - bytes),
  };
}

/** The next wait of an exponential backoff: doubles from `initialMs`, at most `maxMs`. */
export function nextBackoff(previousMs: number, initialMs: number, maxMs: number): number {
  return previousMs <= 0 ? Math.min(initialMs, maxMs) : Math.min(previousMs * 2, maxMs);
}

/** Bytes for log lines: `812 B`, `12.3 KiB`, `4.5 MiB`, `1.20 GiB`. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The config's eviction settings with `watch_path` made absolute (relative paths are from the config's folder). */
export function evictionSettings(config: Pick<Config, "eviction" | "baseDir">): EvictionSettings {
  const s = { ...config.eviction };
  if (s.watch_path && !s.watch_path.startsWith("/")) {
    s.watch_path = `${config.baseDir.replace(/\/$/, "")}/${s.watch_path}`;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a frame from either tier
