// Prometheus metrics of one collector (its own registry, so several can run in one process).
// Label sets are bounded: codes and reasons are fixed lists, tasks are capped.

import { Counter, Histogram, Registry } from "prom-client";
import type { StoredRecord } from "../wire/record.js";
import { REJECT_REASONS, type RejectReason } from "../wire/validate.js";
import { DENY_REASONS, type DenyReason } from "./broker-access.js";

/** Distinct task label values at most; later tasks are counted under "_other". */
const MAX_TASK_LABELS = 500;

export class CollectorMetrics {
  readonly registry = new Registry();
  private readonly tasks = new Set<string>();
  private readonly results = new Counter({
    name: "catprobe_results_total", help: "Results stored, by task and code (ok for success)",
    labelNames: ["task", "code"], registers: [this.registry],
  });
  private readonly duplicates = new Counter({
    name: "catprobe_duplicate_results_total", help: "Results received again (QoS 1 re-delivery) and ignored",
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: "catprobe_rejected_total", help: "Rejected messages or batch entries, by reason",
    labelNames: ["reason"], registers: [this.registry],
  });
  private readonly lag = new Histogram({
    name: "catprobe_ingest_lag_seconds", help: "Time from a run's start to its result being stored",
    buckets: [0.05, 0.25, 1, 5, 30, 120, 600, 3600, 86400], registers: [this.registry],
  });
  private readonly dropped = new Counter({
    name: "catprobe_probe_dropped_results_total", help: "Results probes reported dropping from a full spool",
    registers: [this.registry],
  });

  private readonly denied = new Counter({
    name: "catprobe_broker_denied_total", help: "Connections, publishes and subscriptions the embedded broker refused, by reason",
    labelNames: ["reason"], registers: [this.registry],
  });

  constructor() {
    for (const reason of REJECT_REASONS) this.rejected.inc({ reason }, 0);
    for (const reason of DENY_REASONS) this.denied.inc({ reason }, 0);
    this.duplicates.inc(0);
  }

  /** Counts a committed batch: one increment per task and code, one lag sample per result. */
  storedBatch(records: StoredRecord[], now: number): void {
    const byKey = new Map<string, { task: string; code: string; n: number }>();
    for (const record of records) {
      const task = this.taskLabel(record.task);
      const code = record.code === null ? "ok" : String(record.code);
      const key = `${task}/${code}`;
      const entry = byKey.get(key);
      if (entry) entry.n++;
      else byKey.set(key, { task, code, n: 1 });
      this.lag.observe(Math.max(0, (now - record.ts) / 1000));
    }
    for (const { task, code, n } of byKey.values()) this.results.inc({ task, code }, n);
  }

  private taskLabel(task: string): string {
    if (this.tasks.has(task)) return task;
    if (this.tasks.size >= MAX_TASK_LABELS) return "_other";
    this.tasks.add(task);
    return task;
  }

  duplicate(n: number): void {
    this.duplicates.inc(n);
  }

  reject(reason: RejectReason): void {
    this.rejected.inc({ reason });
  }

  /** `n`: how much a probe's reported running total grew. */
  droppedByProbes(n: number): void {
    if (n > 0) this.dropped.inc(n);
  }

  deny(reason: DenyReason): void {
    this.denied.inc({ reason });
  }

  async rejectedCount(reason: RejectReason): Promise<number> {
    return count(this.rejected, reason);
  }

  async deniedCount(reason: DenyReason): Promise<number> {
    return count(this.denied, reason);
  }
}

async function count(counter: Counter<"reason">, reason: string): Promise<number> {
  const m = await counter.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}
