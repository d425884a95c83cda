// The alert rules file of `catprobe collector --alerts FILE` (DESIGN.md "Alerts and Prometheus"):
// its shape, its defaults, and its parse. Unknown fields are errors, as in task files; every
// problem names the file, the rule (its name and index), the field and the value.

import * as z from "../../zod.js";
import { ConfigError } from "../../config-error.js";
import { parseJsonText } from "../../json-text.js";
import { describeIssue, MAX_TASK_FILE_BYTES } from "../../task/load.js";
import { readFileSync, statSync } from "node:fs";
import { ID_PATTERN, ID_RULE } from "../../wire/id.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;

/** "30s", "5m", "2h", "7d" (also "500ms") in milliseconds, or null. */
export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text);
  return m && Number(m[1]) > 0 ? Number(m[1]) * UNITS[m[2]] : null;
}

const MAX_DURATION_MS = 400 * UNITS.d;
const duration = (min = 1) => z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: "custom", message: "must be a duration like 30s, 5m, 2h or 7d" });
    return z.NEVER;
  }
  if (ms < min || ms > MAX_DURATION_MS) {
    ctx.addIssue({ code: "custom", message: `must lie between ${min} ms and 400d` });
    return z.NEVER;
  }
  return ms;
});

const id = z.string().regex(ID_PATTERN, `must be ${ID_RULE}`);
const text = (max: number) => z.string().min(1, "must not be empty").max(max);
/** Alertmanager label names: [a-zA-Z_][a-zA-Z0-9_]*. */
const labelName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "must be a label name (A-Z a-z 0-9 _, not starting with a digit)");
const RESERVED = ["alertname", "task", "probe", "code"];

const successRate = z.strictObject({ successRateBelow: z.number().gt(0, "must be above 0").max(1, "must be at most 1") });
const codeCount = z.strictObject({
  code: z.number().int().min(600, "must be one of 600–609").max(609, "must be one of 600–609"),
  countAtLeast: z.number().int().min(1),
});
const offline = z.strictObject({ probeOfflineFor: duration(1000) });
const cert = z.strictObject({ certDaysLeftBelow: z.number().gt(0, "must be above 0").max(3650) });
const KINDS = [["successRateBelow", successRate], ["code", codeCount], ["countAtLeast", codeCount],
  ["probeOfflineFor", offline], ["certDaysLeftBelow", cert]] as const;

/** `when`: exactly one kind of condition, told apart by its keys, each checked strictly. */
const when = z.unknown().transform((value, ctx) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: "custom", message: "must be an object: { \"successRateBelow\" }, { \"code\", \"countAtLeast\" }, { \"probeOfflineFor\" } or { \"certDaysLeftBelow\" }" });
    return z.NEVER;
  }
  const kind = KINDS.find(([key]) => key in value);
  if (!kind) {
    ctx.addIssue({ code: "custom", message: "needs one of successRateBelow, code with countAtLeast, probeOfflineFor, certDaysLeftBelow" });
    return z.NEVER;
  }
  const parsed = kind[1].safeParse(value);
  if (!parsed.success) {
    // Passed on with their own paths (below `when`), so describeIssue names field and value.
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue } as never);
    return z.NEVER;
  }
  return parsed.data as z.output<typeof successRate> | z.output<typeof codeCount> | z.output<typeof offline> | z.output<typeof cert>;
});

const ruleSchema = z.strictObject({
  name: text(200),
  task: id.optional(),
  probe: id.optional(),
  /** `key:value`: the probes whose last reported labels include it */
  label: z.string().regex(/^[^:]+:.*$/, "must look like key:value").max(1100).optional(),
  window: duration(1000).optional(),
  minRuns: z.number().int().min(1).max(1_000_000).optional(),
  when,
  repeatInterval: duration(1000).optional(),
  /** extra labels every alert of the rule carries (severity, team …) */
  labels: z.record(labelName, z.string().max(1024))
    .refine((l) => Object.keys(l).every((k) => !RESERVED.includes(k)), `may not set ${RESERVED.join(", ")} (the rule sets them)`)
    .refine((l) => Object.keys(l).length <= 16, "at most 16 labels").optional(),
  /**
   * summary, description or any other text; {{task}} {{probe}} {{code}} {{value}} {{threshold}}
   * {{window}} {{runs}} are replaced by the alert's figures
   */
  annotations: z.record(labelName, z.string().max(4096))
    .refine((a) => Object.keys(a).length <= 16, "at most 16 annotations").optional(),
});

const webhook = z.string().max(2048).refine((u) => {
  try {
    return ["http:", "https:"].includes(new URL(u).protocol);
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL");

const fileSchema = z.strictObject({
  rules: z.array(ruleSchema).min(1, "needs at least one rule").max(1000),
  webhooks: z.array(webhook).min(1, "needs at least one webhook URL").max(20),
  repeatInterval: duration(1000).default(4 * UNITS.h),
  /** how often the rules are evaluated (default 5s) */
  evaluationInterval: duration(100).default(5000),
  /** the receiver name in notifications (Alertmanager's receiver) */
  receiver: text(200).default("catprobe"),
  /** base of generatorURL and externalURL (default: the collector's own address) */
  externalURL: webhook.optional(),
  delivery: z.strictObject({
    /** POSTs of one notification to one webhook at most, the first included */
    attempts: z.number().int().min(1).max(100).default(12),
    /** wait after the first failure; doubled after each further one */
    backoff: duration(10).default(1000),
    maxBackoff: duration(10).default(5 * UNITS.m),
    timeout: duration(100).default(10_000),
    /** notifications waiting (all webhooks) at most; beyond it the oldest is dropped, counted and logged */
    maxPending: z.number().int().min(1).max(1_000_000).default(10_000),
  }).default({ attempts: 12, backoff: 1000, maxBackoff: 5 * UNITS.m, timeout: 10_000, maxPending: 10_000 }),
});

type RuleInput = z.output<typeof ruleSchema>;
export type Condition = RuleInput["when"];

export interface Rule {
  name: string;
  /** position in the file, from 0 */
  index: number;
  task?: string;
  probe?: string;
  label?: [string, string];
  windowMs: number;
  windowText: string;
  minRuns: number;
  when: Condition;
  repeatIntervalMs: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The shortest alert lease (PostgreSQL, alerts.ts): longer than a POST's default timeout. */
export const LEASE_MS = 30_000;
/** How long the alert lease lasts unrenewed; it is renewed every evaluation interval. */
export const leaseMs = (evaluationIntervalMs: number) => Math.max(LEASE_MS, 3 * evaluationIntervalMs);

export interface Rules {
  file: string;
  rules: Rule[];
  webhooks: string[];
  evaluationIntervalMs: number;
  receiver: string;
  externalURL?: string;
  delivery: { attempts: number; backoffMs: number; maxBackoffMs: number; timeoutMs: number; maxPending: number };
}

/** What a rule's window defaults to: 5m, and a day for certificates (a task may run hourly). */
function defaultWindow(when: Condition): string {
  return "certDaysLeftBelow" in when ? "1d" : "5m";
}

/** "rule \"plant-3 down\" (rules[2])" for a problem at ["rules", 2, …]. */
function describe(issue: z.core.$ZodIssue, json: unknown): string {
  const [first, index] = issue.path;
  const rules = (json as { rules?: unknown[] } | null)?.rules;
  if (first !== "rules" || typeof index !== "number" || !Array.isArray(rules)) return describeIssue(issue, json);
  const rule = rules[index] as { name?: unknown } | undefined;
  const name = typeof rule?.name === "string" && rule.name ? `rule "${rule.name.slice(0, 80)}" (rules[${index}])` : `rules[${index}]`;
  if (issue.path.length === 2) return `${name}: ${describeIssue({ ...issue, path: [] }, rule).replace(/^\(top level\): /, "")}`;
  return `${name}: ${describeIssue({ ...issue, path: issue.path.slice(2) }, rule)}`;
}

/** Parses a rules file's text; a ConfigError names every problem. */
export function parseRules(file: string, text: string): Rules {
  const json = parseJsonText(file, text);
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw ConfigError.in(file, parsed.error.issues.map((i) => describe(i, json)));
  const f = parsed.data;
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const rules = f.rules.map((r: RuleInput, index): Rule => {
    const where = `rule "${r.name.slice(0, 80)}" (rules[${index}])`;
    const other = seen.get(r.name);
    if (other !== undefined) problems.push(`${where}: name: "${r.name}" is already the name of rules[${other}]`);
    seen.set(r.name, index);
    if ("probeOfflineFor" in r.when && r.task !== undefined) {
      problems.push(`${where}: task "${r.task}": a probeOfflineFor rule concerns probes (scope it by probe or label)`);
    }
    if (r.minRuns !== undefined && !("successRateBelow" in r.when)) {
      problems.push(`${where}: minRuns ${r.minRuns}: applies to successRateBelow rules only`);
    }
    const windowText = r.window === undefined ? defaultWindow(r.when) : (json as { rules: { window: string }[] }).rules[index].window;
    const label = r.label === undefined ? undefined : [r.label.slice(0, r.label.indexOf(":")), r.label.slice(r.label.indexOf(":") + 1)] as [string, string];
    return {
      name: r.name, index, task: r.task, probe: r.probe, label,
      windowMs: r.window ?? parseDuration(windowText)!, windowText,
      minRuns: r.minRuns ?? 1, when: r.when, repeatIntervalMs: r.repeatInterval ?? f.repeatInterval,
      labels: r.labels ?? {}, annotations: r.annotations ?? {},
    };
  });
  if (f.delivery.maxBackoff < f.delivery.backoff) {
    problems.push(`delivery.maxBackoff: must be at least delivery.backoff (got ${JSON.stringify((json as { delivery: { maxBackoff: string } }).delivery.maxBackoff)})`);
  }
  // A POST must end before its collector's lease can pass to another (else both send): none
  // starts later than the lease's end less the timeout, and between renewals some must start.
  const maxTimeout = leaseMs(f.evaluationInterval) - f.evaluationInterval;
  if (f.delivery.timeout > maxTimeout) {
    problems.push(`delivery.timeout: must be at most ${maxTimeout} ms, the alert lease (${leaseMs(f.evaluationInterval)} ms) ` +
      `less one evaluationInterval (got ${JSON.stringify((json as { delivery: { timeout: string } }).delivery.timeout)})`);
  }
  if (problems.length) throw ConfigError.in(file, problems);
  return {
    file, rules, webhooks: f.webhooks, evaluationIntervalMs: f.evaluationInterval, receiver: f.receiver,
    externalURL: f.externalURL?.replace(/\/+$/, ""),
    delivery: { attempts: f.delivery.attempts, backoffMs: f.delivery.backoff, maxBackoffMs: f.delivery.maxBackoff,
      timeoutMs: f.delivery.timeout, maxPending: f.delivery.maxPending },
  };
}

/** Reads and parses a rules file (at most the size of a task file, nesting bounded). */
export function loadRules(file: string): Rules {
  let text: string;
  try {
    if (statSync(file).size > MAX_TASK_FILE_BYTES) throw ConfigError.in(file, [`larger than ${MAX_TASK_FILE_BYTES >> 20} MiB, the most a rules file may hold`]);
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw ConfigError.in(file, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseRules(file, text);
}
