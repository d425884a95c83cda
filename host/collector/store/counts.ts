// The minute and hour counts of newly stored results, counted per batch first: a burst of
// results shares few (minute, task, probe, code) keys. Keys come out sorted, so that two
// collectors adding to the same counts at once take their row locks in one order.

import type { StoredRecord } from "../../wire/record.js";

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

export type MinuteCount = [minute: number, task: string, probe: string, code: number, n: number];
export type HourCount = [hour: number, task: string, code: number, n: number];

const byKey = (a: (string | number)[], b: (string | number)[]) => {
  for (let i = 0; i < a.length - 1; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
};

/** The counts `added` (results not stored before) add, code 0 for successes. */
export function countsOf(added: readonly StoredRecord[]): { minutes: MinuteCount[]; hours: HourCount[] } {
  const minutes = new Map<string, MinuteCount>();
  const hours = new Map<string, HourCount>();
  for (const r of added) {
    const minute = Math.floor(r.ts / MINUTE_MS);
    const hour = Math.floor(r.ts / HOUR_MS);
    const code = r.code ?? 0;
    const mKey = `${minute}/${r.task}/${r.probe}/${code}`;
    const m = minutes.get(mKey);
    if (m) m[4]++;
    else minutes.set(mKey, [minute, r.task, r.probe, code, 1]);
    const hKey = `${hour}/${r.task}/${code}`;
    const h = hours.get(hKey);
    if (h) h[3]++;
    else hours.set(hKey, [hour, r.task, code, 1]);
  }
  return { minutes: [...minutes.values()].sort(byKey), hours: [...hours.values()].sort(byKey) };
}
