/**
 * The filter stage: one filter per robot (its own settings when `[filter.robots."ID"]` overrides them) and the
 * signature of each robot's last accepted frame. Frames of different robots are never compared.
 */
import type { Config } from "../config.ts";
import { filterSettingsFor } from "../config.ts";
import type { FilterPlugin, Signature } from "../plugin.ts";

export interface Decision {
  accept: boolean;
  /** Distance to the robot's last accepted frame; null for a robot's first frame. */
  distance: number | null;
  /** The filter that decided. */
  filter: string;
  signature: Signature;
}

export class SceneFilter {
  readonly #filters = new Map<string, FilterPlugin>();
  readonly #last = new Map<string, { filter: string; signature: Signature }>();

  /** `defaultFilter` serves robots without an override; `overrides` maps robot id -> its own filter. */
  constructor(
    private readonly defaultFilter: FilterPlugin,
    overrides: Map<string, FilterPlugin> = new Map(),
  ) {
    for (const [robot, filter] of overrides) this.#filters.set(robot, filter);
  }

  filterOf(robotId: string): FilterPlugin {
    return this.#filters.get(robotId) ?? this.defaultFilter;
  }

  /**
   * Decides for one frame and, when accepted, makes it the robot's reference. Throws when the filter cannot read
   * the JPEG; the reference is then unchanged.
   */
  async decide(robotId: string, jpeg: Uint8Array): Promise<Decision> {
    return this.decideWith(robotId, await this.filterOf(robotId).signature(jpeg));
  }

  /** Decides for a frame whose signature (by this robot's filter) is already computed. */
  decideWith(robotId: string, signature: Signature): Decision {
    const filter = this.filterOf(robotId);
    const last = this.#last.get(robotId);
    if (!last || last.filter !== filter.name) {
      this.#last.set(robotId, { filter: filter.name, signature });
      return { accept: true, distance: null, filter: filter.name, signature };
    }
    const distance = filter.distance(last.signature, signature);
    const accept = filter.accepts(distance);
    if (accept) this.#last.set(robotId, { filter: filter.name, signature });
    return { accept, distance, filter: filter.name, signature };
  }

  /** Sets a robot's reference (e.g. restored after a restart). */
  remember(robotId: string, signature: Signature): void {
    this.#last.set(robotId, { filter: this.filterOf(robotId).name, signature });
  }

  /** Drops a robot's reference: its next frame is accepted as a first frame. */
  forget(robotId: string): void {
    this.#last.delete(robotId);
  }

  async close(): Promise<void> {
    const all = new Set([this.defaultFilter, ...this.#filters.values()]);
    for (const f of all) await f.close?.();
  }
}

/** Builds the filter stage from config, loading one plugin per distinct robot override. */
export async function createSceneFilter(
  config: Config,
  load: (settings: ReturnType<typeof filterSettingsFor>) => Promise<FilterPlugin>,
): Promise<SceneFilter> {
  const base = await load(config.filter);
  const overrides = new Map<string, FilterPlugin>();
  for (const robotId of Object.keys(config.filter.robots)) {
    overrides.set(robotId, await load(filterSettingsFor(config, robotId)));
  }
  return new SceneFilter(base, overrides);
}
