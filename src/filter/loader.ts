/**
 * Finds, type-checks, imports and validates plugins named in the config.
 *
 * A built-in is named ("phash", "histogram"); anything else that looks like a path is the user's own module,
 * resolved against the config file's folder. The loader checks what the module gives back (a factory, a plugin
 * object with `name`, `apiVersion` and the methods) and says what is wrong with it before any frame flows.
 */
import type { Config, FilterSettings } from "../config.ts";
import { API_VERSION, type FilterPlugin, type StoragePlugin } from "../plugin.ts";

/** Built-in filters, by config name, with how the [filter] keys map onto their options. */
const BUILTIN_FILTERS: Record<
  string,
  { module: string; options: (s: FilterSettings) => Record<string, unknown> }
> = {
  phash: {
    module: "../../plugins/filters/ahash.ts",
    options: (s) => ({
      threshold: s.phash_threshold,
      hashSize: s.phash_hash_size,
      resize: s.resize,
      ...s.options,
    }),
  },
  ahash: {
    module: "../../plugins/filters/ahash.ts",
    options: (s) => ({
      threshold: s.phash_threshold,
      hashSize: s.phash_hash_size,
      resize: s.resize,
      ...s.options,
    }),
  },
  histogram: {
    module: "../../plugins/filters/histogram.ts",
    options: (s) => ({ threshold: s.histogram_threshold, ...s.options }),
  },
};

export const BUILTIN_FILTER_NAMES = Object.keys(BUILTIN_FILTERS);

const BUILTIN_STORAGE: Record<string, string> = {
  rustfs: "../../plugins/storage/rustfs.ts",
  s3_archive: "../../plugins/storage/s3_archive.ts",
};

function looksLikePath(name: string): boolean {
  return name.includes("/") || /\.(ts|js|mjs|mts)$/.test(name);
}

function resolvePath(baseDir: string, path: string): string {
  if (path.startsWith("file://")) return path;
  const absolute = path.startsWith("/") ? path : `${baseDir.replace(/\/$/, "")}/${path}`;
  return new URL(`file://${absolute}`).href;
}

/**
 * Runs `deno check` on a user's TypeScript plugin so a type error against src/plugin.ts stops start-up with the
 * compiler's message (plain `deno run` does not type-check dynamically imported modules).
 */
async function typeCheck(url: string): Promise<void> {
  const path = new URL(url).pathname;
  if (!/\.(ts|mts)$/.test(path)) return;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "-q", path],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    throw new TypeError(`filter plugin ${path} does not type-check against src/plugin.ts:\n${text}`);
  }
}

async function importFactory(
  kind: string,
  url: string,
  shown: string,
): Promise<(options: unknown) => unknown> {
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new TypeError(`cannot load ${kind} plugin ${shown}: ${(error as Error).message}`, { cause: error });
  }
  if (typeof module.default !== "function") {
    throw new TypeError(`${kind} plugin ${shown} must default-export a factory function (options) => plugin`);
  }
  return module.default as (options: unknown) => unknown;
}

/** Checks a plugin object's name, apiVersion and methods; returns it typed. */
export function validatePlugin<T>(kind: string, shown: string, plugin: unknown, methods: string[]): T {
  if (typeof plugin !== "object" || plugin === null) {
    throw new TypeError(
      `${kind} plugin ${shown}: the factory returned ${
        plugin === null ? "null" : typeof plugin
      }, not a plugin object`,
    );
  }
  const p = plugin as Record<string, unknown>;
  if (typeof p.name !== "string" || !p.name) {
    throw new TypeError(`${kind} plugin ${shown}: "name" must be a non-empty string`);
  }
  if (p.apiVersion !== API_VERSION) {
    throw new RangeError(
      `${kind} plugin ${shown} (${p.name}) declares apiVersion ${
        JSON.stringify(p.apiVersion)
      }, but this frame-bucket ` +
        `runs plugin API ${API_VERSION}: update the plugin to src/plugin.ts`,
    );
  }
  const missing = methods.filter((m) => typeof p[m] !== "function");
  if (missing.length) {
    throw new TypeError(
      `${kind} plugin ${shown} (${p.name}) lacks method(s) ${missing.join(", ")} (see src/plugin.ts)`,
    );
  }
  return plugin as T;
}

/** Where a filter comes from and how it is built: enough to build the same filter again in a worker. */
export interface FilterSpec {
  /** The configured name (built-in name or path), for messages. */
  name: string;
  /** Module URL of the plugin. */
  url: string;
  /** Options handed to its factory. */
  options: Record<string, unknown>;
  /** Whether the module is the user's (type-checked before use). */
  user: boolean;
}

/** Resolves `settings.primary` to a module and options, without loading it. */
export function filterSpec(settings: FilterSettings, baseDir: string): FilterSpec {
  const name = settings.primary;
  const builtin = BUILTIN_FILTERS[name.toLowerCase()];
  if (builtin) {
    return {
      name,
      url: new URL(builtin.module, import.meta.url).href,
      options: builtin.options(settings),
      user: false,
    };
  }
  if (looksLikePath(name)) {
    return { name, url: resolvePath(baseDir, name), options: { ...settings.options }, user: true };
  }
  throw new RangeError(
    `unknown filter ${JSON.stringify(name)} in filter.primary: use one of ${
      BUILTIN_FILTER_NAMES.join(", ")
    } ` +
      `or a path to your plugin module (e.g. "./my_filter.ts")`,
  );
}

/** Builds a filter from its spec (type-checking a user's module first unless `checked`). */
export async function filterFromSpec(spec: FilterSpec, checked = false): Promise<FilterPlugin> {
  if (spec.user && !checked) await typeCheck(spec.url);
  const factory = await importFactory("filter", spec.url, spec.name);
  return validatePlugin<FilterPlugin>("filter", spec.name, factory(spec.options), [
    "signature",
    "distance",
    "accepts",
  ]);
}

/** Loads and instantiates the filter named by `settings.primary`. */
export async function loadFilter(settings: FilterSettings, baseDir: string): Promise<FilterPlugin> {
  return await filterFromSpec(filterSpec(settings, baseDir));
}

/** Loads a storage plugin (built-in name or path) with its options. */
export async function loadStorage(
  name: string,
  options: Record<string, unknown>,
  baseDir = ".",
): Promise<StoragePlugin> {
  const builtin = BUILTIN_STORAGE[name];
  if (!builtin && !looksLikePath(name)) {
    throw new RangeError(
      `unknown storage plugin ${JSON.stringify(name)}: use one of ${
        Object.keys(BUILTIN_STORAGE).join(", ")
      } or a path`,
    );
  }
  const url = builtin ? new URL(builtin, import.meta.url).href : resolvePath(baseDir, name);
  const factory = await importFactory("storage", url, name);
  return validatePlugin<StoragePlugin>("storage", name, factory(options), [
    "open",
    "put",
    "get",
    "head",
    "delete",
    "list",
    "buckets",
    "close",
  ]);
}

/** The local tier (plugin rustfs) as `[rustfs]` configures it. */
export function localStore(config: Config): Promise<StoragePlugin> {
  return loadStorage("rustfs", {
    endpoint: config.rustfs.endpoint,
    accessKey: config.rustfs.access_key,
    secretKey: config.rustfs.secret_key,
    bucket: config.rustfs.bucket,
    region: config.rustfs.region,
    timeoutMs: config.rustfs.timeout_ms,
  });
}

/** The archive tier (plugin s3_archive) as `[aws_s3]` configures it; credentials from the AWS SDK chain. */
export function archiveStore(config: Config): Promise<StoragePlugin> {
  return loadStorage("s3_archive", {
    bucket: config.aws_s3.bucket,
    region: config.aws_s3.region,
    endpoint: config.aws_s3.endpoint,
  });
}
