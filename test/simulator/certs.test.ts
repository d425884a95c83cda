import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type Server } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLabPki, writePkiFiles, type LabPki, type Pem } from "../../simulator/certs.js";

const DAY_MS = 24 * 60 * 60 * 1000;

interface Outcome {
  authorized?: boolean;
  subjectCN?: string;
  validTo?: string;
  errorCode?: string;
}

const servers: Server[] = [];

/** A TLS server on 127.0.0.1 presenting `pem`; it answers every handshake and closes. */
async function serve(pem: Pem): Promise<number> {
  const server = createServer({ cert: pem.cert, key: pem.key }, (socket) => socket.end("hello\n"));
  server.on("tlsClientError", () => {}); // clients that reject the certificate abort the handshake
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** One verified handshake (rejectUnauthorized stays on): what the client concluded. */
function handshake(port: number, options: { ca?: string; servername?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, ...options });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ errorCode: "TEST_TIMEOUT" });
    }, 5_000);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      resolve({ authorized: socket.authorized, subjectCN: String(peer.subject.CN), validTo: peer.valid_to });
      socket.destroy();
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ errorCode: err.code });
    });
  });
}

describe("lab PKI", () => {
  let pki: LabPki;

  beforeAll(() => {
    pki = createLabPki();
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it("a client trusting the lab CA accepts the server certificate for localhost", async () => {
    const port = await serve(pki.server);
    const outcome = await handshake(port, { ca: pki.ca.cert, servername: "localhost" });
    expect(outcome.errorCode).toBeUndefined();
    expect(outcome.authorized).toBe(true);
    expect(outcome.subjectCN).toBe("catprobe lab server");
    const validTo = Date.parse(outcome.validTo!);
    expect(validTo).toBeGreaterThan(Date.now() + 364 * DAY_MS);
    expect(validTo).toBeLessThan(Date.now() + 366 * DAY_MS);
  });

  it("matches the IP subjectAltName when connecting by address without a servername", async () => {
    const port = await serve(pki.server);
    const outcome = await handshake(port, { ca: pki.ca.cert });
    expect(outcome).toMatchObject({ authorized: true, subjectCN: "catprobe lab server" });
  });

  it("a client trusting only the system store rejects the lab chain", async () => {
    const port = await serve(pki.server);
    const outcome = await handshake(port, { servername: "localhost" });
    expect(["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]).toContain(outcome.errorCode);
  });

  it("the expired certificate fails with CERT_HAS_EXPIRED", async () => {
    const port = await serve(pki.expired);
    const outcome = await handshake(port, { ca: pki.ca.cert, servername: "localhost" });
    expect(outcome.errorCode).toBe("CERT_HAS_EXPIRED");
  });

  it("the self-signed certificate fails with a trust error", async () => {
    const port = await serve(pki.untrusted);
    const outcome = await handshake(port, { ca: pki.ca.cert, servername: "localhost" });
    expect(["DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN"])
      .toContain(outcome.errorCode);
  });

  it("builds the certificates with the documented fields", () => {
    const ca = new X509Certificate(pki.ca.cert);
    const server = new X509Certificate(pki.server.cert);
    const expired = new X509Certificate(pki.expired.cert);
    const untrusted = new X509Certificate(pki.untrusted.cert);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain("CN=catprobe lab CA");
    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(server.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // extKeyUsage serverAuth, clientAuth
    expect(Date.parse(expired.validTo)).toBeLessThan(Date.now());
    expect(Date.parse(expired.validFrom)).toBeLessThan(Date.now() - 29 * DAY_MS);
    expect(untrusted.checkIssued(ca)).toBe(false);
    expect(untrusted.issuer).toBe(untrusted.subject);
    expect(untrusted.verify(untrusted.publicKey)).toBe(true); // self-signed
    // 128-bit positive serials, minimally encoded
    for (const cert of [ca, server, expired, untrusted]) {
      expect(cert.serialNumber).toMatch(/^[1-7][0-9A-F]{31}$/);
    }
    expect(new Set([ca, server, expired, untrusted].map((c) => c.serialNumber)).size).toBe(4);
  });

  it("honours names, days and commonName, reusing the cached keys", () => {
    const started = performance.now();
    const custom = createLabPki({ names: ["probe.lab.test", "10.0.0.7"], days: 7, commonName: "edge" });
    expect(performance.now() - started).toBeLessThan(2_000); // no new key generation
    const server = new X509Certificate(custom.server.cert);
    expect(server.subject).toContain("CN=edge");
    expect(server.subjectAltName).toBe("DNS:probe.lab.test, IP Address:10.0.0.7");
    expect(Date.parse(server.validTo)).toBeLessThan(Date.now() + 8 * DAY_MS);
    expect(server.publicKey.export({ format: "pem", type: "spki" }))
      .toBe(new X509Certificate(pki.server.cert).publicKey.export({ format: "pem", type: "spki" }));
  });

  describe("writePkiFiles", () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

    it("writes readable PEM files and a server can use them", async () => {
      const dir = mkdtempSync(join(tmpdir(), "catprobe-pki-"));
      dirs.push(dir);
      const files = writePkiFiles(dir, pki);
      expect(Object.values(files).map((f) => f.slice(dir.length + 1)).sort()).toEqual([
        "ca.pem", "expired-key.pem", "expired.pem", "server-key.pem", "server.pem",
        "untrusted-key.pem", "untrusted.pem",
      ]);
      expect(readFileSync(files.caFile, "utf8")).toBe(pki.ca.cert);
      expect(readFileSync(files.expiredKeyFile, "utf8")).toBe(pki.expired.key);
      expect(readFileSync(files.untrustedCertFile, "utf8")).toBe(pki.untrusted.cert);
      expect(statSync(files.serverKeyFile).mode & 0o077).toBe(0);

      const port = await serve({
        cert: readFileSync(files.serverCertFile, "utf8"),
        key: readFileSync(files.serverKeyFile, "utf8"),
      });
      const ca = readFileSync(files.caFile, "utf8");
      const outcome = await handshake(port, { ca, servername: "localhost" });
      expect(outcome.authorized).toBe(true);
    });
  });
});
