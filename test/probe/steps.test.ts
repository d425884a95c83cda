// Steps over real loopback sockets: every way a reply passes, and 602, 603, 607, 609, 604.

import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { dribble, tcpServer, type TestServer } from "../helpers/tcp.js";
import { pool, runOnce, runnable } from "../helpers/probe.js";
import { runTask } from "../../host/probe/runner.js";

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
    const r = await runOnce({ target: target(s), steps: [{ verify: "full", expect: reply, idleMs: 200 }] });
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
    const quote = `${JSON.stringify(body.subarray(0, 64).toString())}…`;
    expect(wrong.message).toBe(
      `step 1: MD5 of ${body.length} bytes of reply ${quote} is ${digest}, expected ${"0".repeat(32)} (connection closed by peer)`);
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
        { verify: "full", expect: "250 more\r\n", idleMs: 100 }, // continues reading where step 2 stopped
        { send: "01 ff", format: "buffer", verify: "full", expect: "0203", idleMs: 100 },
      ],
    });
    expect(r.message).toBeNull();
    expect(r.ok).toBe(true);
    expect(Buffer.concat(s.received[0]).toString("latin1")).toBe("HELO probe\r\n\u0001\u00ff");
  });

  it("reaches an IPv6 loopback server", async () => {
    const s = await server((sock) => sock.once("data", (d) => sock.write(d)), "::1");
    const r = await runOnce({ target: { host: "::1", port: s.port }, steps: [{ send: "v6?", verify: "prefix", expect: "v6?" }] });
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
    expect(r.message).toBe('step 1: keyword "+PONG" not found in 14 bytes of reply "-ERR unknown\\r\\n" (connection closed by peer)');
  });

  it("reports a keyword that never comes before the reply goes idle", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("-ERR\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG", idleMs: 100 }] });
    expect(r.message).toBe('step 1: keyword "+PONG" not found in 6 bytes of reply "-ERR\\r\\n" (no byte for 100 ms)');
  });

  it("reports a full match that differs, at the first differing byte", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("+OK ready\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "x", verify: "full", expect: "+OK steady\r\n" }] });
    expect(r.message).toBe('step 1: reply differs from the expected reply "+OK steady\\r\\n" at byte 4: 11 bytes of reply "+OK ready\\r\\n"');
  });

  it("reports a full match whose reply ends short", async () => {
    const s = await server((sock) => sock.once("data", () => sock.end("+OK")));
    const r = await runOnce({ target: target(s), steps: [{ send: "x", verify: "full", expect: "+OK ready" }] });
    expect(r.message).toBe('step 1: reply is shorter than the expected reply "+OK ready" (9 bytes): 3 bytes of reply "+OK" (connection closed by peer)');
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
    expect(r.message).toBe(`step 1: keyword "never" not found in ${64 << 20} bytes of reply "${"z".repeat(64)}"… (maxResponseBytes ${64 << 20} reached)`);
    // 64 MiB went through; the probe kept none of it.
    expect(process.memoryUsage().rss - before).toBeLessThan(48 << 20);
  });
});

describe("full means the whole reply, prefix its start", () => {
  it("fails a refused MQTT CONNACK against the accepting one at its first extra byte (buffer mode)", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write(Buffer.from([0x20, 0x02, 0x00, 0x01]))));
    const r = await runOnce({ target: target(s), format: "buffer",
      steps: [{ send: "10 0c 00 04 4d 51 54 54 04 02 00 3c 00 00", verify: "full", expect: "20 02 00" }] });
    expect(r).toMatchObject({ ok: false, code: 607, step: 0 });
    expect(r.message).toBe("step 1: reply is longer than the expected reply 0x200200 (3 bytes): 4 bytes of reply 0x20020001");
    expect(r.timings.totalMs).toBeLessThan(1000); // decided at the extra byte, not at idleMs
  });

  it("fails \"+\" against +PONG", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("+PONG\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "full", expect: "+" }] });
    expect(r.code).toBe(607);
    expect(r.message).toBe('step 1: reply is longer than the expected reply "+" (1 byte): 7 bytes of reply "+PONG\\r\\n"');
  });

  it("fails a reply that goes on in a later segment", async () => {
    const s = await server((sock) => sock.once("data", () => dribble(sock, ["+OK\r\n", "+OK\r\n"], 50)));
    const r = await runOnce({ target: target(s), steps: [{ send: "x", verify: "full", expect: "+OK\r\n" }] });
    expect(r.message).toBe('step 1: reply is longer than the expected reply "+OK\\r\\n" (5 bytes): 10 bytes of reply "+OK\\r\\n+OK\\r\\n"');
  });

  it("passes an exact reply as soon as the peer closes", async () => {
    const s = await server((sock) => sock.once("data", () => sock.end("+PONG\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "full", expect: "+PONG\r\n", idleMs: 5000 }] });
    expect(r).toMatchObject({ ok: true, message: null, bytesReceived: 7 });
    expect(r.timings.totalMs).toBeLessThan(1000);
  });

  it("passes an exact reply followed by silence once idleMs has passed", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("+PONG\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "full", expect: "+PONG\r\n", idleMs: 200 }] });
    expect(r).toMatchObject({ ok: true, message: null });
    expect(r.timings.receiveMs).toBeGreaterThanOrEqual(190);
  });

  it("passes an exact reply at maxResponseBytes", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("+PONG\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "full", expect: "+PONG\r\n", maxResponseBytes: 7, idleMs: 5000 }] });
    expect(r.ok).toBe(true);
    expect(r.timings.totalMs).toBeLessThan(1000);
  });

  it("prefix passes \"+\" against +PONG at once", async () => {
    const s = await server((sock) => sock.once("data", () => sock.write("+PONG\r\n")));
    const r = await runOnce({ target: target(s), steps: [{ send: "PING\r\n", verify: "prefix", expect: "+", idleMs: 5000 }] });
    expect(r).toMatchObject({ ok: true, message: null });
    expect(r.timings.totalMs).toBeLessThan(1000);
  });

  it("prefix leaves the rest of the reply for a following step that does not send", async () => {
    const s = await server((sock) => sock.once("data", () => sock.end("+PONG\r\n")));
    const r = await runOnce({
      target: target(s),
      steps: [{ send: "PING\r\n", verify: "prefix", expect: "+" }, { verify: "full", expect: "PONG\r\n" }],
    });
    expect(r).toMatchObject({ ok: true, message: null });
  });

  it("prefix fails at the first differing byte, and when the reply ends short", async () => {
    const s = await server((sock) => sock.once("data", (d) => sock.end(d.toString() === "a" ? "-ERR\r\n" : "+P")));
    const differs = await runOnce({ target: target(s), steps: [{ send: "a", verify: "prefix", expect: "+PONG" }] });
    expect(differs.message).toBe('step 1: reply differs from the expected prefix "+PONG" at byte 0: 6 bytes of reply "-ERR\\r\\n"');
    const short = await runOnce({ target: target(s), steps: [{ send: "b", verify: "prefix", expect: "+PONG" }] });
    expect(short.message).toBe('step 1: reply is shorter than the expected prefix "+PONG" (5 bytes): 2 bytes of reply "+P" (connection closed by peer)');
  });

  it("prefix needs expect, like full", () => {
    expect(() => runnable({ target: { host: "127.0.0.1", port: 9 }, steps: [{ send: "x", verify: "prefix" }] }))
      .toThrow('inline.json: steps[0].expect: is required unless verify is "none"');
  });
});

describe("a 607 quotes the start of the reply", () => {
  const failing = (reply: string | Buffer, step: Record<string, unknown>) => async () => {
    const s = await server((sock) => sock.once("data", () => sock.end(reply)));
    return runOnce({ target: target(s), steps: [{ send: "x", ...step }] });
  };

  it("as a JSON string in text mode, non-ASCII characters as they are", async () => {
    const r = await failing("错误：未知命令\r\n", { verify: "partial", expect: "+PONG" })();
    expect(r.message).toBe('step 1: keyword "+PONG" not found in 23 bytes of reply "错误：未知命令\\r\\n" (connection closed by peer)');
  });

  it("its first 64 bytes, then …, never half a character", async () => {
    const reply = "你好世界".repeat(10); // 3 bytes a character: byte 64 is inside the 22nd
    const r = await failing(reply, { verify: "full", expect: "你好世界" })();
    expect(r.message).toBe(`step 1: reply is longer than the expected reply "你好世界" (12 bytes): 120 bytes of reply ${JSON.stringify(reply.slice(0, 21))}…`);
    const ascii = await failing("y".repeat(100), { verify: "md5", expect: "0".repeat(32) })();
    expect(ascii.message).toMatch(new RegExp(`^step 1: MD5 of 100 bytes of reply "${"y".repeat(64)}"… is [0-9a-f]{32}, expected 0{32} `));
  });

  it("as hex in buffer mode, 64 bytes at most", async () => {
    const reply = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const r = await failing(reply, { format: "buffer", send: "01", verify: "partial", expect: "ff ff" })();
    expect(r.message).toBe(`step 1: keyword 0xffff not found in 100 bytes of reply 0x${reply.subarray(0, 64).toString("hex")}… (connection closed by peer)`);
    const short = await failing(Buffer.from([0x20, 0x02]), { format: "buffer", send: "01", verify: "full", expect: "20 02 00" })();
    expect(short.message).toBe("step 1: reply is shorter than the expected reply 0x200200 (3 bytes): 2 bytes of reply 0x2002 (connection closed by peer)");
  });

  it("only the step's own reply, in a step that reads on after the previous one", async () => {
    const s = await server((sock) => sock.end("220 ready\r\n-ERR\r\n"));
    const r = await runOnce({
      target: target(s),
      steps: [{ verify: "prefix", expect: "220 ready\r\n" }, { verify: "partial", expect: "+OK" }],
    });
    expect(r).toMatchObject({ code: 607, step: 1 });
    expect(r.message).toBe('step 2: keyword "+OK" not found in 6 bytes of reply "-ERR\\r\\n" (connection closed by peer)');
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
    // Steps 1 and 2 are done ~40 ms in, far inside the limit however loaded the machine; step 3
    // alone (400 ms) fits the limit but not after them: the server's delays are lower bounds, so
    // step 3 cannot end before 440 ms > 430. Only the accumulated time gives 604 at step 3.
    const delays = [20, 20, 400, 0];
    const s = await server((sock) => {
      let n = 0;
      sock.on("data", () => setTimeout(() => sock.write("ok\n"), delays[n++]));
    });
    const step = { send: "go\n", verify: "partial", expect: "ok" };
    const r = await runOnce({ target: target(s), taskTimeoutMs: 430, steps: [step, step, step, step] });
    expect(r).toMatchObject({ code: 604, step: 2, message: "task did not complete within 430 ms (during step 3)" });
  });

  it("resolves a tie narrowest first: response over step", async () => {
    const s = await server(() => {});
    const r = await runOnce({ target: target(s), steps: [{ verify: "none", responseTimeoutMs: 150, timeoutMs: 150 }] });
    expect(r.code).toBe(603);
  });
});

describe("whileWaiting: when a run first waits on its peer", () => {
  const run = (task: Record<string, unknown>, whileWaiting: () => void) =>
    runTask(runnable(task), { probe: "test-probe", pool, run: 0, whileWaiting });

  it("is called once, after the first step's data went out and before its reply", async () => {
    const events: string[] = [];
    const s = await server((sock) => sock.on("data", (d) => {
      events.push(`request ${String(d).trim()}`);
      sock.write(String(d));
    }));
    const r = await run({ target: target(s), steps: [
      { send: "one\n", verify: "partial", expect: "one" },
      { send: "two\n", verify: "partial", expect: "two" },
    ] }, () => events.push("waiting"));
    expect(r.ok).toBe(true);
    expect(events).toEqual(["waiting", "request one", "request two"]);
  });

  it("is called as a first step that sends nothing begins to read its banner", async () => {
    let calls = 0;
    let bannerSent = false;
    const s = await server((sock) => setTimeout(() => { bannerSent = true; sock.end("220 ready\r\n"); }, 50));
    const r = await run({ target: target(s), steps: [{ verify: "prefix", expect: "220" }] }, () => {
      calls++;
      expect(bannerSent).toBe(false);
    });
    expect(r.ok).toBe(true);
    expect(calls).toBe(1);
  });

  it("is not called by a run that never connects", async () => {
    const s = await server(() => {});
    const port = s.port;
    await s.close();
    servers = [];
    let calls = 0;
    const r = await run({ target: { host: "127.0.0.1", port }, steps: [{ send: "x", verify: "none" }] }, () => calls++);
    expect(r.code).toBe(601);
    expect(calls).toBe(0);
  });
});
