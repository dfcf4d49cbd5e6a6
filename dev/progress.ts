/**
 * Waiting on progress instead of on a fixed deadline, for the fault scenarios and the tests.
 *
 * A fixed deadline ("recovered within 90 s") measures the machine as much as the pipeline: the same run that
 * recovers in 20 s on an idle box needs minutes on a CI machine busy with other work, and then fails although
 * nothing is wrong. So a wait here goes on for as long as the system keeps moving toward what is awaited (e.g.
 * the consumer's committed offsets rise toward the offsets where the fault ended), and gives up only after a long
 * time without any progress, or after a much longer limit in all as a safety net. A slow machine is slow, not red;
 * a stuck pipeline still fails, with what it was waiting for and the figures when it stopped moving.
 */
import { sleep } from "../src/ingest/camera.ts";

export interface ProgressWaitOptions<T> {
  /** What is waited for: its value once reached, undefined before. A look that throws counts as not reached. */
  reached(): Promise<T | undefined>;
  /**
   * Figures that only grow while the system moves toward `reached` (committed offsets, frames stored); a rise of
   * any of them above its highest value so far is progress. Positions must stay the same from one call to the
   * next. A look that throws counts as no progress.
   */
  progress(): Promise<number[]>;
  /** Gives up after this long without progress. */
  stallMs: number;
  /** Gives up after this long in all, progress or not. */
  limitMs: number;
  /** Time between looks; 250 ms by default. */
  intervalMs?: number;
  /** Injectable for tests. */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

export interface ProgressWaitResult<T> {
  /** The awaited value, or undefined when the wait gave up. */
  value: T | undefined;
  waitedMs: number;
  /** The longest time without progress seen, reached or not: how much of `stallMs` a run used. */
  longestStallMs: number;
  /** Why the wait gave up, with the last figures; undefined when reached. */
  gaveUp?: string;
}

const realClock = {
  now: () => Date.now(),
  sleep,
};

/** Looks every `intervalMs` until `reached` gives a value, the progress stalls for `stallMs`, or `limitMs` passes. */
export async function waitOnProgress<T>(options: ProgressWaitOptions<T>): Promise<ProgressWaitResult<T>> {
  const { stallMs, limitMs, intervalMs = 250, clock = realClock } = options;
  if (!(stallMs > 0) || !(limitMs >= stallMs)) {
    throw new RangeError(
      `waitOnProgress: need 0 < stallMs <= limitMs, got stallMs ${stallMs}, limitMs ${limitMs}`,
    );
  }
  const start = clock.now();
  let best: number[] = [];
  let lastProgress = start;
  let longestStallMs = 0;
  for (;;) {
    const value = await options.reached().catch(() => undefined);
    const now = clock.now();
    const waitedMs = now - start;
    if (value !== undefined) {
      return { value, waitedMs, longestStallMs: Math.max(longestStallMs, now - lastProgress) };
    }
    const figures = await options.progress().catch(() => null);
    if (figures && figures.some((f, i) => f > (best[i] ?? -Infinity))) {
      longestStallMs = Math.max(longestStallMs, now - lastProgress);
      lastProgress = now;
      best = figures.map((f, i) => Math.max(f, best[i] ?? -Infinity));
    }
    const stalledMs = now - lastProgress;
    const last = `progress figures ${JSON.stringify(figures)}, best ${JSON.stringify(best)}`;
    if (stalledMs >= stallMs) {
      return {
        value: undefined,
        waitedMs,
        longestStallMs: Math.max(longestStallMs, stalledMs),
        gaveUp: `no progress for ${Math.round(stalledMs / 1000)} s (after ${
          Math.round(waitedMs / 1000)
        } s; ${last})`,
      };
    }
    if (waitedMs >= limitMs) {
      return {
        value: undefined,
        waitedMs,
        longestStallMs: Math.max(longestStallMs, stalledMs),
        gaveUp: `not reached within the limit of ${
          Math.round(limitMs / 1000)
        } s, though still moving (${last})`,
      };
    }
    await clock.sleep(intervalMs);
  }
}
