/**
 * Eviction's round loop: the local store as a circular buffer. When the local tier is too full (src/retention/
 * plan.ts decides), the globally oldest frames (across robots) are moved to the archive until usage is back at
 * the target, a candidate batch at a time (src/retention/move.ts): the batch's frames are copied and verified
 * with several copies in flight, then their local objects are deleted together (one DeleteObjects request when
 * the store has `deleteMany`, each key's result checked). How many copies are in flight follows the consumer's
 * spare capacity (src/retention/pace.ts): fewer while its event loop runs late or its Kafka backlog grows, more
 * while it keeps up, all it takes at the hard limit. Frames stay findable through the catalog in either tier.
 *
 * Each round first finishes moves a crash left in "archiving". A row that says "archive" while the local object
 * still exists (possible only when a frame was stored again concurrently, or by hand) is found by a sweep of the
 * local store that runs once per Evictor (after the first round's eviction), and the local object is deleted
 * after the archive copy is checked.
 *
 * When the archive is unreachable nothing local is deleted; attempts back off exponentially (capped) with one
 * log line per failure streak. Whenever usage is at the hard limit `onPause(true)` asks the consumer to stop
 * fetching (Kafka keeps the frames), and `onPause(false)` follows once usage (estimated from the frames deleted)
 * is below it; with a working archive that is just the length of one round. With
 * `on_archive_failure = "drop_oldest"` and the archive unreachable at the hard limit, the oldest local frames are
 * deleted without a copy instead, down to threshold_percent (fewer losses than going down to the target), each
 * one logged and counted (`dropped`), and its catalog row removed (the frame no longer exists anywhere).
 */
import { type Catalog, type FrameRow, LeaseLostError } from "../catalog/catalog.ts";
import type { Leadership } from "./leader.ts";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { StoragePlugin } from "../plugin.ts";
import { readFrame } from "../store/tiers.ts";
import { isMd5Etag } from "../store/content.ts";
import { type CopyOutcome, FrameMover, type Outcome, StoreFailure } from "./move.ts";
import { MovePace } from "./pace.ts";
import {
  afterFreeing,
  bytesAbove,
  type EvictionPlan,
  type EvictionSettings,
  fmtBytes,
  nextBackoff,
  planEviction,
  statfsUsage,
  type Usage,
  withPending,
} from "./plan.ts";
import { FreedLedger } from "./ledger.ts";

export interface EvictorOptions {
  /** The local tier (plugin rustfs). */
  local: StoragePlugin;
  /** The archive tier (plugin s3_archive). */
  archive: StoragePlugin;
  catalog: Catalog;
  /** `[eviction]`, with watch_path absolute (see evictionSettings). */
  settings: EvictionSettings;
  /** aws_s3.prefix. */
  archivePrefix: string;
  /** rustfs.prefix: what the once-per-Evictor sweep of the local store lists. */
  localPrefix?: string;
  log: Logger;
  /** Measures usage; default: statfs of watch_path (through `statfs`) and the catalog's local bytes. */
  usage?: () => Usage | Promise<Usage>;
  /** statfs seam for the default usage(). */
  statfs?: (path: string) => { bsize: number; blocks: number; bfree: number; bavail: number };
  /** Called with true to ask the consumer to stop fetching, with false to resume. */
  onPause?: (paused: boolean) => void | Promise<void>;
  now?: () => number;
  /** Waits `ms` or until the signal aborts (resolves either way). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * Most frame copies in flight; how many run follows the consumer's spare capacity up to this (see
   * src/retention/pace.ts). Default 8.
   */
  concurrency?: number;
  /**
   * The consumer's backlog (Kafka messages behind the newest), or null when unknown: eviction slows down while it
   * grows. Without it, only this process's event-loop lateness paces eviction.
   */
  backlog?: () => number | null;
  /** First retry delay after a store failure. Default 1000 ms. */
  backoffInitialMs?: number;
  /** Longest retry delay. Default 60000 ms. */
  backoffMaxMs?: number;
  /** Progress line period during long rounds. Default 10000 ms. */
  progressIntervalMs?: number;
  /** Sweep the local store for rows in "archive" whose local object still exists, on the first round. Default true. */
  sweep?: boolean;
  /**
   * The next frames to evict (or drop), in order. Default: the globally oldest local frames, labelled (pinned)
   * ones last when archiving (`oldestLocalPinnedLast`) and never when dropping (`oldestLocalUnpinned`).
   */
  candidates?: (limit: number) => FrameRow[] | Promise<FrameRow[]>;
  /**
   * The evictor lease when several hosts share the catalog: rounds archive only while this process holds it
   * (src/retention/leader.ts), and every tier change is fenced by it. Without it this evictor acts alone.
   */
  leadership?: Leadership;
}

export interface EvictorStats {
  rounds: number;
  /** Frames that left the local tier: archived + dropped. */
  evicted: number;
  /** Frames copied, verified and deleted locally. */
  archived: number;
  archivedBytes: number;
  /** Frames deleted without an archive copy (drop_oldest while the archive was unreachable). */
  dropped: number;
  droppedBytes: number;
  /** Frames whose local object was gone without an archive copy when eviction reached them. */
  lost: number;
  /** Interrupted moves finished (rows left in "archiving", local leftovers of archived frames). */
  recovered: number;
  /** Failed attempts to reach a store. */
  failures: number;
  /** Whether the consumer is asked to pause now. */
  paused: boolean;
  /** How often the consumer was paused. */
  pauses: number;
  /** Whether the archive (or local store) is failing now. */
  failing: boolean;
  /** Usage after the last check in percent (the highest trigger; estimated from frame sizes when it deleted). */
  lastPercent: number | null;
  /** With a lease: whether this process was the evictor at the last round (null: no lease, always). */
  leading: boolean | null;
  /** Rounds this process became the evictor in (with a lease). */
  takeovers: number;
}

/** The evictor's state in the catalog's status store (JSON names, as GET /api/storage gives it). */
export interface EvictorHealth {
  state:
    | "idle"
    | "moving"
    | "paused at the hard limit"
    | "archive unreachable"
    | "archive refusing copies"
    | "local store unreachable";
  /** When the current failure streak began (ms since the epoch), null when nothing fails. */
  since_ms: number | null;
  /** The last failure's message while failing. */
  failure: string | null;
  failed_attempts: number;
  /** The consumer is asked to stop fetching. */
  paused: boolean;
  /** Counters since this process started. */
  frames_archived: number;
  bytes_archived: number;
  frames_dropped: number;
  frames_lost: number;
  recovered: number;
  failures: number;
  rounds: number;
  /** Usage after the last check (the highest trigger), percent. */
  usage_percent: number | null;
  /** Bytes deleted that the watched disk does not show as free yet (see src/retention/ledger.ts). */
  pending_free_bytes: number;
  last_round: {
    at_ms: number;
    archived: number;
    archived_bytes: number;
    dropped: number;
    lost: number;
    seconds: number;
    failure: string | null;
    evicting: boolean;
    bytes_to_free: number;
  } | null;
  thresholds: {
    threshold_percent: number;
    target_percent: number;
    hard_limit_percent: number;
    max_bytes: number;
    watch_path: string | null;
    check_interval_secs: number;
    on_archive_failure: string;
  };
  host: string;
  pid: number;
}

export interface RoundResult {
  plan: EvictionPlan | null;
  archived: number;
  archivedBytes: number;
  dropped: number;
  droppedBytes: number;
  lost: number;
  recovered: number;
  /** The failure that stopped the round, if any. */
  failure: string | null;
  /**
   * Bytes deleted by eviction that the watched disk did not show as free at the round's start, counted as free by
   * its plan (see src/retention/ledger.ts).
   */
  pendingFreeBytes: number;
  /** True when the round skipped archive work because of the backoff. */
  backedOff: boolean;
  paused: boolean;
  seconds: number;
  /** Archived frames per second of the round. */
  framesPerSecond: number;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });

export class Evictor {
  readonly #o:
    & Required<Omit<EvictorOptions, "usage" | "statfs" | "onPause" | "candidates" | "leadership" | "backlog">>
    & Pick<EvictorOptions, "onPause" | "leadership">;
  readonly #pace: MovePace;
  readonly #usage: () => Usage | Promise<Usage>;
  readonly #candidates: (limit: number) => FrameRow[] | Promise<FrameRow[]>;
  readonly #dropCandidates: (limit: number) => FrameRow[] | Promise<FrameRow[]>;
  readonly #mover: FrameMover;
  readonly #stats: EvictorStats = {
    rounds: 0,
    evicted: 0,
    archived: 0,
    archivedBytes: 0,
    dropped: 0,
    droppedBytes: 0,
    lost: 0,
    recovered: 0,
    failures: 0,
    paused: false,
    pauses: 0,
    failing: false,
    lastPercent: null,
    leading: null,
    takeovers: 0,
  };
  #round: Promise<RoundResult> | null = null;
  #loop: Promise<void> | null = null;
  #stopping = false;
  #abort = new AbortController();
  #swept = false;
  /** The current pause was reported at error level. */
  #pauseLoud = false;
  /** Current failure streak: since when, which store, and whether it was unreachable or refused a copy. */
  #streak:
    | { since: number; attempts: number; store: string; kind: StoreFailure["kind"]; message: string }
    | null = null;
  #backoffMs = 0;
  #nextAttemptMs = 0;
  /** Bytes deleted from the watched disk that it does not show as free yet (see src/retention/ledger.ts). */
  readonly #ledger: FreedLedger;

  constructor(options: EvictorOptions) {
    const statfs = options.statfs;
    this.#o = {
      localPrefix: "",
      now: Date.now,
      sleep: defaultSleep,
      concurrency: 8,
      backoffInitialMs: 1000,
      backoffMaxMs: 60_000,
      progressIntervalMs: 10_000,
      sweep: true,
      ...options,
      log: options.log.child("evict"),
    };
    this.#mover = new FrameMover({ ...this.#o, fence: () => this.#o.leadership?.fence() });
    this.#pace = new MovePace({
      max: this.#o.concurrency,
      start: Math.min(2, this.#o.concurrency),
      backlog: options.backlog,
      now: this.#o.now,
    });
    const catalog = options.catalog;
    this.#candidates = options.candidates ?? ((limit) => catalog.oldestLocalPinnedLast(limit));
    // Dropping deletes without a copy: labelled (pinned) frames are never dropped, only archived.
    this.#dropCandidates = options.candidates ?? ((limit) => catalog.oldestLocalUnpinned(limit));
    this.#usage = options.usage ?? (async () => {
      const s = this.#o.settings;
      // The catalog first, then the disk: the ledger compares their changes (a frame stored in between then
      // shows on the disk before the catalog, which the next measurement evens out).
      const t = await this.#o.catalog.totals();
      return {
        disk: s.watch_path ? statfsUsage(s.watch_path, statfs) : null,
        localBytes: t.local.bytes + t.archiving.bytes,
      };
    });
    this.#ledger = new FreedLedger((this.#o.settings.free_lag_secs ?? 600) * 1000);
  }

  /** A copy of the counters. */
  stats(): EvictorStats {
    return { ...this.#stats };
  }

  /** `archived 120 (11.8 MiB) dropped 0 lost 0 recovered 0 failures 0 usage 69.8% paused no`. */
  statsLine(): string {
    const s = this.#stats;
    return `archived ${s.archived} (${fmtBytes(s.archivedBytes)}) dropped ${s.dropped}` +
      (s.dropped ? ` (${fmtBytes(s.droppedBytes)})` : "") +
      ` lost ${s.lost} recovered ${s.recovered} failures ${s.failures}` +
      ` usage ${s.lastPercent === null ? "-" : `${s.lastPercent.toFixed(1)}%`}` +
      ` paused ${s.paused ? "YES" : "no"}${s.failing ? " archive FAILING" : ""}` +
      (s.archived ? ` copies in flight ${this.#pace.limit} (${this.#pace.reason})` : "") +
      (s.leading === null ? "" : s.leading ? " (the evictor)" : " (standby: another host evicts)");
  }

  /** Reads a frame from whichever tier holds it. */
  async fetchFrame(key: string): Promise<Uint8Array | null> {
    const { catalog, local, archive, archivePrefix } = this.#o;
    return readFrame({ local, archive, archivePrefix }, key, (await catalog.get(key))?.tier);
  }

  /** Checks every `check_interval_secs` (sooner while retrying a failing store) until stop(). */
  start(): void {
    if (this.#loop) return;
    this.#o.leadership?.start();
    this.#stopping = false;
    this.#abort = new AbortController();
    this.#loop = (async () => {
      while (!this.#stopping) {
        try {
          await this.runOnce();
        } catch (error) {
          if (error instanceof LeaseLostError) this.#o.log.warn(`round stopped: ${error.message}`);
          else this.#o.log.error(`eviction round failed: ${messageOf(error)}`);
        }
        if (this.#stopping) break;
        await this.#o.sleep(this.#nextDelayMs(), this.#abort.signal);
      }
    })();
  }

  /** Stops the loop; the frames in flight finish their move first. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    await this.#loop;
    await this.#round?.catch(() => {});
    this.#loop = null;
    await this.#o.leadership?.stop();
  }

  #nextDelayMs(): number {
    const interval = this.#o.settings.check_interval_secs * 1000;
    const untilAttempt = this.#nextAttemptMs - this.#o.now();
    // While a store fails, the next attempt may come sooner than the next check (never a busy loop).
    return this.#streak && untilAttempt > 0 ? Math.min(interval, untilAttempt) : interval;
  }

  /**
   * One check: finish interrupted moves, measure, and evict when a trigger fires. Concurrent calls share the
   * round in progress.
   */
  runOnce(): Promise<RoundResult> {
    this.#round ??= this.#doRound().then(async (r) => {
      await this.#report(r);
      return r;
    }).finally(() => (this.#round = null));
    return this.#round;
  }

  /**
   * The evictor's state as storage health shows it (GET /api/storage, the robots page): what it does now, since
   * when the archive fails, its counters, the last round and the thresholds it works with.
   */
  health(moving = false): EvictorHealth {
    const s = this.#stats;
    const settings = this.#o.settings;
    const streak = this.#streak;
    const state: EvictorHealth["state"] = streak?.store === "archive"
      ? streak.kind === "refused" ? "archive refusing copies" : "archive unreachable"
      : streak
      ? "local store unreachable"
      : s.paused
      ? "paused at the hard limit"
      : moving
      ? "moving"
      : "idle";
    return {
      state,
      since_ms: streak?.since ?? null,
      failure: streak?.message ?? null,
      failed_attempts: streak?.attempts ?? 0,
      paused: s.paused,
      frames_archived: s.archived,
      bytes_archived: s.archivedBytes,
      frames_dropped: s.dropped,
      frames_lost: s.lost,
      recovered: s.recovered,
      failures: s.failures,
      rounds: s.rounds,
      usage_percent: s.lastPercent,
      pending_free_bytes: this.#ledger.pending,
      last_round: this.#lastRound,
      thresholds: {
        threshold_percent: settings.threshold_percent,
        target_percent: settings.target_percent,
        hard_limit_percent: settings.hard_limit_percent,
        max_bytes: settings.max_bytes,
        watch_path: settings.watch_path || null,
        check_interval_secs: settings.check_interval_secs,
        on_archive_failure: settings.on_archive_failure,
      },
      host: hostName(),
      pid: Deno.pid,
    };
  }

  #lastRound: EvictorHealth["last_round"] = null;

  /** Records the state in the catalog's status store ("evictor"); the lease holder only, when there is a lease. */
  async #report(r: RoundResult | null): Promise<void> {
    if (this.#stats.leading === false) return;
    if (r) {
      this.#lastRound = {
        at_ms: this.#o.now(),
        archived: r.archived,
        archived_bytes: r.archivedBytes,
        dropped: r.dropped,
        lost: r.lost,
        seconds: r.seconds,
        failure: r.failure,
        evicting: r.plan?.evict ?? false,
        bytes_to_free: r.plan?.bytesToFree ?? 0,
      };
    }
    try {
      await this.#o.catalog.putStatus(
        "evictor",
        this.health(r === null) as unknown as Record<string, unknown>,
        this.#o.now(),
      );
    } catch (error) {
      this.#o.log.debug(`cannot record the evictor's state in the catalog: ${messageOf(error)}`);
    }
  }

  async #doRound(): Promise<RoundResult> {
    const { log, settings } = this.#o;
    const started = this.#o.now();
    const r: RoundResult = {
      plan: null,
      archived: 0,
      archivedBytes: 0,
      dropped: 0,
      droppedBytes: 0,
      lost: 0,
      recovered: 0,
      failure: null,
      pendingFreeBytes: 0,
      backedOff: false,
      paused: this.#stats.paused,
      seconds: 0,
      framesPerSecond: 0,
    };
    this.#stats.rounds++;
    // With several candidate hosts only the lease holder archives; the others still measure and pause their
    // consumer at the hard limit.
    const lead = this.#o.leadership;
    const leading = lead ? (await lead.hold()) !== null : true;
    if (lead) {
      if (leading && this.#stats.leading !== true) this.#stats.takeovers++;
      this.#stats.leading = leading;
    }
    const mayTry = started >= this.#nextAttemptMs && leading;
    r.backedOff = leading && !mayTry;
    let failure: StoreFailure | null = null;
    let contacted = false;

    if (mayTry && !this.#stopping) {
      try {
        contacted = (await this.#recover(r)) || contacted;
      } catch (error) {
        if (!(error instanceof StoreFailure)) throw error;
        failure = error;
      }
    }

    let measured: Usage;
    try {
      measured = await this.#usage();
    } catch (error) {
      log.error(`cannot measure usage: ${messageOf(error)}; no eviction this round`);
      return this.#finish(r, started);
    }
    // Space this process deleted that the disk does not show yet counts as free: the plan does not evict the same
    // bytes again while the store's trash sweep has not run. The disk as measured still decides the hard limit.
    const pending = measured.disk
      ? this.#ledger.observe(measured.disk.usedBytes, measured.localBytes, this.#o.now())
      : 0;
    const usage = withPending(measured, pending);
    r.pendingFreeBytes = pending;
    const plan = planEviction(usage, settings);
    r.plan = plan;
    if (pending > 0 && measured.disk) {
      log.info(
        `disk ${planEviction(measured, settings).disk!.percent.toFixed(1)}% as measured, ${
          plan.disk!.percent.toFixed(1)
        }% counting ${fmtBytes(pending)} deleted by eviction that the store has not freed yet`,
      );
    }
    const diskFull = planEviction(measured, settings).disk?.hard === true;

    let freed = 0;
    if (plan.evict && mayTry && !failure && !this.#stopping) {
      if (plan.hardLimit) {
        await this.#setPaused(true, `usage ${plan.percent.toFixed(1)}% is at the hard limit`);
      }
      log.info(
        `${plan.reasons.join("; ")}: archiving the oldest frames to free ${fmtBytes(plan.bytesToFree)} ` +
          `(target ${settings.target_percent}%)`,
      );
      this.#stats.lastPercent = plan.percent;
      await this.#report(null);
      const progress = { freed: 0 };
      try {
        await this.#evict(plan.bytesToFree, r, progress, urgencyOf(plan, settings));
        contacted = true;
      } catch (error) {
        if (!(error instanceof StoreFailure)) throw error;
        failure = error;
      }
      freed = progress.freed;
      const seconds = Math.max(0.001, (this.#o.now() - started) / 1000);
      log.info(
        `archived ${r.archived} frames (${fmtBytes(r.archivedBytes)}) in ${seconds.toFixed(1)} s ` +
          `(${(r.archived / seconds).toFixed(1)} frames/s)` +
          (r.lost ? `, ${r.lost} lost before eviction` : "") +
          `; usage now ~${planEviction(afterFreeing(usage, freed), settings).percent.toFixed(1)}%` +
          (plan.disk ? " (estimated from frame sizes; df may lag)" : ""),
      );
    }

    // Once per Evictor, after the urgent work: local leftovers of archived frames (a long listing on a big store).
    if (!failure && mayTry && this.#o.sweep && !this.#swept && !this.#stopping) {
      try {
        freed += await this.#sweep(r);
        this.#swept = true;
        contacted = true;
      } catch (error) {
        if (!(error instanceof StoreFailure)) throw error;
        failure = error;
      }
    }

    if (failure) this.#noteFailure(failure);
    else if (contacted) this.#noteSuccess();

    let after = planEviction(afterFreeing(usage, freed), settings);
    // The disk as measured, less this round's deletes (the ledger's earlier ones have not shown up by now).
    const stillFull = () =>
      diskFull && planEviction(afterFreeing(measured, freed), settings).disk?.hard === true;
    if (after.hardLimit && this.#streak && !this.#stopping) {
      if (settings.on_archive_failure === "drop_oldest") {
        try {
          freed += await this.#drop(after, afterFreeing(usage, freed), r);
        } catch (error) {
          if (!(error instanceof StoreFailure)) throw error;
          this.#noteFailure(error);
        }
        after = planEviction(afterFreeing(usage, freed), settings);
      }
    }
    this.#stats.lastPercent = after.percent;
    if (!plan.evict) log.debug(`usage ${plan.percent.toFixed(1)}%: below the threshold, nothing to do`);
    if (after.hardLimit && !this.#stopping) {
      const level = `usage ${after.percent.toFixed(1)}% >= hard limit ${settings.hard_limit_percent}%`;
      const why = this.#streak
        ? `${level} and the ${this.#streak.store} is unreachable`
        : `${level} and nothing more could be archived this round`;
      await this.#setPaused(true, why, true);
    } else if (stillFull() && !this.#stopping) {
      await this.#setPaused(
        true,
        `disk ${planEviction(measured, settings).percent.toFixed(1)}% >= hard limit ` +
          `${settings.hard_limit_percent}%, of which ${
            fmtBytes(pending)
          } deleted by eviction is not freed by the ` +
          `store yet (its trash sweep)`,
      );
    } else if (this.#stats.paused && !after.hardLimit) {
      await this.#setPaused(false, `usage ~${after.percent.toFixed(1)}% is below the hard limit again`);
    }
    if (failure) r.failure = failure.message;
    return this.#finish(r, started);
  }

  #finish(r: RoundResult, started: number): RoundResult {
    r.seconds = (this.#o.now() - started) / 1000;
    r.framesPerSecond = r.archived / Math.max(0.001, r.seconds);
    r.paused = this.#stats.paused;
    return r;
  }

  /** Asks the consumer to pause or resume; `loud` (error level) when a store failure is the cause. */
  async #setPaused(paused: boolean, why: string, loud = false): Promise<void> {
    const { log, settings, onPause } = this.#o;
    const what = onPause
      ? "PAUSING the consumer (it stops fetching; Kafka keeps the frames)"
      : "the local store is nearly full (no consumer in this process to pause)";
    if (this.#stats.paused === paused) {
      if (paused && loud && !this.#pauseLoud) {
        this.#pauseLoud = true;
        log.error(`${why}: still ${what} until usage is below ${settings.hard_limit_percent}%`);
      }
      return;
    }
    this.#stats.paused = paused;
    if (paused) {
      this.#stats.pauses++;
      this.#pauseLoud = loud;
      const line = `${why}: ${what} until usage is below ${settings.hard_limit_percent}%`;
      if (loud) log.error(line);
      else log.warn(line);
    } else {
      log.warn(`${why}: ${onPause ? "resuming the consumer" : "below the hard limit"}`);
    }
    try {
      await this.#o.onPause?.(paused);
    } catch (error) {
      this.#o.log.error(`onPause(${paused}) failed: ${messageOf(error)}`);
    }
  }

  #noteFailure(f: StoreFailure): void {
    const { log, now } = this.#o;
    this.#stats.failures++;
    this.#stats.failing = true;
    this.#backoffMs = nextBackoff(this.#backoffMs, this.#o.backoffInitialMs, this.#o.backoffMaxMs);
    this.#nextAttemptMs = now() + this.#backoffMs;
    const storeName = f.store === "archive"
      ? `archive ${this.#o.archive.name} (bucket ${this.#o.archive.bucket})`
      : `local store ${this.#o.local.name} (bucket ${this.#o.local.bucket})`;
    const what = f.kind === "refused" ? "refusing copies" : "failing";
    if (!this.#streak || this.#streak.kind !== f.kind || this.#streak.store !== storeLabel(f)) {
      const since = this.#streak?.since ?? now();
      this.#streak = { since, attempts: 1, store: storeLabel(f), kind: f.kind, message: f.message };
      log.warn(
        `${storeName} ${what}: ${f.message}; nothing is deleted locally until it works again; retrying with ` +
          `backoff (${this.#backoffMs} ms doubling up to ${this.#o.backoffMaxMs} ms)`,
      );
    } else {
      this.#streak.attempts++;
      this.#streak.message = f.message;
      log.debug(`${storeName} still ${what} (attempt ${this.#streak.attempts}): ${f.message}`);
    }
  }

  #noteSuccess(): void {
    if (this.#streak) {
      const seconds = ((this.#o.now() - this.#streak.since) / 1000).toFixed(1);
      this.#o.log.info(
        `${this.#streak.store} works again after ${seconds} s (${this.#streak.attempts} failed attempts)`,
      );
    }
    this.#streak = null;
    this.#stats.failing = false;
    this.#backoffMs = 0;
    this.#nextAttemptMs = 0;
  }

  /**
   * Runs `work` over rows with at most `limit()` at once (read again as each one ends, so the pace can change it
   * while the batch runs); the first failure stops taking new rows, and so does `work` returning false.
   */
  async #pool(
    rows: FrameRow[],
    work: (row: FrameRow) => Promise<boolean>,
    limit: () => number = () => this.#o.concurrency,
  ): Promise<void> {
    let next = 0;
    let active = 0;
    let failure: unknown = null;
    let more = true;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (more && failure === null && !this.#stopping && next < rows.length && active < limit()) {
          const row = rows[next++];
          active++;
          work(row).then(
            (go) => void (more &&= go),
            (error) => void (failure ??= error),
          ).finally(() => {
            active--;
            pump();
          });
        }
        if (active === 0) resolve();
      };
      pump();
    });
    if (failure !== null) throw failure;
  }

  /**
   * Copies a batch of frames (`copyLimit` at once); `onCopy` sees each copy as it ends (false: take no more rows).
   * A copy that fails stops the batch and comes back as `failure`, next to the copies verified before it (which
   * still have to be finished).
   */
  async #copyBatch(
    rows: FrameRow[],
    r: RoundResult,
    recovery: boolean,
    onCopy: (outcome: CopyOutcome) => boolean,
    copyLimit: () => number,
  ): Promise<{ copies: { row: FrameRow; bytes: number }[]; attempted: number; failure: unknown }> {
    const copies: { row: FrameRow; bytes: number }[] = [];
    let attempted = 0;
    let failure: unknown = null;
    try {
      await this.#pool(rows, async (row) => {
        attempted++;
        const outcome = await this.#mover.copy(row);
        if (outcome.kind === "copied") copies.push(outcome);
        else this.#count(outcome, r, recovery);
        return onCopy(outcome);
      }, copyLimit);
    } catch (error) {
      failure = error;
    }
    return { copies, attempted, failure };
  }

  /** Deletes the local objects of verified copies together and counts them; returns the bytes freed. */
  async #finishBatch(
    copies: { row: FrameRow; bytes: number }[],
    r: RoundResult,
    recovery: boolean,
  ): Promise<number> {
    let freed = 0;
    for (const done of await this.#mover.finish(copies)) {
      if (done.kind !== "archived") continue;
      this.#count({ kind: "archived", bytes: done.bytes }, r, recovery);
      freed += done.bytes;
    }
    this.#ledger.deleted(freed, this.#o.now());
    return freed;
  }

  /** Copies a batch, then finishes it (see #copyBatch); throws the first failure once the copies are finished. */
  async #moveBatch(
    rows: FrameRow[],
    r: RoundResult,
    recovery: boolean,
    onCopy: (outcome: CopyOutcome) => boolean,
    copyLimit: () => number,
  ): Promise<{ attempted: number; freed: number }> {
    const { copies, attempted, failure } = await this.#copyBatch(rows, r, recovery, onCopy, copyLimit);
    const freed = copies.length > 0 ? await this.#finishBatch(copies, r, recovery) : 0;
    if (failure !== null) throw failure;
    return { attempted, freed };
  }

  /** Finishes moves left in "archiving" by a crash or a failure; true when a store was contacted. */
  async #recover(r: RoundResult): Promise<boolean> {
    const { catalog, settings, log } = this.#o;
    let contacted = false;
    const seen = new Set<string>();
    for (;;) {
      const rows = (await catalog.inTier("archiving", settings.batch_size + seen.size)).filter((row) =>
        !seen.has(row.key)
      );
      if (rows.length === 0 || this.#stopping) break;
      if (seen.size === 0) log.info(`finishing ${rows.length}+ interrupted move(s) left in "archiving"`);
      contacted = true;
      for (const row of rows) seen.add(row.key);
      await this.#moveBatch(rows, r, true, () => true, () => this.#o.concurrency);
    }
    return contacted;
  }

  /**
   * Deletes local leftovers of frames the catalog says are archived, after checking the archive copy; returns the
   * bytes deleted.
   */
  async #sweep(r: RoundResult): Promise<number> {
    const { catalog, local, archive, archivePrefix, log, now } = this.#o;
    let listed = 0;
    let freed = 0;
    let lastProgress = now();
    try {
      for await (const item of local.list({ prefix: this.#o.localPrefix })) {
        listed++;
        if (this.#stopping) return freed;
        if (now() - lastProgress >= this.#o.progressIntervalMs) {
          lastProgress = now();
          log.info(`sweep of the local store for leftovers of archived frames: ${listed} objects checked`);
        }
        const row = await catalog.get(item.key);
        if (row?.tier !== "archive") continue;
        const copy = await this.#mover.archiveCall(
          "checking the archive copy",
          () => archive.head(archivePrefix + item.key),
        );
        const same = copy !== null && copy.size === item.size &&
          (isMd5Etag(copy.etag) && isMd5Etag(item.etag)
            ? copy.etag === item.etag
            : await this.#mover.sameContent(item.key));
        if (same) {
          await this.#mover.localCall(`deleting ${item.key}`, () => local.delete(item.key));
          // Its row says "archive": the catalog's local bytes do not drop with it.
          this.#ledger.deleted(item.size, now(), false);
          freed += item.size;
          r.recovered++;
          this.#stats.recovered++;
          log.info(`${item.key}: archived, its local object was left behind; deleted it locally`);
        } else {
          await catalog.setTier(item.key, "local", now(), this.#o.leadership?.fence());
          log.warn(
            `${item.key}: the catalog said "archive" but the archive has no matching copy; it is "local" again`,
          );
        }
      }
    } catch (error) {
      if (error instanceof StoreFailure) throw error;
      throw new StoreFailure("local", "listing the local store", error);
    }
    log.debug(`sweep of the local store: ${listed} objects checked`);
    return freed;
  }

  #count(outcome: Outcome, r: RoundResult, recovery: boolean): void {
    if (outcome.kind === "archived") {
      r.archived++;
      r.archivedBytes += outcome.bytes;
      this.#stats.archived++;
      this.#stats.evicted++;
      this.#stats.archivedBytes += outcome.bytes;
      if (recovery) {
        r.recovered++;
        this.#stats.recovered++;
      }
    } else if (outcome.kind === "marked") {
      r.recovered++;
      this.#stats.recovered++;
    } else if (outcome.kind === "lost") {
      r.lost++;
      this.#stats.lost++;
    }
  }

  /**
   * Archives the oldest local frames until `bytesToFree` bytes are deleted locally (counted in `progress`), a
   * candidate batch at a time, copies paced by the consumer's spare capacity (all it takes at the hard limit).
   */
  async #evict(
    bytesToFree: number,
    r: RoundResult,
    progress: { freed: number },
    urgency: number,
  ): Promise<void> {
    const { settings, log, now } = this.#o;
    const started = now();
    let lastProgress = started;
    const pace = this.#pace;
    pace.start();
    // Usage is measured again every second while the round runs: frames keep coming in, and the closer usage gets
    // to the hard limit, the more copies the pace keeps in flight whatever the consumer is doing.
    let measuring = false;
    const remeasure = setInterval(() => {
      if (measuring) return;
      measuring = true;
      Promise.resolve(this.#usage()).then(
        (usage) =>
          void (urgency = urgencyOf(
            planEviction(withPending(usage, this.#ledger.pending), settings),
            settings,
          )),
        () => {}, // the next check reports it
      ).finally(() => (measuring = false));
    }, 1000);
    // The previous batch's deletes run while the next batch is copied (one delete request in flight).
    let finishing: { promise: Promise<number>; bytes: number } | null = null;
    const settle = async () => {
      if (!finishing) return;
      const { promise } = finishing;
      try {
        progress.freed += await promise;
      } finally {
        finishing = null;
      }
    };
    try {
      while (progress.freed + (finishing?.bytes ?? 0) < bytesToFree && !this.#stopping) {
        const rows = await this.#candidates(settings.batch_size);
        if (rows.length === 0) {
          await settle();
          if (progress.freed >= bytesToFree) break;
          log.warn(
            `nothing left in the local tier to archive, ${
              fmtBytes(bytesToFree - progress.freed)
            } short of the ` +
              `target: the rest is used by other data`,
          );
          break;
        }
        // Bytes copied and not yet freed: the batch takes no more rows once they would free enough.
        let copied = finishing?.bytes ?? 0;
        const batch = await this.#copyBatch(rows, r, false, (outcome) => {
          if (outcome.kind === "copied") copied += outcome.bytes;
          pace.tick(urgency);
          if (now() - lastProgress >= this.#o.progressIntervalMs) {
            lastProgress = now();
            const seconds = (lastProgress - started) / 1000;
            log.info(
              `progress: ${r.archived} frames archived, ${fmtBytes(progress.freed + copied)} of ${
                fmtBytes(bytesToFree)
              } copied, ${
                (r.archived / seconds).toFixed(1)
              } frames/s, ${pace.limit} in flight (${pace.reason})`,
            );
          }
          return progress.freed + copied < bytesToFree;
        }, () => urgency >= 1 ? pace.max : pace.limit);
        await settle();
        if (batch.copies.length > 0) {
          const promise = this.#finishBatch(batch.copies, r, false);
          // Awaited by settle(); until then a failure must not count as unhandled.
          promise.catch(() => {});
          finishing = { promise, bytes: batch.copies.reduce((n, c) => n + c.bytes, 0) };
        }
        if (batch.failure !== null) {
          await settle();
          throw batch.failure;
        }
        if (batch.attempted === 0) break; // stopping, or candidates that cannot move: never spin
      }
      await settle();
    } finally {
      clearInterval(remeasure);
      pace.stop();
      // A failure above left a batch's deletes running: wait for them, whatever they do.
      await (finishing as { promise: Promise<number> } | null)?.promise.catch(() => {});
    }
  }

  /** drop_oldest: deletes the oldest local frames without a copy until usage is under threshold_percent. */
  async #drop(after: EvictionPlan, estimated: Usage, r: RoundResult): Promise<number> {
    const { catalog, local, settings, log } = this.#o;
    // Down to the threshold: enough that the next check does not drop again at once, and fewer frames lost than
    // going down to the target (the archive may be back soon).
    const needed = bytesAbove(estimated, settings, settings.threshold_percent);
    log.error(
      `usage ${after.percent.toFixed(1)}% >= hard limit ${settings.hard_limit_percent}% and the archive is ` +
        `unreachable: on_archive_failure = "drop_oldest", DELETING the oldest frames without a copy to free ` +
        `${fmtBytes(needed)}`,
    );
    let freed = 0;
    let planned = 0;
    while (freed < needed && !this.#stopping) {
      const rows = await this.#dropCandidates(settings.batch_size);
      if (rows.length === 0) break;
      await this.#pool(rows, async (row) => {
        // Reserved before the delete, so parallel deletes never drop more than needed.
        if (planned >= needed) return false;
        planned += row.size;
        await this.#mover.localCall(`deleting ${row.key}`, () => local.delete(row.key));
        await catalog.remove(row.key);
        this.#ledger.deleted(row.size, this.#o.now());
        freed += row.size;
        r.dropped++;
        r.droppedBytes += row.size;
        this.#stats.dropped++;
        this.#stats.evicted++;
        this.#stats.droppedBytes += row.size;
        log.warn(
          `DROPPED ${row.key} (${row.size} bytes, robot ${row.robotId}): deleted without an archive copy`,
        );
        return freed < needed;
      });
    }
    return freed;
  }
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

const storeLabel = (f: StoreFailure) => f.store === "archive" ? "archive" : "local store";

/** Where usage is between the threshold (0) and the hard limit (1 or more), for the pace of a round's copies. */
function urgencyOf(plan: EvictionPlan, settings: EvictionSettings): number {
  if (plan.hardLimit) return 1;
  const span = settings.hard_limit_percent - settings.threshold_percent;
  return span > 0 ? Math.max(0, (plan.percent - settings.threshold_percent) / span) : 1;
}
