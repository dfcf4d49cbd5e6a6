/**
 * Storage plugin for the archive tier: AWS S3, or any S3-compatible endpoint when `endpoint` is set.
 * Credentials come from the AWS SDK's usual chain (environment, profile, instance role) unless given.
 */
import type { StorageFactory, StoragePlugin } from "frame-bucket/plugin";
import { s3Store } from "../../src/store/s3.ts";

export interface Options {
  /** Archive bucket (config `aws_s3.bucket`). */
  bucket: string;
  /** AWS region of the bucket (config `aws_s3.region`). */
  region: string;
  /** Empty for AWS S3; an URL for an S3-compatible archive (config `aws_s3.endpoint`). */
  endpoint: string;
  /** Static credentials; leave both empty to use the AWS SDK's default chain. */
  accessKey: string;
  secretKey: string;
  /** Create the bucket when missing (off for AWS, where buckets are provisioned on purpose). */
  createBucket: boolean;
  /** Per-request timeout in milliseconds. */
  timeoutMs: number;
}

export const defaults: Options = {
  bucket: "reachy-mini-frames-archive",
  region: "us-west-2",
  endpoint: "",
  accessKey: "",
  secretKey: "",
  createBucket: false,
  timeoutMs: 30000,
};

const s3Archive: StorageFactory<Options> = (options): StoragePlugin => {
  const o = { ...defaults, ...options };
  if (o.endpoint) {
    try {
      new URL(o.endpoint);
    } catch {
      throw new TypeError(`aws_s3.endpoint ${JSON.stringify(o.endpoint)} is not a URL`);
    }
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket)) {
    throw new RangeError(`aws_s3.bucket ${JSON.stringify(o.bucket)} is not a valid S3 bucket name`);
  }
  if (!o.region) throw new TypeError("aws_s3.region must be set (e.g. us-west-2)");
  if (Boolean(o.accessKey) !== Boolean(o.secretKey)) {
    throw new TypeError(
      "s3_archive: give both accessKey and secretKey, or neither to use the AWS credential chain",
    );
  }
  return s3Store({
    name: "s3_archive",
    endpoint: o.endpoint,
    region: o.region,
    bucket: o.bucket,
    accessKey: o.accessKey,
    secretKey: o.secretKey,
    // Virtual-hosted style for AWS itself; S3-compatible servers want path style.
    forcePathStyle: Boolean(o.endpoint),
    timeoutMs: o.timeoutMs,
    createBucket: o.createBucket,
  });
};

export default s3Archive;
