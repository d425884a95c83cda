// The record validator on texts the store cannot keep as they are: U+0000 (PostgreSQL text
// refuses it, and the whole batch's commit would fail on every re-delivery) and lone surrogates
// (stored as U+FFFD, so the stored id would not be the one acknowledged). Such a record is
// rejected as bad_record with its field named; the other records of its message are kept.
// The probe's own records never are: a NUL it was given (a certificate's name, a TLS error
// quoting it, a reply's bytes) is sent as the text \u0000 (fit.ts).

import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { describe, expect, it } from "vitest";
import { fitRecord, storable } from "../../host/wire/fit.js";
import type { ResultRecord } from "../../host/wire/record.js";
import { parseMessage } from "../../host/wire/validate.js";
import { runOnce } from "../helpers/probe.js";
import { record } from "../helpers/records.js";

const topic = "catprobe/v1/results/p1/t1";
const now = Date.now();
const rec = (extra: Record<string, unknown> = {}) => ({ ...record("p1", "t1", now - 1000, 607), ...extra });

/** The batch as the probe would send it: JSON, in which U+0000 and lone surrogates are escapes. */
const parse = (items: unknown[]) => parseMessage(topic, Buffer.from(JSON.stringify(items)), now);

describe("record texts", () => {
  it("keeps the valid records of a batch and rejects NUL and lone surrogates, naming the field", () => {
    const valid = rec({ message: "東京 ✓ ü 𝄞", labels: { städt: "東京 ✓" } });
    const nul = rec({ message: "reply \u0000 here" });
    const lone = rec({ id: "p1/t1/1/\uD800x" });
    const payload = Buffer.from(JSON.stringify([valid, nul, lone]));
    expect(payload.toString()).toContain("\\u0000");
    expect(payload.toString()).toContain("\\ud800");
    const out = parseMessage(topic, payload, now);
    expect(out.records.map((r) => r.id)).toEqual([valid.id]);
    expect(out.records[0].message).toBe("東京 ✓ ü 𝄞");
    expect(out.rejected).toEqual([
      { reason: "bad_record", detail: "message: contains U+0000" },
      { reason: "bad_record", detail: "id: not well-formed Unicode (a lone surrogate)" },
    ]);
  });

  it("checks every text the store writes", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ id: "p1/t1/\u0000" }, "id: contains U+0000"],
      [{ message: "cut \uDC00 low" }, "message: not well-formed Unicode (a lone surrogate)"],
      [{ message: "high at the end \uD83D" }, "message: not well-formed Unicode (a lone surrogate)"],
      [{ labels: { "a\u0000": "x" } }, "labels (a key): contains U+0000"],
      [{ labels: { "\uDFFF": "x" } }, "labels (a key): not well-formed Unicode (a lone surrogate)"],
      [{ labels: { site: "x\u0000" } }, "labels.site: contains U+0000"],
      [{ labels: { site: "\uD800" } }, "labels.site: not well-formed Unicode (a lone surrogate)"],
      ...(["version", "subject", "issuer", "notAfter"] as const).flatMap((key): [Record<string, unknown>, string][] => [
        [{ tls: { [key]: "a\u0000b" } }, `tls.${key}: contains U+0000`],
        [{ tls: { [key]: "a\uDBFFb" } }, `tls.${key}: not well-formed Unicode (a lone surrogate)`],
      ]),
    ];
    const out = parse([...cases.map(([extra]) => rec(extra)), rec()]);
    expect(out.rejected.map((r) => r.detail)).toEqual(cases.map(([, detail]) => detail));
    expect(out.rejected.every((r) => r.reason === "bad_record")).toBe(true);
    expect(out.records).toHaveLength(1);
  });

  it("accepts surrogate pairs, other control characters and texts near the suspect range", () => {
    const ok = rec({
      id: "p1/t1/😀/1", message: "tab\there \u0001 \uE000 \uFFFD 𝄞",
      labels: { "emoji😀": "🎉" }, tls: { version: "TLSv1.3", subject: "東京.example", issuer: "ü CA", notAfter: null, daysLeft: 3 },
    });
    const out = parse([ok]);
    expect(out.rejected).toEqual([]);
    expect(out.records).toHaveLength(1);
    expect(out.records[0].tls?.subject).toBe("東京.example");
  });
});

// Self-signed, valid 2025–2125, its subject and issuer CN "evil\0.example" (a NUL byte inside).
const NUL_CN_CERT = `-----BEGIN CERTIFICATE-----
MIIBHjCBxaADAgECAgEBMAoGCCqGSM49BAMCMBgxFjAUBgNVBAMMDWV2aWwALmV4
YW1wbGUwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNTAxMDEwMDAwMDBaMBgxFjAUBgNV
BAMMDWV2aWwALmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASDcSLC
LfqbGjokLl04Sp4PITjVvaiTGU6PHmMOQ115mkcM2cLPGEIevCmxSC9xKEQgJ23o
XbYqiMbprY7gb3vtMAoGCCqGSM49BAMCA0gAMEUCIADcvJu2kwaMsGFY32zFbVlJ
LiCz2vkn6FewIv3y/jNWAiEAhtNP8N6F49OFJg/TcIwa6YdH2ORFQJDN7ZFUgJ4g
JQo=
-----END CERTIFICATE-----`;
const NUL_CN_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8j6rxbVZr4Q58NVh
USKYcQ7fPOdyCEizZGLs9+Zu2wehRANCAASDcSLCLfqbGjokLl04Sp4PITjVvaiT
GU6PHmMOQ115mkcM2cLPGEIevCmxSC9xKEQgJ23oXbYqiMbprY7gb3vt
-----END PRIVATE KEY-----`;

describe("the probe's records are never rejected for their texts", () => {
  it("storable: NUL as the text \\u0000, a lone surrogate as U+FFFD, other texts unchanged", () => {
    expect(storable("a\u0000b")).toBe("a\\u0000b");
    expect(storable("x\uD800y\uDC00")).toBe("x\uFFFDy\uFFFD");
    for (const s of ["", "plain", "東京 ✓ ü 𝄞", "tab\t\u0001"]) expect(storable(s)).toBe(s);
  });

  it("a peer certificate whose CN holds a NUL: the 608 and its TLS facts are stored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catprobe-nul-"));
    const ca = join(dir, "ca.pem");
    writeFileSync(ca, NUL_CN_CERT);
    const server = createTlsServer({ cert: NUL_CN_CERT, key: NUL_CN_KEY }, (s) => s.end("pong"));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const port = (server.address() as { port: number }).port;
      const r = await runOnce({
        target: { host: "127.0.0.1", port, tls: true, servername: "other.example", ca },
        steps: [{ send: "ping", verify: "partial", expect: "pong" }],
      });
      expect(r.code).toBe(608);
      expect(r.tls?.subject).toBe("evil\u0000.example"); // as Node gives it
      expect(r.message).toContain("evil\u0000.example");
      const probe = { ...r, probe: "p1", task: "t1", id: "p1/t1/1/0", ts: now - 1000 } satisfies ResultRecord;
      const out = parseMessage(topic, Buffer.from(`[${fitRecord(probe, 1 << 20)}]`), now);
      expect(out.rejected).toEqual([]);
      expect(out.records[0].tls?.subject).toBe("evil\\u0000.example");
      expect(out.records[0].tls?.issuer).toBe("evil\\u0000.example");
      expect(out.records[0].message).toContain("evil\\u0000.example");
    } finally {
      server.close();
    }
  });

  it("a reply holding a NUL byte is quoted in the 607 as the escape, in text and buffer steps", async () => {
    const server = createServer((s) => s.end(Buffer.from([0x41, 0x00, 0x42])));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const port = (server.address() as { port: number }).port;
      const text = await runOnce({ target: { host: "127.0.0.1", port }, steps: [{ send: "ping", verify: "full", expect: "pong" }] });
      expect(text.code).toBe(607);
      expect(text.message).toContain('"A\\u0000B"');
      expect(text.message).not.toContain("\u0000");
      const buffer = await runOnce({
        target: { host: "127.0.0.1", port }, format: "buffer", steps: [{ send: "70", verify: "full", expect: "70" }],
      });
      expect(buffer.code).toBe(607);
      expect(buffer.message).toContain("0x410042");
    } finally {
      server.close();
    }
  });
});
