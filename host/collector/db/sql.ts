// The one interface the collector's tables are read and written through, so that the same
// statements run on SQLite (the zero-setup default, sqlite.ts) and on PostgreSQL shared by
// several collectors (postgres.ts). Statements use `?` placeholders (never inside a quoted
// literal); the PostgreSQL side numbers them. Numbers come back as numbers on both.

export type Dialect = "sqlite" | "postgres";

export interface SqlDb {
  readonly dialect: Dialect;
  /** Every row of a query. */
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** The first row of a query, or undefined. */
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** A statement that changes rows; resolves with how many it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /**
   * Runs `fn` in one transaction, through `tx` (not this object): committed when `fn`
   * resolves, rolled back when it throws. On PostgreSQL a transaction that failed on a
   * deadlock or a serialization conflict is run again (fn must be safe to repeat).
   */
  transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
