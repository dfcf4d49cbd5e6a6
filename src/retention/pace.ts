/**
 * How many frame copies eviction keeps in flight: a number that follows the spare capacity of the process it
 * shares with the consumer, instead of a fixed concurrency.
 *
 * Eviction runs inside the consumer, and a move (a 200 KB get, a put, their signing and hashing) costs the same
 * event loop, S3 server and cores the consumer's own stores need. Run flat out, a round's burst of moves makes the
 * consumer fall behind for as long as it lasts. So the number of moves in flight is adjusted the way TCP adjusts
 * its window (additive increase, multiplicative decrease): once per `intervalMs` of eviction, one more move is
 * allowed when nothing shows strain, and half as many (at least `min`) when something does:
 * - the event loop ran late by more than `loopDelayMs` (the consumer's work waited behind eviction's), or
 * - the consumer's backlog (Kafka messages behind the newest, from `backlog`) grew by more than `backlogSlack`
 *   messages since the last adjustment (less is the noise of fetch batches): it is falling behind.
 * Strain never takes it below a floor that rises with usage: `min` at the threshold, `max` at the hard limit
 * (`urgency` 0 to 1). The room between the two is small next to the rate frames come in (a 200 MiB budget's
 * 80 -> 95 % fills in under 3 s at 20 robots), and a local tier that reaches the hard limit pauses the consumer,
 * which is worse for it than a busier evictor. At the hard limit the consumer is paused and waits for eviction:
 * then eviction runs at `max`.
 */

export interface MovePaceOptions {
  /** Fewest moves in flight. Default 1. */
  min?: number;
  /** Most moves in flight. Default 8. */
  max?: number;
  /** Moves in flight at the first round. Default 2. */
  start?: number;
  /** Time between adjustments. Default 1000 ms. */
  intervalMs?: number;
  /** Event-loop lateness that counts as strain. Default 50 ms. */
  loopDelayMs?: number;
  /** Growth of the backlog, in messages, below which it is noise, not strain. Default 50. */
  backlogSlack?: number;
  /** The consumer's backlog (Kafka messages behind the newest), or null when unknown. */
  backlog?: () => number | null;
  now?: () => number;
}

/** Why the last adjustment went the way it did, for the stats line and tests. */
export type PaceReason = "start" | "calm" | "loop delay" | "backlog" | "usage" | "hard limit";

export class MovePace {
  readonly min: number;
  readonly max: number;
  readonly #o:
    & Required<Omit<MovePaceOptions, "backlog" | "min" | "max" | "start">>
    & Pick<MovePaceOptions, "backlog">;
  #limit: number;
  #lastAdjust = 0;
  #lastBacklog: number | null = null;
  #reason: PaceReason = "start";
  /** Largest event-loop lateness seen since the last adjustment. */
  #lateMs = 0;
  #sampler: ReturnType<typeof setInterval> | undefined;

  constructor(options: MovePaceOptions = {}) {
    this.min = options.min ?? 1;
    this.max = options.max ?? 8;
    if (
      !(this.min >= 1 && this.max >= this.min && Number.isInteger(this.min) && Number.isInteger(this.max))
    ) {
      throw new RangeError(
        `move pace bounds ${this.min}..${this.max} must be whole numbers with 1 <= min <= max`,
      );
    }
    this.#limit = Math.min(this.max, Math.max(this.min, options.start ?? 2));
    this.#o = {
      intervalMs: 1000,
      loopDelayMs: 50,
      backlogSlack: 50,
      now: Date.now,
      ...options,
    };
  }

  /** Moves allowed in flight now. */
  get limit(): number {
    return this.#limit;
  }

  /** The reason of the last adjustment. */
  get reason(): PaceReason {
    return this.#reason;
  }

  /**
   * Measures event-loop lateness while eviction works (a timer every 50 ms that notes how late it fires); stop()
   * ends it. Lateness can also be reported with `noteLoopDelay` (tests).
   */
  start(): void {
    if (this.#sampler !== undefined) return;
    const every = 50;
    let expected = performance.now() + every;
    this.#sampler = setInterval(() => {
      const now = performance.now();
      this.noteLoopDelay(now - expected);
      expected = now + every;
    }, every);
    this.#lastAdjust = this.#o.now();
    this.#lastBacklog = this.#o.backlog?.() ?? null;
  }

  stop(): void {
    clearInterval(this.#sampler);
    this.#sampler = undefined;
  }

  noteLoopDelay(ms: number): void {
    if (ms > this.#lateMs) this.#lateMs = ms;
  }

  /**
   * Called as moves complete: adjusts the limit at most once per interval. `urgency`: where usage is between the
   * threshold (0) and the hard limit (1 or more).
   */
  tick(urgency: number): void {
    if (urgency >= 1) {
      this.#limit = this.max;
      this.#reason = "hard limit";
      return;
    }
    const now = this.#o.now();
    if (now - this.#lastAdjust < this.#o.intervalMs) return;
    this.#lastAdjust = now;
    const backlog = this.#o.backlog?.() ?? null;
    const before = this.#lastBacklog;
    this.#lastBacklog = backlog;
    let strain: PaceReason | null = null;
    if (this.#lateMs > this.#o.loopDelayMs) strain = "loop delay";
    else if (
      backlog !== null && before !== null &&
      backlog - before > this.#o.backlogSlack
    ) {
      strain = "backlog";
    }
    this.#lateMs = 0;
    if (strain) {
      this.#limit = Math.max(this.min, Math.floor(this.#limit / 2));
      this.#reason = strain;
    } else {
      this.#limit = Math.min(this.max, this.#limit + 1);
      this.#reason = "calm";
    }
    const floor = this.min + Math.round(Math.max(0, urgency) * (this.max - this.min));
    if (floor > this.#limit) {
      this.#limit = floor;
      this.#reason = "usage";
    }
  }
}
