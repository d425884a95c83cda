// `catprobe probes [--json]` (DESIGN.md "Fleet control plane"): each probe a collector knows,
// with its state, labels, desired and applied config version, errors and backlog.

import { parseArgs } from "node:util";
import { COLLECTOR_OPTIONS, collectorGet } from "../collector-api.js";

interface ProbeRow {
  probe: string; state: string; lastSeen: number; labels: Record<string, string>; desiredVersion: number;
  appliedVersion: number | null; configError: string | null; spooled: number | null; dropped: number | null;
}

/** "4s", "12m", "3h", "2d": how long ago. */
function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
}

/** "3/3", or "2/3 !" when the probe runs an older version or reports an error. */
function versions(p: ProbeRow): string {
  const applied = p.appliedVersion === null ? "-" : String(p.appliedVersion);
  const behind = p.appliedVersion !== p.desiredVersion || p.configError !== null;
  return `${applied}/${p.desiredVersion}${behind ? " !" : ""}`;
}

export async function probes(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...COLLECTOR_OPTIONS, json: { type: "boolean", default: false } } });
  const rows = await collectorGet(values, "/api/probes") as ProbeRow[];
  if (values.json) {
    console.log(JSON.stringify(rows));
    return 0;
  }
  if (rows.length === 0) {
    console.log("no probes have reported to this collector");
    return 0;
  }
  const now = Date.now();
  console.log(`${"PROBE".padEnd(20)}${"STATE".padEnd(9)}${"SEEN".padStart(6)}  ${"VERSION".padEnd(10)}${"SPOOLED".padStart(8)}${"DROPPED".padStart(8)}  LABELS`);
  for (const p of rows) {
    const labels = Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(", ");
    console.log(`${p.probe.padEnd(20)}${p.state.padEnd(9)}${age(now - p.lastSeen).padStart(6)}  ${versions(p).padEnd(10)}` +
      `${String(p.spooled ?? "-").padStart(8)}${String(p.dropped ?? "-").padStart(8)}  ${labels}`);
    if (p.configError) console.log(`  config error: ${p.configError}`);
  }
  return 0;
}
