/**
 * The Python format checkers of the export tests: Datumaro and pycocotools in the virtual environment
 * `.venv/formats`, installed from `.ci/requirements-formats.txt` by `.ci/run`. A test that needs them and does not
 * find them fails, saying how to install them (never skips).
 *
 * `checkExport` runs tests/fixtures/formats/check_export.py, which reads an export with the tools' own readers
 * and prints what they found as JSON. With FRAME_BUCKET_CHECK_OUT set to a folder, each output is also saved
 * there (`<name>.json`), for the record.
 */
import { boxPixels } from "../../src/catalog/boxes.ts";
import type { Box } from "../../src/catalog/catalog.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
export const FORMATS_VENV = `${ROOT}.venv/formats`;
export const CHECKER = `${ROOT}tests/fixtures/formats/check_export.py`;

const INSTALL = "run `bash .ci/run` once, or: python3 -m venv .venv/formats && " +
  ".venv/formats/bin/pip install -r .ci/requirements-formats.txt";

let checked: Promise<string> | null = null;

/** The interpreter of .venv/formats, once it has been seen to import datumaro and pycocotools. */
export function formatsPython(): Promise<string> {
  checked ??= (async () => {
    const python = `${FORMATS_VENV}/bin/python`;
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(python, {
        args: ["-c", "import datumaro, pycocotools; print(datumaro.__version__)"],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(`the export format checkers are not installed (${python}: ${error}): ${INSTALL}`);
    }
    if (!out.success) {
      throw new Error(
        `the export format checkers do not import (${
          new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)
        }): ${INSTALL}`,
      );
    }
    return python;
  })();
  return checked;
}

/** A box as Datumaro gives it: pixels, [x, y, w, h]. */
export interface DmBox {
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What Datumaro found (check_export.py datumaro FORMAT PATH). */
export interface DatumaroResult {
  tool: "datumaro";
  version: string;
  format: string;
  items: number;
  subsets: Record<string, number>;
  classes: string[];
  boxes: number;
  tags: number;
  item_list: {
    id: string;
    subset: string;
    width: number | null;
    height: number | null;
    image_exists: boolean;
    boxes: DmBox[];
    tags: string[];
  }[];
  /** YOLO: label lines; CVAT: box corners; as Python's float() reads the files. */
  // deno-lint-ignore no-explicit-any
  raw: any[];
}

/** What pycocotools found (check_export.py pycocotools PATH), per annotation file. */
export interface CocoResult {
  tool: "pycocotools";
  version: string;
  splits: Record<string, {
    images: number;
    annotations: number;
    categories: { id: number; name: string }[];
    image_list: {
      file_name: string;
      key: string;
      width: number;
      height: number;
      labels: string[];
      image_exists: boolean;
    }[];
    boxes: { file_name: string; label: string; bbox: number[]; area: number }[];
  }>;
}

/** What Datumaro (`["datumaro", FORMAT]`) found in an export. `name` names the saved copy (FRAME_BUCKET_CHECK_OUT). */
export function checkExport(tool: ["datumaro", string], path: string, name: string): Promise<DatumaroResult>;
/** What pycocotools found in every COCO annotation file of an export. */
export function checkExport(tool: ["pycocotools"], path: string, name: string): Promise<CocoResult>;
export async function checkExport(
  tool: ["datumaro", string] | ["pycocotools"],
  path: string,
  name: string,
): Promise<DatumaroResult | CocoResult> {
  const python = await formatsPython();
  const out = await new Deno.Command(python, {
    args: [CHECKER, ...tool, path],
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONWARNINGS: "ignore" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${tool.join(" ")} could not read ${path}:\n${stderr}${stdout}`);
  const result = JSON.parse(stdout);
  const keep = Deno.env.get("FRAME_BUCKET_CHECK_OUT");
  if (keep) {
    await Deno.mkdir(keep, { recursive: true });
    await Deno.writeTextFile(`${keep}/${name}.json`, JSON.stringify(result, null, 1) + "\n");
  }
  return result;
}

// ------------------------------------------------------------------------------------------ comparing with the catalog

/** A frame as the catalog holds it, under the id a tool gives its item (the image name without `.jpg`). */
export interface ExpectedItem {
  key: string;
  /** Accepted boxes. */
  boxes: Box[];
  /** Whole-frame labels (own and clips'). */
  tags: string[];
  width: number;
  height: number;
}

/** Datumaro's resolution: float32 coordinates rounded to 0.01 px, a size the difference of two rounded corners. */
export const DATUMARO_TOLERANCE = (v: number) => 0.0101 + Math.abs(v) * 2.4e-7;

/**
 * Refuses a Datumaro reading that differs from the catalog: the items, their image sizes (read from the files),
 * their boxes (class and pixels, within Datumaro's resolution) and, with `tags`, their tags.
 */
export function assertDatumaroMatches(
  dm: DatumaroResult,
  expected: Map<string, ExpectedItem>,
  options: { tags?: boolean } = {},
): void {
  const ids = dm.item_list.map((i) => i.id).sort();
  if (JSON.stringify(ids) !== JSON.stringify([...expected.keys()].sort())) {
    throw new Error(
      `Datumaro (${dm.format}) items ${
        JSON.stringify(ids.slice(0, 5))
      }... (${ids.length}) are not the frames ` +
        `exported (${expected.size})`,
    );
  }
  for (const item of dm.item_list) {
    const want = expected.get(item.id)!;
    const where = `Datumaro ${dm.format} item ${item.id}`;
    if (!item.image_exists) throw new Error(`${where}: no image`);
    if (item.width !== want.width || item.height !== want.height) {
      throw new Error(
        `${where}: image ${item.width}x${item.height}, the frame is ${want.width}x${want.height}`,
      );
    }
    if (options.tags && JSON.stringify(item.tags) !== JSON.stringify(want.tags)) {
      throw new Error(
        `${where}: tags ${JSON.stringify(item.tags)}, the catalog has ${JSON.stringify(want.tags)}`,
      );
    }
    if (item.boxes.length !== want.boxes.length) {
      throw new Error(`${where}: ${item.boxes.length} boxes, the catalog has ${want.boxes.length}`);
    }
    const left = [...item.boxes];
    for (const box of want.boxes) {
      const px = boxPixels(box);
      const at = left.findIndex((b) =>
        b.label === box.label && Math.abs(b.x - px.x) <= DATUMARO_TOLERANCE(px.x) &&
        Math.abs(b.y - px.y) <= DATUMARO_TOLERANCE(px.y) &&
        Math.abs(b.w - px.w) <= DATUMARO_TOLERANCE(px.w) &&
        Math.abs(b.h - px.h) <= DATUMARO_TOLERANCE(px.h)
      );
      if (at < 0) {
        throw new Error(
          `${where}: no box like ${JSON.stringify({ label: box.label, ...px })} in ${JSON.stringify(left)}`,
        );
      }
      left.splice(at, 1);
    }
  }
}
