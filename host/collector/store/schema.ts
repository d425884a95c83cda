// The collector's tables, written once for both dialects, and their versioned migration: a
// `schema_version` row says which migrations a database has had; each start runs the missing
// ones in one transaction (on PostgreSQL under an advisory lock, so collectors starting
// together do not race), and a second start changes nothing.

import { PHASES, phaseColumn, type StoredRecord } from "../../wire/record.js";
import type { Dialect, SqlDb } from "../db/sql.js";

/** The column kinds whose types differ between the dialects. */
const TYPES = {
  sqlite: { key: "TEXT", ms: "INTEGER", real: "REAL", withoutRowid: " WITHOUT ROWID" },
  // ids compared byte by byte, as SQLite does, whatever the database's locale; epoch ms need 64 bits
  postgres: { key: `TEXT COLLATE "C"`, ms: "BIGINT", real: "DOUBLE PRECISION", withoutRowid: "" },
} satisfies Record<Dialect, Record<string, string>>;

type Kind = "key" | "text" | "ms" | "int" | "real";

/** The results table's columns in their order; the PostgreSQL batch insert follows it too. */
export const RESULT_COLUMNS: readonly [name: string, kind: Kind][] = [
  ["id", "key"], ["probe", "key"], ["task", "key"], ["ts", "ms"], ["code", "int"], ["step", "int"], ["message", "text"],
  ...PHASES.map((p) => [phaseColumn(p), "real"] as [string, Kind]), ["total_ms", "real"],
  ["bytes_sent", "ms"], ["bytes_received", "ms"], ["stored_at", "ms"],
  ["labels", "text"], ["tls", "text"], // JSON, or NULL when the record had none
];

/** A record's values in the column order of RESULT_COLUMNS. */
export function resultRow(r: StoredRecord, storedAt: number): unknown[] {
  const t = r.timings;
  return [r.id, r.probe, r.task, r.ts, r.code, r.step, r.message, ...PHASES.map((p) => t[p]), t.totalMs,
    r.bytesSent, r.bytesReceived, storedAt, r.labels ? JSON.stringify(r.labels) : null, r.tls ? JSON.stringify(r.tls) : null];
}

const NOT_NULL = new Set(["id", "probe", "task", "ts", "total_ms", "bytes_sent", "bytes_received", "stored_at"]);

function columnType(dialect: Dialect, kind: Kind): string {
  const t = TYPES[dialect];
  return kind === "key" ? t.key : kind === "ms" ? t.ms : kind === "real" ? t.real : kind === "int" ? "INTEGER" : "TEXT";
}

/** Migration 1: the tables as they were before schema versions. */
function version1(dialect: Dialect): string[] {
  const { key, ms, withoutRowid } = TYPES[dialect];
  const results = RESULT_COLUMNS.map(([name, kind]) => `${name} ${columnType(dialect, kind)}${name === "id" ? " PRIMARY KEY" : NOT_NULL.has(name) ? " NOT NULL" : ""}`);
  return [
    `CREATE TABLE IF NOT EXISTS results (${results.join(", ")})`,
    "CREATE INDEX IF NOT EXISTS results_ts ON results (ts)",
    // code 0 counts successes, so that one table answers totals and failures alike
    `CREATE TABLE IF NOT EXISTS minutes (
      minute ${ms} NOT NULL, task ${key} NOT NULL, probe ${key} NOT NULL, code INTEGER NOT NULL, n ${ms} NOT NULL,
      PRIMARY KEY (minute, task, probe, code))${withoutRowid}`,
    // the same per hour and task, for long windows without a probe filter
    `CREATE TABLE IF NOT EXISTS hours (
      hour ${ms} NOT NULL, task ${key} NOT NULL, code INTEGER NOT NULL, n ${ms} NOT NULL,
      PRIMARY KEY (hour, task, code))${withoutRowid}`,
    `CREATE TABLE IF NOT EXISTS dropped (probe ${key} PRIMARY KEY, total ${ms} NOT NULL, reported_at ${ms} NOT NULL)`,
    // the fleet's task set (DESIGN.md "Fleet control plane"): each task's JSON as given, and one
    // version for the whole set (a single row) that grows by one at every change
    `CREATE TABLE IF NOT EXISTS tasks (id ${key} PRIMARY KEY, json TEXT NOT NULL)${withoutRowid}`,
    "CREATE TABLE IF NOT EXISTS task_set (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL)",
    "INSERT INTO task_set VALUES (1, 0) ON CONFLICT DO NOTHING",
    // each probe's last status; publish_error: why the collector could not publish its config
    `CREATE TABLE IF NOT EXISTS probes (
      probe ${key} PRIMARY KEY, state TEXT NOT NULL, labels TEXT NOT NULL, applied_version INTEGER,
      config_error TEXT, spooled ${ms}, dropped ${ms}, software TEXT, last_seen ${ms} NOT NULL,
      publish_error TEXT)${withoutRowid}`,
  ];
}

/** SQLite files made before results kept labels and TLS facts get the two columns. */
async function addLabelsAndTls(db: SqlDb): Promise<void> {
  const columns = new Set((await db.all<{ name: string }>("PRAGMA table_info(results)")).map((c) => c.name));
  for (const column of ["labels", "tls"]) if (!columns.has(column)) await db.run(`ALTER TABLE results ADD COLUMN ${column} TEXT`);
}

/** Migration n is MIGRATIONS[n - 1]; a new one is appended, never edited. */
const MIGRATIONS: ((db: SqlDb) => Promise<void>)[] = [
  async (db) => {
    for (const statement of version1(db.dialect)) await db.run(statement);
    if (db.dialect === "sqlite") await addLabelsAndTls(db);
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; `name` is the database as the errors name it. */
export async function migrate(db: SqlDb, name: string): Promise<void> {
  await db.transaction(async (tx) => {
    // any constant: it only has to be the same in every collector
    if (tx.dialect === "postgres") {
      // Another collector's migration may take longer than the pool's lock_timeout: wait for it.
      await tx.run("SET LOCAL lock_timeout = 0");
      await tx.get("SELECT pg_advisory_xact_lock(7351202611)");
    }
    await tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const row = await tx.get<{ version: number }>("SELECT version FROM schema_version");
    const from = row?.version ?? 0;
    if (from > SCHEMA_VERSION) {
      throw new Error(`database ${name} has schema version ${from}; this catprobe knows up to ${SCHEMA_VERSION} (a newer catprobe made it)`);
    }
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) await MIGRATIONS[v - 1](tx);
    if (!row) await tx.run("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION]);
    else if (from < SCHEMA_VERSION) await tx.run("UPDATE schema_version SET version = ?", [SCHEMA_VERSION]);
  });
}
