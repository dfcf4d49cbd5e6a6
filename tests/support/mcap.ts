/**
 * The independent readers of the MP4 and MCAP export tests: ffprobe (the machine's ffmpeg package) for videos,
 * and the `mcap` Python package with its protobuf decoder for MCAP files, in the virtual environment `.venv/mcap`,
 * installed from `.ci/requirements-mcap.txt` by `.ci/run`. A test that needs them and does not find them fails,
 * saying how to install them (never skips).
 *
 * With FRAME_BUCKET_CHECK_OUT set to a folder, each reader's output is also saved there (`<name>.json`), for the
 * record.
 */

const ROOT = new URL("../../", import.meta.url).pathname;
export const MCAP_VENV = `${ROOT}.venv/mcap`;
export const MCAP_CHECKER = `${ROOT}tests/fixtures/formats/check_mcap.py`;

const INSTALL = "run `bash .ci/run` once, or: python3 -m venv .venv/mcap && " +
  ".venv/mcap/bin/pip install -r .ci/requirements-mcap.txt";

async function keep(name: string, result: unknown): Promise<void> {
  const dir = Deno.env.get("FRAME_BUCKET_CHECK_OUT");
  if (!dir) return;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/${name}.json`, JSON.stringify(result, null, 1) + "\n");
}

/** One message as the mcap package read it. */
export interface McapMessage {
  topic: string;
  log_time: number;
  publish_time: number;
  sequence: number;
  /** foxglove.CompressedImage: the MD5 (hex) and length of `data`, `format`, `frame_id`, `timestamp` in ns. */
  md5?: string;
  size?: number;
  format?: string;
  frame_id?: string;
  stamp_ns?: number;
  /** foxglove.ImageAnnotations: each PointsAnnotation and the texts. */
  boxes?: { type: number; points: [number, number][]; thickness: number; stamp_ns: number }[];
  texts?: string[];
  // deno-lint-ignore no-explicit-any
  json?: any;
}

/** What check_mcap.py found in an MCAP file. */
export interface McapResult {
  header: { profile: string; library: string };
  summary: {
    message_count: number;
    channel_count: number;
    schema_count: number;
    chunk_count: number;
    metadata_count: number;
    message_start_time: number;
    message_end_time: number;
    channel_message_counts: Record<string, number>;
    chunk_indexes: number;
    chunks_with_message_index: number;
    metadata_indexes: number;
  };
  channels: Record<
    string,
    {
      id: number;
      schema: string;
      schema_encoding: string;
      message_encoding: string;
      metadata: Record<string, string>;
    }
  >;
  messages: McapMessage[];
  metadata: { name: string; metadata: Record<string, string> }[];
}

/** Reads an MCAP file with the mcap package (check_mcap.py). `name` names the saved copy. */
export async function readMcap(path: string, name: string): Promise<McapResult> {
  const python = `${MCAP_VENV}/bin/python`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args: [MCAP_CHECKER, path],
      stdout: "piped",
      stderr: "piped",
      env: { PYTHONWARNINGS: "ignore" },
    }).output();
  } catch (error) {
    throw new Error(`the MCAP reader is not installed (${python}: ${error}): ${INSTALL}`);
  }
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    if (/ModuleNotFoundError/.test(stderr)) {
      throw new Error(`the MCAP reader does not import: ${INSTALL}\n${stderr}`);
    }
    throw new Error(`the mcap package could not read ${path}:\n${stderr}`);
  }
  const result = JSON.parse(new TextDecoder().decode(out.stdout)) as McapResult;
  await keep(name, result);
  return result;
}

/** What ffprobe says of a video: its stream, container and every frame's presentation time. */
export interface ProbeResult {
  codec: string;
  width: number;
  height: number;
  pix_fmt: string;
  format: string;
  /** Container duration in s. */
  duration: number;
  /** Frames decoded (ffprobe -count_frames). */
  frames: number;
  /** Every frame's presentation time in s, in order. */
  pts: number[];
}

/** Runs ffprobe on a video (every frame decoded). `name` names the saved copy. */
export async function probeVideo(path: string, name: string): Promise<ProbeResult> {
  const out = await new Deno.Command("ffprobe", {
    args: [
      "-v",
      "error",
      "-count_frames",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=codec_name,width,height,pix_fmt,nb_read_frames:format=format_name,duration:frame=pts_time",
      "-of",
      "json",
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(`ffprobe is not installed (${error}): apt-get install ffmpeg`);
  });
  if (!out.success) {
    throw new Error(`ffprobe could not read ${path}: ${new TextDecoder().decode(out.stderr)}`);
  }
  const j = JSON.parse(new TextDecoder().decode(out.stdout));
  const s = j.streams[0];
  const result: ProbeResult = {
    codec: s.codec_name,
    width: s.width,
    height: s.height,
    pix_fmt: s.pix_fmt,
    format: j.format.format_name,
    duration: Number(j.format.duration),
    frames: Number(s.nb_read_frames),
    pts: j.frames.map((f: { pts_time: string }) => Number(f.pts_time)),
  };
  await keep(name, result);
  return result;
}
