// The certificate's facts (DESIGN.md "Result record": `tls`) on success and on a 608 once a
// certificate was received, and daysLeft's definition: whole days, truncated toward zero.

import { mkdtempSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLabPki, writePkiFiles, type LabPki, type PkiFiles } from "../../simulator/certs.js";
import { startTlsFault, STARTTLS_BANNER, STARTTLS_GO_AHEAD, type TlsFault } from "../../simulator/servers/tls.js";
import { daysLeft } from "../../host/probe/tls.js";
import { runOnce } from "../helpers/probe.js";

const DAY_MS = 86_400_000;
let pki: LabPki;
let files: PkiFiles;
const cleanup: (() => Promise<unknown>)[] = [];

// The valid leaf expires 14 days after it was made (a little under 14 days when tested), the
// expired one 1 day before.
beforeAll(() => {
  pki = createLabPki({ days: 14 });
  files = writePkiFiles(mkdtempSync(join(tmpdir(), "catprobe-facts-")), pki);
});
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

async function fault(spec: TlsFault): Promise<number> {
  const server = await startTlsFault(spec, pki);
  cleanup.push(() => server.close());
  return server.port;
}

const step = { send: "ping", verify: "partial", expect: "pong" };
const target = (port: number, extra: Record<string, unknown> = {}) =>
  ({ host: "127.0.0.1", port, tls: true, servername: "localhost", ca: files.caFile, ...extra });

describe("daysLeft: whole days until notAfter, truncated toward zero", () => {
  const now = Date.UTC(2026, 0, 1);
  it.each([
    [14 * DAY_MS, 14], [14 * DAY_MS - 1, 13], [13.9 * DAY_MS, 13], [DAY_MS, 1], [DAY_MS - 1, 0],
    [0, 0], [-1, 0], [-DAY_MS + 1, 0], [-DAY_MS, -1], [-DAY_MS - 1, -1], [-2 * DAY_MS + 1, -1], [-2 * DAY_MS, -2],
  ])("notAfter = now + %i ms gives %i days", (offset, days) => {
    expect(daysLeft(now + offset, now)).toBe(days);
  });

  it("is never -0", () => {
    expect(Object.is(daysLeft(now - 1, now), 0)).toBe(true);
  });
});

describe("TLS facts", () => {
  it("on success: a certificate 14 days from expiry has 13 whole days left", async () => {
    const r = await runOnce({ target: target(await fault({ kind: "valid", reply: "pong" })), steps: [step] });
    expect(r.ok).toBe(true);
    expect(r.tls).toMatchObject({ version: "TLSv1.3", subject: "catprobe lab server", issuer: "catprobe lab CA", daysLeft: 13 });
  });

  it("608 for an expired certificate reports its facts; expired 1 day ago is -1", async () => {
    const r = await runOnce({ target: target(await fault({ kind: "expired", reply: "pong" })), steps: [step] });
    expect(r).toMatchObject({ code: 608, step: null });
    expect(r.message).toContain("CERT_HAS_EXPIRED");
    expect(r.tls).toMatchObject({ version: "TLSv1.3", subject: "catprobe lab server", issuer: "catprobe lab CA", daysLeft: -1 });
    const notAfter = Date.parse(r.tls!.notAfter!);
    expect(Math.abs(notAfter - (Date.now() - DAY_MS))).toBeLessThan(60_000);
  });

  it("608 for an untrusted (self-signed) certificate reports its facts", async () => {
    const r = await runOnce({ target: target(await fault({ kind: "untrusted", reply: "pong" })), steps: [step] });
    expect(r).toMatchObject({ code: 608 });
    expect(r.message).toContain("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(r.tls).toMatchObject({ subject: "catprobe untrusted server", issuer: "catprobe untrusted server", daysLeft: 13 });
  });

  it("608 over TLS 1.2 reports the rejected certificate's facts too", async () => {
    const server = createTlsServer({ ...pki.expired, maxVersion: "TLSv1.2" }, () => {});
    server.on("tlsClientError", () => {});
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanup.push(() => new Promise((r) => server.close(r)));
    const r = await runOnce({ target: target((server.address() as { port: number }).port), steps: [step] });
    expect(r).toMatchObject({ code: 608, tls: { version: "TLSv1.2", subject: "catprobe lab server", daysLeft: -1 } });
  });

  it("608 at a STARTTLS step whose certificate does not name the host reports its facts", async () => {
    const port = await fault({ kind: "starttls", reply: "pong" });
    const r = await runOnce({
      target: { host: "127.0.0.1", port, servername: "other.example", ca: files.caFile },
      steps: [
        { verify: "partial", expect: STARTTLS_BANNER.trim() },
        { send: "STARTTLS\r\n", verify: "partial", expect: STARTTLS_GO_AHEAD.trim(), starttls: true },
        step,
      ],
    });
    expect(r).toMatchObject({ code: 608, step: 1, tls: { subject: "catprobe lab server", daysLeft: 13 } });
    expect(r.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("no facts when no certificate arrived (plain text on the TLS port)", async () => {
    const r = await runOnce({ target: target(await fault({ kind: "plaintext" })), steps: [step] });
    expect(r.code).toBe(608);
    expect(r.tls).toBeUndefined();
  });
});
