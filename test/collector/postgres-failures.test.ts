// PostgreSQL going wrong under the collector: a connection ended by the server during a
// transaction (pg_terminate_backend, as a restart or failover would) fails that transaction
// and nothing else — no uncaught exception, which vitest would report as a failure — and the
// next transaction works; a server that accepts TCP and never answers fails a query after the
// connect timeout; a lock held by another collector fails the waiter after lock_timeout; the
// database's name never shows the password, however the URL is written.

import { createServer, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { CONNECT_TIMEOUT_MS, PostgresDb, redactUrl } from "../../host/collector/db/postgres.js";
import { newDatabase } from "../helpers/databases.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ends `pid`'s connection from another one, and waits until the server no longer has it. */
async function terminate(db: PostgresDb, pid: number): Promise<void> {
  expect(await db.get<{ ok: boolean }>("SELECT pg_terminate_backend(?) AS ok", [pid])).toEqual({ ok: true });
  for (let i = 0; i < 200; i++) {
    if (!(await db.get("SELECT 1 FROM pg_stat_activity WHERE pid = ?", [pid]))) return;
    await sleep(25);
  }
  throw new Error(`backend ${pid} still there`);
}

describe("a PostgreSQL connection ended during a transaction", () => {
  it("while a query runs: the transaction rejects, not retried, and the next one works", async () => {
    const db = PostgresDb.open(await newDatabase("postgres"));
    try {
      await db.run("CREATE TABLE k (id INTEGER PRIMARY KEY)");
      let runs = 0;
      let pid!: (n: number) => void;
      const backend = new Promise<number>((resolve) => (pid = resolve));
      const tx = db.transaction(async (t) => {
        runs++;
        await t.run("INSERT INTO k VALUES (1)");
        pid((await t.get<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!.pid);
        await t.get("SELECT pg_sleep(60)");
      });
      const outcome = tx.then(() => "committed", (err: Error) => err);
      await terminate(db, await backend);
      const err = await outcome;
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^database postgres:\/\/.*: (terminating connection|Connection terminated)/);
      expect(runs).toBe(1);
      await sleep(100); // a late 'error' event would come now
      expect(await db.all("SELECT id FROM k")).toEqual([]); // rolled back
      await db.transaction((t) => t.run("INSERT INTO k VALUES (2)"));
      expect(await db.all("SELECT id FROM k")).toEqual([{ id: 2 }]);
    } finally {
      await db.close();
    }
  });

  it("between its queries: the next query rejects, and the next transaction works", async () => {
    const db = PostgresDb.open(await newDatabase("postgres"));
    try {
      await db.run("CREATE TABLE k (id INTEGER PRIMARY KEY)");
      await expect(db.transaction(async (t) => {
        await t.run("INSERT INTO k VALUES (1)");
        const { pid } = (await t.get<{ pid: number }>("SELECT pg_backend_pid() AS pid"))!;
        await terminate(db, pid);
        await sleep(100); // the client has seen the end (and emitted 'error') by now
        await t.run("INSERT INTO k VALUES (3)");
      })).rejects.toThrow(/^database postgres:\/\//);
      // every connection of the pool is used: the broken one must not come back
      await Promise.all(Array.from({ length: 10 }, (_, i) => db.transaction((t) => t.run("INSERT INTO k VALUES (?)", [10 + i]))));
      expect((await db.all<{ id: number }>("SELECT id FROM k ORDER BY id")).map((r) => r.id))
        .toEqual(Array.from({ length: 10 }, (_, i) => 10 + i));
    } finally {
      await db.close();
    }
  });
});

describe("PostgreSQL timeouts", () => {
  it("a server that accepts TCP and never answers fails a query after the connect timeout", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    const db = PostgresDb.open(`postgres://u:pw@127.0.0.1:${port}/db`, { connectTimeoutMs: 400 });
    try {
      for (const attempt of [() => db.get("SELECT 1"), () => db.transaction((t) => t.get("SELECT 1"))]) {
        const started = Date.now();
        await expect(attempt()).rejects.toThrow(new RegExp(`^database postgres://u@127\\.0\\.0\\.1:${port}/db: .*timeout`, "i"));
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(350);
        expect(took).toBeLessThan(3000);
      }
      expect(sockets.size).toBeGreaterThan(0); // it did connect, and got no answer
    } finally {
      await db.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
    expect(CONNECT_TIMEOUT_MS).toBe(10_000);
  });

  it("sessions have a lock timeout and an idle-in-transaction timeout, no statement timeout", async () => {
    const db = PostgresDb.open(await newDatabase("postgres"));
    try {
      const show = async (setting: string) =>
        db.transaction(async (t) => (await t.get<Record<string, string>>(`SHOW ${setting}`))![setting]);
      expect(await show("lock_timeout")).toBe("30s");
      expect(await show("idle_in_transaction_session_timeout")).toBe("1min");
      expect(await show("statement_timeout")).toBe("0");
    } finally {
      await db.close();
    }
  });

  it("a transaction waiting for another's lock fails after lock_timeout (here from the URL)", async () => {
    const url = await newDatabase("postgres");
    const holder = PostgresDb.open(url);
    const waiter = PostgresDb.open(`${url}?lock_timeout=300`);
    try {
      await holder.run("CREATE TABLE k (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
      await holder.run("INSERT INTO k VALUES (1, 0)");
      let release!: () => void;
      const done = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const holding = holder.transaction(async (t) => {
        await t.run("UPDATE k SET v = 1 WHERE id = 1");
        locked();
        await done;
      });
      await isLocked;
      const started = Date.now();
      const err = await waiter.transaction((t) => t.run("UPDATE k SET v = 2 WHERE id = 1")).catch((e: Error & { code?: string }) => e);
      expect((err as { code?: string }).code).toBe("55P03"); // lock_not_available
      expect(Date.now() - started).toBeLessThan(5000);
      release();
      await holding;
      expect(await waiter.get("SELECT v FROM k")).toEqual({ v: 1 });
    } finally {
      await Promise.all([holder.close(), waiter.close()]);
    }
  });
});

describe("a PostgreSQL URL without its password", () => {
  it.each([
    ["postgres://u:secret@h:5432/db", "postgres://u@h:5432/db"],
    ["postgres://u:pa%2Fss%40w%3Ard@h/db", "postgres://u@h/db"],
    ["postgres://u:pa:ss@h/db", "postgres://u@h/db"],
    ["postgres://u:p@ss@h/db", "postgres://u@h/db"],
    ["postgres://u@h/db?password=secret&sslmode=require", "postgres://u@h/db?sslmode=require"],
    ["postgres://h/db", "postgres://h/db"],
  ])("%s is %s", (url, name) => {
    expect(redactUrl(url)).toBe(name);
  });

  it.each([
    ["postgres://u:pa/ss@h/db", "postgres://u:***@h/db"],
    ["postgres://u:pa/ss:x@h/db", "postgres://u:***@h/db"],
    ["postgres://u:pa?ss@h/db", "postgres://u:***@h/db"],
    ["postgres://u:pa#ss@h/db", "postgres://u:***@h/db"],
    ["postgres://u:pa/s@s@h/db", "postgres://u:***@h/db"],
  ])("%s, not a valid URL, is %s in the error", (url, name) => {
    expect(() => redactUrl(url)).toThrow(`${name}: not a valid URL`);
    expect(() => redactUrl(url)).not.toThrow(/pa|ss/);
  });

  it.each([
    // parses, but as host u, port 12, path /ss@h/db
    ["postgres://u:12/ss@h/db", "postgres://u:***@h/db"],
    ["postgres://u:12/ss@h/db?password=x", "postgres://u:***@h/db?password=***"],
  ])("%s, a password that a URL parser would read as a port and a path, is %s", (url, name) => {
    expect(redactUrl(url)).toBe(name);
  });
});
