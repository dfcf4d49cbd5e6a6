/**
 * Is this object these bytes? The checks the consumer (a key already taken: a replay or another frame?) and
 * eviction (is the archive copy good?) both make, in one place.
 */
import { createHash } from "node:crypto";

/** Lowercase hex MD5: what S3 reports as the ETag of a single-part upload without KMS encryption. */
export function md5Hex(body: Uint8Array): string {
  return createHash("md5").update(body).digest("hex");
}

/** True for an entity tag that is an MD5 of the content (not a multipart or encrypted object's tag). */
export function isMd5Etag(etag: string | undefined | null): etag is string {
  return typeof etag === "string" && /^[0-9a-f]{32}$/i.test(etag);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
