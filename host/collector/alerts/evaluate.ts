// One evaluation of the alert rules: for each rule, the alert instances whose condition holds
// now (one per task and probe it concerns; one per probe for probeOfflineFor), with their
// labels and annotations (summary, description with the figures). It reads the stored results
// and probe states through a small AlertSource (source.ts implements it on SqlDb), so that it
// holds no SQL of its own.

import { createHash } from "node:crypto";
import { errorCodeInfo, type ErrorCode } from "../../codes.js";
import type { TlsFacts } from "../../wire/record.js";
import { STATUS_EVERY_MS } from "../../wire/status.js";
import type { Rule } from "./rules.js";

export interface Scope {
  task?: string;
  probe?: string;
}

export interface CountRow {
  task: string;
  probe: string;
  /** 0 for success */
  code: number;
  n: number;
}

export interface ProbeRow {
  probe: string;
  state: "online" | "offline";
  labels: Record<string, string>;
  /** epoch ms */
  lastSeen: number;
}

export interface TlsRow {
  task: string;
  probe: string;
  ts: number;
  tls: TlsFacts;
}

/** What the evaluator reads. Windows are [from, to) in epoch ms. */
export interface AlertSource {
  /** results per task, probe and code in the window, exact */
  counts(from: number, to: number, scope: Scope): Promise<CountRow[]>;
  /** every probe's last reported state */
  probes(): Promise<ProbeRow[]>;
  /** the newest TLS facts per task and probe in the window */
  latestTls(from: number, to: number, scope: Scope): Promise<TlsRow[]>;
}

/** An alert instance whose condition holds. */
export interface Instance {
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Alertmanager's fingerprint: a hash of the label set, 16 hex digits. */
export function fingerprint(labels: Record<string, string>): string {
  const sorted = Object.keys(labels).sort().map((k) => [k, labels[k]]);
  return createHash("sha256").update(JSON.stringify(sorted)).digest("hex").slice(0, 16);
}

const DAY_MS = 86_400_000;
/** A probe still "online" but silent this long past its offline duration is offline too (a half-open connection). */
const SILENT_MS = 3 * STATUS_EVERY_MS;

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
const iso = (ms: number) => new Date(ms).toISOString();

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (all, key: string) => values[key] ?? all);
}

function instance(rule: Rule, labels: Record<string, string>, generated: { summary: string; description: string },
  values: Record<string, string>): Instance {
  const all = { alertname: rule.name, ...rule.labels, ...labels };
  const annotations: Record<string, string> = { ...generated };
  const figures = { ...values, task: labels.task ?? "", probe: labels.probe ?? "", code: labels.code ?? "" };
  for (const [k, v] of Object.entries(rule.annotations)) annotations[k] = fill(v, figures);
  return { fingerprint: fingerprint(all), labels: all, annotations };
}

/** The probes a label scope admits, or undefined without one. */
async function labelled(rule: Rule, source: AlertSource, probes?: ProbeRow[]): Promise<Set<string> | undefined> {
  if (!rule.label) return undefined;
  const [key, value] = rule.label;
  return new Set((probes ?? await source.probes()).filter((p) => p.labels[key] === value).map((p) => p.probe));
}

const scopeOf = (rule: Rule): Scope => ({ task: rule.task, probe: rule.probe });

/** The instances of one rule whose condition holds at `now`. */
export async function evaluateRule(rule: Rule, source: AlertSource, now: number): Promise<Instance[]> {
  const when = rule.when;
  const out: Instance[] = [];
  if ("probeOfflineFor" in when) {
    const probes = await source.probes();
    const admitted = await labelled(rule, source, probes);
    for (const p of probes) {
      if (rule.probe && p.probe !== rule.probe) continue;
      if (admitted && !admitted.has(p.probe)) continue;
      const silentFor = now - p.lastSeen;
      const holds = p.state === "offline" ? silentFor >= when.probeOfflineFor : silentFor >= when.probeOfflineFor + SILENT_MS;
      if (!holds) continue;
      const how = p.state === "offline" ? `offline since ${iso(p.lastSeen)}` : `online but silent since ${iso(p.lastSeen)}`;
      const minutes = Math.floor(silentFor / 60_000);
      out.push(instance(rule, { probe: p.probe }, {
        summary: `probe ${p.probe} offline for ${minutes >= 1 ? `${minutes} min` : `${Math.floor(silentFor / 1000)} s`}`,
        description: `probe ${p.probe} is ${how} (rule: offline for ${fmtMs(when.probeOfflineFor)} or longer)`,
      }, { value: String(Math.floor(silentFor / 1000)), threshold: fmtMs(when.probeOfflineFor), window: rule.windowText, runs: "" }));
    }
    return out;
  }
  const from = now - rule.windowMs;
  if ("certDaysLeftBelow" in when) {
    const admitted = await labelled(rule, source);
    for (const r of await source.latestTls(from, now, scopeOf(rule))) {
      if (admitted && !admitted.has(r.probe)) continue;
      const notAfter = r.tls.notAfter ? Date.parse(r.tls.notAfter) : NaN;
      // From notAfter when the record has it: daysLeft was counted at the run.
      const days = Number.isFinite(notAfter) ? (notAfter - now) / DAY_MS : r.tls.daysLeft;
      if (days === null || !(days < when.certDaysLeftBelow)) continue;
      const shown = Math.floor(days * 10) / 10;
      const expiry = Number.isFinite(notAfter) ? `expires ${iso(notAfter)}` : "expiry date not reported";
      out.push(instance(rule, { task: r.task, probe: r.probe }, {
        summary: days < 0 ? `${r.task} on ${r.probe}: certificate expired ${-shown} days ago`
          : `${r.task} on ${r.probe}: certificate expires in ${shown} days`,
        description: `the certificate ${r.tls.subject ? `of ${r.tls.subject} ` : ""}${r.tls.issuer ? `(issuer ${r.tls.issuer}) ` : ""}` +
          `seen by ${r.probe} at ${iso(r.ts)} ${expiry}: ${shown} days left, below ${when.certDaysLeftBelow}`,
      }, { value: String(shown), threshold: String(when.certDaysLeftBelow), window: rule.windowText, runs: "" }));
    }
    return out;
  }
  const admitted = await labelled(rule, source);
  const groups = new Map<string, { task: string; probe: string; total: number; byCode: Map<number, number> }>();
  for (const row of await source.counts(from, now, scopeOf(rule))) {
    if (admitted && !admitted.has(row.probe)) continue;
    const key = `${row.task}\u0000${row.probe}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { task: row.task, probe: row.probe, total: 0, byCode: new Map() }));
    g.total += row.n;
    if (row.code !== 0) g.byCode.set(row.code, (g.byCode.get(row.code) ?? 0) + row.n);
  }
  for (const g of groups.values()) {
    const failed = [...g.byCode.values()].reduce((a, b) => a + b, 0);
    const ok = g.total - failed;
    if ("successRateBelow" in when) {
      if (g.total < rule.minRuns) continue;
      const rate = ok / g.total;
      if (!(rate < when.successRateBelow)) continue;
      const top = [...g.byCode].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
      const topText = top ? `; most frequent failure ${top[0]} ${definition(top[0])} (${top[1]} runs)` : "";
      out.push(instance(rule, { task: g.task, probe: g.probe }, {
        summary: `${g.task} on ${g.probe}: success rate ${pct(rate)} below ${pct(when.successRateBelow)}`,
        description: `${ok} of ${g.total} runs succeeded in the last ${rule.windowText} (success rate ${round4(rate)}, ` +
          `threshold ${when.successRateBelow}${rule.minRuns > 1 ? `, at least ${rule.minRuns} runs` : ""})${topText}`,
      }, { value: String(round4(rate)), threshold: String(when.successRateBelow), window: rule.windowText, runs: String(g.total) }));
    } else {
      const n = g.byCode.get(when.code) ?? 0;
      if (n < when.countAtLeast) continue;
      out.push(instance(rule, { task: g.task, probe: g.probe, code: String(when.code) }, {
        summary: `${g.task} on ${g.probe}: ${n} × ${when.code} ${definition(when.code)} in ${rule.windowText}`,
        description: `${n} of ${g.total} runs failed with ${when.code} (${definition(when.code)}) in the last ${rule.windowText} ` +
          `(at least ${when.countAtLeast} fire the rule)`,
      }, { value: String(n), threshold: String(when.countAtLeast), window: rule.windowText, runs: String(g.total) }));
    }
  }
  return out;
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

function definition(code: number): string {
  try {
    return errorCodeInfo(code as ErrorCode).definition;
  } catch {
    return "";
  }
}

/** 120000 → "2m", 90000 → "90s". */
export function fmtMs(ms: number): string {
  for (const [unit, size] of [["d", DAY_MS], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
