// `catprobe lab <scenario.json> [--keep] [--json] …`: runs a lab scenario and checks the
// collector's statistics against the faults it injected. `catprobe lab serve <fault>` starts
// one fault server and prints where it listens.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LAB_SERVER_NAMES, createLabPki } from "../../simulator/certs.js";
import { FAULTS, FAULT_NAMES, type FaultName, startFault, trustsLabCa } from "../../simulator/faults.js";
import { runLab, type LabReport } from "../../simulator/lab.js";
import { progressPrinter } from "../../simulator/progress.js";
import { loadScenario } from "../../simulator/scenario.js";
import type { TopErrors } from "../../host/collector/stats.js";
import { plural } from "../../host/text/plural.js";
import { UsageError } from "../usage-error.js";

const tick = (ok: boolean) => (ok ? "✓" : "✗ DIFFERS");

function printReport(r: LabReport): void {
  const secs = (r.durationMs / 1000).toFixed(1);
  console.log(`\n${r.scenario}: ${plural(r.runs, "run")} in ${secs} s`);
  console.log(`faults injected: ${Object.entries(r.injected).sort((a, b) => b[1] - a[1]).map(([f, n]) => `${f} ${n}`).join(", ")}\n`);
  const rows = new Map<number, { def: string; truth: number; seen: number }>();
  const add = (t: TopErrors, key: "truth" | "seen") => {
    for (const e of t.top) {
      const row = rows.get(e.code) ?? { def: e.definition, truth: 0, seen: 0 };
      row[key] = e.count;
      rows.set(e.code, row);
    }
  };
  add(r.truth, "truth");
  add(r.collector, "seen");
  console.log(`  ${"top five error types".padEnd(62)}${"injected".padStart(12)}${"collector".padStart(12)}`);
  for (const [code, row] of [...rows].sort((a, b) => b[1].truth - a[1].truth || a[0] - b[0])) {
    console.log(`  ${code}  ${row.def.padEnd(57)}${String(row.truth).padStart(12)}${String(row.seen).padStart(12)}  ${tick(row.truth === row.seen)}`);
  }
  const totals = (t: TopErrors) => `${t.total} / ${t.failed}`;
  const totalsOk = r.truth.total === r.collector.total && r.truth.failed === r.collector.failed;
  console.log(`  ${"results / failed".padEnd(62)}${totals(r.truth).padStart(12)}${totals(r.collector).padStart(12)}  ${tick(totalsOk)}`);
  console.log(`  every run reported its fault's code: ${r.mismatchCount === 0 ? "✓" : `✗ ${plural(r.mismatchCount, "run")} did not`}`);
  for (const m of r.mismatches.slice(0, 10)) {
    console.log(`    ${m.id}: ${m.fault} should give ${m.expected ?? "success"}, got ${m.got ?? "success"} (${m.message})`);
  }
  for (const v of r.versions ?? []) {
    const what = (["added", "changed", "removed"] as const).filter((k) => v[k].length).map((k) => `${k} ${v[k].join(", ")}`).join("; ");
    console.log(`  task set version ${v.version} at ${(v.atMs / 1000).toFixed(1)} s (${what || "no change"}): ` +
      (v.appliedInMs === null ? "✗ NOT applied by every probe within a minute" : `every probe on it within ${v.appliedInMs} ms`));
  }
  console.log(`\nmemory per virtual probe: ${r.memoryPerProbeKiB} KiB`);
  console.log(r.identical ? "the collector's statistics match the ground truth" : "THE COLLECTOR'S STATISTICS DIFFER FROM THE GROUND TRUTH");
}

function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
}

/** Writes the lab CA where a client can be pointed at it; returns its dir and file. */
function writeCa(pem: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "catprobe-serve-"));
  const file = join(dir, "lab-ca.pem");
  writeFileSync(file, pem);
  return { dir, file };
}

async function serve(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || !FAULT_NAMES.includes(name as FaultName)) {
    throw new UsageError(`lab serve takes a fault: ${FAULT_NAMES.join(", ")}`);
  }
  const { values } = parseArgs({ args: rest, options: { reply: { type: "string", default: "+PONG\r\n" } } });
  const pki = createLabPki();
  const running = await startFault(name as FaultName, values.reply!, pki);
  const t = running.target;
  console.log(`${name} (${FAULTS[name as FaultName].describe}) at ${t.host}:${t.port}${t.tls ? " (TLS)" : ""}` +
    (t.dns ? " — a DNS fault: point a task's dns.servers at a lab DNS server" : ""));
  // A TLS fault is only useful to a client that can trust the lab CA and knows the names it vouches for.
  const ca = trustsLabCa(name as FaultName) ? writeCa(pki.ca.cert) : null;
  if (ca) {
    console.log(`  lab CA: ${ca.file}  (a task's target.ca, or curl --cacert)`);
    console.log(`  certificate names: ${LAB_SERVER_NAMES.join(", ")}  (a task's target.servername)`);
  }
  await untilStopped();
  await running.close();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
  return 0;
}

export async function lab(args: string[]): Promise<number> {
  if (args[0] === "serve") return serve(args.slice(1));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      keep: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      http: { type: "string", default: "127.0.0.1:0" },
      "mqtt-listen": { type: "string", default: "127.0.0.1:0" },
      db: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("lab takes one scenario file (or: lab serve <fault>)");
  const scenario = loadScenario(positionals[0]);
  if (!values.json) {
    const length = scenario.runs !== undefined ? plural(scenario.runs, "run") : `${scenario.durationMs! / 1000} s`;
    const fleet = scenario.managed ? plural(scenario.fleet.count, "managed virtual probe") : plural(scenario.fleet.count, "virtual probe");
    console.log(`catprobe lab — ${scenario.name}: ${fleet} × ${plural(scenario.tasks.length, "task")} × ` +
      `${length}, fault servers on loopback, collector ${scenario.broker ? `via ${scenario.broker}` : "on an embedded broker"}` +
      (scenario.changes?.length ? `, the task set changed ${plural(scenario.changes.length, "time")} while it runs` : ""));
    if (scenario.description) console.log(scenario.description);
  }
  const progress = values.json ? null : progressPrinter();
  // Ctrl-C mid-run ends the process at once; the lab removes its temp dir on the way out.
  const interrupted = () => process.exit(130);
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  const result = await runLab(scenario, {
    http: values.http, mqttListen: values["mqtt-listen"], db: values.db, keepDir: values.keep,
    onProgress: (p) => progress?.update(p),
  }).finally(() => {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  });
  progress?.end();
  const { report } = result;
  if (values.json) console.log(JSON.stringify(report));
  else printReport(report);
  if (values.keep) {
    console.log(`\ndashboard: ${report.httpUrl}/  (Ctrl-C to stop; the lab's files stay in ${result.dir})`);
    await untilStopped();
  } else if (!values.json) {
    console.log(`dashboard was at ${report.httpUrl}/ — run with --keep to keep it serving`);
  }
  await result.close();
  return report.identical ? 0 : 1;
}
