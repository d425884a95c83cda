// The store itself: the versioned schema (a second start changes nothing, an old SQLite file
// gets its missing columns, a newer schema is refused), the database's name without its
// password, and two stores on one PostgreSQL database writing the same results at once: each
// counted once, exactly, and task sets applied one after the other; a transaction that met a
// deadlock is run again; the HTTP API answers a failing database with a 500.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { startCollector } from "../../host/collector/collector.js";
import { PostgresDb } from "../../host/collector/db/postgres.js";
import { counts, topErrors } from "../../host/collector/stats.js";
import { openStore, type Store } from "../../host/collector/store.js";
import { SCHEMA_VERSION } from "../../host/collector/store/schema.js";
import { TaskSet } from "../../host/collector/task-set.js";
import { STORE_KINDS, newDatabase, postgres } from "../helpers/databases.js";
import { rng, randomInt } from "../helpers/random.js";
import { record } from "../helpers/records.js";

const T0 = Date.UTC(2026, 10, 29, 10, 0, 0);
const version = async (store: Store) => (await store.db.all<{ version: number }>("SELECT version FROM schema_version"));

describe.each(STORE_KINDS)("schema on %s", (kind) => {
  it("is created at the first start and left as it is at the next", async () => {
    const db = await newDatabase(kind);
    const first = await openStore(db);
    expect(await version(first)).toEqual([{ version: SCHEMA_VERSION }]);
    await first.add([record("p", "t", T0, 607)]);
    await new TaskSet(first.db).apply([{ id: "a" }]);
    await first.close();
    const again = await openStore(db);
    expect(await version(again)).toEqual([{ version: SCHEMA_VERSION }]);
    expect((await topErrors(again, { from: T0, to: T0 + 1 })).total).toBe(1);
    expect(await new TaskSet(again.db).current()).toEqual({ version: 1, tasks: [{ id: "a" }] });
    await again.close();
  });

  it("refuses a database of a newer schema, naming it", async () => {
    const db = await newDatabase(kind);
    const store = await openStore(db);
    await store.db.run("UPDATE schema_version SET version = 99");
    await store.close();
    await expect(openStore(db)).rejects.toThrow(`has schema version 99; this catprobe knows up to ${SCHEMA_VERSION}`);
  });
});

describe("schema on an SQLite file from before schema versions", () => {
  it("gets the labels and tls columns and keeps its results", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "catprobe-v0-")), "c.db");
    const old = new Database(file);
    // the results table as the first collectors made it: no labels, no tls, no schema_version
    old.exec(`CREATE TABLE results (
      id TEXT PRIMARY KEY, probe TEXT NOT NULL, task TEXT NOT NULL, ts INTEGER NOT NULL, code INTEGER, step INTEGER, message TEXT,
      dns_ms REAL, connect_ms REAL, tls_ms REAL, send_ms REAL, first_byte_ms REAL, receive_ms REAL, total_ms REAL NOT NULL,
      bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, stored_at INTEGER NOT NULL);
      INSERT INTO results VALUES ('old-1', 'p', 't', ${T0}, 607, 0, 'x', 1, 2, NULL, 0.5, 3, 0.5, 7, 6, 7, ${T0})`);
    old.close();
    const store = await openStore(file);
    expect(await version(store)).toEqual([{ version: SCHEMA_VERSION }]);
    const columns = (await store.db.all<{ name: string }>("PRAGMA table_info(results)")).map((c) => c.name);
    expect(columns.slice(-2)).toEqual(["labels", "tls"]);
    await store.add([{ ...record("p", "t", T0, null), labels: { site: "a" } }]);
    expect(await store.db.all("SELECT id, labels FROM results ORDER BY id")).toEqual([
      { id: "old-1", labels: null }, { id: expect.stringMatching(/^p\/t\//), labels: '{"site":"a"}' },
    ]);
    await store.close();
    const again = await openStore(file);
    expect(await version(again)).toEqual([{ version: SCHEMA_VERSION }]);
    await again.close();
  });
});

describe("two stores on one PostgreSQL database", () => {
  it("start at once: the schema is made once", async () => {
    const url = await newDatabase("postgres");
    const stores = await Promise.all([openStore(url), openStore(url), openStore(url)]);
    expect(await version(stores[0])).toEqual([{ version: SCHEMA_VERSION }]);
    await Promise.all(stores.map((s) => s.close()));
  });

  it("writing overlapping batches of the same results at once count each result once, exactly", async () => {
    const url = await newDatabase("postgres");
    const [a, b] = await Promise.all([openStore(url), openStore(url)]);
    try {
      const next = rng(7);
      const codes = [null, null, 601, 603, 607, 609];
      const records = Array.from({ length: 6000 }, (_, i) =>
        record(`p${i % 5}`, `t${i % 3}`, T0 + randomInt(next, 3 * 3_600_000), codes[randomInt(next, codes.length)]));
      // each store gets every record, in its own random batches and order: every result arrives twice at once
      const batchesOf = () => {
        const shuffled = [...records];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = randomInt(next, i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        const out = [];
        for (let i = 0; i < shuffled.length;) {
          const n = 1 + randomInt(next, 700);
          out.push(shuffled.slice(i, i + n));
          i += n;
        }
        return out;
      };
      const write = async (store: Store) => {
        let added = 0;
        for (const batch of batchesOf()) added += (await store.add(batch)).length;
        return added;
      };
      const [fromA, fromB] = await Promise.all([write(a), write(b)]);
      expect(fromA + fromB).toBe(records.length);
      const window = { from: T0 - 1, to: T0 + 4 * 3_600_000 };
      const want = new Map<number, number>();
      for (const r of records) want.set(r.code ?? 0, (want.get(r.code ?? 0) ?? 0) + 1);
      for (const store of [a, b]) {
        // whole hours from the hour table, the rest from the minute table and raw results
        const got = new Map((await counts(store, window)).map((c) => [c.code, c.n]));
        expect(got).toEqual(want);
        const byProbe = await counts(store, { ...window, probe: "p3" }); // the minute table only
        expect(byProbe.reduce((n, c) => n + c.n, 0)).toBe(records.filter((r) => r.probe === "p3").length);
      }
      expect((await a.db.get<{ n: number }>("SELECT sum(n) AS n FROM minutes"))!.n).toBe(records.length);
      expect((await a.db.get<{ n: number }>("SELECT sum(n) AS n FROM hours"))!.n).toBe(records.length);
      expect((await a.db.get<{ n: number }>("SELECT count(*) AS n FROM results"))!.n).toBe(records.length);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it("apply task sets one after the other: no version is given twice", async () => {
    const url = await newDatabase("postgres");
    const [a, b] = await Promise.all([openStore(url), openStore(url)]);
    try {
      const sets = Array.from({ length: 10 }, (_, i) => [{ id: `task-${i}` }, { id: "shared", n: i }]);
      const diffs = await Promise.all(sets.map((set, i) => new TaskSet((i % 2 ? a : b).db).apply(set)));
      expect(diffs.map((d) => d.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      const last = diffs.find((d) => d.version === 10)!;
      expect((await new TaskSet(a.db).current()).version).toBe(10);
      expect(last.added.length + last.changed.length).toBe(2);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("a PostgreSQL transaction", () => {
  it("that failed on a deadlock is run again, and both commit", async () => {
    const db = PostgresDb.open(await newDatabase("postgres"));
    try {
      await db.run("CREATE TABLE k (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
      await db.run("INSERT INTO k VALUES (1, 0), (2, 0)");
      let runs = 0;
      let firstDone = 0;
      let bothHoldOne!: () => void;
      const barrier = new Promise<void>((resolve) => (bothHoldOne = resolve));
      // each locks one row, waits until the other holds its row, then wants that one: a deadlock
      const cross = (first: number, second: number) => db.transaction(async (tx) => {
        runs++;
        await tx.run("UPDATE k SET v = v + 1 WHERE id = ?", [first]);
        if (++firstDone === 2) bothHoldOne();
        await barrier;
        await tx.run("UPDATE k SET v = v + 1 WHERE id = ?", [second]);
      });
      await Promise.all([cross(1, 2), cross(2, 1)]);
      expect(runs).toBe(3);
      expect(await db.all("SELECT id, v FROM k ORDER BY id")).toEqual([{ id: 1, v: 2 }, { id: 2, v: 2 }]);
    } finally {
      await db.close();
    }
  });
});

describe("the database's name", () => {
  it("leaves the password out, also from errors", async () => {
    const server = await postgres();
    const url = server.url(`t-name`, "s3cret-pw");
    await expect(openStore(url)).rejects.toThrow(/^--db: database postgres:\/\/postgres@127\.0\.0\.1:\d+\/t-name: /);
    await expect(openStore(url)).rejects.not.toThrow(/s3cret-pw/);
    const store = await openStore(server.url("postgres", "s3cret-pw"));
    expect(store.name).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    await store.close();
  });
});

describe("the HTTP API on a database that fails", () => {
  it("answers 500 with the database's error as JSON", async () => {
    const c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: await newDatabase("postgres") });
    try {
      await c.store.db.run("DROP TABLE minutes");
      const res = await fetch(`${c.httpUrl}/api/top-errors`);
      expect(res.status).toBe(500);
      expect((await res.json()).error).toMatch(/^database postgres:\/\/postgres@127\.0\.0\.1:\d+\/t\d+: relation "minutes" does not exist$/);
    } finally {
      await c.close();
    }
  });
});
