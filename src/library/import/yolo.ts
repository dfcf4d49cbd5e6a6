/**
 * YOLO reader: label files (`class cx cy w h [confidence]`, fractions of the image) with the class names from
 * `data.yaml` (Ultralytics: `names:` as a map `0: person` or a list), `classes.txt` or `obj.names` (one name a
 * line), or given directly.
 *
 * Every label file is an image of the import; an empty one says the frame has no box (a negative, as
 * Ultralytics reads it: a re-import removes the boxes an earlier import put there). A label file is matched to a
 * frame by its path: frame-bucket's YOLO export names it after the frame with `/` written as `__`
 * (`labels/train/reachy-001__2026-11-30__....txt`); a layout that keeps the image name's folders
 * (`labels/reachy-001/2026-11-30/....txt`) matches by the path's tail.
 *
 * The lines are read by src/library/prelabels.ts's `parseYoloLabels` and the names files by its
 * `parseYoloClasses` (the same rules as pre-labels), so a box reads the same whichever way it comes in.
 */
import { BadInputError } from "../../errors.ts";
import { parseYoloClasses, parseYoloLabels, type YoloFile } from "../prelabels.ts";
import { checkLabel, type ImportedImage, type ParsedImport, Problems, show } from "./annotations.ts";

export type { YoloFile };

/** Where the class names come from: given, a data.yaml, or a names file (classes.txt, obj.names). */
export interface YoloClasses {
  classes?: string[];
  dataYaml?: { name: string; text: string };
  namesFile?: { name: string; text: string };
}

/** A YAML scalar as a string: quoted ('...' with '' for ', "..." with JSON escapes) or plain (comment cut). */
function scalar(raw: string, at: string, problems: Problems): string | null {
  const s = raw.trim();
  if (s.startsWith('"')) {
    const end = /^"(?:[^"\\]|\\.)*"/.exec(s);
    try {
      if (end) return JSON.parse(end[0]);
    } catch { /* reported below */ }
    problems.add(`${at}: ${show(s)} is not a closed double-quoted name`);
    return null;
  }
  if (s.startsWith("'")) {
    const end = /^'((?:[^']|'')*)'/.exec(s);
    if (end) return end[1].replaceAll("''", "'");
    problems.add(`${at}: ${show(s)} is not a closed single-quoted name`);
    return null;
  }
  return s.replace(/\s+#.*$/, "").trim();
}

/** Splits a YAML flow sequence or mapping's inside on commas outside quotes. */
function flowItems(inside: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  for (let i = 0; i < inside.length; i++) {
    const c = inside[i];
    if (quote) {
      cur += c;
      if (c === "\\" && quote === '"') cur += inside[++i] ?? "";
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur.trim() !== "") out.push(cur);
  return out;
}

/**
 * The class names of an Ultralytics data.yaml: `names:` as a block map (`  0: person`), a block list
 * (`  - person`), or a flow list/map on the same line (`names: [person, door]`, `{0: person}`). Map ids must run
 * 0, 1, 2, ... without gaps (a gap would shift every later class). Only `names` is read; the rest of the file is
 * passed over.
 */
export function parseDataYaml(text: string, file = "data.yaml"): string[] {
  const problems = new Problems(file);
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const start = lines.findIndex((l) => /^names\s*:/.test(l));
  if (start < 0) throw new BadInputError(`${file} has no "names:" (the class names, class 0 first)`);
  const byId = new Map<number, string>();
  const list: string[] = [];
  const addPair = (key: string, value: string, at: string) => {
    const id = Number(key.trim().replace(/^["']|["']$/g, ""));
    const name = scalar(value, at, problems);
    if (!Number.isInteger(id) || id < 0) {
      problems.add(`${at}: class id ${show(key.trim())} must be 0, 1, 2, ...`);
    } else if (name !== null) {
      if (byId.has(id)) problems.add(`${at}: class ${id} is named twice`);
      byId.set(id, name);
    }
  };
  const rest = lines[start].replace(/^names\s*:/, "").replace(/\s+#.*$/, "").trim();
  const at0 = `${file} line ${start + 1}`;
  if (rest.startsWith("[")) {
    if (!rest.endsWith("]")) problems.add(`${at0}: the names list must be on one line, ending with "]"`);
    for (const item of flowItems(rest.slice(1, -1))) {
      const name = scalar(item, at0, problems);
      if (name !== null) list.push(name);
    }
  } else if (rest.startsWith("{")) {
    if (!rest.endsWith("}")) problems.add(`${at0}: the names map must be on one line, ending with "}"`);
    for (const item of flowItems(rest.slice(1, -1))) {
      const colon = item.indexOf(":");
      if (colon < 0) problems.add(`${at0}: ${show(item.trim())} is not "id: name"`);
      else addPair(item.slice(0, colon), item.slice(colon + 1), at0);
    }
  } else if (rest !== "") {
    problems.add(`${at0}: names ${show(rest)} must be a list or a map of class names`);
  } else {
    for (let i = start + 1; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() === "" || line.trim().startsWith("#")) continue;
      if (!/^\s/.test(line)) break; // the next top-level key
      const at = `${file} line ${i + 1}`;
      const item = line.trim();
      if (item.startsWith("- ") || item === "-") {
        const name = scalar(item.slice(1), at, problems);
        if (name !== null) list.push(name);
      } else {
        const m = /^("[^"]*"|'[^']*'|[^:]+):(.*)$/.exec(item);
        if (!m) problems.add(`${at}: ${show(item)} is not "id: name" or "- name"`);
        else addPair(m[1], m[2], at);
      }
    }
  }
  if (list.length && byId.size) problems.add(`${file}: names mixes a list and a map`);
  let names = list;
  if (byId.size) {
    names = [];
    for (let id = 0; id < byId.size; id++) {
      const name = byId.get(id);
      if (name === undefined) {
        problems.add(`${file}: class ${id} has no name (ids must run 0..${byId.size - 1})`);
        break;
      }
      names.push(name);
    }
  }
  if (names.length === 0) problems.add(`${file}: names lists no class`);
  const seen = new Map<string, number>();
  names.forEach((n, i) => {
    if (!checkLabel(n, `${file} class ${i}`, problems)) return;
    if (seen.has(n)) problems.add(`${file}: class ${show(n)} is both ${seen.get(n)} and ${i}`);
    else seen.set(n, i);
  });
  problems.throwIfAny();
  return names;
}

/** The class names of an import: given ones, else data.yaml's, else the names file's. */
export function yoloClassNames(source: YoloClasses): string[] {
  if (source.classes) return parseYoloClasses(source.classes.join("\n"), "classes");
  if (source.dataYaml) return parseDataYaml(source.dataYaml.text, source.dataYaml.name);
  if (source.namesFile) return parseYoloClasses(source.namesFile.text, source.namesFile.name);
  throw new BadInputError(
    "YOLO labels need their class names: a data.yaml (names:), a classes.txt / obj.names (one name a line), " +
      "or the names given (class 0 first)",
  );
}

/**
 * Parses YOLO label files (one per image, `.txt`) with their class names. Throws BadInputError naming the file,
 * line and value of every problem.
 */
export function parseYolo(files: YoloFile[], classes: YoloClasses): ParsedImport {
  const names = yoloClassNames(classes);
  const problems = new Problems("the YOLO labels");
  for (const f of files) {
    if (!/\.txt$/i.test(f.name)) problems.add(`${f.name}: a label file's name ends in .txt`);
  }
  problems.throwIfAny();
  const predictions = parseYoloLabels(files, names);
  const byName = new Map<string, ImportedImage>();
  const images: ImportedImage[] = [];
  for (const f of files) {
    if (byName.has(f.name)) {
      throw new BadInputError(`${f.name} is given twice: give each label file once`);
    }
    const image: ImportedImage = {
      refs: [f.name],
      at: f.name,
      width: null,
      height: null,
      boxes: [],
      tags: [],
    };
    byName.set(f.name, image);
    images.push(image);
  }
  for (const p of predictions) {
    const image = byName.get(p.ref)!;
    image.boxes.push({
      label: p.label,
      x: p.x,
      y: p.y,
      w: p.w,
      h: p.h,
      unit: "norm",
      confidence: p.confidence,
      at: `${p.ref} box ${image.boxes.length + 1}`,
    });
  }
  return { format: "yolo", images, skipped: [] };
}
