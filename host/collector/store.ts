// The collector's store: every result once, plus counts per minute (by task, probe and code)
// and per hour (by task and code) that keep window queries fast over millions of results; the
// fleet's task set and each probe's last state (task-set.ts, probe-states.ts read and write
// those tables through `db`). `--db` chooses the database: a file is SQLite (the default, no
// setup, one collector), a postgres:// URL is PostgreSQL, which several collectors may share.

import { resolve } from "node:path";
import type { StoredRecord } from "../wire/record.js";
import type { SqlDb } from "./db/sql.js";
import { isPostgresUrl, redactUrl } from "./db/postgres.js";
import { PostgresStore } from "./store/postgres-store.js";
import { SqliteStore } from "./store/sqlite-store.js";

export { HOUR_MS, MINUTE_MS } from "./store/counts.js";

export interface Store {
  readonly db: SqlDb;
  /** the database as logs and errors name it: the file's absolute path, or the URL without password */
  readonly name: string;
  /**
   * Stores the records in one transaction; resolves with those that were new (not stored
   * before, by this or another collector), each once.
   */
  add(records: StoredRecord[]): Promise<StoredRecord[]>;
  /**
   * A probe's report of results it had to drop from a full spool: a running total, so the
   * highest reported value is kept, never a sum. Resolves with how much the kept total grew.
   */
  setDropped(probe: string, total: number): Promise<number>;
  droppedByProbe(): Promise<{ probe: string; total: number }[]>;
  /** Deletes results (and their counts) older than `before` (epoch ms), rounded down to the hour. */
  prune(before: number): Promise<number>;
  close(): Promise<void>;
}

/** What `--db` names, fit to print: a file's absolute path, or the URL without its password. */
export function dbName(spec: string): string {
  return isPostgresUrl(spec) ? redactUrl(spec) : resolve(spec);
}

/** Opens `--db` (a file path, or a postgres:// or postgresql:// URL) with its schema up to date. */
export async function openStore(spec: string): Promise<Store> {
  try {
    return isPostgresUrl(spec) ? await PostgresStore.open(spec) : await SqliteStore.open(spec);
  } catch (err) {
    throw new Error(`--db: ${(err as Error).message}`, { cause: err });
  }
}
