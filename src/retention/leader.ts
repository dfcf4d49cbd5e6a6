/**
 * One evictor at a time across every host that shares a catalog: each consumer (and `deno task evict`) is a
 * candidate; the one holding the catalog's `evictor` lease runs eviction rounds, the others wait. The lease is
 * renewed every third of its time to live while its holder runs; a holder that dies (killed, host lost) stops
 * renewing, and another candidate takes over once the lease has run out: within `ttlMs` plus one attempt period.
 * Every tier change of a move carries the lease's fencing token, so a holder that stalled past its lease (a long
 * GC pause, a frozen VM) cannot change rows once another has taken over: its change is refused and it stops.
 */
import type { Catalog, Fence, Lease } from "../catalog/catalog.ts";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";

export const EVICTOR_LEASE = "evictor";

export interface LeadershipOptions {
  catalog: Pick<Catalog, "claimLease" | "releaseLease" | "lease">;
  log: Logger;
  /** The lease's name. Default "evictor". */
  name?: string;
  /** How long a lease lasts without renewal. Default 15 s: a dead holder is replaced within ~20 s. */
  ttlMs?: number;
  /** Who this candidate is, for the lease row and log lines. Default host:pid:random. */
  holder?: string;
  now?: () => number;
}

/** This process's view of the lease: whether it holds it, renewed by `hold()`. */
export class Leadership {
  readonly name: string;
  readonly holder: string;
  readonly ttlMs: number;
  readonly #o: LeadershipOptions;
  readonly #now: () => number;
  #lease: Lease | null = null;
  /** When the lease was last confirmed, by this process's clock (the catalog's clock may differ). */
  #confirmedMs = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  #otherLogged: string | null = null;
  #stopping: Promise<void> | null = null;
  /** The renewal the timer started, if one is under way. */
  #renewing: Promise<unknown> | null = null;

  constructor(options: LeadershipOptions) {
    this.#o = options;
    this.name = options.name ?? EVICTOR_LEASE;
    this.ttlMs = options.ttlMs ?? 15_000;
    if (!(this.ttlMs >= 1000)) {
      throw new RangeError(`lease time to live ${this.ttlMs} ms is too short: use at least 1000 ms`);
    }
    this.holder = options.holder ??
      `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Takes or renews the lease; the fence to make changes under when this process holds it, else null. A catalog
   * failure counts as not holding it (never two evictors because one could not ask).
   */
  async hold(): Promise<Fence | null> {
    if (this.#stopping) return null;
    const asked = this.#now();
    let lease: Lease | null;
    try {
      lease = await this.#o.catalog.claimLease(this.name, this.holder, this.ttlMs);
      if (!lease) {
        // A holder on this host whose process is gone (killed, crashed) need not be waited out.
        const current = await this.#o.catalog.lease(this.name);
        if (current && deadHereHolder(current.holder)) {
          lease = await this.#o.catalog.claimLease(this.name, this.holder, this.ttlMs, current.holder);
          if (lease) {
            this.#o.log.info(`took the ${this.name} lease from ${current.holder}: that process is gone`);
          }
        }
      }
    } catch (error) {
      if (this.#lease) this.#o.log.warn(`cannot renew the ${this.name} lease (${messageOf(error)}); pausing`);
      this.#lease = null;
      return null;
    }
    if (!lease) {
      if (this.#lease) this.#o.log.warn(`the ${this.name} lease passed to another host; this one waits`);
      else if (this.#otherLogged === null) {
        this.#otherLogged = "logged";
        this.#o.log.info(`another host runs ${this.name}; this one takes over if it stops`);
      }
      this.#lease = null;
      return null;
    }
    if (!this.#lease || this.#lease.token !== lease.token) {
      this.#o.log.info(`this host now runs ${this.name} (lease token ${lease.token}, ${this.holder})`);
      this.#otherLogged = null;
    }
    this.#lease = lease;
    this.#confirmedMs = asked;
    return this.fence() ?? null;
  }

  /**
   * The fence while the lease is held by this process's own reckoning (confirmed less than a time to live ago,
   * counted from when it asked, with a second's margin), else undefined.
   */
  fence(): Fence | undefined {
    if (!this.#lease) return undefined;
    if (this.#now() - this.#confirmedMs > this.ttlMs - 1000) return undefined;
    return { lease: this.name, token: this.#lease.token };
  }

  /** Whether this process holds the lease now. */
  get leading(): boolean {
    return this.fence() !== undefined;
  }

  /** Renews the lease every third of its time to live until `stop`. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => {
      if (this.#lease && !this.#renewing) {
        this.#renewing = this.hold().catch(() => {}).finally(() => (this.#renewing = null));
      }
    }, Math.max(250, Math.floor(this.ttlMs / 3)));
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /**
   * Stops renewing and gives the lease up, so another candidate takes over at once. Every call waits for the
   * same release (a caller that closes the catalog next must not cut it short).
   */
  stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#stopping ??= (async () => {
      // A renewal in flight could take the lease back after the release: let it land first.
      await this.#renewing;
      this.#lease = null;
      await this.#o.catalog.releaseLease(this.name, this.holder).catch(() => {});
    })();
    return this.#stopping;
  }
}

/**
 * True when `holder` (host:pid:random) names this host and a process id that no longer runs. Only a process on
 * the same host can tell; a reused pid reads as alive, which errs on the side of waiting the lease out.
 */
export function deadHereHolder(holder: string, hostname = Deno.hostname()): boolean {
  const [host, pid] = holder.split(":");
  if (host !== hostname || !/^\d+$/.test(pid ?? "") || Number(pid) === Deno.pid) return false;
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch (error) {
    return error instanceof Deno.errors.NotFound;
  }
}
