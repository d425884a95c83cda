// What both stores share: everything but the batch insert of results, in SQL both dialects run.

import type { StoredRecord } from "../../wire/record.js";
import type { SqlDb } from "../db/sql.js";
import type { Store } from "../store.js";
import { HOUR_MS, MINUTE_MS } from "./counts.js";

export abstract class SqlStore implements Store {
  constructor(readonly db: SqlDb, readonly name: string) {}

  abstract add(records: StoredRecord[]): Promise<StoredRecord[]>;

  setDropped(probe: string, total: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      const before = (await tx.get<{ total: number }>("SELECT total FROM dropped WHERE probe = ?", [probe]))?.total ?? 0;
      await tx.run(`INSERT INTO dropped VALUES (?, ?, ?) ON CONFLICT (probe) DO UPDATE SET
        total = CASE WHEN excluded.total > dropped.total THEN excluded.total ELSE dropped.total END,
        reported_at = excluded.reported_at`, [probe, total, Date.now()]);
      return Math.max(0, total - before);
    });
  }

  droppedByProbe(): Promise<{ probe: string; total: number }[]> {
    return this.db.all("SELECT probe, total FROM dropped ORDER BY probe");
  }

  prune(before: number): Promise<number> {
    const minute = Math.floor(before / HOUR_MS) * (HOUR_MS / MINUTE_MS);
    return this.db.transaction(async (tx) => {
      const removed = await tx.run("DELETE FROM results WHERE ts < ?", [minute * MINUTE_MS]);
      await tx.run("DELETE FROM minutes WHERE minute < ?", [minute]);
      await tx.run("DELETE FROM hours WHERE hour < ?", [Math.floor(before / HOUR_MS)]);
      return removed;
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
