// Which probes of a managed fleet run a task (DESIGN.md "Fleet control plane"): a probe gets the
// task when its id is listed in `assign.probes` or its labels include every pair of
// `assign.labels`; a task without `assign` goes to every probe.

import type { TaskSpec } from "./schema.js";

export function isAssigned(assign: TaskSpec["assign"], probe: string, labels: Record<string, string>): boolean {
  if (!assign) return true;
  if (assign.probes?.includes(probe)) return true;
  const wanted = assign.labels;
  return wanted !== undefined && Object.entries(wanted).every(([k, v]) => labels[k] === v);
}
