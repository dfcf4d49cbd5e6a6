/**
 * Label Studio for the import round-trip test: `label-studio` from the virtual environment `.venv/label-studio`
 * (installed from `.ci/requirements-label-studio.txt` by `.ci/run`), run as a child process on loopback, on a free
 * port, with a data folder of its own (SQLite, removed when it stops). A test that needs it and does not find it
 * fails, saying how to install it (never skips).
 *
 * Start-up is made short: a fresh data folder costs Label Studio its whole database migration (about 50 s on a
 * small machine), so the first start migrates once into a template kept inside the virtual environment
 * (`.venv/label-studio/fb-template/`, with the test user and its token) and every start after that copies the
 * template and is up in seconds. The template goes with the environment: a new install makes a new one. No
 * browser is opened, the PyPI version check and analytics are off, and the server binds 127.0.0.1 only.
 *
 * The user is created non-interactively by `label-studio start --username --password --user-token` with the legacy
 * API token enabled, so requests carry `Authorization: Token <token>`.
 */

const ROOT = new URL("../../", import.meta.url).pathname;
export const LABEL_STUDIO_VENV = `${ROOT}.venv/label-studio`;
const BIN = `${LABEL_STUDIO_VENV}/bin/label-studio`;
const TEMPLATE = `${LABEL_STUDIO_VENV}/fb-template`;
/** The files of a data folder that make the template (the database and the secret key it was made with). */
const TEMPLATE_FILES = ["label_studio.sqlite3", ".env"];

const INSTALL = "run `bash .ci/run` once, or: python3 -m venv .venv/label-studio && " +
  ".venv/label-studio/bin/pip install -r .ci/requirements-label-studio.txt";

/** The test user (loopback only, a throwaway data folder). */
export const LS_USER = "frame-bucket@example.com";
const LS_PASSWORD = "frame-bucket-test";
/** Label Studio wants a 40-character hex-like legacy token. */
export const LS_TOKEN = "fb0123456789abcdef0123456789abcdef012345";

/** How long a start may take before the test fails (generous: a loaded two-core machine, a first migration). */
export const START_TIMEOUT_MS = 240_000;

export interface LabelStudio {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  token: string;
  /** Its version, as /api/version reports it. */
  version: string;
  /** Seconds from spawn to answering (the template's copy included). */
  startSeconds: number;
  /** True when this start built the template (the slow first start). */
  builtTemplate: boolean;
  /** A JSON request with the token; `body` is sent as JSON. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }>;
  /** The last lines Label Studio printed. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL after 15 s) and removes its data folder. */
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Fails with the install hint unless the environment has a runnable label-studio. */
async function checkInstalled(): Promise<void> {
  if (!(await exists(BIN))) {
    throw new Error(`Label Studio is not installed (${BIN} is missing): ${INSTALL}`);
  }
  const out = await new Deno.Command(`${LABEL_STUDIO_VENV}/bin/python`, {
    args: ["-c", "import label_studio; print(label_studio.__version__)"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Label Studio does not import (${
        new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)
      }): ${INSTALL}`,
    );
  }
}

/** Runs one Label Studio server on `dataDir` until it answers /health, or fails with its log. */
async function spawn(dataDir: string, timeoutMs: number) {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(BIN, {
    args: [
      "start",
      "--no-browser",
      "--internal-host",
      "127.0.0.1",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
      "--username",
      LS_USER,
      "--password",
      LS_PASSWORD,
      "--user-token",
      LS_TOKEN,
      "--enable-legacy-api-token",
      "--log-level",
      "WARNING",
    ],
    env: {
      LABEL_STUDIO_BASE_DATA_DIR: dataDir,
      LATEST_VERSION_CHECK: "false",
      COLLECT_ANALYTICS: "false",
      LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN: "true",
      // Python writes its output unbuffered, so a failure's last words reach the log.
      PYTHONUNBUFFERED: "1",
    },
    cwd: dataDir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const parts = (rest + value).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      if (lines.length > 400) lines.splice(0, lines.length - 400);
    }
    if (rest) lines.push(rest);
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((s) => (exited = s));
  const log = () => lines.slice(-60).join("\n");
  const stop = async () => {
    if (exited === null) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 15_000);
      await status;
      clearTimeout(timer);
    }
    await pumped;
  };
  const started = performance.now();
  const deadline = started + timeoutMs;
  for (;;) {
    if (exited !== null) {
      await pumped;
      throw new Error(
        `label-studio exited (${JSON.stringify(exited)}) before answering on ${url}:\n${log()}`,
      );
    }
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
      await r.body?.cancel();
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`label-studio did not answer on ${url} within ${timeoutMs / 1000} s:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, log, stop, seconds: (performance.now() - started) / 1000 };
}

/** Builds the template: one start on an empty folder (migrations, the user, its token), stopped, its files kept. */
async function buildTemplate(timeoutMs: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "label-studio-template-" });
  try {
    const server = await spawn(dir, timeoutMs);
    await server.stop();
    const partial = `${TEMPLATE}.partial-${Deno.pid}`;
    await Deno.mkdir(partial, { recursive: true });
    for (const f of TEMPLATE_FILES) {
      if (await exists(`${dir}/${f}`)) await Deno.copyFile(`${dir}/${f}`, `${partial}/${f}`);
    }
    try {
      await Deno.rename(partial, TEMPLATE);
    } catch {
      // Another test process made it meanwhile: theirs is as good.
      await Deno.remove(partial, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Starts Label Studio (see the module doc). Fails naming the install command when it is not installed, and with
 * its last output when it does not come up within `timeoutMs`.
 */
export async function startLabelStudio(options: { timeoutMs?: number } = {}): Promise<LabelStudio> {
  const timeoutMs = options.timeoutMs ?? START_TIMEOUT_MS;
  await checkInstalled();
  const t0 = performance.now();
  let builtTemplate = false;
  if (!(await exists(`${TEMPLATE}/label_studio.sqlite3`))) {
    await buildTemplate(timeoutMs);
    builtTemplate = true;
  }
  const dir = await Deno.makeTempDir({ prefix: "label-studio-" });
  for (const f of TEMPLATE_FILES) {
    if (await exists(`${TEMPLATE}/${f}`)) await Deno.copyFile(`${TEMPLATE}/${f}`, `${dir}/${f}`);
  }
  let server;
  try {
    server = await spawn(dir, timeoutMs);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Token ${LS_TOKEN}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch { /* not JSON: the text says what */ }
    return { status: r.status, json, text };
  };
  const stop = async () => {
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const whoami = await api("GET", "/api/current-user/whoami");
    if (whoami.status !== 200) {
      throw new Error(`Label Studio refused the test token (${whoami.status}): ${whoami.text.slice(0, 300)}`);
    }
    const version = await api("GET", "/api/version");
    const release = (version.json as { release?: string } | null)?.release ?? "unknown";
    return {
      url: server.url,
      token: LS_TOKEN,
      version: release,
      startSeconds: (performance.now() - t0) / 1000,
      builtTemplate,
      api,
      log: server.log,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
