/**
 * Storage plugin for the local tier: RustFS, MinIO, S3Proxy or any S3-compatible server, path-style.
 */
import type { StorageFactory, StoragePlugin } from "frame-bucket/plugin";
import { s3Store } from "../../src/store/s3.ts";

export interface Options {
  /** S3 API endpoint, e.g. http://localhost:9000. */
  endpoint: string;
  /** Access key (config `rustfs.access_key`, env RUSTFS_ACCESS_KEY). */
  accessKey: string;
  /** Secret key (config `rustfs.secret_key`, env RUSTFS_SECRET_KEY). */
  secretKey: string;
  /** Bucket holding the frames; created when missing. */
  bucket: string;
  /** Signing region; S3-compatible servers accept any. */
  region: string;
  /** Per-request timeout in milliseconds. */
  timeoutMs: number;
}

export const defaults: Options = {
  endpoint: "http://localhost:9000",
  accessKey: "rustfsadmin",
  secretKey: "rustfsadmin",
  bucket: "camera-frames",
  region: "us-east-1",
  timeoutMs: 10000,
};

const rustfs: StorageFactory<Options> = (options): StoragePlugin => {
  const o = { ...defaults, ...options };
  let url: URL;
  try {
    url = new URL(o.endpoint);
  } catch {
    throw new TypeError(
      `rustfs.endpoint ${JSON.stringify(o.endpoint)} is not a URL (e.g. http://localhost:9000)`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`rustfs.endpoint ${JSON.stringify(o.endpoint)} must be an http:// or https:// URL`);
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket)) {
    throw new RangeError(`rustfs.bucket ${JSON.stringify(o.bucket)} is not a valid S3 bucket name`);
  }
  if (!o.accessKey || !o.secretKey) {
    throw new TypeError(
      "rustfs.access_key and rustfs.secret_key must be set (or RUSTFS_ACCESS_KEY/RUSTFS_SECRET_KEY)",
    );
  }
  return s3Store({
    name: "rustfs",
    endpoint: o.endpoint,
    region: o.region,
    bucket: o.bucket,
    accessKey: o.accessKey,
    secretKey: o.secretKey,
    forcePathStyle: true,
    timeoutMs: o.timeoutMs,
    createBucket: true,
  });
};

export default rustfs;
