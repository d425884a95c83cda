// bytesSent counts what the local TCP stack accepted, also when a large write never completes
// (the peer stops reading and the step times out, or the peer resets mid-write).

import { afterEach, describe, expect, it } from "vitest";
import { largeBody } from "../../simulator/servers/tcp.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import { runOnce } from "../helpers/probe.js";

const MIB = 1 << 20;
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

async function server(handle: Parameters<typeof tcpServer>[0]): Promise<TestServer> {
  const s = await tcpServer(handle);
  cleanup.push(() => s.close());
  return s;
}

/** A step that sends `bytes` of largeBody as hex. */
const bigStep = (bytes: number, step: Record<string, unknown> = {}) =>
  ({ send: largeBody(bytes).toString("hex"), format: "buffer", verify: "none", ...step });

describe("bytesSent", () => {
  it("609: counts the megabytes the stack took from a step whose peer never reads", async () => {
    const s = await server((sock) => sock.pause());
    const r = await runOnce({ target: { host: s.host, port: s.port }, steps: [bigStep(8 * MIB, { timeoutMs: 300 })] });
    expect(r).toMatchObject({ code: 609, step: 0, message: "step 1 did not complete within 300 ms" });
    expect(r.bytesSent).toBeGreaterThan(0);
    expect(r.bytesSent).toBeLessThanOrEqual(8 * MIB);
  });

  it("604: counts them too when the task limit passes during the write", async () => {
    const s = await server((sock) => sock.pause());
    const r = await runOnce({ target: { host: s.host, port: s.port }, taskTimeoutMs: 300, steps: [bigStep(8 * MIB)] });
    expect(r).toMatchObject({ code: 604, message: "task did not complete within 300 ms (during step 1)" });
    expect(r.bytesSent).toBeGreaterThan(0);
  });

  it("602: counts what the stack took before the peer reset mid-write", async () => {
    const s = await server((sock) => {
      let read = 0;
      sock.on("data", (chunk) => {
        read += chunk.length;
        if (read >= MIB) sock.resetAndDestroy();
      });
    });
    const r = await runOnce({ target: { host: s.host, port: s.port }, steps: [bigStep(16 * MIB)] });
    expect(r).toMatchObject({ code: 602, step: 0 });
    expect(r.message).toMatch(/^step 1: sending 16777216 bytes failed: /);
    expect(r.bytesSent).toBeGreaterThanOrEqual(MIB);
    expect(r.bytesSent).toBeLessThan(16 * MIB);
  });

  it("a large write that completes is counted once, and arrives intact and in order", async () => {
    const body = largeBody(8 * MIB + 12_345);
    const s = await server((sock, received) => {
      let read = 0;
      sock.on("data", (chunk) => {
        read += chunk.length;
        if (read === body.length) sock.write("ok");
      });
    });
    const r = await runOnce({
      target: { host: s.host, port: s.port },
      steps: [{ send: body.toString("hex"), format: "buffer", verify: "partial", expect: "6f6b" }],
    });
    expect(r.message).toBeNull();
    expect(r.bytesSent).toBe(body.length);
    expect(Buffer.concat(s.received[0]).equals(body)).toBe(true);
  });

  it("a small write is one piece: every byte counted", async () => {
    const s = await server((sock) => sock.on("data", () => sock.write("ok")));
    const r = await runOnce({ target: { host: s.host, port: s.port }, steps: [{ send: "x".repeat(65_536), verify: "partial", expect: "ok" }] });
    expect(r).toMatchObject({ ok: true, bytesSent: 65_536 });
  });
});
