// Connect (601), TLS from connect and STARTTLS (608), and invalid data (605/606) that never
// opens a socket, over real loopback sockets.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, TLSSocket, createSecureContext, type Server, type TlsOptions } from "node:tls";
import { once } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLabPki, writePkiFiles, type LabPki, type PkiFiles } from "../../simulator/certs.js";
import { startBlackhole } from "../../simulator/servers/blackhole.js";
import { closedPort, tcpServer, type TestServer } from "../helpers/tcp.js";
import { runOnce } from "../helpers/probe.js";

let pki: LabPki;
let files: PkiFiles;
const cleanup: (() => Promise<unknown> | void)[] = [];

beforeAll(() => {
  pki = createLabPki();
  files = writePkiFiles(mkdtempSync(join(tmpdir(), "catprobe-pki-")), pki);
});
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

/** An echo server over TLS with the given certificate; `options` adds server settings. */
async function tlsServer(pem: { cert: string; key: string }, options: TlsOptions = {}): Promise<number> {
  const server: Server = createTlsServer({ cert: pem.cert, key: pem.key, ...options }, (sock) => {
    sock.on("error", () => {});
    sock.on("data", (d) => sock.write(`echo:${d}`));
  });
  server.on("tlsClientError", () => {});
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanup.push(() => new Promise((r) => server.close(r)));
  return (server.address() as { port: number }).port;
}

async function plainServer(handle: Parameters<typeof tcpServer>[0]): Promise<TestServer> {
  const s = await tcpServer(handle);
  cleanup.push(() => s.close());
  return s;
}

// Full passes when the reply ends: the echo server stays open, so a short silence ends it.
const echoStep = { send: "hi", verify: "full", expect: "echo:hi", idleMs: 100 };

describe("601: the connection is not established", () => {
  it("reports a refused connection", async () => {
    const port = await closedPort();
    const r = await runOnce({ target: { host: "127.0.0.1", port }, steps: [echoStep] });
    expect(r).toMatchObject({ code: 601, step: null, message: `cannot connect to 127.0.0.1:${port}: connection refused (ECONNREFUSED)` });
    expect(r.timings.connectMs).toBeNull();
  });

  it("reports a connect that times out at a listener whose accept queue is full", async () => {
    const hole = await startBlackhole();
    cleanup.push(() => hole.close());
    const r = await runOnce({ target: { host: hole.host, port: hole.port }, connectTimeoutMs: 300, steps: [echoStep] });
    expect(r).toMatchObject({ code: 601, message: `cannot connect to 127.0.0.1:${hole.port}: no connection within 300 ms` });
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(299);
  });

  it("reports the task limit when it is shorter than the connect limit", async () => {
    const hole = await startBlackhole();
    cleanup.push(() => hole.close());
    const r = await runOnce({ target: { host: hole.host, port: hole.port }, connectTimeoutMs: 5000, taskTimeoutMs: 200, steps: [echoStep] });
    expect(r).toMatchObject({ code: 604, step: null, message: "task did not complete within 200 ms (during connect)" });
  });
});

describe("TLS from connect", () => {
  it("passes with a certificate trusted through `ca`, and reports its facts", async () => {
    const port = await tlsServer(pki.server);
    const r = await runOnce({
      target: { host: "127.0.0.1", port, tls: true, servername: "localhost", ca: files.caFile }, steps: [echoStep],
    });
    expect(r.message).toBeNull();
    expect(r.tls).toMatchObject({ subject: "catprobe lab server", issuer: "catprobe lab CA", version: "TLSv1.3" });
    expect(r.tls!.daysLeft).toBeGreaterThanOrEqual(363);
    expect(r.timings.tlsMs).toBeGreaterThan(0);
  });

  it("608: rejects an untrusted certificate, unless insecure", async () => {
    const port = await tlsServer(pki.untrusted);
    const task = { target: { host: "127.0.0.1", port, tls: true, servername: "localhost", ca: files.caFile }, steps: [echoStep] };
    const r = await runOnce(task);
    expect(r).toMatchObject({ code: 608, step: null });
    expect(r.message).toMatch(/^TLS handshake with localhost failed: .*\(DEPTH_ZERO_SELF_SIGNED_CERT\)$/);
    const insecure = await runOnce({ ...task, target: { ...task.target, insecure: true } });
    expect(insecure.ok).toBe(true);
  });

  it("608: rejects an expired certificate", async () => {
    const port = await tlsServer(pki.expired);
    const r = await runOnce({ target: { host: "127.0.0.1", port, tls: true, servername: "localhost", ca: files.caFile }, steps: [echoStep] });
    expect(r.code).toBe(608);
    expect(r.message).toContain("CERT_HAS_EXPIRED");
  });

  it("608: a plain-text server on the TLS port", async () => {
    const s = await plainServer((sock) => sock.write("220 smtp.example ESMTP\r\n"));
    const r = await runOnce({ target: { host: "127.0.0.1", port: s.port, tls: true }, steps: [echoStep] });
    expect(r.code).toBe(608);
    expect(r.message).toMatch(/^TLS handshake with 127\.0\.0\.1 failed: /);
  });

  it("608: a server that closes, or stays silent, during the handshake", async () => {
    const closing = await plainServer((sock) => sock.once("data", () => sock.end()));
    const closed = await runOnce({ target: { host: "127.0.0.1", port: closing.port, tls: true }, steps: [echoStep] });
    expect(closed.code).toBe(608);
    const silent = await plainServer(() => {});
    const timedOut = await runOnce({ target: { host: "127.0.0.1", port: silent.port, tls: true }, connectTimeoutMs: 200, steps: [echoStep] });
    expect(timedOut).toMatchObject({ code: 608, message: "TLS handshake with 127.0.0.1 did not complete within 200 ms" });
  });
});

describe("mutual TLS", () => {
  const clientCertServer = () => tlsServer(pki.server, { ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true });

  it("presents a client certificate from `cert` and `key`", async () => {
    const port = await clientCertServer();
    const target = { host: "127.0.0.1", port, tls: true, servername: "localhost", ca: files.caFile };
    const r = await runOnce({ target: { ...target, cert: files.serverCertFile, key: files.serverKeyFile }, steps: [echoStep] });
    expect(r.message).toBeNull();
  });

  it("608 when the server rejects the client for having no certificate", async () => {
    const port = await clientCertServer();
    const r = await runOnce({ target: { host: "127.0.0.1", port, tls: true, servername: "localhost", ca: files.caFile }, steps: [echoStep] });
    expect(r.code).toBe(608);
    expect(r.message).toMatch(/CERTIFICATE_REQUIRED/);
  });
});

describe("STARTTLS", () => {
  /** An SMTP-like server: banner, STARTTLS, then an encrypted echo. Upgrades only if `upgrade`. */
  async function starttlsServer(upgrade: boolean): Promise<TestServer> {
    const context = createSecureContext({ cert: pki.server.cert, key: pki.server.key });
    return plainServer((sock) => {
      sock.write("220 ready\r\n");
      sock.once("data", () => {
        sock.write("220 go ahead\r\n");
        if (!upgrade) return;
        const secure = new TLSSocket(sock, { isServer: true, secureContext: context });
        secure.on("error", () => {});
        secure.on("data", (d) => secure.write(`echo:${d}`));
      });
    });
  }
  const steps = [
    { verify: "partial", expect: "220" },
    { send: "STARTTLS\r\n", verify: "partial", expect: "220 go", starttls: true },
    echoStep,
  ];

  it("upgrades mid-dialog and verifies the encrypted step", async () => {
    const s = await starttlsServer(true);
    const r = await runOnce({ target: { host: "127.0.0.1", port: s.port, servername: "localhost", ca: files.caFile }, steps });
    expect(r.message).toBeNull();
    expect(r.tls?.subject).toBe("catprobe lab server");
  });

  it("608 at the step whose upgrade fails", async () => {
    const s = await starttlsServer(false);
    const r = await runOnce({ target: { host: "127.0.0.1", port: s.port }, connectTimeoutMs: 200, steps });
    expect(r).toMatchObject({ code: 608, step: 1 });
  });
});

describe("605 and 606: invalid task data never opens a socket", () => {
  let s: TestServer;
  beforeAll(async () => { s = await tcpServer(() => {}); });
  afterAll(() => s.close());

  const cases: [string, Record<string, unknown>, number, string][] = [
    ["send hex with a bad character", { send: "50 4g", format: "buffer", verify: "none" }, 605,
      "step 1 send data: invalid hex character 'g' at offset 4"],
    ["send hex with an odd digit count", { send: "504", format: "buffer", verify: "none" }, 605,
      "step 1 send data: odd number of hex digits: '4' at offset 2 has no partner"],
    ["empty send hex", { send: "", format: "buffer", verify: "none" }, 605, "step 1 send data: no hex digits"],
    ["verify hex", { send: "00", format: "buffer", verify: "full", expect: "0x00" }, 606,
      "step 1 verify data: invalid hex character 'x' at offset 1"],
    ["a short md5 digest", { send: "x", verify: "md5", expect: "d41d8cd98f00b204e9800998ecf8427" }, 606,
      "step 1 verify data: odd number of hex digits: '7' at offset 30 has no partner"],
    ["an md5 digest of the wrong length", { send: "x", verify: "md5", expect: "d41d8cd98f00b204e9800998ecf842" }, 606,
      "step 1 verify data: an MD5 digest is 32 hex digits, got 30"],
    ["an empty keyword", { send: "x", verify: "partial", expect: "" }, 606, "step 1 verify data: the keyword is empty"],
    ["a keyword longer than the core holds", { send: "x", verify: "partial", expect: "k".repeat(5000) }, 606,
      "step 1 verify data: the keyword is 5000 bytes; the core supports at most 4096"],
  ];
  for (const [name, step, code, message] of cases) {
    it(`${code}: ${name}`, async () => {
      const r = await runOnce({ target: { host: "127.0.0.1", port: s.port }, steps: [{ verify: "none" }, step] });
      expect(r).toMatchObject({ code, step: 1, message: message.replace("step 1", "step 2") });
      expect(s.connections).toBe(0);
    });
  }

  it("checks send before verify within a step, and steps in order", async () => {
    const r = await runOnce({
      target: { host: "127.0.0.1", port: s.port },
      steps: [{ send: "zz", format: "buffer", verify: "full", expect: "yy" }],
    });
    expect(r.code).toBe(605);
  });
});
