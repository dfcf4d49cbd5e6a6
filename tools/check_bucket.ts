/**
 * `deno task check [--robot ID] [--date YYYY-MM-DD] [--limit N] [--config PATH]`: what is stored, in the
 * original check_bucket.py's format.
 */
import { parseCli, runMain } from "../src/main/cli.ts";
import { loadConfig } from "../src/config.ts";
import { checkRobotId } from "../src/key.ts";
import { localStore } from "../src/filter/loader.ts";

const USAGE = `usage: deno task check [--robot ID] [--date YYYY-MM-DD] [--limit N] [--config PATH]

Lists the buckets, then counts the frames in rustfs.bucket and shows the first keys.
  --robot ID          only this robot's frames
  --date YYYY-MM-DD   only that day (UTC); needs --robot
  --limit N           keys to show (default 15)`;

const n = (v: number) => v.toLocaleString("en-US");

runMain(async () => {
  const { values } = parseCli(USAGE, {
    config: { type: "string", short: "c" },
    robot: { type: "string" },
    date: { type: "string" },
    limit: { type: "string" },
  });
  const config = await loadConfig(values.config);
  const limit = values.limit === undefined ? 15 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`--limit ${values.limit} must be a whole number`);
  }
  if (values.date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(values.date)) {
    throw new RangeError(`--date ${values.date} must look like 2026-02-18`);
  }
  if (values.date !== undefined && values.robot === undefined) throw new RangeError("--date needs --robot");
  let prefix = config.rustfs.prefix;
  if (values.robot !== undefined) prefix += `${checkRobotId(values.robot)}/`;
  if (values.date !== undefined) prefix += `${values.date}/`;

  const storage = await localStore(config);
  try {
    const buckets = await storage.buckets();
    console.log(`Buckets: [${buckets.map((b) => `'${b}'`).join(", ")}]`);
    if (!buckets.includes(config.rustfs.bucket)) {
      console.log(`Bucket ${config.rustfs.bucket} does not exist yet: the consumer creates it on start.`);
      return 1;
    }
    let count = 0, total = 0;
    const shown: string[] = [];
    let lastProgress = Date.now();
    for await (const item of storage.list({ prefix })) {
      count++;
      total += item.size;
      if (shown.length < limit) shown.push(`  ${item.key}  (${n(item.size)} bytes)`);
      if (Date.now() - lastProgress > 2000) {
        lastProgress = Date.now();
        Deno.stderr.writeSync(new TextEncoder().encode(`  ... ${n(count)} objects listed\r`));
      }
    }
    const where = prefix === config.rustfs.prefix
      ? config.rustfs.bucket
      : `${config.rustfs.bucket}/${prefix}`;
    console.log(`Objects in ${where}: ${count}`);
    console.log(`Total size: ${n(total)} bytes (${(total / 1024 / 1024).toFixed(2)} MB)`);
    console.log("");
    for (const line of shown) console.log(line);
    if (count > shown.length) console.log("  ...");
    return 0;
  } finally {
    storage.close();
  }
});
