/**
 * `deno task stack up|down|status|clean [kafka|s3|postgres ...]`: a real Kafka broker, a real S3-compatible server
 * and a real PostgreSQL server on loopback, for development, tests, benchmarks and CI.
 *
 * The machines have no Docker and reach no download site but the package registries, so the two JVM servers come
 * from Maven Central as jars (stack/kafka/pom.xml, stack/s3/pom.xml) and run on the machine's Java 17, and
 * PostgreSQL comes from Debian's `postgresql` package (its initdb, pg_ctl and postgres; no cluster of the package's
 * own is used or started):
 * - Kafka 4.x in KRaft combined mode (one process is both broker and controller), 127.0.0.1:9092;
 * - S3Proxy with its filesystem backend, http://127.0.0.1:9000, access key and secret `rustfsadmin`;
 * - PostgreSQL, postgres://frame_bucket:frame_bucket@127.0.0.1:15432/frame_bucket (role `frame_bucket` with
 *   CREATEDB owns database `frame_bucket`; superuser `postgres`, password `frame_bucket`; scram-sha-256 auth).
 *   Port 15432, not 5432: installing the Debian package may start a system cluster of its own on 5432. PostgreSQL
 *   refuses to run as root, so under root its programs run as PG_RUN_AS (`nobody`) and its folder belongs to that
 *   user.
 *
 * Everything lives under `.stack/` (or FRAME_BUCKET_STACK_DIR): `lib/` holds the jars (fetched by the first `up`,
 * kept by `down --wipe`), `<svc>/` holds the config, the data, the log and the pid file (for PostgreSQL also its
 * unix socket). The servers run detached so they outlive this script; `down` stops them, and `down --wipe` (or
 * `clean`) also deletes their data.
 *
 * Env: FRAME_BUCKET_STACK_DIR, KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT + 1), S3_PORT (9000),
 * PG_PORT (15432), JAVA_HOME (else `java` on PATH), PG_BIN (the folder of initdb, pg_ctl and postgres; else the
 * newest /usr/lib/postgresql/<version>/bin, else PATH), PG_RUN_AS (the user PostgreSQL runs as when this runs as
 * root; `nobody`).
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "../src/ingest/camera.ts";

export type Service = "kafka" | "s3" | "postgres";
export const SERVICES: readonly Service[] = ["kafka", "s3", "postgres"];

/** The S3 credentials the server accepts: RustFS's default pair, so settings written for a RustFS server fit. */
export const S3_ACCESS_KEY = "rustfsadmin";
export const S3_SECRET_KEY = "rustfsadmin";

/**
 * The PostgreSQL login and database clients use (the catalog's `catalog.url`): the role owns the database, and
 * CREATEDB lets tests make databases of their own.
 */
export const PG_USER = "frame_bucket";
export const PG_PASSWORD = "frame_bucket";
export const PG_DATABASE = "frame_bucket";
/** The superuser initdb makes; only this script logs in as it, to create the role and the database. */
const PG_SUPERUSER = "postgres";
const PG_SUPERUSER_PASSWORD = "frame_bucket";
/**
 * Not 5432: `apt-get install postgresql` creates and starts a system cluster of its own there, which this stack
 * must neither meet nor touch. Another stack folder side by side sets PG_PORT like KAFKA_PORT and S3_PORT.
 */
const PG_DEFAULT_PORT = 15432;
/** The user PostgreSQL's programs run as when this script runs as root (initdb, pg_ctl and postgres refuse root). */
const PG_DEFAULT_RUN_AS = "nobody";

const HOST = "127.0.0.1";
/** Kafka in KRaft mode with a fresh log dir: first start-up also creates the metadata log, and CI can be slow. */
const KAFKA_START_TIMEOUT_MS = 90_000;
const S3_START_TIMEOUT_MS = 60_000;
/** Crash recovery after a kill replays the WAL since the last checkpoint before PostgreSQL accepts connections. */
const PG_START_TIMEOUT_MS = 60_000;
/**
 * How long `down` lets a server shut down cleanly (Kafka flushes and closes its logs, PostgreSQL writes a shutdown
 * checkpoint) before SIGKILL.
 */
const STOP_GRACE_MS = 30_000;
/** A log past this size is moved to `<name>.1` at the next start, so restarts in a loop cannot fill the disk. */
const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// Paths and settings

interface Layout {
  root: string;
  stackDir: string;
  kafkaPort: number;
  controllerPort: number;
  s3Port: number;
  pgPort: number;
}

/** The folder holding deno.json, searched upward from this file so the tool works from any working directory. */
function projectRoot(): string {
  if (!import.meta.url.startsWith("file:")) {
    throw new Error(`tools/stack.ts must run from a local checkout, not from ${import.meta.url}`);
  }
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      Deno.statSync(join(dir, "deno.json"));
      return dir;
    } catch {
      const up = dirname(dir);
      if (up === dir) {
        throw new Error(
          `no deno.json found above ${fileURLToPath(import.meta.url)}: run it inside the project`,
        );
      }
      dir = up;
    }
  }
}

function portFromEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw.trim() === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(
      `${name}=${JSON.stringify(raw)} is not a port number: set it to an integer 1-65535 or unset it`,
    );
  }
  return port;
}

function layout(): Layout {
  const root = projectRoot();
  const stackDir = resolve(Deno.env.get("FRAME_BUCKET_STACK_DIR") || join(root, ".stack"));
  const kafkaPort = portFromEnv("KAFKA_PORT", 9092);
  const controllerPort = portFromEnv(
    "KAFKA_CONTROLLER_PORT",
    kafkaPort < 65535 ? kafkaPort + 1 : kafkaPort - 1,
  );
  const s3Port = portFromEnv("S3_PORT", 9000);
  const pgPort = portFromEnv("PG_PORT", PG_DEFAULT_PORT);
  const ports = [kafkaPort, controllerPort, s3Port, pgPort];
  if (new Set(ports).size !== ports.length) {
    throw new RangeError(
      `ports clash: KAFKA_PORT=${kafkaPort}, KAFKA_CONTROLLER_PORT=${controllerPort}, S3_PORT=${s3Port}, ` +
        `PG_PORT=${pgPort}; give each its own port`,
    );
  }
  return { root, stackDir, kafkaPort, controllerPort, s3Port, pgPort };
}

/** The URL a PostgreSQL client (the catalog's `catalog.url`) connects with. */
function postgresUrl(port: number, user = PG_USER, password = PG_PASSWORD, database = PG_DATABASE): string {
  return `postgres://${user}:${password}@${HOST}:${port}/${database}`;
}

/** Where a client should connect, for tests and tools that talk to this stack. */
export function stackEndpoints(): {
  kafkaBrokers: string[];
  s3Endpoint: string;
  accessKey: string;
  secretKey: string;
  /** postgres://frame_bucket:frame_bucket@127.0.0.1:PG_PORT/frame_bucket */
  postgresUrl: string;
} {
  const l = layout();
  return {
    kafkaBrokers: [`${HOST}:${l.kafkaPort}`],
    s3Endpoint: `http://${HOST}:${l.s3Port}`,
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    postgresUrl: postgresUrl(l.pgPort),
  };
}

const svcDir = (l: Layout, svc: Service) => join(l.stackDir, svc);
const libDir = (l: Layout, svc: Service) => join(l.stackDir, "lib", svc);
const pidFile = (l: Layout, svc: Service) => join(svcDir(l, svc), "pid");
const logFile = (l: Layout, svc: Service) => join(svcDir(l, svc), `${svc}.log`);
const pomFile = (l: Layout, svc: Service) => join(l.root, "stack", svc, "pom.xml");
const pgDataDir = (l: Layout) => join(svcDir(l, "postgres"), "data");
const mainPort = (l: Layout, svc: Service) =>
  svc === "kafka" ? l.kafkaPort : svc === "s3" ? l.s3Port : l.pgPort;
const PORT_ENV: Record<Service, string> = { kafka: "KAFKA_PORT", s3: "S3_PORT", postgres: "PG_PORT" };
/** Where clients connect; for PostgreSQL the URL without its password (stackEndpoints has the whole URL). */
const address = (l: Layout, svc: Service) =>
  svc === "kafka"
    ? `${HOST}:${l.kafkaPort}`
    : svc === "s3"
    ? `http://${HOST}:${l.s3Port}`
    : `postgres://${PG_USER}@${HOST}:${l.pgPort}/${PG_DATABASE}`;
/**
 * Put on the server's command line so a process can be told to be ours (and for which stack folder) even after its
 * pid file is lost or its pid reused by something else: a java system property, or for PostgreSQL a custom setting
 * (`-c frame_bucket.stack=...`; the postmaster keeps its command line, only its children retitle themselves).
 */
const marker = (l: Layout, svc: Service) =>
  svc === "postgres"
    ? `frame_bucket.stack=${svc}@${l.stackDir}`
    : `-Dframe-bucket.stack=${svc}@${l.stackDir}`;
/** Also on the command line: the port a running server was started with, which may differ from today's env. */
const portFlag = (port: number) => `-Dframe-bucket.port=${port}`;
/** Reads the port back from either form: the JVMs' portFlag, or PostgreSQL's own `-c port=N`. */
const PORT_ON_COMMAND_LINE = /(?:-Dframe-bucket\.port=| -c port=)(\d+) /;

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Progress goes to stderr so stdout holds only the one result line per service. */
function note(line: string): void {
  console.error(line);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The last lines the server wrote since its latest start (spawnDetached writes a `====` line at each start). */
async function tailOf(path: string, lines = 25): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    const since = text.slice(Math.max(0, text.lastIndexOf("\n==== ") + 1));
    return since.trimEnd().split("\n").slice(-lines).map((l) => `    ${l}`).join("\n");
  } catch {
    return "    (no log)";
  }
}

/** Runs a command to its end; `input` goes to its stdin, `env` is added to this script's environment. */
async function run(
  cmd: string,
  args: string[],
  what: string,
  missingHint: string,
  opts: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; out: string }> {
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(cmd, {
      args,
      env: opts.env,
      cwd: opts.cwd,
      stdin: opts.input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (opts.input !== undefined) {
      const writer = child.stdin.getWriter();
      // A program that exits without reading all of its input closes the pipe: its exit code tells what happened.
      await writer.write(encoder.encode(opts.input)).catch(() => {});
      await writer.close().catch(() => {});
    }
    output = await child.output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${cmd} not found (needed to ${what}): ${missingHint}`);
    }
    throw e;
  }
  return { code: output.code, out: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

// ---------------------------------------------------------------------------------------------------------------
// Java and the jars from Maven Central

function javaBin(): string {
  const home = Deno.env.get("JAVA_HOME");
  return home ? join(home, "bin", "java") : "java";
}

/** The java checked last, and a short hash of its `-version` output, naming its class-data archives. */
let checkedJava: { bin: string; id: string } | undefined;

/**
 * Fails early with the fix, instead of letting a server die at start-up with a class-version error in its log.
 * Returns an id of this exact Java build.
 */
async function ensureJava(): Promise<string> {
  const java = javaBin();
  if (checkedJava?.bin === java) return checkedJava.id;
  const hint = Deno.env.get("JAVA_HOME")
    ? `JAVA_HOME=${Deno.env.get("JAVA_HOME")} has no bin/java: fix or unset JAVA_HOME, or install OpenJDK 17`
    : "install OpenJDK 17 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME";
  const { code, out } = await run(java, ["-version"], "run Kafka and S3Proxy", hint);
  const m = out.match(/version "(\d+)(?:\.(\d+))?/);
  if (code !== 0 || !m) throw new Error(`${java} -version failed (exit ${code}): ${out.trim()}\n  ${hint}`);
  // Java 8 and older call themselves "1.8".
  const major = m[1] === "1" ? Number(m[2]) : Number(m[1]);
  if (major < 17) {
    throw new Error(
      `${java} is Java ${major}; Kafka 4 and S3Proxy 4 need Java 17 or newer: install OpenJDK 17 or set JAVA_HOME`,
    );
  }
  checkedJava = { bin: java, id: (await sha256(out)).slice(0, 12) };
  return checkedJava.id;
}

/** The services that are a JVM running jars from Maven Central. */
type JvmService = Exclude<Service, "postgres">;

const LABEL: Record<JvmService, { name: string; versionProperty: string }> = {
  kafka: { name: "Kafka", versionProperty: "kafka.version" },
  s3: { name: "S3Proxy", versionProperty: "s3proxy.version" },
};

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Copies the service's jars into `.stack/lib/<svc>` with Maven unless they are there from an earlier run.
 *
 * A stamp holding the pom's hash is written last, so a fetch cut off half-way is redone, and editing the pom (a new
 * version) fetches again. Maven keeps its own cache in ~/.m2, so a refetch after `rm -rf .stack` is fast.
 */
async function ensureJars(l: Layout, svc: JvmService): Promise<void> {
  const pom = pomFile(l, svc);
  let pomText: string;
  try {
    pomText = await Deno.readTextFile(pom);
  } catch (e) {
    throw new Error(`cannot read ${pom} (${(e as Error).message}): restore it from git`);
  }
  const wanted = await sha256(pomText);
  const dir = libDir(l, svc);
  const stamp = join(dir, ".fetched");
  try {
    if ((await Deno.readTextFile(stamp)).trim() === wanted) return;
  } catch {
    // No stamp: never fetched, or cut off; fetch below.
  }
  const version = pomText.match(new RegExp(`<${LABEL[svc].versionProperty}>([^<]+)<`))?.[1] ?? "?";
  note(`fetching ${LABEL[svc].name} ${version} jars from Maven Central (first run only)...`);
  const started = performance.now();
  // Into a side folder first, so a failed fetch never leaves a half-filled lib folder that looks complete.
  const partial = `${dir}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  const args = [
    "-q",
    "-B",
    "-f",
    pom,
    "dependency:copy-dependencies",
    `-DoutputDirectory=${partial}`,
    "-DincludeScope=runtime",
  ];
  const { code, out } = await run(
    "mvn",
    args,
    `fetch ${LABEL[svc].name} from Maven Central`,
    "install Maven 3.8+ (apt-get install maven)",
  );
  if (code !== 0) {
    throw new Error(
      `mvn ${args.join(" ")} failed (exit ${code}):\n${out.trim()}\n` +
        "  check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml) and try `up` again",
    );
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(partial, dir);
  await Deno.writeTextFile(stamp, wanted + "\n");
  note(`  fetched into ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * JVM flags for a class-data-sharing archive of the server's classes, which takes about 1.5 s off each Kafka start
 * (3.6 s to 2.1 s here) and 0.3 s off S3Proxy's; tests that stop and restart Kafka gain the most.
 *
 * Java 17 can only write such an archive when a JVM exits, so the first start of a server records one into
 * `<name>.tmp`, and `down` renames it once the server has exited cleanly: a JVM killed mid-write leaves only a
 * `.tmp`, which the next start deletes and records afresh. The name holds a hash of the Java build, since an archive
 * only fits the JVM that wrote it; it sits with the jars, so a refetch drops it too.
 */
async function classDataFlags(l: Layout, svc: Service): Promise<string[]> {
  const archive = join(libDir(l, svc), `${svc}-${await ensureJava()}.jsa`);
  // The JVM's own CDS notes (classes it skips, an archive it cannot use) are noise in the server log; without an
  // archive it just loads classes the slow way.
  const quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"];
  if (await exists(archive)) return [`-XX:SharedArchiveFile=${archive}`, ...quiet];
  await Deno.remove(`${archive}.tmp`).catch(() => {});
  return [`-XX:ArchiveClassesAtExit=${archive}.tmp`, ...quiet];
}

/** After a clean exit, keeps the archive the server recorded; after a SIGKILL, drops it (see classDataFlags). */
async function settleClassData(l: Layout, svc: Service, clean: boolean): Promise<void> {
  try {
    for await (const entry of Deno.readDir(libDir(l, svc))) {
      if (!entry.name.endsWith(".jsa.tmp")) continue;
      const path = join(libDir(l, svc), entry.name);
      if (clean) await Deno.rename(path, path.slice(0, -".tmp".length));
      else await Deno.remove(path);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

/** Linux /proc first (cheap, sees zombies); `ps` where there is no /proc. */
async function processCommandLine(pid: number): Promise<string | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The state letter follows the command name in parentheses, which may itself hold spaces or parentheses.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    // A zombie has exited and only waits to be reaped by its parent (this script, when it started it).
    if (state === "Z" || state === "X") return undefined;
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    if (await exists("/proc/self")) return undefined;
  }
  const { code, out } = await run(
    "ps",
    ["-o", "command=", "-p", String(pid)],
    "check a process",
    "install procps",
  );
  return code === 0 && out.trim() !== "" ? out.trim() : undefined;
}

interface Running {
  pid: number;
  /** The port it listens on (its -Dframe-bucket.port, or PostgreSQL's -c port). */
  port: number;
}

/** The server if `pid` is this stack's `svc` and alive. */
async function ours(l: Layout, svc: Service, pid: number): Promise<Running | undefined> {
  const cmdline = await processCommandLine(pid);
  if (cmdline === undefined || !cmdline.includes(`${marker(l, svc)} `)) return undefined;
  const port = Number(cmdline.match(PORT_ON_COMMAND_LINE)?.[1] ?? mainPort(l, svc));
  return { pid, port };
}

const isOurs = async (l: Layout, svc: Service, pid: number) => (await ours(l, svc, pid)) !== undefined;

/** This stack's running server, found by its pid file or, if that was lost, by its marker in /proc. */
async function findRunning(l: Layout, svc: Service): Promise<Running | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(pidFile(l, svc))).trim());
    const found = Number.isInteger(pid) && pid > 0 ? await ours(l, svc, pid) : undefined;
    if (found) return found;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const found = await ours(l, svc, Number(entry.name));
        if (found) return found;
      } catch {
        // The process ended while we looked, or is not ours to read.
      }
    }
  } catch {
    // No /proc (macOS): the pid file is all we have.
  }
  return undefined;
}

/** True when something accepts TCP connections on the port, whoever it is. */
async function portOpen(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: HOST, port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `command...` (java and its args; for PostgreSQL the postgres server, maybe behind setpriv) in its own
 * session with stdio on the log file, so it outlives this script and a Ctrl-C here. Deno can only pipe or inherit
 * stdio, hence the `sh -c 'exec ...'` to open the file; exec (and setpriv, which execs too) keeps the pid.
 */
async function spawnDetached(l: Layout, svc: Service, command: string[]): Promise<number> {
  const log = logFile(l, svc);
  try {
    if ((await Deno.stat(log)).size > LOG_ROTATE_BYTES) await Deno.rename(log, `${log}.1`);
  } catch {
    // No log yet.
  }
  const header = `==== ${new Date().toISOString()} starting ${svc}: ${command.join(" ")}\n`;
  await Deno.writeTextFile(log, header, { append: true });
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$@" >>"$FRAME_BUCKET_LOG" 2>&1 </dev/null', "sh", ...command],
    env: { FRAME_BUCKET_LOG: log },
    cwd: svcDir(l, svc),
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  // Reap it if it exits while this script still runs (tests call stackUp and stackDown in one process), and do not
  // let it hold this script open.
  child.status.catch(() => {});
  child.unref();
  await Deno.writeTextFile(pidFile(l, svc), `${child.pid}\n`);
  return child.pid;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await processCommandLine(pid) === undefined) return true;
    await sleep(100);
  }
  return processCommandLine(pid).then((c) => c === undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka: a hand-rolled ApiVersions + Metadata round-trip, so the health check needs no client library and shows that
// the broker really serves requests (it only processes requests once it has joined its own KRaft quorum).

interface KafkaMetadata {
  clusterId: string | null;
  brokers: { id: number; host: string; port: number }[];
}

class Reader {
  #view: DataView;
  #at = 0;
  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  int16(): number {
    const v = this.#view.getInt16(this.#at);
    this.#at += 2;
    return v;
  }
  int32(): number {
    const v = this.#view.getInt32(this.#at);
    this.#at += 4;
    return v;
  }
  string(): string | null {
    const len = this.int16();
    if (len < 0) return null;
    const s = decoder.decode(this.bytes.subarray(this.#at, this.#at + len));
    this.#at += len;
    return s;
  }
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) throw new Error("connection closed by the server");
    got += r;
  }
  return buf;
}

/** One request with a v1 header (the non-flexible one: every API version used here predates flexible headers). */
async function kafkaRequest(
  conn: Deno.Conn,
  apiKey: number,
  version: number,
  correlationId: number,
  body: number[],
): Promise<Reader> {
  const clientId = encoder.encode("frame-bucket-stack");
  const size = 2 + 2 + 4 + 2 + clientId.length + body.length;
  const frame = new Uint8Array(4 + size);
  const view = new DataView(frame.buffer);
  view.setInt32(0, size);
  view.setInt16(4, apiKey);
  view.setInt16(6, version);
  view.setInt32(8, correlationId);
  view.setInt16(12, clientId.length);
  frame.set(clientId, 14);
  frame.set(body, 14 + clientId.length);
  let written = 0;
  while (written < frame.length) written += await conn.write(frame.subarray(written));
  const len = new DataView((await readExactly(conn, 4)).buffer).getInt32(0);
  if (len < 4 || len > 1 << 20) throw new Error(`not a Kafka response (length ${len})`);
  const reader = new Reader(await readExactly(conn, len));
  const got = reader.int32();
  if (got !== correlationId) {
    throw new Error(`not a Kafka response (correlation id ${got}, sent ${correlationId})`);
  }
  return reader;
}

const API_METADATA = 3;
const API_VERSIONS = 18;

/** Asks the broker for its metadata; throws when the port does not speak Kafka or does not answer in time. */
async function kafkaMetadata(port: number, timeoutMs = 3000): Promise<KafkaMetadata> {
  const conn = await Deno.connect({ hostname: HOST, port });
  // Closing the connection fails any pending read, which is how a silent peer is given up on.
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const versions = await kafkaRequest(conn, API_VERSIONS, 0, 1, []);
    const error = versions.int16();
    if (error !== 0) throw new Error(`ApiVersions answered error code ${error}`);
    let range: [number, number] | undefined;
    for (let i = versions.int32(); i > 0; i--) {
      const [key, min, max] = [versions.int16(), versions.int16(), versions.int16()];
      if (key === API_METADATA) range = [min, max];
    }
    // Versions 1-8 share the simple non-flexible layout parsed below; 2 and up carry the cluster id.
    const v = range ? Math.min(range[1], 8) : -1;
    if (!range || v < Math.max(range[0], 1)) {
      throw new Error(`broker serves Metadata versions ${range?.join("-") ?? "none"}, this check speaks 1-8`);
    }
    // An empty topic list (not null, which would mean all topics): only the broker list is wanted.
    const body = [0, 0, 0, 0];
    if (v >= 4) body.push(0); // allow_auto_topic_creation
    if (v >= 8) body.push(0, 0); // include cluster / topic authorized operations
    const md = await kafkaRequest(conn, API_METADATA, v, 2, body);
    if (v >= 3) md.int32(); // throttle_time_ms
    const brokers: KafkaMetadata["brokers"] = [];
    for (let i = md.int32(); i > 0; i--) {
      const id = md.int32();
      const host = md.string() ?? "";
      const brokerPort = md.int32();
      md.string(); // rack
      brokers.push({ id, host, port: brokerPort });
    }
    const clusterId = v >= 2 ? md.string() : null;
    return { clusterId, brokers };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the timer.
    }
  }
}

async function kafkaAnswers(port: number): Promise<boolean> {
  try {
    const md = await kafkaMetadata(port);
    return md.brokers.some((b) => b.port === port);
  } catch {
    return false;
  }
}

/** Any HTTP answer counts (S3Proxy says 403 to an unsigned request); a refused or silent port does not. */
async function s3Answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}/`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

const answers = (svc: Service, port: number) =>
  svc === "kafka" ? kafkaAnswers(port) : svc === "s3" ? s3Answers(port) : postgresAnswers(port);

/** A cluster id in Kafka's form: 16 random bytes, base64url without padding, never starting with "-". */
function newClusterId(): string {
  for (;;) {
    const base64 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const id = base64.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    if (!id.startsWith("-")) return id;
  }
}

function kafkaProperties(l: Layout): string {
  const data = join(svcDir(l, "kafka"), "data");
  return `# Written by tools/stack.ts at every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
# A fixed one-voter quorum: no --standalone formatting or quorum reconfiguration to go wrong.
controller.quorum.voters=1@${HOST}:${l.controllerPort}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://${HOST}:${l.kafkaPort},CONTROLLER://${HOST}:${l.controllerPort}
advertised.listeners=PLAINTEXT://${HOST}:${l.kafkaPort}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${data}
# Topics are made on purpose by \`deno task topic\`; a typo in a topic name must fail, not create a topic.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
# Full-HD JPEG frames run to a few MB; leave headroom.
message.max.bytes=10485760
replica.fetch.max.bytes=10485760
# One broker: internal topics cannot have more replicas than that.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer partitions than the default 50 make the first consumer-group join (which creates the topic) quicker.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
# Tests start consumers right away; the default 3 s wait for more group members only slows them.
group.initial.rebalance.delay.ms=0
`;
}

async function startKafka(l: Layout): Promise<number> {
  const dir = svcDir(l, "kafka");
  const data = join(dir, "data");
  await Deno.mkdir(data, { recursive: true });
  const props = join(dir, "server.properties");
  await Deno.writeTextFile(props, kafkaProperties(l));
  const classpath = join(libDir(l, "kafka"), "*");
  // KRaft refuses to start on an unformatted log dir; formatting writes meta.properties and the bootstrap metadata.
  if (!(await exists(join(data, "meta.properties")))) {
    const clusterId = newClusterId();
    note(`formatting Kafka storage in ${data} (cluster id ${clusterId})...`);
    const { code, out } = await run(
      javaBin(),
      [
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        clusterId,
        "-c",
        props,
        "--ignore-formatted",
      ],
      "format Kafka storage",
      "install OpenJDK 17",
    );
    if (code !== 0) {
      throw new Error(
        `kafka storage format failed (exit ${code}):\n${out.trim().split("\n").slice(-15).join("\n")}\n` +
          `  fix the cause above, or run \`deno task stack down --wipe kafka\` to start from empty data`,
      );
    }
  }
  return spawnDetached(l, "kafka", [
    javaBin(),
    marker(l, "kafka"),
    portFlag(l.kafkaPort),
    // Small heap: the same machine runs the benchmark workloads. Kafka keeps message data in the page cache.
    "-Xms128m",
    "-Xmx768m",
    // Kafka's own launcher's GC settings.
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    // Die at once on OOM rather than limp on; `status` then shows it stopped and the log says why.
    "-XX:+ExitOnOutOfMemoryError",
    ...(await classDataFlags(l, "kafka")),
    "-Djava.awt.headless=true",
    // slf4j-simple (see stack/kafka/pom.xml): warnings and errors, plus the one line that says the server started.
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    "-cp",
    classpath,
    "kafka.Kafka",
    props,
  ]);
}

function s3Properties(l: Layout): string {
  return `# Written by tools/stack.ts at every start; edit that file, not this one.
s3proxy.endpoint=http://${HOST}:${l.s3Port}
# Both signature versions: the AWS SDKs sign with v4, older tools with v2.
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=${S3_ACCESS_KEY}
s3proxy.credential=${S3_SECRET_KEY}
# S3Proxy 4's own filesystem store: one file per object, user metadata and content type in xattrs.
jclouds.provider=filesystem-nio2
jclouds.identity=${S3_ACCESS_KEY}
jclouds.credential=${S3_SECRET_KEY}
jclouds.filesystem.basedir=${join(svcDir(l, "s3"), "data")}
`;
}

async function startS3(l: Layout): Promise<number> {
  const dir = svcDir(l, "s3");
  await Deno.mkdir(join(dir, "data"), { recursive: true });
  const props = join(dir, "s3proxy.properties");
  await Deno.writeTextFile(props, s3Properties(l));
  return spawnDetached(l, "s3", [
    javaBin(),
    marker(l, "s3"),
    portFlag(l.s3Port),
    "-Xms64m",
    "-Xmx256m",
    // A small heap of short-lived request buffers: the serial collector needs the least memory and threads.
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    ...(await classDataFlags(l, "s3")),
    // The bundled logback.xml makes logback print its whole set-up at start; only S3Proxy's own lines are wanted.
    "-Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener",
    "-cp",
    join(libDir(l, "s3"), "*"),
    "org.gaul.s3proxy.Main",
    "--properties",
    props,
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL: Debian's server programs on a cluster of this stack's own (`<stack>/postgres/data`).

/**
 * Whether a PostgreSQL server accepts connections on the port, judged as pg_isready does, with no client program:
 * a startup message for frame_bucket, then its first answer. An authentication request means it accepts
 * connections (the connection is dropped there, which the server takes silently, as it does pg_isready's); so does
 * any error but 57P03 (the database system is starting up, or shutting down): a wrong user or a missing database
 * still is a running server.
 */
async function postgresAnswers(port: number, timeoutMs = 3000): Promise<boolean> {
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ hostname: HOST, port });
  } catch {
    return false;
  }
  // Closing the connection fails any pending read, which is how a silent peer is given up on.
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const params = encoder.encode(
      `user\0${PG_USER}\0database\0${PG_DATABASE}\0application_name\0frame-bucket-stack\0\0`,
    );
    const startup = new Uint8Array(8 + params.length);
    const view = new DataView(startup.buffer);
    view.setInt32(0, startup.length);
    view.setInt32(4, 3 << 16); // protocol 3.0
    startup.set(params, 8);
    let written = 0;
    while (written < startup.length) written += await conn.write(startup.subarray(written));
    const head = await readExactly(conn, 5);
    const type = String.fromCharCode(head[0]);
    const len = new DataView(head.buffer).getInt32(1);
    if (type === "R") return true;
    if (type !== "E" || len < 4 || len > 1 << 16) return false;
    // An ErrorResponse: fields of a type byte and a NUL-terminated text each; C is the SQLSTATE.
    const fields = decoder.decode(await readExactly(conn, len - 4)).split("\0");
    return fields.find((f) => f.startsWith("C"))?.slice(1) !== "57P03";
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the timer.
    }
  }
}

const PG_INSTALL_HINT =
  "apt-get install postgresql (the stack runs a server of its own, no system cluster), " +
  "or set PG_BIN to the folder holding initdb, pg_ctl and postgres";

async function hasServerPrograms(dir: string): Promise<boolean> {
  for (const prog of ["initdb", "pg_ctl", "postgres"]) {
    if (!(await exists(join(dir, prog)))) return false;
  }
  return true;
}

async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      if ((await Deno.stat(join(dir, name))).isFile) return join(dir, name);
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

/** "17" > "15" > "9.6". */
function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The folder of PostgreSQL's server programs: PG_BIN, else the newest Debian `/usr/lib/postgresql/<version>/bin`
 * (the package puts only the client programs on PATH), else the folder of `initdb` on PATH.
 */
async function pgBinDir(): Promise<string> {
  const fromEnv = Deno.env.get("PG_BIN");
  if (fromEnv) {
    if (await hasServerPrograms(fromEnv)) return fromEnv;
    throw new Error(
      `PG_BIN=${fromEnv} does not hold initdb, pg_ctl and postgres: point PG_BIN at their folder ` +
        "(Debian: /usr/lib/postgresql/<version>/bin), or unset it",
    );
  }
  const base = "/usr/lib/postgresql";
  const versions: string[] = [];
  try {
    for await (const entry of Deno.readDir(base)) {
      if (/^\d+(\.\d+)*$/.test(entry.name) && await hasServerPrograms(join(base, entry.name, "bin"))) {
        versions.push(entry.name);
      }
    }
  } catch {
    // No Debian packages of PostgreSQL.
  }
  if (versions.length > 0) return join(base, versions.sort(compareVersions).at(-1)!, "bin");
  const initdb = await findOnPath("initdb");
  if (initdb !== undefined && await hasServerPrograms(dirname(initdb))) return dirname(initdb);
  throw new Error(
    `PostgreSQL's server programs (initdb, pg_ctl, postgres) are not in ${base}/*/bin nor on PATH: ` +
      PG_INSTALL_HINT,
  );
}

/** psql: the server's own (same version), else PATH's (Debian's /usr/bin/psql); undefined when there is none. */
async function pgPsql(): Promise<string | undefined> {
  const bin = await pgBinDir().catch(() => undefined);
  if (bin !== undefined && await exists(join(bin, "psql"))) return join(bin, "psql");
  return findOnPath("psql");
}

interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

/**
 * The unprivileged user PostgreSQL's programs run as when this script runs as root (initdb, pg_ctl and postgres
 * all refuse root): PG_RUN_AS, `nobody` by default. Undefined when not root: they run as whoever runs this.
 */
async function pgRunAs(): Promise<RunAs | undefined> {
  if (Deno.uid() !== 0) return undefined;
  const name = Deno.env.get("PG_RUN_AS") || PG_DEFAULT_RUN_AS;
  const id = async (flag: string) => {
    const { code, out } = await run("id", [flag, name], "look up PG_RUN_AS", "install coreutils");
    if (code !== 0 || !/^\d+$/.test(out.trim())) {
      throw new Error(
        `PG_RUN_AS=${name} is not a user of this machine (${out.trim()}): set PG_RUN_AS to an unprivileged ` +
          "user (nobody by default)",
      );
    }
    return Number(out.trim());
  };
  const uid = await id("-u");
  if (uid === 0) {
    throw new Error(
      `PG_RUN_AS=${name} is root, and PostgreSQL refuses to run as root: set PG_RUN_AS to an unprivileged user ` +
        "(nobody by default)",
    );
  }
  if ((await findOnPath("setpriv")) === undefined) {
    throw new Error(
      "setpriv not found (needed to run PostgreSQL as an unprivileged user while this runs as root): " +
        "apt-get install util-linux",
    );
  }
  return { name, uid, gid: await id("-g") };
}

/**
 * `command...` as `who`, through setpriv, or as it is. setpriv execs the command, so a detached server keeps the
 * pid spawnDetached records; `runuser` would fork and stay on as its parent.
 */
function asUser(who: { uid: number; gid: number } | undefined, command: string[]): string[] {
  if (who === undefined) return command;
  return ["setpriv", `--reuid=${who.uid}`, `--regid=${who.gid}`, "--clear-groups", "--", ...command];
}

function runAs(
  who: { uid: number; gid: number } | undefined,
  command: string[],
  what: string,
  opts: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; out: string }> {
  const [cmd, ...args] = asUser(who, command);
  return run(cmd, args, what, cmd === "setpriv" ? "apt-get install util-linux" : PG_INSTALL_HINT, opts);
}

const lastLines = (out: string, n = 15) => out.trim().split("\n").slice(-n).join("\n");

/**
 * Makes the service folder; under root gives it (and a data folder that another user owns, from a run as someone
 * else) to the user PostgreSQL runs as, and checks that this user can reach it through every folder above.
 */
async function preparePostgresFolder(l: Layout, who: RunAs | undefined): Promise<void> {
  const dir = svcDir(l, "postgres");
  await Deno.mkdir(dir, { recursive: true });
  if (who === undefined) return;
  await Deno.chown(dir, who.uid, who.gid);
  const data = pgDataDir(l);
  const owner = (await Deno.stat(data).catch(() => undefined))?.uid;
  if (owner !== undefined && owner !== who.uid) {
    note(`giving ${data} to ${who.name} (it belongs to uid ${owner})...`);
    const { code, out } = await run("chown", ["-R", `${who.uid}:${who.gid}`, data], "chown the data", "");
    if (code !== 0) throw new Error(`chown -R ${who.uid}:${who.gid} ${data} failed: ${out.trim()}`);
  }
  // Each folder above must let that user through. It runs with no supplementary groups (asUser), so the owner,
  // the group and the mode bits decide (an ACL could let it through too: then postgres would fail, and its log say
  // why).
  const chain: string[] = [];
  for (let d = dirname(dir);; d = dirname(d)) {
    chain.unshift(d);
    if (d === dirname(d)) break;
  }
  let blocker: string | undefined;
  for (const d of chain) {
    const st = await Deno.stat(d);
    const mode = st.mode ?? 0;
    const bit = st.uid === who.uid ? 0o100 : st.gid === who.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) {
      blocker = `${d} (mode ${(mode & 0o777).toString(8)}, owner uid ${st.uid})`;
      break;
    }
  }
  if (blocker === undefined) return;
  throw new Error(
    `PostgreSQL runs as ${who.name} (PG_RUN_AS), who cannot reach ${dir}: ${blocker} is in the way. ` +
      "Let it through (chmod o+x on that folder), or set FRAME_BUCKET_STACK_DIR to a folder it can reach (under " +
      "/tmp), or PG_RUN_AS to a user that can",
  );
}

/**
 * The first `up`: initdb (scram-sha-256 for every connection, superuser `postgres` with its password from a file
 * deleted right after), into a side folder renamed to `data` only when complete, so a cut-off initdb is redone.
 * Without psql the frame_bucket role and database are made here too, in single-user mode; with psql,
 * provisionPostgres makes them once the server answers.
 */
async function initPostgres(l: Layout, bin: string, who: RunAs | undefined, psql: string | undefined) {
  const dir = svcDir(l, "postgres");
  const data = pgDataDir(l);
  if (await exists(join(data, "PG_VERSION"))) return;
  if (await exists(data)) {
    throw new Error(
      `${data} holds no PostgreSQL cluster (no PG_VERSION): move it away, or run ` +
        "`deno task stack down --wipe postgres` to start from empty data",
    );
  }
  const partial = `${data}.initdb`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  const pwfile = join(dir, "initdb.pwfile");
  await Deno.writeTextFile(pwfile, `${PG_SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
  if (who !== undefined) await Deno.chown(pwfile, who.uid, who.gid);
  note(`creating a PostgreSQL cluster in ${data}${who ? ` (owned by ${who.name})` : ""}...`);
  try {
    const { code, out } = await runAs(
      who,
      [
        join(bin, "initdb"),
        "-D",
        partial,
        "--auth=scram-sha-256",
        `--pwfile=${pwfile}`,
        "-U",
        PG_SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
      ],
      "create the PostgreSQL cluster",
      { cwd: dir },
    );
    if (code !== 0) {
      throw new Error(
        `initdb failed (exit ${code}):\n${lastLines(out)}\n  fix the cause above and run up again`,
      );
    }
  } finally {
    await Deno.remove(pwfile).catch(() => {});
  }
  if (psql === undefined) {
    note("  no psql: making the frame_bucket role and database in single-user mode");
    // Single-user mode ends a statement at a newline and goes on after an error, which it only prints.
    const sql = `CREATE ROLE ${PG_USER} LOGIN CREATEDB PASSWORD '${PG_PASSWORD}';\n` +
      `CREATE DATABASE ${PG_DATABASE} OWNER ${PG_USER};\n`;
    const { code, out } = await runAs(
      who,
      [join(bin, "postgres"), "--single", "-D", partial, "postgres"],
      "create the frame_bucket role and database",
      { input: sql, cwd: dir },
    );
    if (code !== 0 || /\b(ERROR|FATAL):/.test(out)) {
      const fix = "fix the cause above (or install psql: apt-get install postgresql-client) and run up again";
      throw new Error(
        `postgres --single failed to create the ${PG_USER} role and database (exit ${code}):\n` +
          `${lastLines(out)}\n  ${fix}`,
      );
    }
  }
  await Deno.rename(partial, data);
}

/**
 * The server's settings, on its command line (which wins over postgresql.conf and ALTER SYSTEM, so neither can
 * quietly undo them), sized for a small development box.
 */
function postgresSettings(l: Layout): string[] {
  const dir = svcDir(l, "postgres");
  // A unix socket's path may be 107 bytes at most; clients here use TCP, so a deep stack folder goes without one.
  const socketFits = encoder.encode(join(dir, `.s.PGSQL.${l.pgPort}`)).length <= 107;
  if (!socketFits) note(`  ${dir} is too deep for a unix socket: PostgreSQL listens on TCP only`);
  const settings = [
    marker(l, "postgres"),
    `port=${l.pgPort}`,
    // Loopback only, like the other services.
    `listen_addresses=${HOST}`,
    // Its own socket folder: Debian's default (/var/run/postgresql) belongs to the system cluster's user.
    `unix_socket_directories=${socketFits ? `"${dir}"` : ""}`,
    // Consumers, the API server, tests and benchmarks each keep a pool of their own.
    "max_connections=200",
    "shared_buffers=256MB",
    // Durability is the point (like RustFS's strict mode in docker-compose.yml): a commit the catalog was told of
    // survives a power cut. These are the defaults, written out so that no config edit can turn them off.
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    // Into the service log, which spawnDetached gives the server as its stderr.
    "log_destination=stderr",
    "logging_collector=off",
  ];
  return settings.flatMap((s) => ["-c", s]);
}

/**
 * After a server was killed (its postmaster.pid is left behind), waits up to 15 s until its processes are gone: a
 * new server refuses the data folder while the old postmaster's pid is alive (even as a zombie not yet reaped) or
 * children it left behind still hold its shared memory. They exit by themselves within a second or so.
 */
async function waitOldPostgresGone(l: Layout): Promise<void> {
  const data = pgDataDir(l);
  let oldPid: number;
  let real: string;
  try {
    oldPid = Number((await Deno.readTextFile(join(data, "postmaster.pid"))).split("\n")[0]);
    real = await Deno.realPath(data);
  } catch {
    return; // Shut down cleanly, or never started.
  }
  const leftOver = async () => {
    const pids = Number.isInteger(oldPid) && oldPid > 0 && await exists(`/proc/${oldPid}`) ? [oldPid] : [];
    try {
      for await (const entry of Deno.readDir("/proc")) {
        if (!/^\d+$/.test(entry.name) || Number(entry.name) === oldPid) continue;
        // Every PostgreSQL process works in its data folder.
        const cwd = await Deno.readLink(`/proc/${entry.name}/cwd`).catch(() => "");
        if (cwd === real) pids.push(Number(entry.name));
      }
    } catch {
      // No /proc: PostgreSQL's own lock file check decides.
    }
    return pids;
  };
  const deadline = Date.now() + 15_000;
  let said = false;
  for (let pids = await leftOver(); pids.length > 0 && Date.now() < deadline; pids = await leftOver()) {
    if (!said) {
      note(`waiting for the processes of the previous PostgreSQL server to exit (pids ${pids.join(" ")})...`);
    }
    said = true;
    await sleep(200);
  }
}

async function startPostgres(l: Layout): Promise<number> {
  const bin = await pgBinDir();
  const who = await pgRunAs();
  await preparePostgresFolder(l, who);
  await initPostgres(l, bin, who, await pgPsql());
  await waitOldPostgresGone(l);
  return spawnDetached(
    l,
    "postgres",
    asUser(who, [join(bin, "postgres"), "-D", pgDataDir(l), ...postgresSettings(l)]),
  );
}

/**
 * Makes the frame_bucket role (LOGIN, CREATEDB) and the database it owns unless they exist, as the superuser over
 * TCP; run at every `up`, so a server whose first `up` was cut off after initdb gets them too. Without psql,
 * initPostgres made them.
 */
async function provisionPostgres(port: number): Promise<void> {
  const psql = await pgPsql();
  if (psql === undefined) return;
  const sql = `SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '${PG_USER}', '${PG_PASSWORD}')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_USER}') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', '${PG_DATABASE}', '${PG_USER}')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${PG_DATABASE}') \\gexec
`;
  const { code, out } = await run(
    psql,
    [
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      HOST,
      "-p",
      String(port),
      "-U",
      PG_SUPERUSER,
      "-d",
      "postgres",
    ],
    "create the frame_bucket role and database",
    "apt-get install postgresql-client",
    { input: sql, env: { PGPASSWORD: PG_SUPERUSER_PASSWORD, PGCONNECT_TIMEOUT: "10" } },
  );
  if (code !== 0) {
    throw new Error(
      `psql could not create the ${PG_USER} role and database (exit ${code}):\n${lastLines(out)}\n` +
        "  if the cluster's superuser password is not the stack's, run `deno task stack down --wipe postgres` " +
        "to start from empty data",
    );
  }
}

/**
 * `pg_ctl stop -m fast`, as the data folder's owner (the user the server runs as; pg_ctl refuses root): open
 * transactions are rolled back, sessions closed, a shutdown checkpoint written. (SIGTERM, which `down` sends the
 * JVMs, would be PostgreSQL's smart shutdown: waiting for every client to disconnect.) When pg_ctl cannot, SIGINT,
 * which is what pg_ctl sends.
 */
async function stopPostgres(l: Layout, pid: number): Promise<void> {
  const data = pgDataDir(l);
  try {
    const bin = await pgBinDir();
    const st = await Deno.stat(data);
    const who = Deno.uid() === 0 && st.uid ? { uid: st.uid, gid: st.gid ?? st.uid } : undefined;
    const { code, out } = await runAs(
      who,
      [join(bin, "pg_ctl"), "stop", "-D", data, "-m", "fast", "-W"],
      "stop",
      {
        cwd: svcDir(l, "postgres"),
      },
    );
    if (code === 0) return;
    note(`pg_ctl stop failed (exit ${code}: ${out.trim()}); sending SIGINT (fast shutdown) instead`);
  } catch (e) {
    note(`cannot run pg_ctl stop (${e instanceof Error ? e.message : String(e)}); sending SIGINT instead`);
  }
  try {
    Deno.kill(pid, "SIGINT");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// up / down / status

function checkServices(services: readonly string[]): Service[] {
  for (const s of services) {
    if (!SERVICES.includes(s as Service)) {
      throw new TypeError(
        `unknown service ${JSON.stringify(s)}: use ${SERVICES.join(", ")}, or none for all`,
      );
    }
  }
  const list = services.length === 0 ? [...SERVICES] : (services as Service[]);
  return SERVICES.filter((s) => list.includes(s));
}

function pad(svc: Service): string {
  return svc.padEnd(8);
}

const START_TIMEOUT_MS: Record<Service, number> = {
  kafka: KAFKA_START_TIMEOUT_MS,
  s3: S3_START_TIMEOUT_MS,
  postgres: PG_START_TIMEOUT_MS,
};

async function waitAnswering(l: Layout, svc: Service, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // /proc/PID/cmdline reads empty for a moment while the wrapper shell execs java: only several misses in a row
  // mean the server is gone.
  let misses = 0;
  while (Date.now() < deadline) {
    if (await answers(svc, mainPort(l, svc))) return;
    misses = (await isOurs(l, svc, pid)) ? 0 : misses + 1;
    if (misses >= 5) {
      throw new Error(
        `${svc} (pid ${pid}) exited during start-up; last lines of ${logFile(l, svc)}:\n` +
          `${await tailOf(logFile(l, svc))}\n` +
          `  fix the cause above and run \`deno task stack up ${svc}\` again; if its data is broken, ` +
          `\`deno task stack down --wipe ${svc}\` first`,
      );
    }
    await sleep(svc === "kafka" ? 200 : 100);
  }
  throw new Error(
    `${svc} (pid ${pid}) did not answer on ${address(l, svc)} within ${timeoutMs / 1000} s; ` +
      `last lines of ${logFile(l, svc)}:\n${await tailOf(logFile(l, svc))}\n` +
      `  it is left running: look at the log, then \`deno task stack down ${svc}\` and \`up ${svc}\``,
  );
}

/**
 * What `up` has to do for one service: nothing but wait when this stack's server already runs (it may still be
 * starting, from another `up` in a second shell), or start it. Throws when another program holds its port, before
 * anything is fetched or started.
 */
async function plan(l: Layout, svc: Service): Promise<{ running: number } | { start: true }> {
  const existing = await findRunning(l, svc);
  if (existing !== undefined) {
    if (existing.port !== mainPort(l, svc)) {
      const env = PORT_ENV[svc];
      throw new Error(
        `this stack's ${svc} already runs on port ${existing.port} (pid ${existing.pid}), but ${env} asks for ` +
          `${mainPort(l, svc)}: run \`deno task stack down ${svc}\` first, or set ${env}=${existing.port}`,
      );
    }
    return { running: existing.pid };
  }
  const ports = svc === "kafka" ? [l.kafkaPort, l.controllerPort] : [mainPort(l, svc)];
  for (const port of ports) {
    if (await portOpen(port)) {
      const env = svc === "kafka" && port === l.controllerPort ? "KAFKA_CONTROLLER_PORT" : PORT_ENV[svc];
      throw new Error(
        `port ${port} on ${HOST} is already in use by another program (not this stack's ${svc}): ` +
          `stop that program (\`ss -ltnp 'sport = :${port}'\` shows it) or set ${env} to a free port`,
      );
    }
  }
  return { start: true };
}

/** Carries out the plan for one service; returns its result line. */
async function upOne(l: Layout, svc: Service, what: { running: number } | { start: true }): Promise<string> {
  const timeout = START_TIMEOUT_MS[svc];
  if ("running" in what) {
    await waitAnswering(l, svc, what.running, timeout);
    // Rewritten in case it was lost: `down` and `status` read it first.
    await Deno.writeTextFile(pidFile(l, svc), `${what.running}\n`);
    if (svc === "postgres") await provisionPostgres(l.pgPort);
    return `${pad(svc)} already running  ${address(l, svc)}  pid ${what.running}`;
  }
  const started = performance.now();
  const pid = svc === "kafka"
    ? await startKafka(l)
    : svc === "s3"
    ? await startS3(l)
    : await startPostgres(l);
  await waitAnswering(l, svc, pid, timeout);
  if (svc === "postgres") await provisionPostgres(l.pgPort);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  return `${pad(svc)} up               ${address(l, svc)}  pid ${pid}  (started in ${secs} s, log ${
    logFile(l, svc)
  })`;
}

/**
 * Starts the services (all by default) unless already running, fetching their jars (creating PostgreSQL's cluster)
 * on first use, and waits until each answers. Prints one line per service. Brings up what it can, then throws,
 * naming the fix, if any could not.
 */
export async function stackUp(services: Service[] = [...SERVICES]): Promise<void> {
  const l = layout();
  const list = checkServices(services);
  const errors: string[] = [];
  const fail = (svc: Service, e: unknown) =>
    errors.push(`${svc}: ${e instanceof Error ? e.message : String(e)}`);
  const plans = new Map<Service, { running: number } | { start: true }>();
  for (const svc of list) {
    try {
      plans.set(svc, await plan(l, svc));
    } catch (e) {
      fail(svc, e);
    }
  }
  const toStart = [...plans].filter(([, p]) => "start" in p).map(([svc]) => svc);
  const jvms = toStart.filter((svc) => svc !== "postgres");
  if (jvms.length > 0) {
    try {
      await ensureJava();
    } catch (e) {
      // Without Java no JVM server can start; say so once rather than once per service.
      jvms.forEach((svc) => plans.delete(svc));
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  // One at a time: two Maven runs writing the same ~/.m2 files at once can corrupt them.
  for (const svc of toStart) {
    if (!plans.has(svc)) continue;
    try {
      // PostgreSQL has nothing to fetch: its programs must be installed, and its user must exist.
      if (svc === "postgres") await Promise.all([pgBinDir(), pgRunAs()]);
      else await ensureJars(l, svc);
    } catch (e) {
      plans.delete(svc);
      fail(svc, e);
    }
  }
  // The servers start in parallel: start-up is mostly each one initialising itself, not a shared resource.
  const go = [...plans];
  const results = await Promise.allSettled(go.map(([svc, p]) => upOne(l, svc, p)));
  results.forEach((r, i) => {
    if (r.status === "fulfilled") console.log(r.value);
    else fail(go[i][0], r.reason);
  });
  if (errors.length > 0) throw new Error(errors.join("\n"));
}

/**
 * Makes the services (all by default) usable for a command that only talks to them (the tests, the demo, the
 * benchmarks): a server that already answers on the configured port is used as it is, whoever started it (this
 * stack, another checkout's stack, `docker compose`); only the services that do not answer are started, as this
 * stack's. Returns which were reused and which this call started. Commands that stop servers (the fault
 * scenarios) can stop only this stack's own: they check with stackStatus().
 */
export async function ensureServers(
  services: Service[] = [...SERVICES],
): Promise<{ reused: Service[]; started: Service[] }> {
  const l = layout();
  const list = checkServices(services);
  const answering = await Promise.all(list.map((svc) => answers(svc, mainPort(l, svc))));
  const reused = list.filter((_, i) => answering[i]);
  const missing = list.filter((_, i) => !answering[i]);
  for (const svc of reused) {
    if (!(await findRunning(l, svc))) note(`${pad(svc)} using the server that answers at ${address(l, svc)}`);
  }
  if (missing.length > 0) await stackUp(missing);
  return { reused, started: missing };
}

async function downOne(l: Layout, svc: Service, wipe: boolean): Promise<string> {
  const pid = (await findRunning(l, svc))?.pid;
  let line: string;
  if (pid === undefined) {
    line = `${pad(svc)} not running`;
  } else {
    const started = performance.now();
    if (svc === "postgres") {
      await stopPostgres(l, pid);
    } else {
      // SIGTERM runs the JVM's shutdown hooks: Kafka closes its logs cleanly, so the next start skips log recovery.
      try {
        Deno.kill(pid, "SIGTERM");
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    let how = "stopped";
    const clean = await waitGone(pid, STOP_GRACE_MS);
    if (!clean) {
      Deno.kill(pid, "SIGKILL");
      how = `killed (no exit within ${STOP_GRACE_MS / 1000} s of ${
        svc === "postgres" ? "pg_ctl stop" : "SIGTERM"
      })`;
      if (!(await waitGone(pid, 5000))) {
        throw new Error(`${svc} pid ${pid} survived SIGKILL: look at it with ps`);
      }
    }
    if (svc !== "postgres") await settleClassData(l, svc, clean);
    line = `${pad(svc)} ${how}  pid ${pid}  in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  }
  await Deno.remove(pidFile(l, svc)).catch(() => {});
  if (wipe) {
    await Deno.remove(svcDir(l, svc), { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    line += `; data wiped (${svcDir(l, svc)})`;
  }
  return line;
}

/**
 * Stops the services (all by default): SIGTERM (PostgreSQL: `pg_ctl stop -m fast`), up to 30 s to exit, then
 * SIGKILL. Data stays unless `wipe`, which deletes each service's folder (data, config, log) but keeps the fetched
 * jars.
 */
export async function stackDown(
  services: Service[] = [...SERVICES],
  opts: { wipe?: boolean } = {},
): Promise<void> {
  const l = layout();
  const list = checkServices(services);
  const lines = await Promise.all(list.map((svc) => downOne(l, svc, opts.wipe ?? false)));
  for (const line of lines) console.log(line);
}

interface ServiceState {
  running: Running | undefined;
  /** Whether the port the server runs on (or, when stopped, the configured one) answers. */
  answers: boolean;
  /** Running, on the configured port, and answering: usable by clients that read the same env. */
  up: boolean;
}

async function stateOf(l: Layout, svc: Service): Promise<ServiceState> {
  const running = await findRunning(l, svc);
  const ok = await answers(svc, running?.port ?? mainPort(l, svc));
  return { running, answers: ok, up: running !== undefined && running.port === mainPort(l, svc) && ok };
}

/** Whether each service of this stack is running and answering (a foreign server on the port counts as down). */
export async function stackStatus(): Promise<Record<Service, boolean>> {
  const l = layout();
  const [kafka, s3, postgres] = await Promise.all(SERVICES.map((svc) => stateOf(l, svc)));
  return { kafka: kafka.up, s3: s3.up, postgres: postgres.up };
}

/**
 * Process ids of the servers in use (for benchmarks that account CPU per process): this stack's, or else the
 * process listening on the configured port (a server ensureServers() reused; under `docker compose` with its
 * userland proxy that is the proxy, not the server). A service whose process cannot be found is left out.
 */
export async function stackPids(): Promise<Partial<Record<Service, number>>> {
  const l = layout();
  const pids: Partial<Record<Service, number>> = {};
  for (const svc of SERVICES) {
    const pid = (await findRunning(l, svc))?.pid ?? await listenerPid(mainPort(l, svc));
    if (pid !== undefined) pids[svc] = pid;
  }
  return pids;
}

/**
 * The process listening on a TCP port of this machine (Linux: the socket's inode from /proc/net/tcp*, then the
 * process holding that socket), or undefined when there is none or it cannot be seen (another user's, no /proc).
 */
export async function listenerPid(port: number): Promise<number | undefined> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A") continue; // 0A: LISTEN
      if (parseInt(f[1].slice(f[1].lastIndexOf(":") + 1), 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  try {
    for await (const proc of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(proc.name)) continue;
      try {
        for await (const fd of Deno.readDir(`/proc/${proc.name}/fd`)) {
          const target = await Deno.readLink(`/proc/${proc.name}/fd/${fd.name}`).catch(() => "");
          const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
          if (inode !== undefined && inodes.has(inode)) return Number(proc.name);
        }
      } catch {
        // The process ended while we looked, or is not ours to read.
      }
    }
  } catch {
    // No /proc.
  }
  return undefined;
}

async function printStatus(services: Service[]): Promise<boolean> {
  const l = layout();
  const list = checkServices(services);
  const states = await Promise.all(list.map((svc) => stateOf(l, svc)));
  for (const [i, svc] of list.entries()) {
    const s = states[i];
    const where = address(l, svc);
    if (s.running !== undefined) {
      const at = address(
        { ...l, kafkaPort: s.running.port, s3Port: s.running.port, pgPort: s.running.port },
        svc,
      );
      let health = s.answers ? "answers" : `NOT answering (starting, or hung: see ${logFile(l, svc)})`;
      if (svc === "kafka" && s.answers) {
        const clusterId = await kafkaMetadata(s.running.port).then((md) => md.clusterId, () => null);
        if (clusterId) health += `, cluster ${clusterId}`;
      }
      const other = s.running.port === mainPort(l, svc) ? "" : `  (but the env asks for ${where})`;
      console.log(`${pad(svc)} running  pid ${s.running.pid}  ${at}  ${health}${other}`);
    } else if (s.answers) {
      console.log(`${pad(svc)} stopped  ${where} is answered by another program, not this stack`);
    } else {
      console.log(`${pad(svc)} stopped  ${where}`);
    }
  }
  return states.every((s) => s.up);
}

// ---------------------------------------------------------------------------------------------------------------
// CLI

const USAGE = `usage: deno task stack <command> [kafka|s3|postgres ...]
  up       fetch or initdb (first run only) and start the services, wait until they answer
  down     stop them (SIGTERM, PostgreSQL pg_ctl stop -m fast; SIGKILL after 30 s); data is kept
  down --wipe, clean
           stop them and delete their data
  status   show each service; exit 0 when all named services are up
Services default to all. PostgreSQL: ${postgresUrl(PG_DEFAULT_PORT)} (port from PG_PORT).
Env: FRAME_BUCKET_STACK_DIR, KAFKA_PORT, KAFKA_CONTROLLER_PORT, S3_PORT, PG_PORT, JAVA_HOME, PG_BIN, PG_RUN_AS.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      wipe: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const services = checkServices(rest);
  switch (command) {
    case "up":
      await stackUp(services);
      return 0;
    case "down":
      await stackDown(services, { wipe: values.wipe });
      return 0;
    case "clean":
      await stackDown(services, { wipe: true });
      return 0;
    case "status":
      return (await printStatus(services)) ? 0 : 1;
    default:
      console.error(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`stack: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
