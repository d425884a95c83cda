// Steps over real loopback sockets: every way a reply passes, and 602, 603, 607, 609, 604.

import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { dribble, tcpServer, type TestServer } from "../helpers/tcp.js";
import { runOnce } from "../helpers/probe.js";

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function server(...args: Parameters<typeof tcpServer>): Promise<TestServer> {
  const s = await tcpServer(...args);
  servers.push(s);
  return s;
}

const target = (s: TestServer) => ({ host: s.host, port: s.port });

describe("replies that pass", () => {
  it("finds a keyword split across segments", async () => {
    const s = await server((sock) => sock.once("data", () => dribble(sock, ["+PO", "N", "G\r\n"], 10)));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG" }] });
    expect(r).toMatchObject({ ok: true, code: null, step: null, message: null, bytesSent: 6 });
    expect(r.bytesReceived).toBeGreaterThanOrEqual(5);
    expect(r.timings.firstByteMs).toBeGreaterThan(0);
    expect(r.id).toBe(`test-probe/t/${r.ts}/0`);
  });

  it("verifies a reply dribbled one byte at a time", async () => {
    const reply = "220 mail.example ESMTP ready\r\n";
    const s = await server((sock) => dribble(sock, reply.split(""), 3));
    const r = await runOnce({ target: target(s), steps: [{ verify: "full", expect: reply }] });
    expect(r.ok).toBe(true);
    expect(r.bytesReceived).toBe(reply.length);
  });

  it("checks the MD5 of a large reply as it streams", async () => {
    const body = Buffer.alloc(3 << 20, "catprobe large reply ");
    const s = await server((sock) => sock.once("data", () => sock.end(body)));
    const digest = createHash("md5").update(body).digest("hex");
    const pass = await runOnce({ target: target(s), steps: [{ send: "GET\n", verify: "md5", expect: digest, maxResponseBytes: 4 << 20 }] });
    expect(pass.ok).toBe(true);
    expect(pass.bytesReceived).toBe(body.length);
    const wrong = await runOnce({ target: target(s), steps: [{ send: "GET\n", verify: "md5", expect: "0".repeat(32), maxResponseBytes: 4 << 20 }] });
    expect(wrong.code).toBe(607);
    expect(wrong.message).toBe(`step 1: MD5 of the ${body.length}-byte reply is ${digest}, expected ${"0".repeat(32)} (connection closed by peer)`);
  });

  it("runs a multi-step dialog with banner-only steps and buffer-mode data", async () => {
    const s = await server((sock) => {
      sock.write("220 ready\r\n");
      sock.on("data", (d) => {
        if (d.toString().startsWith("HELO")) sock.write("250 hi\r\n250 more\r\n");
        if (d[0] === 0x01) sock.write(Buffer.from([0x02, 0x03]));
      });
    });
    const r = await runOnce({
      target: target(s),
      steps: [
        { verify: "partial", expect: "220" },
        { send: "HELO probe\r\n", verify: "partial", expect: "250 hi\r\n" },
        { verify: "full", expect: "250 more\r\n" }, // continues reading where step 2 stopped
        { send: "01 ff", format: "buffer", verify: "full", expect: "0203" },
      ],
    });
    expect(r.message).toBeNull();
    expect(r.ok).toBe(true);
    expect(Buffer.concat(s.received[0]).toString("latin1")).toBe("HELO probe\r\n\u0001\u00ff");
  });

  it("reaches an IPv6 loopback server", async () => {
    const s = await server((sock) => sock.once("data", (d) => sock.write(d)), "::1");
    const r = await runOnce({ target: { host: "::1", port: s.port }, steps: [{ send: "v6?", verify: "full", expect: "v6?" }] });
    expect(r).toMatchObject({ ok: true, address: "::1" });
  });
});

describe("602: the data cannot be written", () => {
  it("reports a reset while a large write is in progress", async () => {
    const s = await server((sock) => sock.once("data", () => sock.resetAndDestroy()));
    const r = await runOnce({
      target: target(s),
      steps: [{ send: "x".repeat(64 << 20), verify: "none" }],
    });
    expect(r).toMatchObject({ ok: false, code: 602, step: 0 });
    expect(r.message).toMatch(/^step 1: sending 67108864 bytes failed: /);
  });

  it("a peer that closed after its banner is a 603 for the next step that waits for a reply", async () => {
    const s = await server((sock) => sock.end("bye\r\n"));
    const r = await runOnce({
      target: target(s),
      steps: [
        { verify: "full", expect: "bye\r\n" },
        { verify: "none", responseTimeoutMs: 1000 },
        { send: "QUIT\r\n", verify: "none" },
      ],
    });
    expect(r.code).toBe(603);
    expect(r.step).toBe(1);
    expect(r.message).toBe("step 2: connection closed by peer before the first byte of the reply");
  });
});

describe("603: no response", () => {
  it("reports silence after the data was written", async () => {
    const s = await server(() => {});
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG", responseTimeoutMs: 150 }] });
    expect(r).toMatchObject({ code: 603, step: 0, message: "step 1: no reply within 150 ms" });
    expect(r.timings.firstByteMs).toBeNull();
  });

  it("reports a peer that closes without a byte", async () => {
    const s = await server((sock) => sock.once("data", () => sock.end()));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "none" }] });
    expect(r).toMatchObject({ code: 603, message: "step 1: connection closed by peer before the first byte of the reply" });
  });

  it("reports a peer that resets without a byte", async () => {
    const s = await server((sock) => sock.once("data", () => sock.resetAndDestroy()));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "none" }] });
    expect(r).toMatchObject({ code: 603, message: "step 1: connection reset by peer before the first byte of the reply" });
  });
});

describe("607: the reply does not verify", () => {
  it("reports a keyword that never comes before the peer closes", async () => {
    const s = await server((sock) => sock.once("data", () => sock.end("-ERR unknown\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG" }] });
    expect(r).toMatchObject({ code: 607, step: 0 });
    expect(r.message).toBe('step 1: keyword "+PONG" not found in 14 bytes of reply (connection closed by peer)');
  });

  it("reports a keyword that never comes before the reply goes idle", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("-ERR\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG", idleMs: 100 }] });
    expect(r.message).toBe('step 1: keyword "+PONG" not found in 6 bytes of reply (no byte for 100 ms)');
  });

  it("reports a full match that differs, at the first differing byte", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("+OK ready\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "x", verify: "full", expect: "+OK steady\r\n" }] });
    expect(r.message).toBe('step 1: reply differs from the expected reply "+OK steady\\r\\n" at byte 4');
  });

  it("reports a full match whose reply ends short", async () => {
    const s = await server((sock) => sock.once("data", () => sock.end("+OK")));
    const r = await runOnce({ target: target(s), steps: [{ send: "x", verify: "full", expect: "+OK ready" }] });
    expect(r.message).toBe("step 1: reply ended after 3 of 9 expected bytes (connection closed by peer)");
  });

  it("keeps memory bounded against a server that floods without the keyword", async () => {
    const slab = Buffer.alloc(1 << 16, "z");
    const s = await server((sock) => {
      const pump = () => { while (!sock.destroyed && sock.write(slab)); };
      sock.on("drain", pump);
      pump();
    });
    const before = process.memoryUsage().rss;
    const r = await runOnce({ target: target(s), steps: [{ verify: "partial", expect: "never", maxResponseBytes: 64 << 20 }] });
    expect(r.code).toBe(607);
    expect(r.message).toBe(`step 1: keyword "never" not found in ${64 << 20} bytes of reply (maxResponseBytes ${64 << 20} reached)`);
    // 64 MiB went through; the probe kept none of it.
    expect(process.memoryUsage().rss - before).toBeLessThan(48 << 20);
  });
});

describe("609 and 604: time limits", () => {
  it("stops at a step that takes too long; later steps never reach the server", async () => {
    const s = await server((sock) => {
      sock.write("220 ready\r\n");
      sock.on("data", (d) => { if (d.toString().startsWith("A")) void dribble(sock, "x".repeat(100).split(""), 20); });
    });
    const r = await runOnce({
      target: target(s),
      steps: [
        { verify: "partial", expect: "220" },
        { send: "A\r\n", verify: "partial", expect: "done", timeoutMs: 200 },
        { send: "B\r\n", verify: "none" },
      ],
    });
    expect(r).toMatchObject({ code: 609, step: 1, message: "step 2 did not complete within 200 ms" });
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(s.received[0]).toString()).toBe("A\r\n");
  });

  it("stops a banner step that times out before step 3 is sent", async () => {
    const s = await server((sock) => sock.write("220 ready\r\n"));
    const r = await runOnce({
      target: target(s),
      steps: [
        { verify: "partial", expect: "220" },
        { verify: "partial", expect: "never", timeoutMs: 150, responseTimeoutMs: 1000, idleMs: 1000 },
        { send: "QUIT\r\n", verify: "none" },
      ],
    });
    expect(r).toMatchObject({ code: 609, step: 1 });
    expect(s.received[0]).toEqual([]);
  });

  it("reports the task time limit across slow steps", async () => {
    const s = await server((sock) => sock.on("data", () => setTimeout(() => sock.write("ok\n"), 120)));
    const step = { send: "go\n", verify: "partial", expect: "ok" };
    const r = await runOnce({ target: target(s), taskTimeoutMs: 300, steps: [step, step, step, step] });
    expect(r).toMatchObject({ code: 604, step: 2, message: "task did not complete within 300 ms (during step 3)" });
  });

  it("resolves a tie narrowest first: response over step", async () => {
    const s = await server(() => {});
    const r = await runOnce({ target: target(s), steps: [{ verify: "none", responseTimeoutMs: 150, timeoutMs: 150 }] });
    expect(r.code).toBe(603);
  });
});
