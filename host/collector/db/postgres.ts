// SqlDb on PostgreSQL (pg), for several collectors sharing one database. `?` placeholders are
// numbered $1…$n; int8 (counts, sums of BIGINT) and numeric come back as JS numbers through
// this pool's own type parsers, so nothing else in the process that uses pg is changed. Every
// error names the database (its URL without the password).

import pg from "pg";
import type { SqlDb } from "./sql.js";

/** Runs of a transaction that failed on a deadlock or a serialization conflict, at most. */
const TRANSACTION_ATTEMPTS = 5;
const RETRY_CODES = new Set(["40P01", "40001"]); // deadlock_detected, serialization_failure

const { INT8, NUMERIC } = pg.types.builtins;
// Counts and epoch milliseconds stay far below 2^53; the collector never stores wider numbers.
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

export const isPostgresUrl = (spec: string) => /^postgres(ql)?:\/\//i.test(spec);

/** The URL as it may be printed and logged: no password, in the userinfo or as a parameter. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${url.replace(/:[^:@/]*@/, ":***@")}: not a valid URL`);
  }
  u.password = "";
  u.searchParams.delete("password");
  return u.toString();
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

  static open(url: string): PostgresDb {
    const name = redactUrl(url);
    const pool = new pg.Pool({ connectionString: url, types: TYPES, max: 8, application_name: "catprobe-collector" });
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

  async transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T> {
    if (this.on !== this.pool) return fn(this); // already inside one
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect().catch((err: unknown) => {
        throw this.named(err);
      });
      const tx = new PostgresDb(this.pool, this.name, client);
      let broken = false;
      try {
        await tx.run("BEGIN");
        const out = await fn(tx);
        await tx.run("COMMIT");
        return out;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => (broken = true));
        const code = (err as { code?: string }).code;
        if (attempt < TRANSACTION_ATTEMPTS && code && RETRY_CODES.has(code)) {
          await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
          continue;
        }
        throw this.named(err);
      } finally {
        client.release(broken); // a connection that cannot roll back is closed, not reused
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
