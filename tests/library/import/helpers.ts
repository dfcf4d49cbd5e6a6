/** What the import tests share: asserting a refusal's message. */
import assert from "node:assert/strict";
import { BadInputError } from "../../../src/errors.ts";

/** Asserts that `fn` throws a BadInputError whose message matches every pattern. */
export function refuses(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof BadInputError, `expected BadInputError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

export const A = "reachy-001/2026-11-30/20261130T120000.000Z_000001.jpg";
export const B = "reachy-001/2026-11-30/20261130T120000.100Z_000002.jpg";
