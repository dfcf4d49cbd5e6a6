/**
 * The ImageFolder layout (image classification, as Hugging Face `datasets` reads it): one folder per requested
 * label holding the frames that have it, and metadata.jsonl with one JSON line per file. With a split, each split
 * is a folder of its own with its own metadata.jsonl (`train/<label>/<file>`, `train/metadata.jsonl`), which
 * `datasets` reads as the split of that name.
 *
 *   <label folder>/<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq:06>.jpg
 *   metadata.jsonl    {file_name (relative to the folder of metadata.jsonl), label, robot_id, capture_time,
 *                      timestamp_ms, seq, key, tier, labels, clips[, split]}
 *
 * Folder names are the labels, made safe for every file system an archive may be unpacked on (`labelFolder`).
 */
import type { FrameRow } from "../../catalog/catalog.ts";

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** One line of metadata.jsonl: the file, the label folder it is in, and what is known of the frame. */
export function metadataRecord(
  path: string,
  label: string,
  row: FrameRow,
  labels: string[],
  clips: string[],
  split?: string | null,
) {
  return {
    file_name: path,
    label,
    robot_id: row.robotId,
    capture_time: new Date(row.timestampMs).toISOString(),
    timestamp_ms: row.timestampMs,
    seq: row.seq,
    key: row.key,
    tier: row.tier,
    labels,
    clips,
    ...(split ? { split } : {}),
  };
}

/** `<robot>_<YYYYMMDD>T<HHMMSSmmm>Z_<seq:06>.jpg`: unique per frame, sorts by time within a robot. */
export function exportFileName(row: FrameRow): string {
  const d = new Date(row.timestampMs);
  const stamp = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}T` +
    `${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}` +
    `${pad(d.getUTCMilliseconds(), 3)}Z`;
  return `${row.robotId}_${stamp}_${pad(row.seq, 6)}.jpg`;
}

// -------------------------------------------------------------------------------------------- folder names

const encoder = new TextEncoder();

/** Characters escaped wherever they are: '%' (the escape itself), what Windows refuses, controls, bidi controls. */
const UNSAFE_CHAR =
  // deno-lint-ignore no-control-regex
  /[%<>:"/\\|?*\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/gu;
/** Windows device names, reserved with any extension and in any case. */
const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/iu;

const escapeChar = (ch: string) =>
  Array.from(encoder.encode(ch), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");

/**
 * The folder a label's frames go to: the label itself when every file system takes it as a name, else with the
 * offending characters as `%XX` escapes of their UTF-8 bytes. `%` is always escaped, so the mapping is one to one
 * (two labels never share a folder) and the label can be read back from it.
 */
export function labelFolder(label: string): string {
  let name = label.replace(UNSAFE_CHAR, escapeChar);
  if (DEVICE_NAME.test(name)) name = escapeChar(name[0]) + name.slice(1);
  // Windows drops a trailing dot or space from a name; escaping the last one keeps the name intact.
  const last = name.at(-1);
  if (last === "." || last === " ") name = name.slice(0, -1) + escapeChar(last);
  return name;
}
