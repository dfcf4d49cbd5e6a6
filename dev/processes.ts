/**
 * Runs the pipeline's own commands as child processes, for the demo, the benchmarks and the integration tests:
 * each child's output is kept (and optionally echoed with a prefix) so callers can read its stats lines.
 */

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Everything the child wrote to stdout and stderr so far, as lines. */
  readonly lines: string[];
  /** Resolves with the exit code once the child ended. */
  readonly exited: Promise<number>;
  kill(signal?: Deno.Signal): void;
  /** Sends SIGTERM and waits; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number>;
  /** Waits until a line matches, or throws after `timeoutMs` naming what it waited for. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
}

const PROJECT = new URL("../", import.meta.url).pathname;

/**
 * The Deno flags `deno task` gives `script` (a path under `tree`, e.g. `src/main/consume.ts`): those between `deno
 * run` and the script in the deno.json task that runs it, `-A` aside; none when no task runs it. Children started
 * here run as the task would run them (the consumer's heap settings, say), and a revision's children as that
 * revision's deno.json says, so a benchmark's before and after each run with their own.
 */
export function taskFlags(script: string, tree = PROJECT): string[] {
  let tasks: Record<string, string | { command?: string }> = {};
  try {
    tasks = JSON.parse(Deno.readTextFileSync(`${tree.replace(/\/$/, "")}/deno.json`)).tasks ?? {};
  } catch {
    return [];
  }
  for (const task of Object.values(tasks)) {
    const words = (typeof task === "string" ? task : task.command ?? "").trim().split(/\s+/);
    if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== script) continue;
    return words.slice(2, -1).filter((w) => w !== "-A");
  }
  return [];
}

/** Starts `deno run -A <script> ...args` from the project folder, with the flags its deno task gives it. */
export function spawnDeno(
  name: string,
  script: string,
  args: string[],
  options: { env?: Record<string, string>; echo?: boolean; denoFlags?: string[] } = {},
): Child {
  // A script of another tree (a revision's worktree) runs with that tree's task flags.
  const inTree = script.match(/^(\/.*?)\/((?:src|tools|bench)\/.*)$/);
  const flags = inTree ? taskFlags(inTree[2], inTree[1]) : taskFlags(script);
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ...flags, ...(options.denoFlags ?? []), script, ...args],
    cwd: PROJECT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const onLine = (line: string) => {
    lines.push(line);
    if (options.echo) console.log(`[${name}] ${line}`);
    for (const w of [...waiters]) {
      if (w.pattern.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  const pump = (stream: ReadableStream<Uint8Array>) => forEachLine(stream, onLine);
  const pumps = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  const exited = proc.status.then(async (s) => {
    await pumps;
    return s.code;
  });
  let done = false;
  exited.then(() => (done = true));
  const child: Child = {
    name,
    pid: proc.pid,
    lines,
    exited,
    kill(signal = "SIGTERM") {
      if (!done) {
        try {
          proc.kill(signal);
        } catch { /* already gone */ }
      }
    },
    async stop(graceMs = 20000) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    waitFor(pattern, timeoutMs) {
      const found = lines.find((l) => pattern.test(l));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `${name} did not print ${pattern} within ${timeoutMs} ms; last lines:\n${
                lines.slice(-15).join("\n")
              }`,
            ),
          );
        }, timeoutMs);
        waiters.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        exited.then(() => {
          clearTimeout(timer);
          reject(
            new Error(
              `${name} exited before printing ${pattern}; last lines:\n${lines.slice(-15).join("\n")}`,
            ),
          );
        });
      });
    },
  };
  return child;
}

/** A free TCP port on loopback. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Calls `onLine` for each line of a child's output as it arrives (without the newline), and for a last line
 * without one when the stream ends.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const line of parts) onLine(line);
  }
  if (rest) onLine(rest);
}
