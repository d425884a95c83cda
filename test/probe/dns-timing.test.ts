// dnsMs is the time of a DNS lookup: null when the host is an IP literal and none ran.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOnce } from "../helpers/probe.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";

let server: TestServer;
beforeAll(async () => {
  server = await tcpServer((sock) => sock.on("data", () => sock.end("+PONG\r\n")));
});
afterAll(() => server.close());

const ping = (host: string) => ({ target: { host, port: server.port }, steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG" }] });

describe("dnsMs", () => {
  it("is null for an IP literal", async () => {
    const r = await runOnce(ping("127.0.0.1"));
    expect(r.ok).toBe(true);
    expect(r.timings.dnsMs).toBeNull();
    expect(r.timings.connectMs).not.toBeNull();
  });

  it("is measured when a name is looked up", async () => {
    const r = await runOnce(ping("localhost"));
    expect(r.timings.dnsMs).toEqual(expect.any(Number));
  });
});
