// Each probe's last reported state (DESIGN.md "MQTT", "Fleet control plane"), kept in the
// database: what `GET /api/probes` lists, whose labels decide a probe's share of the task set
// and the `label=` filter of the statistics.

import type { SqlDb } from "./db/sql.js";
import type { ReadStatus } from "../wire/status.js";
import { canonicalJson } from "./task-set.js";

export interface ProbeState {
  probe: string;
  state: "online" | "offline";
  /** when the collector last received a status of it, epoch ms */
  lastSeen: number;
  labels: Record<string, string>;
  appliedVersion: number | null;
  configError: string | null;
  spooled: number | null;
  dropped: number | null;
  software: string | null;
  /** why the collector did not publish its config, null when it did */
  publishError: string | null;
}

/** What a status changed that decides whether the probe's config is published again. */
export interface StatusChange {
  /** the collector had no record of the probe */
  first: boolean;
  labelsChanged: boolean;
}

interface Row {
  probe: string; state: "online" | "offline"; labels: string; applied_version: number | null; config_error: string | null;
  spooled: number | null; dropped: number | null; software: string | null; last_seen: number; publish_error: string | null;
}

const fromRow = (r: Row): ProbeState => ({
  probe: r.probe, state: r.state, lastSeen: r.last_seen, labels: JSON.parse(r.labels), appliedVersion: r.applied_version,
  configError: r.config_error, spooled: r.spooled, dropped: r.dropped, software: r.software, publishError: r.publish_error,
});

export class ProbeStates {
  constructor(private readonly db: SqlDb) {}

  async get(probe: string): Promise<ProbeState | undefined> {
    const row = await this.db.get<Row>("SELECT * FROM probes WHERE probe = ?", [probe]);
    return row && fromRow(row);
  }

  async list(): Promise<ProbeState[]> {
    return (await this.db.all<Row>("SELECT * FROM probes ORDER BY probe")).map(fromRow);
  }

  /**
   * Keeps a status received at `now`. A retained status the broker hands over at subscription
   * says nothing about when the probe was last heard, so it keeps a known probe's last seen.
   * A bare "online"/"offline" of an older probe changes the state only.
   */
  async record(probe: string, status: ReadStatus, now: number, retained: boolean): Promise<StatusChange> {
    const before = await this.get(probe);
    const lastSeen = retained && before ? before.lastSeen : now;
    if ("legacy" in status) {
      await this.db.run(`INSERT INTO probes (probe, state, labels, last_seen) VALUES (?, ?, '{}', ?)
        ON CONFLICT (probe) DO UPDATE SET state = excluded.state, last_seen = excluded.last_seen`, [probe, status.state, lastSeen]);
      return { first: !before, labelsChanged: false };
    }
    await this.db.run(`INSERT INTO probes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
      ON CONFLICT (probe) DO UPDATE SET state = excluded.state, labels = excluded.labels,
        applied_version = excluded.applied_version, config_error = excluded.config_error, spooled = excluded.spooled,
        dropped = excluded.dropped, software = excluded.software, last_seen = excluded.last_seen`,
      [probe, status.state, JSON.stringify(status.labels), status.appliedVersion, status.configError,
        status.spooled, status.dropped, status.software, lastSeen]);
    return { first: !before, labelsChanged: !!before && canonicalJson(before.labels) !== canonicalJson(status.labels) };
  }

  async setPublishError(probe: string, error: string | null): Promise<void> {
    await this.db.run("UPDATE probes SET publish_error = ? WHERE probe = ?", [error, probe]);
  }

  /** The probes whose last reported labels include every pair. */
  async withLabels(pairs: [string, string][]): Promise<string[]> {
    return (await this.list()).filter((p) => pairs.every(([k, v]) => p.labels[k] === v)).map((p) => p.probe);
  }
}
