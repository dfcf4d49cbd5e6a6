/**
 * The rules for what the catalog accepts as label names, authors, clip names, notes and time spans: pure checks,
 * one place, used by every backend's label store (callers do not re-check names). Each throws a BadInputError
 * naming the value.
 */
import { BadInputError } from "../errors.ts";
import type { LabelLimits } from "./catalog.ts";

export const MAX_LABEL = 64;
const MAX_AUTHOR = 200;
const MAX_CLIP_NAME = 200;
const MAX_NOTE = 10_000;

/**
 * The defaults of `labels.max_per_request` and `labels.max_distinct`: far above what people label by hand, far
 * below what makes the label list (one checkbox each in the UI) or a request's transaction unwieldy.
 */
export const DEFAULT_LABEL_LIMITS: Readonly<LabelLimits> = { maxPerRequest: 100, maxDistinct: 1000 };

/**
 * Bidirectional-text controls (they make "txt.exe" display as "exe.txt": a label, or the export folder named after
 * it, would not show what it is) and the Unicode line and paragraph separators (they break line-based files such
 * as MISSING.txt).
 */
const INVISIBLE_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;

/** The first character of `name` that INVISIBLE_CONTROLS matches, as U+XXXX. */
function codePointOf(name: string): string {
  const ch = INVISIBLE_CONTROLS.exec(name)?.[0] ?? "";
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Why a label name is not allowed, or null. Names become folder names in exports, so: 1 to 64 characters (at most
 * 192 bytes of UTF-8, well inside every file system's 255-byte name limit), no '/', '\\' or control characters
 * (C0, DEL, C1), no bidirectional-text controls or line separators, no spaces at either end, not "." or "..".
 * Characters that only Windows refuses in file names (`:*?|<>"`, `CON`, ...) are allowed: export writes them
 * escaped in folder names (see `labelFolder` in src/library/export.ts) and keeps the label itself in metadata.jsonl.
 */
export function labelProblem(name: string): string | null {
  if (typeof name !== "string" || name.length === 0) return "a label name must not be empty";
  if (name.length > MAX_LABEL) {
    return `label ${
      JSON.stringify(name.slice(0, 80))
    } is ${name.length} characters long (at most ${MAX_LABEL})`;
  }
  if (name !== name.trim()) return `label ${JSON.stringify(name)} starts or ends with white space`;
  if (name === "." || name === "..") return `label ${JSON.stringify(name)} is not allowed`;
  // deno-lint-ignore no-control-regex
  if (/[/\\\x00-\x1f\x7f-\x9f]/.test(name)) {
    return `label ${JSON.stringify(name)} may not contain '/', '\\' or control characters`;
  }
  if (INVISIBLE_CONTROLS.test(name)) {
    return `label ${JSON.stringify(name)} contains the invisible control character ${
      codePointOf(name)
    } (bidirectional text or a line separator), which would disguise the name: type it without`;
  }
  return null;
}

export function checkLabel(name: string): string {
  const problem = labelProblem(name);
  if (problem) throw new BadInputError(problem);
  return name;
}

export function checkAuthor(author: string | null | undefined): string | null {
  if (author === undefined || author === null || author === "") return null;
  if (typeof author !== "string" || author.length > MAX_AUTHOR) {
    throw new BadInputError(`author must be a string of at most ${MAX_AUTHOR} characters`);
  }
  return author;
}

export function checkSpan(fromMs: number, toMs: number): void {
  for (const [name, v] of [["from", fromMs], ["to", toMs]] as const) {
    if (!Number.isSafeInteger(v)) throw new BadInputError(`${name} time ${v} is not a whole number of ms`);
  }
  if (toMs < fromMs) {
    throw new BadInputError(
      `time span ends (${new Date(toMs).toISOString()}) before it starts (${new Date(fromMs).toISOString()})`,
    );
  }
}

export function uniqueLabels(names: string[]): string[] {
  return [...new Set(names.map(checkLabel))];
}

/**
 * Names of existing labels to take off or delete, each once. They are looked up, not checked against today's
 * naming rules, so a label made before a rule was tightened can still be removed or renamed.
 */
export function existingNames(names: string[]): string[] {
  for (const n of names) {
    if (typeof n !== "string" || n === "") throw new BadInputError("a label name must not be empty");
  }
  return [...new Set(names)];
}

export function checkClipName(name: string): string {
  if (typeof name !== "string" || name.trim() === "") throw new BadInputError("a clip needs a name");
  if (name.length > MAX_CLIP_NAME) {
    throw new BadInputError(`clip name is ${name.length} characters long (at most ${MAX_CLIP_NAME})`);
  }
  return name;
}

export function checkNote(note: string): string {
  if (typeof note !== "string") throw new BadInputError("a clip's note must be text");
  if (note.length > MAX_NOTE) {
    throw new BadInputError(`note is ${note.length} characters long (at most ${MAX_NOTE})`);
  }
  return note;
}
