// The store on SQLite: a batch is one synchronous better-sqlite3 transaction of prepared
// statements (test/bench/collector.bench.ts measures it), queued behind any open transaction.

import { resolve } from "node:path";
import type { StoredRecord } from "../../wire/record.js";
import { SqliteDb } from "../db/sqlite.js";
import { countsOf } from "./counts.js";
import { RESULT_COLUMNS, migrate, resultRow } from "./schema.js";
import { SqlStore } from "./sql-store.js";

export class SqliteStore extends SqlStore {
  private readonly insertMany: (records: StoredRecord[]) => StoredRecord[];

  static async open(file: string): Promise<SqliteStore> {
    const name = resolve(file);
    let db: SqliteDb;
    try {
      db = new SqliteDb(file);
    } catch (err) {
      throw new Error(`database ${name}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await migrate(db, name);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new SqliteStore(db, name);
  }

  private constructor(private readonly sqlite: SqliteDb, name: string) {
    super(sqlite, name);
    const insertResult = sqlite.prepare(`INSERT OR IGNORE INTO results VALUES (${RESULT_COLUMNS.map(() => "?").join(", ")})`);
    const countMinute = sqlite.prepare(`INSERT INTO minutes VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (minute, task, probe, code) DO UPDATE SET n = n + excluded.n`);
    const countHour = sqlite.prepare(`INSERT INTO hours VALUES (?, ?, ?, ?)
      ON CONFLICT (hour, task, code) DO UPDATE SET n = n + excluded.n`);
    this.insertMany = sqlite.db.transaction((records: StoredRecord[]) => {
      const storedAt = Date.now();
      // seen before (QoS 1 re-delivery) when nothing changed
      const added = records.filter((r) => insertResult.run(...resultRow(r, storedAt)).changes > 0);
      const { minutes, hours } = countsOf(added);
      for (const m of minutes) countMinute.run(...m);
      for (const h of hours) countHour.run(...h);
      return added;
    }) as (records: StoredRecord[]) => StoredRecord[];
  }

  add(records: StoredRecord[]): Promise<StoredRecord[]> {
    return records.length ? this.sqlite.serialized(() => this.insertMany(records)) : Promise.resolve([]);
  }
}
