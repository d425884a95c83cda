// The task file (DESIGN.md "Task file"): its shape, its defaults, and the types the probe uses.
// Unknown fields are errors, so that a typo ("timeout" for "timeoutMs") is not silently ignored.

import { isIP } from "node:net";
import * as z from "../zod.js";
import { ID_PATTERN, ID_RULE } from "../wire/id.js";
import { LIMITS } from "../wire/record.js";

const id = z.string().regex(ID_PATTERN, `must be ${ID_RULE}`);
const labels = (value: z.ZodString) => z.record(z.string().min(1).max(LIMITS.labelKey), value)
  .refine((l) => Object.keys(l).length <= LIMITS.labels, `at most ${LIMITS.labels} labels`);
const ms = (fallback: number) => z.number().int().positive().max(24 * 3600 * 1000).default(fallback);

/** `IP`, `IP:port` or `[IPv6]:port`, as Node's resolver takes them. */
const dnsServer = z.string().refine((s) => {
  if (isIP(s)) return true;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(s);
  return m !== null && isIP(m[1] ?? m[2]) !== 0 && Number(m[3]) >= 1 && Number(m[3]) <= 65535;
}, "must be IP, IP:port or [IPv6]:port");

const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const DNS_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

/** What is wrong with a target host, or null: a DNS name, or an IP literal without brackets or port. */
function hostProblem(host: string): string | null {
  if (!host || isIP(host)) return null; // an empty host is reported by min(1)
  const bracketed = /^\[([^\]]*)\]/.exec(host);
  if (bracketed) return `an IP address without brackets (write "${bracketed[1]}")`;
  const withPort = /^(.+):\d+$/.exec(host);
  if (withPort && (isIP(withPort[1]) || DNS_NAME.test(withPort[1]))) return "a host without a port (the port goes in target.port)";
  return DNS_NAME.test(host) ? null : "a DNS name or an IP address (no scheme, path, port or spaces)";
}

const host = z.string().min(1, "must not be empty").max(253).superRefine((value, ctx) => {
  const problem = hostProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

export const stepSchema = z.strictObject({
  send: z.string().optional(),
  format: z.enum(["text", "buffer"]).optional(),
  verify: z.enum(["none", "full", "prefix", "partial", "md5"]),
  expect: z.string().optional(),
  responseTimeoutMs: ms(5000),
  timeoutMs: ms(10000),
  idleMs: ms(1000),
  maxResponseBytes: z.number().int().positive().max(1 << 30).default(1 << 20),
  starttls: z.boolean().default(false),
}).refine((s) => s.verify === "none" || s.expect !== undefined, {
  message: "is required unless verify is \"none\"", path: ["expect"],
});

export const taskSchema = z.strictObject({
  id,
  target: z.strictObject({
    host,
    port: z.number().int().min(1).max(65535),
    tls: z.boolean().default(false),
    servername: z.string().min(1).optional(),
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    insecure: z.boolean().default(false),
  }),
  format: z.enum(["text", "buffer"]).default("text"),
  dns: z.strictObject({
    servers: z.array(dnsServer).min(1).optional(),
    timeoutMs: ms(5000),
    family: z.union([z.literal(0), z.literal(4), z.literal(6)]).default(0),
  }).default({ timeoutMs: 5000, family: 0 }),
  connectTimeoutMs: ms(5000),
  taskTimeoutMs: ms(30000),
  steps: z.array(stepSchema).min(1, "needs at least one step"),
  count: z.number().int().min(1).max(1_000_000).default(1),
  intervalMs: z.number().int().min(0).max(24 * 3600 * 1000).default(60000),
  // Values may be long: results carry them shortened to LIMITS.labelValue.
  labels: labels(z.string()).optional(),
  /**
   * which probes of a managed fleet run it (DESIGN.md "Fleet control plane"): those listed, and
   * those whose labels include every pair given; absent: every probe
   */
  assign: z.strictObject({
    probes: z.array(id).min(1).max(100_000).optional(),
    labels: labels(z.string().max(LIMITS.labelValue)).optional(),
  }).refine((a) => a.probes !== undefined || a.labels !== undefined, "give probes, labels or both (leave assign out for every probe)").optional(),
}).refine((t) => (t.target.cert === undefined) === (t.target.key === undefined), {
  message: "cert and key go together", path: ["target", "cert"],
});

/** A task as loaded: every default filled in. */
export type TaskSpec = z.output<typeof taskSchema>;
export type StepSpec = TaskSpec["steps"][number];
