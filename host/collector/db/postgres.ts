// SqlDb on PostgreSQL (pg), for several collectors sharing one database. `?` placeholders are
// numbered $1…$n; int8 (counts, sums of BIGINT) and numeric come back as JS numbers through
// this pool's own type parsers, so nothing else in the process that uses pg is changed. Every
// error names the database (its URL without the password).

import pg from "pg";
import type { SqlDb } from "./sql.js";

/** Runs of a transaction that failed on a deadlock or a serialization conflict, at most. */
const TRANSACTION_ATTEMPTS = 5;
const RETRY_CODES = new Set(["40P01", "40001"]); // deadlock_detected, serialization_failure

/**
 * Bounds on waiting, so that no commit hangs for ever. A TCP connect plus the login that takes
 * longer than CONNECT_TIMEOUT_MS fails (an unreachable server, one that accepts and never
 * answers). TCP keepalive finds a connection whose server went away without closing it. On the
 * server, a lock awaited longer than lock_timeout fails the statement (55P03, not retried: the
 * caller sees it), so a collector stuck behind another's locks gets an error instead of
 * waiting; a session idle inside a transaction longer than idle_in_transaction_session_timeout
 * is ended, so a stalled collector does not hold its locks for ever (none of our transactions
 * waits on anything but its own queries). There is no statement_timeout: a prune of millions
 * of rows or a stats query over a long range may rightly run for minutes. The URL's own
 * parameters (`?lock_timeout=…`) override these.
 */
export const CONNECT_TIMEOUT_MS = 10_000;
const SESSION_TIMEOUTS = { lock_timeout: 30_000, idle_in_transaction_session_timeout: 60_000 };

const { INT8, NUMERIC } = pg.types.builtins;
// Counts and epoch milliseconds stay far below 2^53; the collector never stores wider numbers.
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

export const isPostgresUrl = (spec: string) => /^postgres(ql)?:\/\//i.test(spec);

/**
 * The URL as it may be printed and logged: no password, in the userinfo or as a parameter.
 * A password with an unencoded `/`, `?`, `#` (or `:` before a `/`) ends the URL's authority
 * early: `new URL` then fails, or reads part of the password as the port and the rest as the
 * path (`postgres://u:12/ab@h/db`). So when it fails, or an `@` is left after the authority,
 * everything between `://` and the last `@` goes, except a plain user name before its `:`.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${redactUnparsed(url)}: not a valid URL`);
  }
  if (/@/.test(u.pathname + u.search + u.hash)) return redactUnparsed(url);
  u.password = "";
  u.searchParams.delete("password");
  return u.toString();
}

function redactUnparsed(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)(.*)@/is, (_, scheme: string, userinfo: string) => {
      const user = /^[^:/?#]*(?=:)/.exec(userinfo)?.[0];
      return `${scheme}${user === undefined ? "" : `${user}:`}***@`;
    })
    .replace(/([?&]password=)[^&#]*/gi, "$1***");
}

const numbered = new Map<string, string>();

/** `?` → `$1`, `$2`…; the texts are few and repeat, so each is rewritten once. */
function numberPlaceholders(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    if (numbered.size < 512) numbered.set(sql, out);
  }
  return out;
}

/** What the queries run on: the pool (each query on any connection) or one client (a transaction). */
type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

export class PostgresDb implements SqlDb {
  readonly dialect = "postgres" as const;
  /** the database's URL without the password */
  readonly name: string;

  constructor(private readonly pool: pg.Pool, name: string, private readonly on: Queryable = pool) {
    this.name = name;
  }

  /** `connectTimeoutMs` is for tests; the collector uses CONNECT_TIMEOUT_MS. */
  static open(url: string, { connectTimeoutMs = CONNECT_TIMEOUT_MS } = {}): PostgresDb {
    const name = redactUrl(url);
    const pool = new pg.Pool({
      connectionString: url, types: TYPES, max: 8, application_name: "catprobe-collector",
      connectionTimeoutMillis: connectTimeoutMs, keepAlive: true, keepAliveInitialDelayMillis: 30_000,
      ...SESSION_TIMEOUTS,
    });
    // An idle connection the server ends (a restart) must not take the collector down; the
    // next query opens a new one.
    pool.on("error", () => {});
    return new PostgresDb(pool, name);
  }

  private async query<T extends pg.QueryResultRow>(sql: string, params: readonly unknown[]): Promise<pg.QueryResult<T>> {
    try {
      return await this.on.query<T>(numberPlaceholders(sql), params as unknown[]);
    } catch (err) {
      throw this.named(err);
    }
  }

  /** The error with the database's name, keeping pg's `code` (retries look at it). */
  private named(err: unknown): Error {
    const e = err as Error & { code?: string };
    if (e.message?.startsWith(`database ${this.name}: `)) return e;
    return Object.assign(new Error(`database ${this.name}: ${e.message}`, { cause: e }), { code: e.code });
  }

  async all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.query(sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return (await this.query(sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  /**
   * Runs `fn` in a transaction on one connection; run again on a deadlock or a serialization
   * conflict. A connection lost meanwhile (pg_terminate_backend, a restart, a failover, the
   * idle-in-transaction timeout) fails the transaction and is not retried: lost during COMMIT,
   * the commit may have happened, and a second run would count results twice. The pool stops
   * listening for a client's 'error' while it is checked out, and pg emits one when the
   * connection ends: without a listener of ours, that would be an uncaught exception.
   */
  async transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T> {
    if (this.on !== this.pool) return fn(this); // already inside one
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect().catch((err: unknown) => {
        throw this.named(err);
      });
      // The query that was running (or the next one) rejects with the error; this keeps it
      // from being thrown, and marks the connection as one not to reuse.
      let lost: Error | undefined;
      const onError = (err: Error) => (lost ??= err);
      client.on("error", onError);
      const tx = new PostgresDb(this.pool, this.name, client);
      let broken: Error | undefined;
      try {
        await tx.run("BEGIN");
        const out = await fn(tx);
        await tx.run("COMMIT");
        return out;
      } catch (err) {
        if (lost) broken = lost;
        else await client.query("ROLLBACK").catch((e: Error) => (broken = e));
        const code = (err as { code?: string }).code;
        if (!broken && attempt < TRANSACTION_ATTEMPTS && code && RETRY_CODES.has(code)) {
          await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
          continue;
        }
        throw this.named(err);
      } finally {
        broken ??= lost;
        if (broken) {
          // closed, not reused; the listener stays: the client is dropped, and its end may
          // still emit an error
          client.release(broken);
        } else {
          client.removeListener("error", onError);
          client.release();
        }
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
