// A probe's state on `catprobe/v1/status/{probe}` (DESIGN.md "MQTT"): retained, QoS 1, a JSON
// object republished on any change and at least every STATUS_EVERY_MS while online; the last
// will is the same object with state "offline". Older probes publish the bare strings
// "online" / "offline", which the collector still reads.

import { ID_PATTERN } from "./id.js";
import { LIMITS } from "./record.js";

export const STATUS_EVERY_MS = 60_000;

export interface ProbeStatus {
  v: 1;
  probe: string;
  state: "online" | "offline";
  /** when the probe published it, epoch ms */
  ts: number;
  labels: Record<string, string>;
  /** the config version the probe runs, null when it runs task files (not --managed) or none yet */
  appliedVersion: number | null;
  /** why the last config received was not applied, null when it was */
  configError: string | null;
  /** results waiting in the spool */
  spooled: number;
  /** results the full spool dropped, lifetime */
  dropped: number;
  /** "catprobe/<version>" */
  software: string;
}

/** A status as the collector reads it: the full object, or only the state of an older probe. */
export type ReadStatus = ProbeStatus | { legacy: true; state: "online" | "offline" };

/** The most a status message may hold (labels at their bounds, a config error message). */
export const MAX_STATUS_BYTES = 64 * 1024;

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** Problems with a label set (probe labels, a task's assign.labels), as "what is wrong". */
export function labelsProblem(labels: Record<string, unknown>): string | null {
  const entries = Object.entries(labels);
  if (entries.length > LIMITS.labels) return `at most ${LIMITS.labels} labels`;
  for (const [k, v] of entries) {
    if (k.length < 1 || k.length > LIMITS.labelKey) return `label key ${JSON.stringify(k.slice(0, 80))}: 1–${LIMITS.labelKey} characters`;
    if (typeof v !== "string" || v.length > LIMITS.labelValue) return `label ${JSON.stringify(k)}: the value must be text of at most ${LIMITS.labelValue} characters`;
  }
  return null;
}

/** The status a message on `probe`'s status topic carries, or why it is not one. */
export function parseStatus(probe: string, payload: Buffer): ReadStatus | { error: string } {
  if (payload.length > MAX_STATUS_BYTES) return { error: `larger than ${MAX_STATUS_BYTES} bytes` };
  const text = payload.toString("utf8");
  if (text === "online" || text === "offline") return { legacy: true, state: text };
  let s: Record<string, unknown>;
  try {
    s = JSON.parse(text);
  } catch {
    return { error: "not JSON, nor online/offline" };
  }
  if (typeof s !== "object" || s === null || Array.isArray(s)) return { error: "not an object" };
  if (s.v !== 1) return { error: "v must be 1" };
  if (s.probe !== probe || !ID_PATTERN.test(probe)) return { error: "probe differs from the topic" };
  if (s.state !== "online" && s.state !== "offline") return { error: "state must be online or offline" };
  if (!isCount(s.ts)) return { error: "ts must be epoch milliseconds" };
  if (typeof s.labels !== "object" || s.labels === null || Array.isArray(s.labels)) return { error: "labels must be an object" };
  const labels = labelsProblem(s.labels as Record<string, unknown>);
  if (labels) return { error: labels };
  if (s.appliedVersion !== null && !isCount(s.appliedVersion)) return { error: "appliedVersion must be a version or null" };
  if (s.configError !== null && (typeof s.configError !== "string" || s.configError.length > 4096)) return { error: "configError must be text of at most 4096 characters, or null" };
  if (!isCount(s.spooled) || !isCount(s.dropped)) return { error: "spooled and dropped must be counts" };
  if (typeof s.software !== "string" || s.software.length > 100) return { error: "software must be text of at most 100 characters" };
  return {
    v: 1, probe, state: s.state, ts: s.ts, labels: s.labels as Record<string, string>, appliedVersion: s.appliedVersion as number | null,
    configError: s.configError as string | null, spooled: s.spooled, dropped: s.dropped, software: s.software,
  };
}
