/** Per-robot counters of the consumer and the producer, and the periodic stats line made from them. */

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
}

export class Counters {
  readonly robots = new Map<string, RobotCounts & { filter: string }>();
  /** Problems not tied to a valid robot id (bad keys, short messages), by reason. */
  readonly skipped = new Map<string, number>();

  robot(robotId: string, filter = ""): RobotCounts & { filter: string } {
    let c = this.robots.get(robotId);
    if (!c) {
      c = { received: 0, accepted: 0, dropped: 0, stored: 0, errors: 0, replayed: 0, filter };
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
      `stored ${c.stored} errors ${c.errors}` + (c.replayed ? ` replayed ${c.replayed}` : "")
    );
    const skipped = [...this.skipped.entries()].map(([r, n]) => `${r} ${n}`);
    return (robots.length ? robots.join("; ") : "no frames yet") +
      (skipped.length ? `; skipped: ${skipped.join(", ")}` : "");
  }

  toJSON() {
    return { robots: Object.fromEntries(this.robots), skipped: Object.fromEntries(this.skipped) };
  }
}
