/**
 * The stack's PostgreSQL (tools/stack.ts): a real server that answers as user frame_bucket at the URL tests and
 * benchmarks get from stackEndpoints(), with the stack's durability settings, and never running as root.
 */
import assert from "node:assert/strict";
import { ensureServers, stackEndpoints, stackPids, stackStatus } from "../../tools/stack.ts";

const decoder = new TextDecoder();

async function command(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${cmd} not found: apt-get install ${cmd === "psql" ? "postgresql-client" : "procps"}`);
    }
    throw e;
  }
}

/** One value per line, unaligned and without headers; fails the test on any error. */
async function psql(url: string, sql: string): Promise<string[]> {
  const { code, stdout, stderr } = await command("psql", [
    "-X",
    "-At",
    "-v",
    "ON_ERROR_STOP=1",
    "-c",
    sql,
    url,
  ]);
  assert.equal(code, 0, `psql ${JSON.stringify(sql)} failed (exit ${code}): ${stderr.trim()}`);
  return stdout.trim().split("\n");
}

Deno.test({
  name: "the stack's PostgreSQL answers as frame_bucket and does not run as root",
  // ensureServers may start the server: a detached child this test leaves running.
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await ensureServers(["postgres"]);
  const url = stackEndpoints().postgresUrl;
  const port = Number(new URL(url).port);
  assert.match(url, /^postgres:\/\/frame_bucket:frame_bucket@127\.0\.0\.1:\d+\/frame_bucket$/);
  // A server someone else started on the port (ensureServers reuses it) has settings and a user of its own.
  const ours = (await stackStatus()).postgres;

  await t.step("psql logs in with the URL as frame_bucket, into database frame_bucket", async () => {
    assert.deepEqual(await psql(url, "SELECT current_user"), ["frame_bucket"]);
    assert.deepEqual(await psql(url, "SELECT current_database()"), ["frame_bucket"]);
    // CREATEDB: tests may make databases of their own.
    assert.deepEqual(await psql(url, "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user"), ["t"]);
  });

  await t.step("a wrong password is refused (scram-sha-256, no trust)", async () => {
    const wrong = url.replace("frame_bucket:frame_bucket@", "frame_bucket:wrong@");
    const { code, stderr } = await command("psql", ["-X", "-At", "-c", "SELECT 1", wrong]);
    assert.notEqual(code, 0);
    assert.match(stderr, /password authentication failed/);
  });

  await t.step({
    name: "the stack's settings: loopback only, durable commits, 200 connections",
    ignore: !ours,
    fn: async () => {
      const settings = ["port", "listen_addresses", "fsync", "synchronous_commit", "max_connections"];
      const rows = await psql(
        url,
        `SELECT name || '=' || setting FROM pg_settings WHERE name IN (${
          settings.map((s) => `'${s}'`).join(", ")
        }) ORDER BY name`,
      );
      assert.deepEqual(rows, [
        "fsync=on",
        "listen_addresses=127.0.0.1",
        "max_connections=200",
        `port=${port}`,
        "synchronous_commit=on",
      ]);
    },
  });

  await t.step("the server process does not run as root", async () => {
    // This stack's server by its pid file, or else whatever listens on the port.
    const pid = (await stackPids()).postgres;
    assert.ok(pid !== undefined, `no process found for the PostgreSQL server on port ${port}`);
    const { code, stdout, stderr } = await command("ps", ["-o", "user=", "-p", String(pid)]);
    assert.equal(code, 0, `ps -p ${pid}: ${stderr.trim()}`);
    const user = stdout.trim();
    assert.notEqual(user, "root", `the PostgreSQL server (pid ${pid}) runs as root`);
    assert.notEqual(user, "");
    if (ours && Deno.uid() === 0) assert.equal(user, Deno.env.get("PG_RUN_AS") || "nobody");
  });
});
