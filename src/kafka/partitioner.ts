/**
 * Chooses a Kafka partition from the robot id alone.
 *
 * Kafka's default partitioner hashes the whole key; our keys end in the capture time, so one robot's frames would
 * scatter over every partition and lose their order. Hashing only the robot id keeps each robot on one partition.
 * The hash is Kafka's own murmur2 (as in the Java client), so a Java or librdkafka producer keyed by the plain robot
 * id with the murmur2 partitioner picks the same partition.
 */

const encoder = new TextEncoder();

/** Kafka's murmur2 (seed 0x9747b28c), over bytes, as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const len = data.length;
  let h = (0x9747b28c ^ len) | 0;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // The tail bytes, as the reference's fall-through switch does.
  const rest = len - i;
  if (rest > 0) {
    if (rest === 3) h ^= data[i + 2] << 16;
    if (rest >= 2) h ^= data[i + 1] << 8;
    h ^= data[i];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The robot id part of a `{robot_id}:{timestamp_ms}` key (the whole key when it has no ':'). */
export function robotOfKey(key: string): string {
  const colon = key.lastIndexOf(":");
  return colon < 0 ? key : key.slice(0, colon);
}

/** Partition for a robot among `partitionCount` partitions. */
export function partitionForRobot(robotId: string, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) {
    throw new RangeError(`partition count ${partitionCount} must be a positive integer`);
  }
  return (murmur2(encoder.encode(robotId)) & 0x7fffffff) % partitionCount;
}
