/**
 * An import's files to a ParsedImport, one way for the CLI (files read from a folder) and the API (files sent in
 * the body): the format picks the reader, and the files are what an export of that format holds, by name.
 *
 * - coco: the instances JSON documents (`annotations/instances_<split>.json`); other files are passed over.
 * - yolo: the label files (`*.txt` under `labels/` when there is such a folder, else every `.txt`), the class
 *   names from `data.yaml` (or `*.yaml`), else `classes.txt` / `obj.names`, unless `classes` is given.
 * - cvat: the task files (`*.xml`).
 * - label-studio: the JSON export (one `.json`).
 */
import { BadInputError } from "../../errors.ts";
import { IMPORT_FORMATS, type ImportFormat, type ParsedImport } from "./annotations.ts";
import { parseCoco } from "./coco.ts";
import { parseCvat } from "./cvat.ts";
import { parseLabelStudio } from "./label_studio.ts";
import { parseYolo } from "./yolo.ts";

/** A file of the import: its path relative to the export's root, and its text. */
export interface ImportFile {
  name: string;
  text: string;
}

/** The format named by `text` (`label_studio` and `labelstudio` read as `label-studio`); BadInputError otherwise. */
export function checkImportFormat(text: string): ImportFormat {
  const f = text.trim().toLowerCase().replace(/[_ ]/g, "-").replace(/^labelstudio$/, "label-studio");
  if ((IMPORT_FORMATS as readonly string[]).includes(f)) return f as ImportFormat;
  throw new BadInputError(
    `format ${JSON.stringify(text)} is not one the import reads: use ${IMPORT_FORMATS.join(", ")}`,
  );
}

const base = (name: string) => name.replaceAll("\\", "/").split("/").at(-1)!;

/** Which of `names` an import of `format` reads (the rest are images and files it does not need). */
export function wantedFile(format: ImportFormat, name: string): boolean {
  const lower = name.toLowerCase();
  switch (format) {
    case "coco":
    case "label-studio":
      return lower.endsWith(".json");
    case "cvat":
      return lower.endsWith(".xml");
    case "yolo":
      return lower.endsWith(".txt") || lower.endsWith(".yaml") || lower.endsWith(".yml") ||
        lower.endsWith(".names");
  }
}

/** Parses JSON, naming the file and the position on failure. */
export function parseJsonFile(file: ImportFile): unknown {
  try {
    return JSON.parse(file.text.replace(/^\uFEFF/, ""));
  } catch (error) {
    throw new BadInputError(`${file.name} is not JSON: ${error instanceof Error ? error.message : error}`);
  }
}

/** Parses the files of an import (see the module doc). */
export function parseImportFiles(
  format: ImportFormat,
  files: ImportFile[],
  options: { classes?: string[] } = {},
): ParsedImport {
  const used = files.filter((f) => wantedFile(format, f.name));
  const none = (what: string): never => {
    throw new BadInputError(
      `no ${what} among the ${files.length} file(s) given${
        files.length
          ? ` (${files.slice(0, 3).map((f) => f.name).join(", ")}${files.length > 3 ? ", …" : ""})`
          : ""
      }`,
    );
  };
  switch (format) {
    case "coco": {
      if (!used.length) none("COCO instances file (.json)");
      return parseCoco(used.map((f) => ({ name: f.name, json: parseJsonFile(f) })));
    }
    case "label-studio": {
      if (used.length !== 1) {
        if (!used.length) none("Label Studio export (.json)");
        throw new BadInputError(
          `${used.length} JSON files (${
            used.slice(0, 3).map((f) => f.name).join(", ")
          }): give the one Label ` +
            `Studio export`,
        );
      }
      return parseLabelStudio(parseJsonFile(used[0]), used[0].name);
    }
    case "cvat": {
      if (!used.length) none("CVAT task file (.xml)");
      return parseCvat(used);
    }
    case "yolo": {
      const yamls = used.filter((f) => /\.ya?ml$/i.test(f.name));
      const dataYaml = yamls.find((f) => base(f.name).toLowerCase() === "data.yaml") ??
        (yamls.length === 1 ? yamls[0] : undefined);
      const namesFile = used.find((f) => /^(classes\.txt|obj\.names)$/i.test(base(f.name)));
      const txt = used.filter((f) => /\.txt$/i.test(f.name) && f !== namesFile);
      const underLabels = txt.filter((f) => /(^|\/)labels\//.test(f.name.replaceAll("\\", "/")));
      const labels = underLabels.length ? underLabels : txt;
      if (!labels.length) none("YOLO label file (.txt)");
      return parseYolo(labels, { classes: options.classes, dataYaml, namesFile });
    }
  }
}
