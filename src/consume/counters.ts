/** Per-robot counters of the consumer, the periodic stats line and the Prometheus counters made from them. */
import { counterLines } from "../metrics.ts";

export interface RobotCounts {
  /** Messages seen for the robot. */
  received: number;
  /** Frames the filter kept. */
  accepted: number;
  /** Frames the filter dropped as the same scene. */
  dropped: number;
  /** Accepted frames confirmed stored. */
  stored: number;
  /** Replayed frames skipped because they were decided before a restart. */
  replayed: number;
  /** Frames that could not be read (bad JPEG, bad header, implausible time). */
  errors: number;
  /** Times the capture clock went back by more than consumer.clock_jump_secs. */
  clockJumps: number;
  /** Frames stored under a suffixed key because their plain key held another frame. */
  collisions: number;
}

export class Counters {
  readonly robots = new Map<string, RobotCounts & { filter: string }>();
  /** Problems not tied to a valid robot id (bad keys, short messages), by reason. */
  readonly skipped = new Map<string, number>();

  robot(robotId: string, filter = ""): RobotCounts & { filter: string } {
    let c = this.robots.get(robotId);
    if (!c) {
      c = {
        received: 0,
        accepted: 0,
        dropped: 0,
        stored: 0,
        errors: 0,
        replayed: 0,
        clockJumps: 0,
        collisions: 0,
        filter,
      };
      this.robots.set(robotId, c);
    }
    if (filter) c.filter = filter;
    return c;
  }

  skip(reason: string): void {
    this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + 1);
  }

  /** One line: `reachy-001 [ahash] received 120 accepted 12 dropped 108 stored 12 errors 0; ...`. */
  line(): string {
    const robots = [...this.robots.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, c]) =>
      `${id} [${c.filter || "-"}] received ${c.received} accepted ${c.accepted} dropped ${c.dropped} ` +
      `stored ${c.stored} errors ${c.errors}` + (c.replayed ? ` replayed ${c.replayed}` : "") +
      (c.clockJumps ? ` clock-jumps ${c.clockJumps}` : "") + (c.collisions ? ` suffixed ${c.collisions}` : "")
    );
    const skipped = [...this.skipped.entries()].map(([r, n]) => `${r} ${n}`);
    return (robots.length ? robots.join("; ") : "no frames yet") +
      (skipped.length ? `; skipped: ${skipped.join(", ")}` : "");
  }

  /** The counters as Prometheus counter families, one series per robot. */
  toPrometheus(): string {
    const robots = [...this.robots.entries()];
    const family = (field: keyof RobotCounts, name: string, help: string) =>
      counterLines(name, help, "robot", robots.map(([id, c]) => [id, c[field]]));
    return [
      family("received", "frame_bucket_frames_received_total", "Frames read from Kafka, per robot."),
      family("accepted", "frame_bucket_frames_accepted_total", "Frames the filter kept as a new scene."),
      family("dropped", "frame_bucket_frames_rejected_total", "Frames the filter dropped as the same scene."),
      family("stored", "frame_bucket_frames_stored_total", "Frames confirmed stored."),
      family("errors", "frame_bucket_frame_errors_total", "Frames refused as unreadable."),
      family(
        "clockJumps",
        "frame_bucket_clock_jumps_total",
        "Times a robot's capture clock went back by more than consumer.clock_jump_secs.",
      ),
      family(
        "collisions",
        "frame_bucket_key_collisions_total",
        "Frames stored under a _p{partition}-o{offset} key because their plain key held another frame.",
      ),
      counterLines(
        "frame_bucket_messages_skipped_total",
        "Messages without a usable key, per reason.",
        "reason",
        [...this.skipped.entries()],
      ),
    ].join("\n");
  }

  toJSON() {
    return { robots: Object.fromEntries(this.robots), skipped: Object.fromEntries(this.skipped) };
  }
}
