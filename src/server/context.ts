/**
 * What the route modules (src/server/routes/) work with: the catalog, the label store, the similarity index, the
 * thumbnails, the exports and the stores, as createApp (app.ts) opened them.
 */
import type { Catalog, FrameRow, LabelLimits, LabelStore } from "../catalog/catalog.ts";
import { NotFoundError } from "../errors.ts";
import type { ExportTracker } from "../library/export_stream.ts";
import type { JpegHasher, SimilarFrames } from "../library/similar.ts";
import type { Thumbnails } from "../library/thumbs.ts";
import type { Logger } from "../log.ts";

export interface ServerContext {
  catalog: Catalog;
  labels: LabelStore;
  /** `[labels]` limits in force. */
  labelLimits: LabelLimits;
  similar: SimilarFrames;
  /** Hashes uploads as the consumer does. */
  hasher: Pick<JpegHasher, "hash">;
  thumbnails: Thumbnails;
  exports: ExportTracker;
  /** A frame's JPEG from whichever tier holds it, null when none does; throws when a store fails. */
  fetchFrame(key: string): Promise<Uint8Array | null>;
  /** The same, a store's failure as a ServiceError("store") naming the frame (answered with 502). */
  load(key: string): Promise<Uint8Array | null>;
  /** Waits between attempts of a failing frame fetch during an export (default: export.ts's). */
  exportRetryDelaysMs?: number[];
  log: Logger;
}

/** The catalog's row of a frame; NotFoundError (404) when the catalog does not have the key. */
export async function frameRow(ctx: ServerContext, key: string): Promise<FrameRow> {
  const row = await ctx.catalog.get(key);
  if (!row) throw new NotFoundError(`no frame ${JSON.stringify(key)} in the catalog`);
  return row;
}
