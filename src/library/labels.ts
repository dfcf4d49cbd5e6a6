/**
 * TEMPORARY: the label store moved into the catalog (`catalog.labels()`, src/catalog/sqlite_labels.ts) and its
 * rules to src/catalog/rules.ts. This re-export keeps modules that are being moved over compiling; it goes away
 * once nothing imports it.
 */
import type { Catalog, LabelLimits, LabelStore } from "../catalog/catalog.ts";
export type {
  Change,
  ChangeAction,
  ChangeBy,
  Clip,
  ClipInput,
  ClipUpdate,
  FrameSelector,
  LabelInfo,
  LabelLimits,
  LabelStore,
} from "../catalog/catalog.ts";
export { checkLabel, DEFAULT_LABEL_LIMITS, labelProblem } from "../catalog/rules.ts";

/** `new Labels(catalog, options)` is `catalog.labels(options)`. */
export const Labels = function (
  catalog: Catalog,
  options: { now?: () => number; limits?: Partial<LabelLimits> } = {},
): LabelStore {
  return catalog.labels(options);
} as unknown as new (
  catalog: Catalog,
  options?: { now?: () => number; limits?: Partial<LabelLimits> },
) => LabelStore;
