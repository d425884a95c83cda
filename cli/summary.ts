// The one-line account of a set of runs, for `probe --once` (and `run`): how many, how many
// passed, the failures by code, most frequent first.

import { plural } from "../host/text/plural.js";
import type { ResultRecord } from "../host/wire/record.js";

export function runsSummary(results: ResultRecord[]): string {
  const byCode = new Map<number, number>();
  for (const r of results) if (!r.ok) byCode.set(r.code!, (byCode.get(r.code!) ?? 0) + 1);
  const failed = [...byCode.values()].reduce((a, b) => a + b, 0);
  const codes = [...byCode].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([c, n]) => `${c} ×${n}`).join(", ");
  return `${plural(results.length, "run")}: ${results.length - failed} ok, ${failed} failed${codes ? ` (${codes})` : ""}`;
}

/** The exit status of a finished set of runs: 0 when every run passed, 1 when any failed. */
export function runsStatus(results: ResultRecord[]): 0 | 1 {
  return results.every((r) => r.ok) ? 0 : 1;
}
