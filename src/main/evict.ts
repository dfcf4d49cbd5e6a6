/**
 * `deno task evict [--once] [--config PATH]`: the evictor as its own process. Moves the globally oldest frames
 * from the local store to the archive when the local tier is over `eviction.threshold_percent`, down to
 * `eviction.target_percent` (see src/retention/evictor.ts). Safe to kill at any moment: the next run finishes or redoes the
 * interrupted move.
 */
import { openCatalog } from "../catalog/open.ts";
import { reconcile } from "../store/reconcile.ts";
import { parseCli, runMain } from "./cli.ts";
import { loadConfig } from "../config.ts";
import { messageOf, ServiceError } from "../errors.ts";
import { Leadership } from "../retention/leader.ts";
import { Evictor } from "../retention/evictor.ts";
import { evictionSettings, fmtBytes, statfsUsage, triggerProblem } from "../retention/plan.ts";
import { createLogger } from "../log.ts";
import { archiveStore, localStore } from "../filter/loader.ts";

const USAGE = `usage: deno task evict [--once] [--config PATH]

Archives the oldest frames (all robots) from rustfs.bucket to aws_s3.bucket when the local tier is over
eviction.threshold_percent of the disk at eviction.watch_path and/or of eviction.max_bytes, down to
eviction.target_percent; checks every eviction.check_interval_secs.
  --once          one check (finish interrupted moves, evict if needed), print the counts, exit
  --config PATH   config file (default: ./config.toml, built-in defaults when absent)
Archive credentials come from the AWS SDK chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role).
Ctrl-C / SIGTERM: the frames in flight finish their move, then it exits; a second signal exits at once (safe:
the next run finishes the interrupted move).
Exit codes: 0 done, 1 a store failed (--once: the archive or local store was unreachable), 2 bad config.`;

runMain(async () => {
  const { values } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    once: { type: "boolean" },
  });
  const config = await loadConfig(values.config);
  const log = createLogger(config.logging);
  const settings = evictionSettings(config);
  if (!settings.enabled) {
    log.info("eviction.enabled = false: nothing to do");
    return 0;
  }
  const problem = triggerProblem(settings);
  if (problem) throw new RangeError(problem);
  if (settings.watch_path) {
    try {
      statfsUsage(settings.watch_path);
    } catch (error) {
      throw new RangeError(
        `eviction.watch_path ${settings.watch_path}: cannot measure its disk (${messageOf(error)}): ` +
          `set it to an existing folder on the local store's disk`,
      );
    }
  }

  const local = await localStore(config);
  const archive = await archiveStore(config);
  const archiveWhere = `${
    config.aws_s3.endpoint || `AWS S3 (${config.aws_s3.region})`
  } bucket ${config.aws_s3.bucket}`;
  try {
    await local.open();
  } catch (error) {
    throw new ServiceError(
      "s3",
      `local store ${config.rustfs.endpoint} bucket ${config.rustfs.bucket}: ${messageOf(error)}`,
      { retriable: false, cause: error },
    );
  }
  try {
    await archive.open();
  } catch (error) {
    const msg = messageOf(error);
    throw new ServiceError(
      "s3",
      /does not exist/.test(msg)
        ? `archive bucket ${config.aws_s3.bucket} does not exist at ${
          config.aws_s3.endpoint || "AWS S3"
        }: create it (aws s3 mb s3://${config.aws_s3.bucket} --region ${config.aws_s3.region}) or fix aws_s3.bucket`
        : `archive ${archiveWhere} is not usable: ${msg}`,
      { retriable: false, cause: error },
    );
  }

  const catalog = await openCatalog(config);
  const path = catalog.where;
  // The budget counts what the catalog knows: index frame objects it lacks first (a lost or replaced catalog).
  const found = await reconcile({ local, catalog, prefix: config.rustfs.prefix });
  if (found.unindexed > 0) {
    log.warn(
      `[evict] ${found.unindexed} frame objects of bucket ${config.rustfs.bucket} had no catalog row ` +
        `(e.g. ${found.examples.join(", ")}); ${found.indexed} indexed now, so the budget counts them`,
    );
  }
  const evictor = new Evictor({
    local,
    archive,
    catalog,
    settings,
    archivePrefix: config.aws_s3.prefix,
    localPrefix: config.rustfs.prefix,
    log,
    // Consumers of the same catalog are candidates too: the catalog's lease lets one evict at a time.
    leadership: new Leadership({
      catalog,
      log: log.child("evict"),
      ttlMs: config.eviction.lease_secs * 1000,
    }),
  });
  const t = await catalog.totals();
  log.info(
    `[evict] starting: catalog ${path} (${t.local.frames} local ${
      fmtBytes(t.local.bytes)
    }, ${t.archiving.frames} ` +
      `archiving, ${t.archive.frames} archived); local ${config.rustfs.endpoint} bucket ${config.rustfs.bucket}; ` +
      `archive ${archiveWhere} prefix ${config.aws_s3.prefix}; trigger ` +
      [
        settings.watch_path && `disk of ${settings.watch_path}`,
        settings.max_bytes > 0 && `max_bytes ${fmtBytes(settings.max_bytes)}`,
      ].filter(Boolean).join(" and ") +
      ` at ${settings.threshold_percent}% -> ${settings.target_percent}% (hard limit ${settings.hard_limit_percent}%, ` +
      `on archive failure: ${settings.on_archive_failure})` + (values.once ? "; one round" : ""),
  );

  let signals = 0;
  let stopRequested = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (name: string) => () => {
    signals++;
    if (signals > 1) {
      log.warn(`${name} again: exiting now; the next run finishes the interrupted move`);
      Deno.exit(130);
    }
    log.info(`${name}: finishing the frames in flight, then stopping`);
    stopRequested();
    void evictor.stop();
  };
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));

  let code = 0;
  try {
    if (values.once) {
      const r = await evictor.runOnce();
      await evictor.stop(); // gives the lease back at once
      if (evictor.stats().leading === false) {
        console.log(
          "another host holds the evictor lease (a running consumer evicts): nothing archived here",
        );
      }
      console.log(
        `evicted ${r.archived + r.dropped} frames: archived ${r.archived} (${
          fmtBytes(r.archivedBytes)
        }), dropped ` +
          `${r.dropped}, lost ${r.lost}, recovered ${r.recovered}; usage ${
            r.plan ? `${r.plan.percent.toFixed(1)}%` : "unknown"
          } before; ${r.seconds.toFixed(2)} s (${r.framesPerSecond.toFixed(1)} frames/s)` +
          (r.failure ? `; FAILED: ${r.failure}` : ""),
      );
      if (r.failure) code = 1;
    } else {
      const stats = setInterval(
        () => log.info(`[stats] ${evictor.statsLine()}`),
        Math.max(10_000, config.consumer.stats_interval_secs * 1000),
      );
      evictor.start();
      await stopped;
      await evictor.stop();
      clearInterval(stats);
      log.info(`[stats] final: ${evictor.statsLine()}`);
    }
  } finally {
    await catalog.close();
    local.close();
    archive.close();
  }
  return code;
});
