// The fault catalogue itself: it covers every code, its timing follows from the lab's limits,
// and the faults that need no lab around them give their code to the real runner directly.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../host/codes.js";
import { CorePool } from "../../host/core/pool.js";
import { makeRunnable, runTask } from "../../host/probe/runner.js";
import { parseTask } from "../../host/task/load.js";
import {
  FAULTS, FAULT_NAMES, LAB_LIMITS, SEND_RESET_BYTES, SLOW_ANSWER_MS, SLOW_DIALOG_STEPS, SLOW_GAP_MS,
  faultCode, faultSteps, startFault, type FaultName, type LabTaskShape,
} from "../../simulator/faults.js";
import { loadScenario } from "../../simulator/scenario.js";
import { startTcpFault } from "../../simulator/servers/tcp.js";

const PING: LabTaskShape = { send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n" };
const pool = new CorePool();

/** A task with the lab's limits and `fault`'s steps (as simulator/lab.ts builds it), against host:port. */
function taskFor(fault: FaultName, host: string, port: number) {
  const limits = { responseTimeoutMs: LAB_LIMITS.responseTimeoutMs, timeoutMs: LAB_LIMITS.stepTimeoutMs, idleMs: LAB_LIMITS.idleMs };
  const steps = faultSteps(fault, PING) ?? [{ send: PING.send, verify: "partial", expect: PING.expect }];
  const spec = parseTask(fault, JSON.stringify({
    id: fault, target: { host, port }, connectTimeoutMs: LAB_LIMITS.connectTimeoutMs, taskTimeoutMs: LAB_LIMITS.taskTimeoutMs,
    steps: steps.map((step) => ({ ...limits, ...step })),
  }));
  return makeRunnable({ file: fault, spec }, pool);
}

/** The largest of a whitespace-separated list of numbers in a /proc file, or 0 where there is none. */
function procMax(file: string): number {
  try {
    return Math.max(...readFileSync(file, "utf8").trim().split(/\s+/).map(Number));
  } catch {
    return 0;
  }
}

describe("the fault catalogue", () => {
  it("has a fault for every code of host/codes.ts, and for success; no other codes", () => {
    const codes = new Set(FAULT_NAMES.map(faultCode));
    for (const { code } of ERROR_CODES) expect(codes.has(code), `a fault with code ${code}`).toBe(true);
    expect(codes.has(null)).toBe(true);
    expect(codes.size).toBe(ERROR_CODES.length + 1);
  });

  it("a shipped scenario runs every code, and every shipped scenario loads", () => {
    const dir = join(import.meta.dirname, "../../simulator/scenarios");
    const scenarios = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => loadScenario(join(dir, f)));
    const codesOf = (s: (typeof scenarios)[number]) =>
      new Set(s.tasks.flatMap((t) => Object.entries(t.faults).filter(([, w]) => (w ?? 0) > 0).map(([f]) => faultCode(f as FaultName))));
    const everyCode = scenarios.find((s) => s.name === "every-code")!;
    expect([...codesOf(everyCode)].sort()).toEqual([...ERROR_CODES.map((c) => c.code), null].sort());
    // buffer mode runs in what `npm start` runs
    expect(scenarios.find((s) => s.name === "default")!.tasks.some((t) => (t.faults["ok-buffer"] ?? 0) > 0)).toBe(true);
  });

  it("ok-buffer sends and expects, as hex, exactly the bytes of the task's text", () => {
    const [step] = faultSteps("ok-buffer", PING)!;
    expect(step.format).toBe("buffer");
    const bytes = (hex: unknown) => Buffer.from(String(hex).replace(/\s+/g, ""), "hex");
    expect(bytes(step.send).toString()).toBe(PING.send);
    expect(bytes(step.expect).toString()).toBe(PING.expect);
  });

  it("send-reset's send is more than both sockets of a connection can hold on this machine", () => {
    // Linux: the receiver's buffer grows to tcp_rmem's maximum at most (or twice rmem_max when set
    // by setsockopt), the sender's to tcp_wmem's (2 × wmem_max): all of it cannot be accepted.
    const receive = Math.max(procMax("/proc/sys/net/ipv4/tcp_rmem"), 2 * procMax("/proc/sys/net/core/rmem_max"));
    const send = Math.max(procMax("/proc/sys/net/ipv4/tcp_wmem"), 2 * procMax("/proc/sys/net/core/wmem_max"));
    expect(SEND_RESET_BYTES).toBeGreaterThan(receive + send);
    const [step] = faultSteps("send-reset", PING)!;
    expect(Buffer.byteLength(String(step.send))).toBeGreaterThanOrEqual(SEND_RESET_BYTES);
  });

  it("slow-dialog's timing follows from the lab's limits: no step can fail, the task limit must", () => {
    // each answer a second inside the step limit, its bytes far inside the response and idle limits
    expect(SLOW_ANSWER_MS).toBeLessThanOrEqual(LAB_LIMITS.stepTimeoutMs - 1000);
    expect(SLOW_GAP_MS).toBeLessThanOrEqual(LAB_LIMITS.idleMs / 5);
    expect(SLOW_GAP_MS).toBeLessThanOrEqual(LAB_LIMITS.responseTimeoutMs / 5);
    // all the answers together two seconds or more beyond the task limit
    expect(SLOW_DIALOG_STEPS * SLOW_ANSWER_MS).toBeGreaterThanOrEqual(LAB_LIMITS.taskTimeoutMs + 2000);
    // and no step's own limit can pass before the task's: the step under way when the task limit
    // passes started at most one answer earlier, and its limit is a second past its answer
    expect(SLOW_ANSWER_MS + 1000).toBeLessThanOrEqual(LAB_LIMITS.stepTimeoutMs);
    expect(faultSteps("slow-dialog", PING)).toHaveLength(SLOW_DIALOG_STEPS);
  });

  // The runner on its own, no fleet: invalid data never reaches a socket, even with a server there.
  it.each(["bad-send-hex", "bad-verify-hex", "bad-md5"] as FaultName[])("%s: its code before any connection", async (fault) => {
    const server = await startTcpFault({ kind: "reply", reply: PING.reply });
    try {
      const r = await runTask(taskFor(fault, server.host, server.port), { probe: "p", pool, run: 0 });
      expect(r.code).toBe(FAULTS[fault].code);
      expect(r.message).toMatch(fault === "bad-send-hex" ? /^step 1 send data: / : /^step 1 verify data: /);
      expect(r.timings.connectMs).toBeNull();
      expect(server.connections).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("send-reset: the reset cuts the write short (602), with part of the data accepted", async () => {
    const running = await startFault("send-reset", PING.reply, null as never); // no TLS: no certificates
    try {
      const task = taskFor("send-reset", running.target.host, running.target.port);
      for (let i = 0; i < 3; i++) {
        const r = await runTask(task, { probe: "p", pool, run: i });
        expect(r.code, r.message ?? "").toBe(602);
        expect(r.message).toMatch(/^step 1: sending \d+ bytes failed: /);
        expect(r.bytesSent).toBeLessThan(SEND_RESET_BYTES);
      }
    } finally {
      await running.close();
    }
  }, 30_000);
});
