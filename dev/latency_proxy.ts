/**
 * A TCP proxy on loopback for fault tests: it delays every chunk sent to the server (a slow S3), can hold back
 * everything the server sends (a camera that stalls), and can cut every connection at once. All can be changed
 * while it runs.
 */
import { sleep } from "../src/ingest/camera.ts";

export interface LatencyProxy {
  /** Port the proxy listens on (127.0.0.1). */
  port: number;
  /** Milliseconds added before each chunk travels client -> server. */
  delayMs: number;
  /** While true, nothing travels server -> client: the connection stays open but goes silent (a stall). */
  stalled: boolean;
  /** While true, new connections are closed at once and open ones cut: the server looks down. */
  down: boolean;
  /** Closes every open connection at once, wherever the bytes are (a stream cut mid-frame). */
  dropConnections(): void;
  close(): Promise<void>;
}

export function startLatencyProxy(target: { hostname: string; port: number }, delayMs: number): LatencyProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const proxy: LatencyProxy = {
    port: (listener.addr as Deno.NetAddr).port,
    delayMs,
    stalled: false,
    down: false,
    dropConnections() {
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
      open.clear();
    },
    async close() {
      listener.close();
      proxy.dropConnections();
      await serving;
    },
  };
  const pipe = async (from: Deno.Conn, to: Deno.Conn, delayed: boolean) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        if (delayed && proxy.delayMs > 0) await sleep(proxy.delayMs);
        while (!delayed && proxy.stalled) await sleep(50);
        let written = 0;
        while (written < n) written += await to.write(buf.subarray(written, n));
      }
    } catch { /* either side went away */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed already */ }
      open.delete(c);
    }
  };
  const serving = (async () => {
    try {
      for await (const client of listener) {
        if (proxy.down) {
          client.close();
          continue;
        }
        open.add(client);
        Deno.connect(target).then((server) => {
          open.add(server);
          pipe(client, server, true);
          pipe(server, client, false);
        }, () => client.close());
      }
    } catch { /* listener closed */ }
  })();
  return proxy;
}
