/**
 * The Python format checkers of the export tests: Datumaro and pycocotools in the virtual environment
 * `.venv/formats`, installed from `.ci/requirements-formats.txt` by `.ci/run`. A test that needs them and does not
 * find them fails, saying how to install them (never skips).
 *
 * `checkExport` runs tests/fixtures/formats/check_export.py, which reads an export with the tools' own readers
 * and prints what they found as JSON. With FRAME_BUCKET_CHECK_OUT set to a folder, each output is also saved
 * there (`<name>.json`), for the record.
 */
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
