// The probe's status object (DESIGN.md "MQTT", ProbeStatus in host/wire/status.ts), as the
// publisher sends it on the status topic and leaves it as its last will.

import { readFileSync } from "node:fs";
import type { ProbeStatus } from "../wire/status.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

/** What the status says the probe runs: "catprobe/<package.json version>". */
export const SOFTWARE = `catprobe/${pkg.version}`;

/**
 * The fields of a status beside its state, time and spool counts: a change of one of them is
 * published at once (the counts change with every result, and go out with the periodic status).
 */
export interface StatusFields {
  labels: Record<string, string>;
  appliedVersion: number | null;
  configError: string | null;
}

export function sameFields(a: StatusFields, b: StatusFields): boolean {
  return a.appliedVersion === b.appliedVersion && a.configError === b.configError &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels);
}

export function probeStatus(probe: string, state: ProbeStatus["state"], fields: StatusFields,
  counts: { spooled: number; dropped: number }): ProbeStatus {
  return { v: 1, probe, state, ts: Date.now(), ...fields, ...counts, software: SOFTWARE };
}
