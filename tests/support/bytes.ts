/** Byte helpers the tests share. */

export { concatBytes as concat } from "../../src/bytes.ts";

/** Whether the two hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
