// One probe request's task: the module's task pointed at the request's target, every time limit
// no longer than the request's budget. The task's data was converted and checked by the core
// once, at load; only its target and limits change per request.

import type { RunnableTask } from "../probe/runner.js";
import type { ProbeTarget } from "./target.js";

export function probeTask(base: RunnableTask, target: ProbeTarget, budgetMs: number): RunnableTask {
  const cap = (ms: number) => Math.min(ms, budgetMs);
  const s = base.spec;
  return {
    ...base,
    spec: {
      ...s,
      // servername stays the task's when it names one; else the handshake checks the new host
      target: { ...s.target, host: target.host, port: target.port ?? s.target.port },
      dns: { ...s.dns, timeoutMs: cap(s.dns.timeoutMs) },
      connectTimeoutMs: cap(s.connectTimeoutMs),
      taskTimeoutMs: cap(s.taskTimeoutMs),
      steps: s.steps.map((step) => ({ ...step, responseTimeoutMs: cap(step.responseTimeoutMs), timeoutMs: cap(step.timeoutMs) })),
      count: 1,
    },
    steps: base.steps.map((step) => ({ ...step, responseTimeoutMs: cap(step.responseTimeoutMs), timeoutMs: cap(step.timeoutMs) })),
  };
}
