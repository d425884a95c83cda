// GET /probe?module=<task id>&target=<host:port>: blackbox_exporter's probe endpoint
// (prober/handler.go), its checks in its order and with its answers: the module (default
// "http_2xx", as in blackbox) must exist (400 `Unknown module "…"`), the scrape timeout header
// must be a number (500), the target must be given (400 `Target parameter is missing`). Then,
// where blackbox would run the probe and report a failure, catprobe answers a target that is
// no host a task file could name with a 400 that says why. `debug=true` answers the probe's
// log, the metrics and the module's task as text, as blackbox does.

import type { CorePool } from "../core/pool.js";
import { runTask, type RunnableTask } from "../probe/runner.js";
import type { Semaphore } from "../probe/semaphore.js";
import type { ResultRecord } from "../wire/record.js";
import { goFloat } from "./go-float.js";
import { goQuote } from "./go-quote.js";
import { metricsText, TEXT_CONTENT_TYPE } from "./metrics-text.js";
import type { Modules } from "./modules.js";
import { probeFamilies } from "./probe-metrics.js";
import { probeTask } from "./probe-task.js";
import type { ExporterMetrics } from "./self-metrics.js";
import { parseTarget, TargetError } from "./target.js";
import { DEFAULT_TIMEOUT_OFFSET_S, probeBudgetMs, SCRAPE_TIMEOUT_HEADER, TimeoutHeaderError } from "./timeout.js";

export const DEFAULT_MODULE = "http_2xx";

export interface ProbeContext {
  modules: Modules;
  pool: CorePool;
  slots: Semaphore;
  metrics: ExporterMetrics;
  /** blackbox's --timeout-offset */
  timeoutOffsetS?: number;
  /** the probe id in result records (and debug logs) */
  probe: string;
}

export interface Answer {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

/** http.Error's answer: the message and a newline, as plain text. */
const error = (status: number, message: string, headers?: Record<string, string>): Answer =>
  ({ status, contentType: "text/plain; charset=utf-8", body: `${message}\n`, headers });

/** A logfmt value: bare when it can be, else quoted. */
const logValue = (v: string | number) => (typeof v === "number" || /^[^\s"=]+$/.test(v) ? String(v) : JSON.stringify(v));
const logLine = (fields: Record<string, string | number>) =>
  Object.entries(fields).map(([k, v]) => `${k}=${logValue(v)}`).join(" ");

function debugText(r: ResultRecord, task: RunnableTask, module: string, target: string, budgetMs: number, metrics: string): string {
  const base = { module, target };
  const logs = [
    logLine({ ts: new Date(r.ts).toISOString(), ...base, level: "info", msg: "Beginning probe", probe: "catprobe", timeout_seconds: goFloat(budgetMs / 1000) }),
    ...(r.address ? [logLine({ ts: new Date(r.ts).toISOString(), ...base, level: "info", msg: "Resolved target address", ip: r.address })] : []),
    logLine({
      ts: new Date(r.ts + r.timings.totalMs).toISOString(), ...base,
      ...(r.ok ? { level: "info", msg: "Probe succeeded" }
        : { level: "error", msg: "Probe failed", code: r.code!, step: r.step ?? -1, err: r.message ?? "" }),
      duration_seconds: goFloat(r.timings.totalMs / 1000),
    }),
  ];
  return `Logs for the probe:\n${logs.join("\n")}\n\n\n\nMetrics that would have been returned:\n${metrics}\n\n\n` +
    `Module configuration (the task as run):\n${JSON.stringify(task.spec, null, 2)}\n`;
}

export async function handleProbe(query: URLSearchParams, headers: Record<string, string | string[] | undefined>, ctx: ProbeContext): Promise<Answer> {
  const module = query.get("module") || DEFAULT_MODULE;
  const base = ctx.modules.get(module);
  if (!base) {
    ctx.metrics.refuse("unknown_module");
    return error(400, `Unknown module ${goQuote(module)}`);
  }
  let budgetMs: number;
  try {
    const header = headers[SCRAPE_TIMEOUT_HEADER];
    budgetMs = probeBudgetMs(Array.isArray(header) ? header[0] : header, ctx.timeoutOffsetS ?? DEFAULT_TIMEOUT_OFFSET_S);
  } catch (err) {
    if (!(err instanceof TimeoutHeaderError)) throw err;
    ctx.metrics.refuse("bad_timeout");
    return error(500, `Failed to parse timeout from Prometheus header: ${err.message}`);
  }
  const targetText = query.get("target");
  if (!targetText) {
    ctx.metrics.refuse("missing_target");
    return error(400, "Target parameter is missing");
  }
  let task: RunnableTask;
  try {
    task = probeTask(base, parseTarget(targetText), budgetMs);
  } catch (err) {
    if (!(err instanceof TargetError)) throw err;
    ctx.metrics.refuse("bad_target");
    return error(400, `Invalid target: ${err.message}`);
  }
  // Over the cap the answer is at once: waiting would spend the scrape's own time budget.
  if (!ctx.slots.tryAcquire()) {
    ctx.metrics.refuse("busy");
    return error(503, `Too many probes in flight (the --concurrency cap is ${ctx.metrics.concurrency}); try again later`, { "retry-after": "1" });
  }
  ctx.metrics.inFlight++;
  let record: ResultRecord;
  try {
    record = await runTask(task, { probe: ctx.probe, pool: ctx.pool, run: 0 });
  } finally {
    ctx.metrics.inFlight--;
    ctx.slots.release();
  }
  ctx.metrics.probed(module, record.ok);
  const metrics = metricsText(probeFamilies(record));
  if (query.get("debug") === "true") {
    return { status: 200, contentType: "text/plain; charset=utf-8", body: debugText(record, task, module, targetText, budgetMs, metrics) };
  }
  return { status: 200, contentType: TEXT_CONTENT_TYPE, body: metrics };
}
