/**
 * Ids a copied journal names. A box, clip or collection deleted at the top of the source's id range is gone from its table but
 * not from the journal, and undo acts on journalled ids: after a copy (`deno task catalog migrate`), both backends
 * hand out new box, clip and collection ids only above every id the journal names, so a new box is never taken
 * for an old one.
 */

/** The largest box, clip and collection ids that raw journal rows (`detail` as JSON text) name; 0 when none. */
export function journalledIds(
  rows: Record<string, unknown>[],
): { boxes: number; clips: number; collections: number } {
  let boxes = 0, clips = 0, collections = 0;
  const safe = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
  const box = (v: unknown) => {
    const id = typeof v === "object" && v !== null ? (v as { id?: unknown }).id : v;
    if (typeof id === "number" && Number.isSafeInteger(id)) boxes = Math.max(boxes, id);
  };
  for (const row of rows) {
    let detail: Record<string, unknown>;
    try {
      detail = typeof row.detail === "string"
        ? JSON.parse(row.detail)
        : (row.detail as Record<string, unknown>);
    } catch {
      continue;
    }
    if (typeof detail !== "object" || detail === null) continue;
    const action = String(row.action ?? "");
    if (action.startsWith("box.")) {
      for (const field of ["boxes", "before", "after"]) {
        if (Array.isArray(detail[field])) (detail[field] as unknown[]).forEach(box);
      }
    }
    if (Array.isArray(detail.deletedBoxes)) detail.deletedBoxes.forEach(box);
    if (Array.isArray(detail.oldBoxes)) detail.oldBoxes.forEach(box);
    const clip = /^clip:(\d+)$/.exec(String(row.target ?? ""));
    if (clip) clips = Math.max(clips, Number(clip[1]));
    for (const field of ["oldClips", "bothClips", "clipIds"]) {
      if (Array.isArray(detail[field])) {
        for (const id of detail[field] as unknown[]) {
          if (safe(id)) clips = Math.max(clips, id);
        }
      }
    }
    const collection = /^collection:(\d+)$/.exec(String(row.target ?? ""));
    if (collection) collections = Math.max(collections, Number(collection[1]));
    // A clip.delete entry names the collections the clip was taken out of.
    if (Array.isArray(detail.collections)) {
      for (const c of detail.collections as unknown[]) {
        const id = typeof c === "object" && c !== null ? (c as { id?: unknown }).id : undefined;
        if (safe(id)) collections = Math.max(collections, id);
      }
    }
  }
  return { boxes, clips, collections };
}
