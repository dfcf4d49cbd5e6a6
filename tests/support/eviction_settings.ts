/** Eviction settings for tests: the defaults of [eviction], with overrides. */
import type { EvictionSettings } from "../../src/retention/plan.ts";

export function settings(overrides: Partial<EvictionSettings> = {}): EvictionSettings {
  return {
    enabled: true,
    check_interval_secs: 30,
    threshold_percent: 80,
    target_percent: 70,
    batch_size: 50,
    watch_path: "",
    max_bytes: 0,
    hard_limit_percent: 95,
    on_archive_failure: "pause",
    lease_secs: 15,
    free_lag_secs: 600,
    ...overrides,
  };
}
