// The collector's database (SQLite, better-sqlite3): every result once, plus counts per minute
// (by task, probe and code) and per hour (by task and code) that keep window queries fast over
// millions of results; the fleet's task set and each probe's last state (task-set.ts,
// probe-states.ts read and write those tables).
// WAL with synchronous=NORMAL: a committed insert survives the process being killed.

import Database from "better-sqlite3";
import { PHASES, phaseColumn, type StoredRecord } from "../wire/record.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS results (
  id TEXT PRIMARY KEY,
  probe TEXT NOT NULL, task TEXT NOT NULL, ts INTEGER NOT NULL,
  code INTEGER, step INTEGER, message TEXT,
  ${PHASES.map((p) => `${phaseColumn(p)} REAL`).join(", ")}, total_ms REAL NOT NULL,
  bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, stored_at INTEGER NOT NULL,
  labels TEXT, tls TEXT -- JSON, or NULL when the record had none
);
CREATE INDEX IF NOT EXISTS results_ts ON results (ts);
-- code 0 counts successes, so that one table answers totals and failures alike
CREATE TABLE IF NOT EXISTS minutes (
  minute INTEGER NOT NULL, task TEXT NOT NULL, probe TEXT NOT NULL, code INTEGER NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (minute, task, probe, code)
) WITHOUT ROWID;
-- the same per hour and task, for long windows without a probe filter
CREATE TABLE IF NOT EXISTS hours (
  hour INTEGER NOT NULL, task TEXT NOT NULL, code INTEGER NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (hour, task, code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped (probe TEXT PRIMARY KEY, total INTEGER NOT NULL, reported_at INTEGER NOT NULL);
-- the fleet's task set (DESIGN.md "Fleet control plane"): each task's JSON as given, and one
-- version for the whole set (a single row) that grows by one at every change
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, json TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_set (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO task_set VALUES (1, 0);
-- each probe's last status; publish_error: why the collector could not publish its config
CREATE TABLE IF NOT EXISTS probes (
  probe TEXT PRIMARY KEY, state TEXT NOT NULL, labels TEXT NOT NULL, applied_version INTEGER,
  config_error TEXT, spooled INTEGER, dropped INTEGER, software TEXT, last_seen INTEGER NOT NULL,
  publish_error TEXT
) WITHOUT ROWID;
`;

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

export class Store {
  readonly db: Database.Database;
  private readonly insertResult: Database.Statement;
  private readonly countMinute: Database.Statement;
  private readonly countHour: Database.Statement;
  private readonly insertMany: (records: StoredRecord[]) => StoredRecord[];

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("cache_size = -65536"); // 64 MiB of pages: indexes stay in memory while ingesting
    this.db.exec(SCHEMA);
    this.migrate();
    this.insertResult = this.db.prepare(
      `INSERT OR IGNORE INTO results VALUES (${Array(19).fill("?").join(", ")})`);
    this.countMinute = this.db.prepare(`INSERT INTO minutes VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (minute, task, probe, code) DO UPDATE SET n = n + excluded.n`);
    this.countHour = this.db.prepare(`INSERT INTO hours VALUES (?, ?, ?, ?)
      ON CONFLICT (hour, task, code) DO UPDATE SET n = n + excluded.n`);
    this.insertMany = this.db.transaction((records: StoredRecord[]) => {
      const added: StoredRecord[] = [];
      const storedAt = Date.now();
      // Counted per batch first: a burst of results shares few (minute, task, probe, code) keys.
      const minutes = new Map<string, [number, string, string, number, number]>();
      const hours = new Map<string, [number, string, number, number]>();
      for (const r of records) {
        const t = r.timings;
        // In the column order of the table.
        const { changes } = this.insertResult.run(r.id, r.probe, r.task, r.ts, r.code, r.step, r.message,
          ...PHASES.map((p) => t[p]), t.totalMs, r.bytesSent, r.bytesReceived, storedAt,
          r.labels ? JSON.stringify(r.labels) : null, r.tls ? JSON.stringify(r.tls) : null);
        if (changes === 0) continue; // seen before: QoS 1 re-delivery
        const minute = Math.floor(r.ts / MINUTE_MS);
        const hour = Math.floor(r.ts / HOUR_MS);
        const code = r.code ?? 0;
        const mKey = `${minute}/${r.task}/${r.probe}/${code}`;
        const m = minutes.get(mKey);
        if (m) m[4]++;
        else minutes.set(mKey, [minute, r.task, r.probe, code, 1]);
        const hKey = `${hour}/${r.task}/${code}`;
        const h = hours.get(hKey);
        if (h) h[3]++;
        else hours.set(hKey, [hour, r.task, code, 1]);
        added.push(r);
      }
      for (const m of minutes.values()) this.countMinute.run(...m);
      for (const h of hours.values()) this.countHour.run(...h);
      return added;
    });
  }

  /** Databases made before results kept labels and TLS facts get the two columns. */
  private migrate(): void {
    const columns = new Set((this.db.prepare("PRAGMA table_info(results)").all() as { name: string }[]).map((c) => c.name));
    for (const column of ["labels", "tls"]) {
      if (!columns.has(column)) this.db.exec(`ALTER TABLE results ADD COLUMN ${column} TEXT`);
    }
  }

  /** Stores the records in one transaction; returns those that were new (not duplicates). */
  add(records: StoredRecord[]): StoredRecord[] {
    return records.length ? this.insertMany(records) : [];
  }

  /**
   * A probe's report of results it had to drop from a full spool: a running total, so the
   * highest reported value is kept, never a sum. Returns how much the kept total grew.
   */
  setDropped(probe: string, total: number): number {
    const before = (this.db.prepare("SELECT total FROM dropped WHERE probe = ?").get(probe) as { total: number } | undefined)
      ?.total ?? 0;
    this.db.prepare(`INSERT INTO dropped VALUES (?, ?, ?)
      ON CONFLICT (probe) DO UPDATE SET total = max(total, excluded.total), reported_at = excluded.reported_at`)
      .run(probe, total, Date.now());
    return Math.max(0, total - before);
  }

  droppedByProbe(): { probe: string; total: number }[] {
    return this.db.prepare("SELECT probe, total FROM dropped ORDER BY probe").all() as { probe: string; total: number }[];
  }

  /** Deletes results (and their counts) older than `before` (epoch ms), rounded down to the hour. */
  prune(before: number): number {
    const minute = Math.floor(before / HOUR_MS) * (HOUR_MS / MINUTE_MS);
    const removed = this.db.prepare("DELETE FROM results WHERE ts < ?").run(minute * MINUTE_MS).changes;
    this.db.prepare("DELETE FROM minutes WHERE minute < ?").run(minute);
    this.db.prepare("DELETE FROM hours WHERE hour < ?").run(Math.floor(before / HOUR_MS));
    return removed;
  }

  close(): void {
    this.db.close();
  }
}
