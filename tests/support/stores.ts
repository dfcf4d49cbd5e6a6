/** The stack's S3 server as the tests' local store and archive, opened the way the tools open them. */
import { loadStorage } from "../../src/filter/loader.ts";
import type { StoragePlugin } from "../../src/plugin.ts";
import { S3_ACCESS_KEY, S3_SECRET_KEY } from "../../tools/stack.ts";

/** An archive store (`s3_archive`) in `bucket` at `endpoint` (created when missing), not opened yet. */
export function archiveAt(endpoint: string, bucket: string, timeoutMs?: number): Promise<StoragePlugin> {
  return loadStorage("s3_archive", {
    endpoint,
    bucket,
    region: "us-east-1",
    accessKey: S3_ACCESS_KEY,
    secretKey: S3_SECRET_KEY,
    createBucket: true,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

/** The local store in `bucket` and its archive in `{bucket}-archive`, both opened. */
export async function openTiers(
  endpoint: string,
  bucket: string,
): Promise<{ local: StoragePlugin; archive: StoragePlugin }> {
  const local = await loadStorage("rustfs", { endpoint, bucket });
  const archive = await archiveAt(endpoint, `${bucket}-archive`);
  await local.open();
  await archive.open();
  return { local, archive };
}
