/**
 * Train/val/test splits that do not leak near-duplicates: frames of one robot taken within the same time block (N
 * minutes, aligned to the epoch) stay together, and so do all frames of a clip (a clip crossing block edges joins
 * those blocks into one group). Whole groups are assigned to splits, so no (robot, time block) and no clip is ever
 * in two splits.
 *
 * Deterministic: the groups are ordered by a seeded hash of their name (not by the order frames were seen), then
 * each goes to the split furthest below its share of frames. The same frames, seed, ratios and block length give
 * the same split on every run and on every machine; another seed gives another split with the same ratios.
 *
 * Pure: `SplitPlanner` collects the frames of an export (one small entry per block, not per frame), `plan()`
 * assigns the groups, and `SplitPlan.splitOf` answers per frame while the export is written. A frame the planner
 * never saw (it arrived between the two passes of an export) still gets a fixed split: its group's when one of its
 * blocks or clips is known, else one drawn from the seeded hash of its block.
 */
import { BadInputError } from "../errors.ts";

/** The splits a dataset may have, in the order they are written (Ultralytics and Datumaro know these names). */
export const SPLIT_NAMES = ["train", "val", "test"] as const;
export type SplitName = typeof SPLIT_NAMES[number];

/** Minutes of one time block when none are given. */
export const DEFAULT_BLOCK_MINUTES = 10;
export const DEFAULT_SPLIT_SEED = 0;

export interface SplitRatio {
  name: SplitName;
  /** Share of the frames, above 0; the shares add up to 1. */
  ratio: number;
}

export interface SplitSpec {
  ratios: SplitRatio[];
  /** Any safe integer; the same seed gives the same split. */
  seed: number;
  /** Length of a time block in minutes (above 0). */
  blockMinutes: number;
}

/** What the planner needs of a frame. */
export interface SplitFrame {
  robotId: string;
  timestampMs: number;
  /** Ids of the clips the frame lies in (their frames stay together). */
  clipIds: readonly number[];
}

/**
 * Parses `train=0.8,val=0.2[,test=0.1]`: names from SPLIT_NAMES, each once, shares above 0 that add up to 1
 * (within 1e-6). Throws BadInputError naming the part and the fix.
 */
export function parseSplitRatios(text: string, flag = "--split"): SplitRatio[] {
  const example = "e.g. train=0.8,val=0.2 or train=0.7,val=0.2,test=0.1";
  const parts = String(text).split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) {
    throw new BadInputError(`${flag} is empty: give the shares of the splits, ${example}`);
  }
  const out: SplitRatio[] = [];
  for (const part of parts) {
    const m = /^([A-Za-z]+)\s*[=:]\s*([0-9.eE+-]+)$/.exec(part);
    if (!m) {
      throw new BadInputError(`${flag} part ${JSON.stringify(part)} is not NAME=SHARE: ${example}`);
    }
    const name = m[1].toLowerCase();
    if (!(SPLIT_NAMES as readonly string[]).includes(name)) {
      throw new BadInputError(
        `${flag} names split ${JSON.stringify(m[1])}: the splits are ${SPLIT_NAMES.join(", ")} (${example})`,
      );
    }
    if (out.some((r) => r.name === name)) {
      throw new BadInputError(`${flag} names split ${name} twice: give each split once (${example})`);
    }
    const ratio = Number(m[2]);
    if (!Number.isFinite(ratio) || ratio <= 0 || ratio > 1) {
      throw new BadInputError(
        `${flag} share ${JSON.stringify(m[2])} of ${name} is not above 0 and at most 1: leave a split out ` +
          `rather than give it 0 (${example})`,
      );
    }
    out.push({ name: name as SplitName, ratio });
  }
  const sum = out.reduce((s, r) => s + r.ratio, 0);
  if (Math.abs(sum - 1) > 1e-6) {
    throw new BadInputError(
      `${flag} shares add up to ${Number(sum.toFixed(9))}, not 1: make them add up to 1 (${example})`,
    );
  }
  // Written in the canonical order, whatever the order given.
  return out.sort((a, b) => SPLIT_NAMES.indexOf(a.name) - SPLIT_NAMES.indexOf(b.name));
}

/** Checks a block length in minutes: a finite number above 0. */
export function checkBlockMinutes(minutes: number, flag = "--split-block-minutes"): number {
  if (typeof minutes !== "number" || !Number.isFinite(minutes) || minutes <= 0) {
    throw new BadInputError(
      `${flag} ${minutes} is not a number of minutes above 0: give the length of a time block, e.g. 10`,
    );
  }
  return minutes;
}

/** Checks a seed: a safe integer. */
export function checkSeed(seed: number, flag = "--split-seed"): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed)) {
    throw new BadInputError(`${flag} ${seed} is not a whole number: give any integer, e.g. 0 or 42`);
  }
  return seed;
}

/** A split spec from its parts, checked (defaults: seed 0, 10-minute blocks). */
export function splitSpec(
  ratios: string | SplitRatio[],
  options: { seed?: number; blockMinutes?: number } = {},
): SplitSpec {
  return {
    ratios: typeof ratios === "string" ? parseSplitRatios(ratios) : checkRatios(ratios),
    seed: checkSeed(options.seed ?? DEFAULT_SPLIT_SEED),
    blockMinutes: checkBlockMinutes(options.blockMinutes ?? DEFAULT_BLOCK_MINUTES),
  };
}

function checkRatios(ratios: SplitRatio[]): SplitRatio[] {
  return parseSplitRatios(ratios.map((r) => `${r.name}=${r.ratio}`).join(","));
}

/** `robot/b<block>`: the time block a frame's capture time falls in, for its robot. */
export function blockKey(robotId: string, timestampMs: number, blockMinutes: number): string {
  return `${robotId}/b${Math.floor(timestampMs / (blockMinutes * 60_000))}`;
}

/** `robot/c<id>`: a clip, as a node of the grouping. */
function clipKey(robotId: string, clipId: number): string {
  return `${robotId}/c${clipId}`;
}

/** 32-bit FNV-1a of the text, then a murmur3 finaliser so that nearby names spread over the whole range. */
export function seededHash(seed: number, text: string): number {
  let h = 0x811c9dc5;
  const s = `${seed}\u0000${text}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Collects the frames of an export into groups (union-find over blocks and clips), then assigns the groups. */
export class SplitPlanner {
  readonly spec: SplitSpec;
  /** Node -> parent (a root is its own parent). */
  readonly #parent = new Map<string, string>();
  /** Root -> frames in its group. */
  readonly #frames = new Map<string, number>();
  /** Root -> the smallest node name in its group (the group's name: independent of the order frames came). */
  readonly #name = new Map<string, string>();

  constructor(spec: SplitSpec) {
    this.spec = spec;
  }

  #find(node: string): string {
    let root = node;
    while (this.#parent.get(root) !== root) root = this.#parent.get(root)!;
    // Path compression keeps later look-ups short.
    let at = node;
    while (at !== root) {
      const next = this.#parent.get(at)!;
      this.#parent.set(at, root);
      at = next;
    }
    return root;
  }

  #node(node: string): string {
    if (!this.#parent.has(node)) {
      this.#parent.set(node, node);
      this.#frames.set(node, 0);
      this.#name.set(node, node);
    }
    return this.#find(node);
  }

  #union(a: string, b: string): string {
    const ra = this.#find(a), rb = this.#find(b);
    if (ra === rb) return ra;
    this.#parent.set(rb, ra);
    this.#frames.set(ra, this.#frames.get(ra)! + this.#frames.get(rb)!);
    const na = this.#name.get(ra)!, nb = this.#name.get(rb)!;
    this.#name.set(ra, nb < na ? nb : na);
    this.#frames.delete(rb);
    this.#name.delete(rb);
    return ra;
  }

  /** Counts a frame into its block's group, joining the groups of its clips. */
  add(frame: SplitFrame): void {
    const block = blockKey(frame.robotId, frame.timestampMs, this.spec.blockMinutes);
    let root = this.#node(block);
    for (const id of frame.clipIds) root = this.#union(root, this.#node(clipKey(frame.robotId, id)));
    this.#frames.set(root, this.#frames.get(root)! + 1);
  }

  /** Assigns every group to a split. The planner may not be used afterwards. */
  plan(): SplitPlan {
    const seed = this.spec.seed;
    const groups = [...this.#frames.entries()].map(([root, frames]) => {
      const name = this.#name.get(root)!;
      return { root, frames, name, hash: seededHash(seed, name) };
    });
    groups.sort((a, b) => a.hash - b.hash || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const total = groups.reduce((s, g) => s + g.frames, 0);
    const ratios = this.spec.ratios;
    const counts = ratios.map(() => 0);
    const groupCounts = ratios.map(() => 0);
    const assigned = new Map<string, SplitName>();
    for (const g of groups) {
      // The split furthest below its share of all frames takes the group (the first named on a tie).
      let best = 0, bestDeficit = -Infinity;
      for (let i = 0; i < ratios.length; i++) {
        const deficit = ratios[i].ratio * total - counts[i];
        if (deficit > bestDeficit + 1e-9) {
          best = i;
          bestDeficit = deficit;
        }
      }
      counts[best] += g.frames;
      groupCounts[best]++;
      assigned.set(g.root, ratios[best].name);
    }
    const parent = this.#parent;
    const find = (node: string) => this.#find(node);
    return new SplitPlan(
      this.spec,
      (node) => parent.has(node) ? assigned.get(find(node)) ?? null : null,
      Object.fromEntries(ratios.map((r, i) => [r.name, { frames: counts[i], groups: groupCounts[i] }])),
    );
  }
}

/** Frames and groups (blocks and clips kept together) per split, as planned. */
export type SplitFigures = Partial<Record<SplitName, { frames: number; groups: number }>>;

/** The assignment of groups to splits. */
export class SplitPlan {
  readonly spec: SplitSpec;
  readonly #lookup: (node: string) => SplitName | null;
  /** Frames and groups per split, as planned. */
  readonly figures: SplitFigures;

  constructor(spec: SplitSpec, lookup: (node: string) => SplitName | null, figures: SplitFigures) {
    this.spec = spec;
    this.#lookup = lookup;
    this.figures = figures;
  }

  /** The split names in order. */
  get names(): SplitName[] {
    return this.spec.ratios.map((r) => r.name);
  }

  /** The split of a frame: its group's, or (a frame not planned with a group) drawn from its block's hash. */
  splitOf(frame: SplitFrame): SplitName {
    const block = blockKey(frame.robotId, frame.timestampMs, this.spec.blockMinutes);
    const known = this.#lookup(block) ??
      frame.clipIds.map((id) => this.#lookup(clipKey(frame.robotId, id))).find((s) => s !== null) ?? null;
    if (known) return known;
    const u = seededHash(this.spec.seed, block) / 2 ** 32;
    let sum = 0;
    for (const r of this.spec.ratios) {
      sum += r.ratio;
      if (u < sum) return r.name;
    }
    return this.spec.ratios.at(-1)!.name;
  }
}

/** Plans a split of these frames (tests and small callers; exports feed a SplitPlanner page by page). */
export function planSplit(frames: Iterable<SplitFrame>, spec: SplitSpec): SplitPlan {
  const planner = new SplitPlanner(spec);
  for (const f of frames) planner.add(f);
  return planner.plan();
}
