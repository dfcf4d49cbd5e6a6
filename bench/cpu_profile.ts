/**
 * A CPU profile of a running Deno process, taken through its inspector (`deno run --inspect=HOST:PORT`).
 *
 * This Deno has no `--cpu-prof`, but its inspector speaks the Chrome DevTools protocol, whose Profiler domain
 * samples the main thread's stacks. We take a profile for a while, then fold the samples into self time per
 * function and per "area" (our modules by file, npm packages by name, Deno's runtime, GC, idle), which is what a
 * closing note or a change's before/after needs. Filter workers run in their own isolates and are not sampled
 * here; their time is in the consumer's filter histogram. The inspector itself costs the process some time (Deno
 * reports each HTTP request to it); that shows up as the area "profiling overhead".
 */
import { sleep } from "../src/ingest/camera.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall-clock microseconds covered by the profile. */
  wallMs: number;
  /** Milliseconds the main thread was busy (not idle), per area, largest first. */
  areas: { area: string; ms: number; pct: number }[];
  /** The busiest functions by self time. */
  functions: { fn: string; area: string; ms: number; pct: number; via: string }[];
  /** Our own functions (src/, plugins/) by inclusive time: the time spent in them and everything they called. */
  inclusive: { fn: string; ms: number; pct: number }[];
  /** Busy time by what the thread was doing, judged from each sample's whole stack (see activityOf). */
  activities: { activity: string; ms: number; pct: number }[];
}

/**
 * What a sample's stack was doing: the innermost frame (leaf first) that a rule below recognises names it, so the
 * pipeline's own code called from kafkajs' batch loop counts as the pipeline, and a hash computed for the S3
 * client's signature as the S3 client. Async continuations start from the microtask queue and lose their
 * callers, so the HTTP and socket layers are recognised by their own modules: the consumer's only HTTP client is
 * the AWS SDK's (through src/store/http_handler.ts), and its Kafka sockets are driven by src/kafka/ (or kafkajs).
 * The profiler's own cost is recognised anywhere.
 */
const ACTIVITIES: [string, RegExp][] = [
  ["kafka client (src/kafka/, kafkajs)", /\/kafkajs\/|\/src\/kafka\//],
  [
    "s3 client (AWS SDK, HTTP)",
    /@aws-sdk|@smithy|\/src\/(store\/)?(s3|http_handler)\.ts|node:_http_|_http_outgoing|_http_agent|http\.ts/,
  ],
  ["catalog (SQLite)", /\/src\/catalog(\.ts|\/)|\/pg(-[a-z]+)?\/|node:sqlite/],
  ["filter workers (messages)", /\/src\/(filter_pool|filter\/pool)\.ts|11_workers\.js|13_message_port\.js/],
  ["metrics and health", /\/src\/metrics\.ts/],
  ["pipeline (src/, plugins/)", /\/(src|plugins)\/.+\.ts/],
];
const PROFILING = /inspector_network_bridge|op_inspector_emit_protocol_event/;

export function activityOf(stack: CallFrame[]): string {
  if (stack.some((f) => PROFILING.test(f.url) || PROFILING.test(f.functionName))) return "profiling overhead";
  for (const f of stack) {
    for (const [name, pattern] of ACTIVITIES) {
      if (pattern.test(f.url) || pattern.test(f.functionName)) return name;
    }
  }
  const leaf = stack[0];
  if (leaf?.functionName === "(garbage collector)") return "gc";
  if (stack.some((f) => /stream_base_commons|net\.ts/.test(f.url))) return "sockets (other)";
  return "other (runtime, timers, microtasks)";
}

/** Where a frame's code lives, coarse enough to read at a glance. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  // With an inspector attached, Deno reports every HTTP request and fetch body to it: the profile's own cost,
  // absent from an unprofiled run, so it is kept apart.
  if (functionName === "op_inspector_emit_protocol_event" || url.includes("inspector_network_bridge")) {
    return "profiling overhead";
  }
  if (!url) {
    if (functionName === "(garbage collector)") return "gc";
    if (functionName === "(idle)") return "idle";
    return "runtime (native)";
  }
  const npm = /\/npm\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return `npm:${npm[1]}`;
  if (url.startsWith("ext:deno_node/") || url.startsWith("node:")) return "deno node compat";
  if (url.startsWith("ext:")) return `deno ${url.slice(4).split("/")[0]}`;
  const ours = /\/(src|plugins|tools)\/(.+\.ts)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  return url.replace(/^file:\/\//, "");
}

/** Self time per function and per area from a Profiler.Profile. */
export function summarize(profile: Profile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time between sample i-1 and sample i, so sample i's weight is the next delta.
  for (let i = 0; i < profile.samples.length; i++) {
    const weight = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + weight);
  }
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (f: CallFrame) =>
    `${f.functionName || "(anonymous)"} ${
      f.url ? `${f.url.split("/").slice(-1)[0]}:${f.lineNumber + 1}` : ""
    }`
      .trim();
  // The callers of a node, nearest first, to tell which path a hot library function was reached by.
  const via = (id: number) => {
    const chain: string[] = [];
    for (let p = parent.get(id); p !== undefined && chain.length < 10; p = parent.get(p)) {
      const f = byId.get(p)!.callFrame;
      if (f.functionName === "(root)") break;
      chain.push(label(f));
    }
    return chain.join(" < ");
  };
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number; heaviest: number; heaviestUs: number }>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const area = areaOf(node.callFrame);
    if (area === "idle") continue;
    busy += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const name = label(node.callFrame);
    const entry = fns.get(name) ?? { area, us: 0, heaviest: id, heaviestUs: 0 };
    entry.us += us;
    if (us > entry.heaviestUs) Object.assign(entry, { heaviest: id, heaviestUs: us });
    fns.set(name, entry);
  }
  // Inclusive time: each sample counts once for every distinct function of ours on its stack.
  const inclusiveUs = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      if (/\/(src|plugins)\/.+\.ts$/.test(f.url)) seen.add(label(f));
    }
    if (areaOf(byId.get(id)!.callFrame) === "idle") continue;
    for (const name of seen) inclusiveUs.set(name, (inclusiveUs.get(name) ?? 0) + us);
  }
  const activities = new Map<string, number>();
  for (const [id, us] of selfUs) {
    if (areaOf(byId.get(id)!.callFrame) === "idle") continue;
    const stack: CallFrame[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      stack.push(byId.get(n)!.callFrame);
    }
    const a = activityOf(stack);
    activities.set(a, (activities.get(a) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((us / Math.max(1, busy)) * 1000) / 10;
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    wallMs: ms(profile.endTime - profile.startTime),
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: ms(us), pct: pct(us) })),
    functions: [...fns].sort((a, b) => b[1].us - a[1].us).slice(0, top)
      .map(([fn, e]) => ({ fn, area: e.area, ms: ms(e.us), pct: pct(e.us), via: via(e.heaviest) })),
    inclusive: [...inclusiveUs].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([fn, us]) => ({ fn, ms: ms(us), pct: pct(us) })),
    activities: [...activities].sort((a, b) => b[1] - a[1])
      .map(([activity, us]) => ({ activity, ms: ms(us), pct: pct(us) })),
  };
}

/** Samples the main thread of the Deno process whose inspector listens on `port` for `ms` milliseconds. */
export async function takeProfile(port: number, ms: number, intervalUs = 1000): Promise<Profile> {
  const profiling = await startProfile(port, intervalUs);
  await sleep(ms);
  return await profiling.stop();
}

/**
 * Starts sampling the main thread of the Deno process whose inspector listens on `port`; `stop()` ends it and
 * gives the profile (for a window that ends on an event, such as a drained topic, rather than after a time).
 */
export async function startProfile(
  port: number,
  intervalUs = 1000,
): Promise<{ stop(): Promise<Profile> }> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  if (!targets.length) throw new Error(`no inspector target on 127.0.0.1:${port}`);
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot open the inspector socket on 127.0.0.1:${port}`));
  });
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.onmessage = (event) => {
    const msg = JSON.parse(String(event.data)) as {
      id?: number;
      result?: unknown;
      error?: { message: string };
    };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(`inspector: ${msg.error.message}`));
    else p?.resolve(msg.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: intervalUs });
    await call("Profiler.start");
  } catch (error) {
    ws.close();
    throw error;
  }
  return {
    async stop() {
      try {
        const { profile } = await call("Profiler.stop") as { profile: Profile };
        await call("Profiler.disable");
        return profile;
      } finally {
        ws.close();
      }
    },
  };
}
