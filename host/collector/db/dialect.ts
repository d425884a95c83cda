// The few places where the collector's shared SQL differs between SQLite and PostgreSQL.

import type { Dialect } from "./sql.js";

/**
 * `column` is one of `values`, as one parameter however many values there are (both databases
 * bound the parameters of a statement): a JSON array on SQLite, a text[] on PostgreSQL.
 */
export function oneOf(dialect: Dialect, column: string, values: readonly string[], params: unknown[]): string {
  if (dialect === "postgres") {
    params.push(values);
    return `${column} = ANY(?::text[])`;
  }
  params.push(JSON.stringify(values));
  return `${column} IN (SELECT value FROM json_each(?))`;
}
