// 600: name resolution against a DNS server on loopback UDP, and the system resolver.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDnsServer, type DnsServer } from "../../simulator/servers/dns.js";
import { runOnce } from "../helpers/probe.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";

let dns: DnsServer;
let echo: TestServer;
let echo6: TestServer;

beforeAll(async () => {
  echo = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)));
  echo6 = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)), "::1");
  dns = await startDnsServer({
    records: {
      "api.lab.test": { a: ["127.0.0.1"] },
      "v6.lab.test": { aaaa: ["::1"] },
      "v4only.lab.test": { a: ["127.0.0.1"] },
    },
    faults: { "broken.lab.test": "servfail", "mute.lab.test": "silent" },
  });
});
afterAll(async () => {
  await Promise.all([dns.close(), echo.close(), echo6.close()]);
});

// Full passes when the reply ends: the echo server stays open, so a short silence ends it.
const step = { send: "hello", verify: "full", expect: "hello", idleMs: 100 };
const task = (host: string, extra: Record<string, unknown> = {}) => ({
  target: { host, port: host.startsWith("v6") ? echo6.port : echo.port },
  dns: { servers: [dns.address], timeoutMs: 300, ...extra },
  steps: [step],
});

describe("600: DNS resolution failed", () => {
  it("resolves a lab name and runs the task", async () => {
    const r = await runOnce(task("api.lab.test"));
    expect(r).toMatchObject({ ok: true, address: "127.0.0.1" });
    expect(r.timings.dnsMs).toBeGreaterThan(0);
  });

  it("falls back to AAAA for a name with only IPv6 addresses, and asks for AAAA with family 6", async () => {
    expect(await runOnce(task("v6.lab.test"))).toMatchObject({ ok: true, address: "::1" });
    expect(await runOnce(task("v6.lab.test", { family: 6 }))).toMatchObject({ ok: true, address: "::1" });
  });

  it("reports NXDOMAIN", async () => {
    const r = await runOnce(task("missing.lab.test"));
    expect(r).toMatchObject({ ok: false, code: 600, step: null, address: null });
    expect(r.message).toBe("cannot resolve missing.lab.test: name not found (NXDOMAIN) (ENOTFOUND)");
    expect(r.timings.connectMs).toBeNull();
  });

  it("reports SERVFAIL", async () => {
    const r = await runOnce(task("broken.lab.test"));
    expect(r.message).toBe("cannot resolve broken.lab.test: the DNS server failed (SERVFAIL) (ESERVFAIL)");
  });

  it("reports a silent resolver at dns.timeoutMs", async () => {
    const r = await runOnce(task("mute.lab.test"));
    expect(r.code).toBe(600);
    expect(r.message).toMatch(/^cannot resolve mute\.lab\.test: (no answer within 300 ms \(DNS timeout\)|no answer from the DNS server \(ETIMEOUT\))$/);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(299);
  });

  it("reports no address of the wanted family", async () => {
    const r = await runOnce(task("v4only.lab.test", { family: 6 }));
    expect(r.message).toBe("cannot resolve v4only.lab.test: no address of the wanted family (ENODATA)");
  });

  it("reports the task limit when it passes before the DNS limit", async () => {
    const r = await runOnce({ ...task("mute.lab.test", { timeoutMs: 5000 }), taskTimeoutMs: 200 });
    expect(r).toMatchObject({ code: 604, message: "task did not complete within 200 ms (during DNS)" });
  });

  it("uses the system resolver without dns.servers", async () => {
    const r = await runOnce({ target: { host: "localhost", port: echo.port }, dns: { family: 4 }, steps: [step] });
    expect(r).toMatchObject({ ok: true, address: "127.0.0.1" });
    const missing = await runOnce({ target: { host: "no-such-host.invalid", port: echo.port }, steps: [step] });
    expect(missing.code).toBe(600);
    expect(missing.message).toMatch(/^cannot resolve no-such-host\.invalid: /);
  });
});
