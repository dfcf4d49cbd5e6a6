/**
 * Configuration: `config.toml` parsed once into a fully resolved, typed object with every default filled.
 *
 * `resolveConfig` is pure (TOML text + environment in, Config out) so it is tested without files; `loadConfig` is
 * the one place that reads the file and the process environment. Nothing else in the project reads either.
 * Keys, sections and defaults follow the original frame-bucket; new keys have defaults that keep its behaviour.
 */
import { parse as parseToml } from "smol-toml";
import { BUILTIN_STORAGE_NAMES, looksLikePath } from "./filter/loader.ts";
import { robotIdProblem } from "./key.ts";
import { DEFAULT_LABEL_LIMITS } from "./catalog/rules.ts";
import { catalogUrlProblem } from "./catalog/url.ts";
import type { Level } from "./log.ts";

export interface FilterSettings {
  /** Built-in filter name ("phash"/"ahash", "histogram") or a path to a plugin module. */
  primary: string;
  phash_threshold: number;
  phash_hash_size: number;
  histogram_threshold: number;
  resize: "area" | "nearest";
  /** Free-form options handed to a user plugin's factory. */
  options: Record<string, unknown>;
}

export interface Config {
  /** Absolute path of the file the config came from ("" when built from text). */
  source: string;
  /** Folder relative plugin paths are resolved against (the config file's folder). */
  baseDir: string;
  kafka: {
    brokers: string[];
    topic: string;
    group_id: string;
    client_id: string;
    compression: "none" | "gzip" | "snappy";
    partitions: number;
    max_message_bytes: number;
    connect_timeout_ms: number;
    session_timeout_ms: number;
    consumer_client: "kafkajs" | "wire";
  };
  stream: {
    url: string;
    frame_url: string;
    quality: number;
    fps: number;
    mode: "mjpeg" | "polling";
    send_query: boolean;
    read_timeout_secs: number;
  };
  filter: FilterSettings & { robots: Record<string, FilterSettings> };
  rustfs: {
    /** Storage plugin of the local tier: a built-in name ("rustfs") or a path to a module. */
    plugin: string;
    endpoint: string;
    access_key: string;
    secret_key: string;
    bucket: string;
    prefix: string;
    region: string;
    timeout_ms: number;
  };
  eviction: {
    enabled: boolean;
    check_interval_secs: number;
    threshold_percent: number;
    target_percent: number;
    batch_size: number;
    watch_path: string;
    max_bytes: number;
    hard_limit_percent: number;
    on_archive_failure: "pause" | "drop_oldest";
    /**
     * How long the evictor lease lasts without renewal: with several consumers on one catalog, one of them evicts
     * and another takes over within about this long after it dies.
     */
    lease_secs: number;
    /**
     * How long space freed by eviction may take to show on the disk at watch_path (RustFS and MinIO free a deleted
     * object's space in a trash sweep minutes later): until the disk shows it, or this long, the disk trigger
     * counts it as free. 0 = every delete counts as shown at once.
     */
    free_lag_secs: number;
  };
  catalog: {
    /**
     * Where the catalog is: empty or `sqlite:PATH` (a file on this box; empty = data_dir/catalog.sqlite), or
     * `postgres://USER:PASSWORD@HOST:PORT/DATABASE[?schema=NAME]` (one catalog shared by every host).
     */
    url: string;
    /** Connections each process keeps to a PostgreSQL catalog. */
    pool_size: number;
    data_dir: string;
    /** Rebuild an empty catalog from the bucket at consumer start-up instead of only warning. */
    auto_reindex: boolean;
    /** How often the consumer compares the local bucket with the catalog and indexes what is missing (0: never). */
    reconcile_interval_secs: number;
  };
  metrics: {
    hostname: string;
    consumer_port: number;
    producer_port: number;
  };
  server: {
    /** Address `deno task serve` binds to. */
    hostname: string;
    port: number;
    /** When set, writes (post, patch and delete requests) need `Authorization: Bearer <token>`. */
    token: string;
    /**
     * Host names (besides IP addresses and `localhost`) the server answers to: a request whose `Host` header names
     * another is refused, so a web page that rebinds its own DNS name to this machine cannot read the API.
     * Entries are names (`frames.lab.example`), `*.domain` for its subdomains, or `*` for any (no check).
     */
    allowed_hosts: string[];
    /** Bound beyond loopback, reads are open to anyone who can connect only when this is set; else they need the token. */
    public_reads: boolean;
  };
  labels: {
    /** Most labels one request (or command) may name in each of its lists. */
    max_per_request: number;
    /** Most distinct labels the catalog may hold; a change that would create more is refused. */
    max_distinct: number;
    /** A fixed label set: labels, clips and boxes may only name labels defined in the label set. */
    strict: boolean;
  };
  aws_s3: {
    /** Storage plugin of the archive tier: a built-in name ("s3_archive") or a path to a module. */
    plugin: string;
    bucket: string;
    prefix: string;
    robot_id: string;
    region: string;
    endpoint: string;
  };
  logging: { level: Level; format: "text" | "json" };
  producer: {
    buffer_frames: number;
    batch_frames: number;
    stats_interval_secs: number;
  };
  consumer: {
    stats_interval_secs: number;
    store_concurrency: number;
    store_retry_max_ms: number;
    filter_workers: number;
    /** A worker beyond the first that has been idle this long stops (0: every worker runs at all times). */
    filter_workers_idle_secs: number;
    /** A capture time this much older than the robot's previous frame counts as a clock jump (logged, counted). */
    clock_jump_secs: number;
  };
}

type Kind = "string" | "number" | "integer" | "boolean" | "strings" | "table";
interface KeySpec {
  kind: Kind;
  default: unknown;
  /** Allowed values for a string. */
  oneOf?: readonly string[];
  min?: number;
  max?: number;
  /** Name of the environment variable that overrides it (for secrets and deployment-specific values). */
  env?: string;
  /** A "strings" key that may be an empty list. */
  empty?: boolean;
  /** A plugin key: one of these built-in names, or a path to a module ("./my_store.ts"). */
  plugins?: readonly string[];
}

const MiB = 1024 * 1024;

/** Every key the project reads, with its default. The README's config table is written from this. */
export const SCHEMA: Record<string, Record<string, KeySpec>> = {
  kafka: {
    brokers: { kind: "strings", default: ["localhost:9092"], env: "KAFKA_BROKERS" },
    topic: { kind: "string", default: "camera.frames" },
    group_id: { kind: "string", default: "frame-filter-group" },
    client_id: { kind: "string", default: "frame-bucket" },
    compression: { kind: "string", default: "none", oneOf: ["none", "gzip", "snappy"] },
    // 12: a partition goes to one consumer of the group at a time, so the count caps the consumers that can
    // share the work; 12 splits evenly over 1, 2, 3, 4, 6 or 12 consumers and covers the ten consumer hosts of a
    // 200-robot fleet (README "Scaling out"), at no measurable cost to a small one. Adding partitions later moves
    // robots to other partitions (see README), so the count is best chosen once, up front.
    partitions: { kind: "integer", default: 12, min: 1, max: 10000 },
    max_message_bytes: { kind: "integer", default: 8 * MiB, min: 1024, max: 64 * MiB },
    connect_timeout_ms: { kind: "integer", default: 5000, min: 100 },
    session_timeout_ms: { kind: "integer", default: 10000, min: 6000, max: 300000 },
    // The consumer's Kafka client: frame-bucket's own wire client (src/kafka/wire_consumer.ts), which hands record
    // values on as views of the fetch answer instead of kafkajs' per-message objects and copies (kafkajs was 38 %
    // of the consumer's allocations; bench drain side by side: 2.35 vs 2.51 ms CPU per frame, 559 vs 482
    // frames/s), or kafkajs, kept as the fallback. Both join the same group, so a fleet switches one consumer
    // at a time.
    consumer_client: {
      kind: "string",
      default: "wire",
      oneOf: ["kafkajs", "wire"],
      env: "KAFKA_CONSUMER_CLIENT",
    },
  },
  stream: {
    url: { kind: "string", default: "http://localhost:8000/api/camera/stream", env: "STREAM_URL" },
    frame_url: { kind: "string", default: "" },
    quality: { kind: "integer", default: 80, min: 1, max: 100 },
    fps: { kind: "number", default: 10.0, min: 0.01, max: 1000 },
    mode: { kind: "string", default: "mjpeg", oneOf: ["mjpeg", "polling"] },
    send_query: { kind: "boolean", default: true },
    read_timeout_secs: { kind: "number", default: 10, min: 0.1 },
  },
  filter: {
    primary: { kind: "string", default: "phash" },
    phash_threshold: { kind: "integer", default: 26, min: 0 },
    phash_hash_size: { kind: "integer", default: 16, min: 2, max: 64 },
    histogram_threshold: { kind: "number", default: 0.15, min: 0 },
    resize: { kind: "string", default: "area", oneOf: ["area", "nearest"] },
    options: { kind: "table", default: {} },
    robots: { kind: "table", default: {} },
  },
  rustfs: {
    plugin: { kind: "string", default: "rustfs", plugins: BUILTIN_STORAGE_NAMES },
    endpoint: { kind: "string", default: "http://localhost:9000", env: "RUSTFS_ENDPOINT" },
    access_key: { kind: "string", default: "rustfsadmin", env: "RUSTFS_ACCESS_KEY" },
    secret_key: { kind: "string", default: "rustfsadmin", env: "RUSTFS_SECRET_KEY" },
    bucket: { kind: "string", default: "camera-frames" },
    prefix: { kind: "string", default: "frames/" },
    region: { kind: "string", default: "us-east-1" },
    timeout_ms: { kind: "integer", default: 10000, min: 100 },
  },
  eviction: {
    check_interval_secs: { kind: "number", default: 30, min: 0.1 },
    threshold_percent: { kind: "number", default: 80.0, min: 1, max: 100 },
    target_percent: { kind: "number", default: 70.0, min: 0, max: 100 },
    batch_size: { kind: "integer", default: 50, min: 1 },
    enabled: { kind: "boolean", default: true },
    watch_path: { kind: "string", default: "" },
    max_bytes: { kind: "integer", default: 0, min: 0 },
    hard_limit_percent: { kind: "number", default: 95.0, min: 1, max: 100 },
    on_archive_failure: { kind: "string", default: "pause", oneOf: ["pause", "drop_oldest"] },
    lease_secs: { kind: "number", default: 15, min: 1, max: 3600 },
    free_lag_secs: { kind: "number", default: 600, min: 0, max: 86400 },
  },
  catalog: {
    url: { kind: "string", default: "", env: "FRAME_BUCKET_CATALOG_URL" },
    pool_size: { kind: "integer", default: 8, min: 1, max: 100 },
    data_dir: { kind: "string", default: ".data", env: "FRAME_BUCKET_DATA_DIR" },
    auto_reindex: { kind: "boolean", default: false },
    reconcile_interval_secs: { kind: "number", default: 600, min: 0 },
  },
  metrics: {
    hostname: { kind: "string", default: "127.0.0.1" },
    consumer_port: { kind: "integer", default: 9464, min: 0, max: 65535, env: "CONSUMER_METRICS_PORT" },
    producer_port: { kind: "integer", default: 0, min: 0, max: 65535, env: "PRODUCER_METRICS_PORT" },
  },
  server: {
    hostname: { kind: "string", default: "127.0.0.1" },
    port: { kind: "integer", default: 8080, min: 0, max: 65535 },
    token: { kind: "string", default: "", env: "FRAME_BUCKET_TOKEN" },
    allowed_hosts: { kind: "strings", default: [], empty: true },
    public_reads: { kind: "boolean", default: false },
  },
  labels: {
    max_per_request: {
      kind: "integer",
      default: DEFAULT_LABEL_LIMITS.maxPerRequest,
      min: 1,
      max: 100_000,
    },
    max_distinct: { kind: "integer", default: DEFAULT_LABEL_LIMITS.maxDistinct, min: 1, max: 10_000_000 },
    strict: { kind: "boolean", default: false },
  },
  aws_s3: {
    plugin: { kind: "string", default: "s3_archive", plugins: BUILTIN_STORAGE_NAMES },
    bucket: { kind: "string", default: "reachy-mini-frames-archive" },
    prefix: { kind: "string", default: "archive/" },
    robot_id: { kind: "string", default: "reachy-001" },
    region: { kind: "string", default: "us-west-2" },
    endpoint: { kind: "string", default: "", env: "AWS_S3_ENDPOINT" },
  },
  logging: {
    level: { kind: "string", default: "info", oneOf: ["error", "warn", "info", "debug"] },
    format: { kind: "string", default: "text", oneOf: ["text", "json"], env: "LOG_FORMAT" },
  },
  producer: {
    buffer_frames: { kind: "integer", default: 300, min: 1, max: 100000 },
    batch_frames: { kind: "integer", default: 10, min: 1, max: 1000 },
    stats_interval_secs: { kind: "number", default: 10, min: 0.1 },
  },
  consumer: {
    stats_interval_secs: { kind: "number", default: 10, min: 0.1 },
    store_concurrency: { kind: "integer", default: 8, min: 1, max: 256 },
    store_retry_max_ms: { kind: "integer", default: 5000, min: 10 },
    filter_workers: { kind: "integer", default: 2, min: 0, max: 64 },
    // One worker keeps up with a fleet's live rate; the others start when the running ones are busy 75 % of three
    // seconds in a row, or at once when frames have queued up for half a second or while the consumer is 1,000
    // messages behind in Kafka (a backlog), and stop after this long idle, giving back ~28 MB each.
    filter_workers_idle_secs: { kind: "number", default: 30, min: 0 },
    clock_jump_secs: { kind: "number", default: 5, min: 0.001 },
  },
};

/** Keys a `[filter.robots."ID"]` table may override. */
const ROBOT_FILTER_KEYS = [
  "primary",
  "phash_threshold",
  "phash_hash_size",
  "histogram_threshold",
  "resize",
  "options",
];

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (value instanceof Date) return "a date";
  return typeof value === "object" ? "a table" : `${typeof value} ${JSON.stringify(value)}`;
}

function checkValue(where: string, spec: KeySpec, value: unknown): unknown {
  switch (spec.kind) {
    case "string":
      if (typeof value !== "string") throw new TypeError(`${where} must be a string, not ${describe(value)}`);
      if (spec.oneOf && !spec.oneOf.includes(value)) {
        throw new RangeError(`${where} = ${JSON.stringify(value)} is not one of ${spec.oneOf.join(", ")}`);
      }
      if (spec.plugins && !spec.plugins.includes(value) && !looksLikePath(value)) {
        throw new RangeError(
          `${where} = ${JSON.stringify(value)} is neither a built-in plugin (${
            spec.plugins.join(", ")
          }) nor a ` +
            `path to a plugin module (e.g. "./my_store.ts", relative to the config file)`,
        );
      }
      return value;
    case "boolean":
      if (typeof value !== "boolean") {
        throw new TypeError(`${where} must be true or false, not ${describe(value)}`);
      }
      return value;
    case "number":
    case "integer": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new TypeError(`${where} must be a number, not ${describe(value)}`);
      }
      if (spec.kind === "integer" && !Number.isInteger(value)) {
        throw new TypeError(`${where} must be a whole number, not ${value}`);
      }
      if (spec.min !== undefined && value < spec.min) {
        throw new RangeError(`${where} = ${value} is below ${spec.min}`);
      }
      if (spec.max !== undefined && value > spec.max) {
        throw new RangeError(`${where} = ${value} is above ${spec.max}`);
      }
      return value;
    }
    case "strings": {
      const list = typeof value === "string" ? value.split(",").map((s) => s.trim()).filter(Boolean) : value;
      if (
        !Array.isArray(list) || (list.length === 0 && !spec.empty) ||
        !list.every((s) => typeof s === "string" && s)
      ) {
        throw new TypeError(
          `${where} must be a ${spec.empty ? "" : "non-empty "}string or array of strings, not ${
            describe(value)
          }`,
        );
      }
      return list;
    }
    case "table":
      if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Date) {
        throw new TypeError(`${where} must be a table, not ${describe(value)}`);
      }
      return value;
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The level named by RUST_LOG ("info", or "frame_bucket=debug,kafkajs=warn": the first bare level wins). */
function levelFromRustLog(value: string): string | undefined {
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bare = items.find((s) => !s.includes("="));
  const chosen = bare ?? items[0]?.split("=")[1];
  const level = chosen?.toLowerCase();
  if (level === "trace") return "debug";
  if (level === "warning") return "warn";
  return level;
}

export interface ResolveOptions {
  /** Environment variables (a plain object so tests can pass their own). */
  env?: Record<string, string | undefined>;
  source?: string;
  baseDir?: string;
}

/** Parses and validates config text. Throws SyntaxError, TypeError or RangeError naming the key. */
export function resolveConfig(text: string, options: ResolveOptions = {}): Config {
  const env = options.env ?? {};
  const where = options.source || "config";
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new SyntaxError(`${where} is not valid TOML: ${(error as Error).message}`);
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of Object.keys(raw)) {
    if (!(name in SCHEMA)) {
      throw new RangeError(
        `${where}: unknown section [${name}] (known: ${Object.keys(SCHEMA).map((s) => `[${s}]`).join(", ")})`,
      );
    }
    if (!isTable(raw[name])) throw new TypeError(`${where}: ${name} must be a [${name}] table`);
  }
  for (const [section, keys] of Object.entries(SCHEMA)) {
    const given = (raw[section] ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(given)) {
      if (!(key in keys)) {
        throw new RangeError(
          `${where}: unknown key ${section}.${key} (known in [${section}]: ${Object.keys(keys).join(", ")})`,
        );
      }
    }
    const resolved: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(keys)) {
      const envValue = spec.env ? env[spec.env] : undefined;
      let value: unknown = key in given ? given[key] : structuredClone(spec.default);
      let from = `${section}.${key}`;
      if (envValue !== undefined && envValue !== "") {
        value = spec.kind === "number" || spec.kind === "integer" ? Number(envValue) : envValue;
        from = `${spec.env} (environment)`;
      }
      resolved[key] = checkValue(from, spec, value);
    }
    out[section] = resolved;
  }
  const envLevel = env.LOG_LEVEL || (env.RUST_LOG ? levelFromRustLog(env.RUST_LOG) : undefined);
  if (envLevel) {
    out.logging.level = checkValue(
      env.LOG_LEVEL ? "LOG_LEVEL (environment)" : "RUST_LOG (environment)",
      SCHEMA.logging.level,
      envLevel.toLowerCase(),
    );
  }
  const config = out as unknown as Config;
  if (config.eviction.target_percent >= config.eviction.threshold_percent) {
    throw new RangeError(
      `eviction.target_percent (${config.eviction.target_percent}) must be below eviction.threshold_percent ` +
        `(${config.eviction.threshold_percent})`,
    );
  }
  if (config.eviction.hard_limit_percent <= config.eviction.threshold_percent) {
    throw new RangeError(
      `eviction.hard_limit_percent (${config.eviction.hard_limit_percent}) must be above eviction.threshold_percent ` +
        `(${config.eviction.threshold_percent})`,
    );
  }
  const catalogProblem = catalogUrlProblem(config.catalog.url);
  if (catalogProblem) throw new RangeError(`catalog.url: ${catalogProblem}`);
  for (const host of config.server.allowed_hosts) {
    const problem = allowedHostProblem(host);
    if (problem) throw new RangeError(`server.allowed_hosts: ${problem}`);
  }
  config.server.allowed_hosts = config.server.allowed_hosts.map((h) => h.toLowerCase());
  config.filter.robots = resolveRobotFilters(config.filter, config.filter.robots as Record<string, unknown>);
  config.source = options.source ?? "";
  config.baseDir = options.baseDir ?? ".";
  return config;
}

/**
 * Why an entry of server.allowed_hosts is not usable, or null: a DNS name (letters, digits, '-', '.'), optionally
 * `*.` before it for every subdomain, or `*` alone. Ports, schemes and paths are refused, since the check compares
 * host names only.
 */
export function allowedHostProblem(entry: string): string | null {
  if (entry === "*") return null;
  const name = entry.startsWith("*.") ? entry.slice(2) : entry;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) || entry.includes("/")) {
    return `${JSON.stringify(entry)} is a URL: give the host name only (e.g. "frames.lab.example")`;
  }
  if (/:\d+$/.test(entry)) {
    return `${JSON.stringify(entry)} has a port: give the host name only (any port is accepted)`;
  }
  if (
    !/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(name)
  ) {
    return `${
      JSON.stringify(entry)
    } is not a host name: use letters, digits, '-' and '.', "*.example.com" for subdomains, or "*" for any`;
  }
  return null;
}

function resolveRobotFilters(
  base: FilterSettings,
  robots: Record<string, unknown>,
): Record<string, FilterSettings> {
  const out: Record<string, FilterSettings> = {};
  for (const [robotId, table] of Object.entries(robots)) {
    const problem = robotIdProblem(robotId);
    if (problem) throw new RangeError(`[filter.robots."${robotId}"]: ${problem}`);
    if (!isTable(table)) throw new TypeError(`filter.robots."${robotId}" must be a table`);
    const merged: Record<string, unknown> = { ...base };
    delete merged.robots;
    for (const [key, value] of Object.entries(table)) {
      if (!ROBOT_FILTER_KEYS.includes(key)) {
        throw new RangeError(
          `unknown key filter.robots."${robotId}".${key} (allowed: ${ROBOT_FILTER_KEYS.join(", ")})`,
        );
      }
      merged[key] = checkValue(`filter.robots."${robotId}".${key}`, SCHEMA.filter[key], value);
    }
    // `options` belong to a plugin: a robot that switches to another filter does not inherit the base filter's
    // (they would be refused as unknown options of its plugin); it names its own or gets its plugin's defaults.
    if ("primary" in table && table.primary !== base.primary && !("options" in table)) merged.options = {};
    out[robotId] = merged as unknown as FilterSettings;
  }
  return out;
}

/** The filter settings that apply to one robot: its override table or the [filter] defaults. */
export function filterSettingsFor(config: Config, robotId: string): FilterSettings {
  return config.filter.robots[robotId] ?? config.filter;
}

/**
 * Reads and resolves a config file. A missing file is an error when the path was given explicitly; the default
 * `config.toml` may be absent, and then the built-in defaults apply.
 */
export async function loadConfig(path?: string): Promise<Config> {
  const explicit = path !== undefined;
  const file = path ?? "config.toml";
  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || explicit) {
      throw new Deno.errors.NotFound(`cannot read config file ${file}: ${(error as Error).message}`);
    }
  }
  const absolute = text ? await Deno.realPath(file) : "";
  const baseDir = absolute ? absolute.slice(0, absolute.lastIndexOf("/")) : Deno.cwd();
  return resolveConfig(text, { env: Deno.env.toObject(), source: absolute || "built-in defaults", baseDir });
}
