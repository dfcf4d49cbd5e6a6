/**
 * `deno task serve [--config PATH] [--port N] [--hostname H]`: the HTTP API and the web UI over the catalog
 * (src/server/app.ts). Runs until Ctrl-C or SIGTERM.
 */
import { parseCli, runMain, untilSignal } from "./cli.ts";
import { loadConfig } from "../config.ts";
import { startServer } from "../server/app.ts";

export const USAGE = `usage: deno task serve [--config PATH] [--port N] [--hostname H]

Serves the web UI at http://HOST:PORT/ and the JSON API under /api (described at /openapi.json), over the
catalog (catalog.data_dir/catalog.sqlite) and the stores of the config.
  --port N       default server.port (8080); 0 picks a free port
  --hostname H   default server.hostname (127.0.0.1). Bound to another address (reachable from other
                 machines), reads need server.token (env FRAME_BUCKET_TOKEN) as well as writes, unless
                 server.public_reads = true; with neither set, the server refuses to start.
Requests must name the server by an IP address, localhost or a name of server.allowed_hosts (Host header).`;

export async function serveMain(args: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    port: { type: "string", short: "p" },
    hostname: { type: "string" },
  }, args);
  if (positionals.length) throw new RangeError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) {
      throw new RangeError(`--port ${JSON.stringify(values.port)} must be a whole number from 0 to 65535`);
    }
  }
  if (values.hostname === "") throw new RangeError("--hostname must not be empty");
  const config = await loadConfig(values.config);
  const server = await startServer(config, { port, hostname: values.hostname });
  const signal = await untilSignal();
  console.error(`${signal}: stopping`);
  await server.close();
  return 0;
}

if (import.meta.main) runMain(() => serveMain(Deno.args));
