// The store on PostgreSQL, shared by several collectors. A batch is one transaction of three
// statements whatever its size: arrays unnested into rows (a multi-row VALUES would meet the
// 65,535-parameter limit). The results insert skips ids already stored, by this collector or
// another, and returns the ids it did insert; only those are counted, so two collectors that
// receive the same result count it once. Records and count keys go in sorted, so that two
// transactions take their row locks in one order and cannot deadlock each other.

import type { StoredRecord } from "../../wire/record.js";
import { PostgresDb } from "../db/postgres.js";
import { countsOf } from "./counts.js";
import { RESULT_COLUMNS, migrate, resultRow } from "./schema.js";
import { SqlStore } from "./sql-store.js";

const ARRAY_TYPE = { key: "text", text: "text", ms: "bigint", int: "int", real: "float8" } as const;

const unnest = (types: readonly string[]) => `unnest(${types.map((t) => `?::${t}[]`).join(", ")})`;

const INSERT_RESULTS = `INSERT INTO results SELECT * FROM ${unnest(RESULT_COLUMNS.map(([, kind]) => ARRAY_TYPE[kind]))}
  ON CONFLICT (id) DO NOTHING RETURNING id`;
const COUNT_MINUTES = `INSERT INTO minutes SELECT * FROM ${unnest(["bigint", "text", "text", "int", "bigint"])}
  ON CONFLICT (minute, task, probe, code) DO UPDATE SET n = minutes.n + excluded.n`;
const COUNT_HOURS = `INSERT INTO hours SELECT * FROM ${unnest(["bigint", "text", "int", "bigint"])}
  ON CONFLICT (hour, task, code) DO UPDATE SET n = hours.n + excluded.n`;

/** Rows as one array per column, the parameters of an unnest. */
function columns(rows: readonly unknown[][], width: number): unknown[][] {
  const out = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  rows.forEach((row, i) => row.forEach((v, c) => (out[c][i] = v)));
  return out;
}

export class PostgresStore extends SqlStore {
  static async open(url: string): Promise<PostgresStore> {
    const db = PostgresDb.open(url);
    try {
      await migrate(db, db.name);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new PostgresStore(db, db.name);
  }

  async add(records: StoredRecord[]): Promise<StoredRecord[]> {
    const byId = new Map<string, StoredRecord>();
    for (const r of records) if (!byId.has(r.id)) byId.set(r.id, r); // the first of each id
    const unique = [...byId.values()];
    if (!unique.length) return [];
    const sorted = [...unique].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.db.transaction(async (tx) => {
      const storedAt = Date.now();
      const rows = sorted.map((r) => resultRow(r, storedAt));
      const inserted = new Set((await tx.all<{ id: string }>(INSERT_RESULTS, columns(rows, RESULT_COLUMNS.length))).map((r) => r.id));
      const added = unique.filter((r) => inserted.has(r.id));
      const { minutes, hours } = countsOf(added);
      if (minutes.length) await tx.run(COUNT_MINUTES, columns(minutes, 5));
      if (hours.length) await tx.run(COUNT_HOURS, columns(hours, 4));
      return added;
    });
  }
}
