/**
 * Names: the Kafka message key `{robot_id}:{timestamp_ms}` and the object key
 * `{prefix}{robot_id}/{YYYY-MM-DD}/{YYYYMMDD}T{HHMMSS}{mmm}Z_{seq:06}.jpg` (UTC), as in the original.
 */

const ROBOT_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Why a robot id is unsafe as a path segment, or null when it is fine. */
export function robotIdProblem(robotId: string): string | null {
  if (robotId === "") return "robot id is empty";
  if (robotId.length > 64) return `robot id is ${robotId.length} characters long (at most 64)`;
  if (robotId === "." || robotId === "..") return `robot id ${JSON.stringify(robotId)} is not a path segment`;
  if (!ROBOT_ID.test(robotId)) {
    return `robot id ${JSON.stringify(robotId)} may only hold letters, digits, '.', '_' and '-'`;
  }
  return null;
}

/** Throws RangeError naming the problem when the robot id is unsafe. */
export function checkRobotId(robotId: string): string {
  const problem = robotIdProblem(robotId);
  if (problem) throw new RangeError(problem);
  return robotId;
}

export function messageKey(robotId: string, timestampMs: number): string {
  return `${robotId}:${timestampMs}`;
}

/** Splits a message key. Throws SyntaxError/RangeError naming what is wrong. */
export function parseMessageKey(key: string): { robotId: string; timestampMs: number } {
  const colon = key.lastIndexOf(":");
  if (colon < 0) throw new SyntaxError(`message key ${JSON.stringify(key.slice(0, 80))} has no ':'`);
  const robotId = checkRobotId(key.slice(0, colon));
  const tsText = key.slice(colon + 1);
  if (!/^-?\d{1,16}$/.test(tsText)) {
    throw new SyntaxError(
      `message key ${JSON.stringify(key.slice(0, 80))} has no millisecond timestamp after ':'`,
    );
  }
  return { robotId, timestampMs: Number(tsText) };
}

/** Capture times this far ahead of the consumer's clock are refused: a robot with a broken clock. */
export const MAX_FUTURE_MS = 24 * 3600 * 1000;

/** Why a capture time is implausible, or null. */
export function timestampProblem(timestampMs: number, nowMs: number): string | null {
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) {
    return `capture time ${timestampMs} ms is negative`;
  }
  if (timestampMs > nowMs + MAX_FUTURE_MS) {
    return `capture time ${new Date(timestampMs).toISOString()} is more than a day in the future`;
  }
  return null;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/**
 * Where a frame came from in Kafka. A key that is already taken by a different frame (a robot whose clock went
 * back, a producer restarted with its sequence at 0) gets this as a suffix, so the second frame has a key of its
 * own that a replay of the same message finds again.
 */
export interface KeySuffix {
  partition: number;
  offset: number;
  /** 0 for the first suffixed key; counts up only if that one is taken by different bytes too. */
  attempt?: number;
}

/**
 * The object key of a stored frame: `{ts}Z_{seq:06}.jpg`, or with a suffix `{ts}Z_{seq:06}_p{partition}-o{offset}.jpg`
 * (and `-{attempt}` after it from the second suffixed try on) when the plain key holds a different frame.
 */
export function objectKey(
  prefix: string,
  robotId: string,
  timestampMs: number,
  seq: number,
  suffix?: KeySuffix,
): string {
  const d = new Date(timestampMs);
  const y = pad(d.getUTCFullYear(), 4), mo = pad(d.getUTCMonth() + 1, 2), da = pad(d.getUTCDate(), 2);
  const time = pad(d.getUTCHours(), 2) + pad(d.getUTCMinutes(), 2) + pad(d.getUTCSeconds(), 2) +
    pad(d.getUTCMilliseconds(), 3);
  const tail = suffix
    ? `_p${suffix.partition}-o${suffix.offset}${suffix.attempt ? `-${suffix.attempt}` : ""}`
    : "";
  return `${prefix}${robotId}/${y}-${mo}-${da}/${y}${mo}${da}T${time}Z_${pad(seq, 6)}${tail}.jpg`;
}

const OBJECT_KEY =
  /^(.*?)([A-Za-z0-9._-]{1,64})\/(\d{4})-(\d{2})-(\d{2})\/\d{8}T(\d{2})(\d{2})(\d{2})(\d{3})Z_(\d{6,})(?:_p(\d{1,9})-o(\d{1,19})(?:-(\d{1,4}))?)?\.jpg$/;

/** Reads robot, capture time, sequence (and a collision suffix) back from an object key; null for other keys. */
export function parseObjectKey(
  key: string,
): { prefix: string; robotId: string; timestampMs: number; seq: number; suffix?: KeySuffix } | null {
  const m = OBJECT_KEY.exec(key);
  if (!m) return null;
  const [, prefix, robotId, y, mo, d, h, mi, s, ms, seq, partition, offset, attempt] = m;
  const timestampMs = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, +ms);
  const out: { prefix: string; robotId: string; timestampMs: number; seq: number; suffix?: KeySuffix } = {
    prefix,
    robotId,
    timestampMs,
    seq: Number(seq),
  };
  if (partition !== undefined) {
    out.suffix = {
      partition: Number(partition),
      offset: Number(offset),
      attempt: attempt ? Number(attempt) : 0,
    };
  }
  return out;
}
