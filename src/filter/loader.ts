/**
 * Finds, type-checks, imports and validates plugins named in the config.
 *
 * A built-in is named ("phash", "histogram"; storage "rustfs", "s3_archive"); anything else that looks like a
 * path is the user's own module, resolved against the config file's folder. A user's TypeScript module is
 * type-checked against the contract (src/plugin.ts, which it imports as `frame-bucket/plugin` from any folder:
 * the check runs with the project's deno.json and its import map). The loader then checks what the module gives
 * back (a factory, a plugin object with `name`, `apiVersion` and the methods, options its `defaults` know) and
 * says what is wrong with it before any frame flows.
 */
import type { Config, FilterSettings } from "../config.ts";
import { API_VERSION, type FilterPlugin, type StoragePlugin } from "../plugin.ts";

/** The stable name plugins import the contract by (an alias in the project's deno.json). */
export const CONTRACT = "frame-bucket/plugin";

/** The project's deno.json: its import map resolves `frame-bucket/plugin` for a plugin in any folder. */
const PROJECT_CONFIG = new URL("../../deno.json", import.meta.url);

/** Settings as `loadFilter` takes them: `primary`, and any other [filter] keys (left out: the plugin's defaults). */
export type FilterChoice = Partial<FilterSettings> & { primary: string };

/** The entries of `o` that are set (a key left out of the settings leaves the plugin's default). */
function given(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const ahashOptions = (s: FilterChoice) =>
  given({ threshold: s.phash_threshold, hashSize: s.phash_hash_size, resize: s.resize, ...s.options });

/** Built-in filters, by config name, with how the [filter] keys map onto their options. */
const BUILTIN_FILTERS: Record<
  string,
  { module: string; options: (s: FilterChoice) => Record<string, unknown> }
> = {
  phash: { module: "../../plugins/filters/ahash.ts", options: ahashOptions },
  ahash: { module: "../../plugins/filters/ahash.ts", options: ahashOptions },
  histogram: {
    module: "../../plugins/filters/histogram.ts",
    options: (s) => given({ threshold: s.histogram_threshold, ...s.options }),
  },
};

export const BUILTIN_FILTER_NAMES = Object.keys(BUILTIN_FILTERS);

const BUILTIN_STORAGE: Record<string, string> = {
  rustfs: "../../plugins/storage/rustfs.ts",
  s3_archive: "../../plugins/storage/s3_archive.ts",
};

export const BUILTIN_STORAGE_NAMES = Object.keys(BUILTIN_STORAGE);

/** Methods every storage plugin has (`read`, `conditionalPut` and `deleteMany` are optional). */
const STORAGE_METHODS = ["open", "put", "get", "head", "delete", "list", "buckets", "close"];
const FILTER_METHODS = ["signature", "distance", "accepts"];

/** True for a plugin name that is a module path ("./my_filter.ts", "/abs/store.js") rather than a built-in. */
export function looksLikePath(name: string): boolean {
  return name.includes("/") || /\.(ts|js|mjs|mts)$/.test(name);
}

function resolvePath(baseDir: string, path: string): string {
  if (path.startsWith("file://")) return path;
  const absolute = path.startsWith("/") ? path : `${baseDir.replace(/\/$/, "")}/${path}`;
  return new URL(`file://${absolute}`).href;
}

/** How a user's module is named in messages: as configured, and where that led when it was relative. */
function shownPath(name: string, url: string): string {
  const path = decodeURIComponent(new URL(url).pathname);
  return name === path || name === url ? path : `${name} (${path})`;
}

/**
 * Runs `deno check` on a user's TypeScript plugin so a type error against the contract stops start-up with the
 * compiler's message (plain `deno run` does not type-check dynamically imported modules). The check uses the
 * project's deno.json, so `frame-bucket/plugin` resolves for a module in any folder.
 */
async function typeCheck(kind: string, url: string, shown: string): Promise<void> {
  const path = decodeURIComponent(new URL(url).pathname);
  if (!/\.(ts|mts)$/.test(path)) return;
  const args = ["check", "-q"];
  if (PROJECT_CONFIG.protocol === "file:") args.push("--config", decodeURIComponent(PROJECT_CONFIG.pathname));
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, path],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    throw new TypeError(
      `${kind} plugin ${shown} does not type-check against src/plugin.ts (${CONTRACT}):\n${text}`,
    );
  }
}

interface PluginModule {
  factory: (options: unknown) => unknown;
  /** The module's `defaults`, when it exports them. */
  defaults: Record<string, unknown> | null;
}

async function importModule(kind: string, url: string, shown: string): Promise<PluginModule> {
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    const message = (error as Error).message;
    const hint = message.includes(CONTRACT)
      ? ` (this Deno runs without the project's deno.json, which maps ${CONTRACT}: start it with ` +
        `\`deno task ...\` in the project folder or pass --config <project>/deno.json)`
      : "";
    throw new TypeError(`cannot load ${kind} plugin ${shown}: ${message}${hint}`, { cause: error });
  }
  if (typeof module.default !== "function") {
    throw new TypeError(`${kind} plugin ${shown} must default-export a factory function (options) => plugin`);
  }
  const defaults = module.defaults;
  if (
    defaults !== undefined && (typeof defaults !== "object" || defaults === null || Array.isArray(defaults))
  ) {
    throw new TypeError(`${kind} plugin ${shown}: "defaults" must be an object of option values`);
  }
  return {
    factory: module.default as (options: unknown) => unknown,
    defaults: (defaults as Record<string, unknown> | undefined) ?? null,
  };
}

/** Refuses options the module's `defaults` do not name (a misspelt key would otherwise be ignored). */
function checkOptionNames(
  kind: string,
  shown: string,
  module: PluginModule,
  options: Record<string, unknown>,
) {
  if (!module.defaults) return;
  const unknown = Object.keys(options).filter((key) => !Object.hasOwn(module.defaults!, key));
  if (unknown.length) {
    throw new RangeError(
      `${kind} plugin ${shown}: unknown option(s) ${unknown.join(", ")} (known: ${
        Object.keys(module.defaults).join(", ") || "none"
      })`,
    );
  }
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

/** Where a plugin comes from and how it is built: enough to build the same plugin again (in a worker). */
export interface PluginSpec {
  /** The configured name (built-in name or path), for messages. */
  name: string;
  /** Module URL of the plugin. */
  url: string;
  /** Options handed to its factory. */
  options: Record<string, unknown>;
  /** Whether the module is the user's (type-checked before use). */
  user: boolean;
}

/** A filter's spec. */
export type FilterSpec = PluginSpec;

/** How a spec is named in messages. */
function shownSpec(spec: PluginSpec): string {
  return spec.user ? shownPath(spec.name, spec.url) : spec.name;
}

/** Imports a spec's module (type-checking a user's first unless `checked`) and builds a checked plugin. */
async function build<T>(kind: string, spec: PluginSpec, methods: string[], checked: boolean): Promise<T> {
  const shown = shownSpec(spec);
  if (spec.user && !checked) await typeCheck(kind, spec.url, shown);
  const module = await importModule(kind, spec.url, shown);
  checkOptionNames(kind, shown, module, spec.options);
  return validatePlugin<T>(kind, shown, module.factory(spec.options), methods);
}

/**
 * The options a spec's factory works with: its module's `defaults` with the given options over them (what the
 * factories do first), for the start-up line.
 */
export async function resolvedOptions(kind: string, spec: PluginSpec): Promise<Record<string, unknown>> {
  const module = await importModule(kind, spec.url, shownSpec(spec));
  return { ...module.defaults, ...spec.options };
}

/** Resolves `settings.primary` to a module and options, without loading it. */
export function filterSpec(settings: FilterChoice, baseDir: string): FilterSpec {
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
    return { name, url: resolvePath(baseDir, name), options: given({ ...settings.options }), user: true };
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
  return await build<FilterPlugin>("filter", spec, FILTER_METHODS, checked);
}

/**
 * Loads and instantiates the filter named by `settings.primary` (a built-in name or a path relative to
 * `baseDir`). [filter] keys left out leave the plugin's own defaults, so a test can pass just
 * `{ primary: "./my_filter.ts", options: {...} }`.
 */
export async function loadFilter(settings: FilterChoice, baseDir: string): Promise<FilterPlugin> {
  return await filterFromSpec(filterSpec(settings, baseDir));
}

/** Resolves a storage plugin name (built-in or a path relative to `baseDir`) to a module, without loading it. */
export function storageSpec(name: string, options: Record<string, unknown>, baseDir = "."): PluginSpec {
  const builtin = BUILTIN_STORAGE[name];
  if (builtin) return { name, url: new URL(builtin, import.meta.url).href, options, user: false };
  if (looksLikePath(name)) return { name, url: resolvePath(baseDir, name), options, user: true };
  throw new RangeError(
    `unknown storage plugin ${JSON.stringify(name)}: use one of ${
      BUILTIN_STORAGE_NAMES.join(", ")
    } or a path to your plugin module (e.g. "./my_store.ts")`,
  );
}

/**
 * Loads a storage plugin (built-in name or path relative to `baseDir`) with its options; a user's module is
 * type-checked against the contract first.
 */
export async function loadStorage(
  name: string,
  options: Record<string, unknown>,
  baseDir = ".",
): Promise<StoragePlugin> {
  return await build<StoragePlugin>("storage", storageSpec(name, options, baseDir), STORAGE_METHODS, false);
}

/** The local tier's plugin (`rustfs.plugin`, default rustfs) and its options, as `[rustfs]` configures it. */
export function localStoreSpec(config: Config): PluginSpec {
  return storageSpec(config.rustfs.plugin, {
    endpoint: config.rustfs.endpoint,
    accessKey: config.rustfs.access_key,
    secretKey: config.rustfs.secret_key,
    bucket: config.rustfs.bucket,
    region: config.rustfs.region,
    timeoutMs: config.rustfs.timeout_ms,
  }, config.baseDir);
}

/**
 * The archive tier's plugin (`aws_s3.plugin`, default s3_archive) and its options, as `[aws_s3]` configures it;
 * credentials from the AWS SDK chain.
 */
export function archiveStoreSpec(config: Config): PluginSpec {
  return storageSpec(config.aws_s3.plugin, {
    bucket: config.aws_s3.bucket,
    region: config.aws_s3.region,
    endpoint: config.aws_s3.endpoint,
  }, config.baseDir);
}

/** The local tier as `[rustfs]` configures it (plugin `rustfs.plugin`). */
export async function localStore(config: Config): Promise<StoragePlugin> {
  return await build<StoragePlugin>("storage", localStoreSpec(config), STORAGE_METHODS, false);
}

/** The archive tier as `[aws_s3]` configures it (plugin `aws_s3.plugin`). */
export async function archiveStore(config: Config): Promise<StoragePlugin> {
  return await build<StoragePlugin>("storage", archiveStoreSpec(config), STORAGE_METHODS, false);
}

/** Option names whose values are not printed. */
const SECRET = /secret|password|token|credential/i;

/** `name {key: value, ...}`: a plugin's own name and its options, secrets hidden. */
export function describePlugin(name: string, options: Record<string, unknown>): string {
  const shown = Object.entries(options).map(([key, value]) =>
    `${key}: ${SECRET.test(key) && value ? "(hidden)" : JSON.stringify(value) ?? String(value)}`
  );
  return `${name} {${shown.join(", ")}}`;
}

/**
 * The plugins of a consumer for its start-up line: each filter's own name and options after defaults (per robot
 * when `[filter.robots."ID"]` overrides it) and the local store's.
 */
export async function describePlugins(
  config: Config,
  filters: { filterOf(robotId: string): { readonly name: string } },
  storage: { readonly name: string },
): Promise<string> {
  const filterOf = async (robotId: string, settings: FilterSettings) =>
    describePlugin(
      filters.filterOf(robotId).name,
      await resolvedOptions("filter", filterSpec(settings, config.baseDir)),
    );
  const parts = [`filter ${await filterOf("", config.filter)}`];
  for (const [robotId, settings] of Object.entries(config.filter.robots)) {
    parts.push(`robot ${robotId} filter ${await filterOf(robotId, settings)}`);
  }
  parts.push(
    `store ${describePlugin(storage.name, await resolvedOptions("storage", localStoreSpec(config)))}`,
  );
  return parts.join("; ");
}
