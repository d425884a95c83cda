import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Core } from "../../host/core/core.js";
import { CoreBusyError, VerifyDataError } from "../../host/core/errors.js";
import { createVerifier } from "../../host/core/verifier.js";
import { rng, randomBytes, randomChunks } from "../helpers/random.js";
import { BUILDS } from "../helpers/builds.js";

describe.each(BUILDS)("%s core", (build) => {
  const core = new Core(build);

  const b = (s: string) => Buffer.from(s, "utf8");

  describe("full match: the whole reply equals the expected bytes", () => {
    const full = (expected: Uint8Array) => createVerifier(core, { mode: "full", expected });

    it("passes when the reply ends with exactly the expected bytes", () => {
      const v = full(b("+OK ready\r\n"));
      expect(v.push(b("+OK "))).toBe("pending");
      expect(v.push(b("ready\r\n"))).toBe("pending"); // more could still come
      expect(v.end()).toBe("pass");
      expect(v.decidedAt).toBe(11);
    });

    it("fails at the first byte beyond the expected ones, in the same push or a later one", () => {
      const v = full(new Uint8Array([0x20, 0x02, 0x00])); // an MQTT CONNACK that accepts
      expect(v.push(new Uint8Array([0x20, 0x02, 0x00, 0x01]))).toBe("fail");
      expect(v.decidedAt - 1).toBe(3); // the first extra byte's offset in the reply
      const later = full(b("+"));
      expect(later.push(b("+"))).toBe("pending");
      expect(later.push(b("PONG\r\n"))).toBe("fail");
      expect(later.decidedAt - 1).toBe(1);
      expect(later.end()).toBe("fail"); // a verdict never changes
    });

    it("fails at the first differing byte", () => {
      const v = full(b("+OK ready"));
      expect(v.push(b("+OK"))).toBe("pending");
      expect(v.push(b(" reXdy"))).toBe("fail");
      expect(v.decidedAt - 1).toBe(6); // the differing byte's offset in the reply
    });

    it("fails when the reply ends short", () => {
      const v = full(b("+OK ready"));
      expect(v.push(b("+OK re"))).toBe("pending");
      expect(v.end()).toBe("fail");
      expect(v.decidedAt).toBe(6);
    });

    it("handles expected data longer than the I/O window, pushed in any chunking", () => {
      const next = rng(8);
      const expected = randomBytes(next, 5 * core.windowSize + 17);
      for (const max of [1000, core.windowHalf + 5, 3 * core.windowSize]) {
        const v = full(expected);
        for (const chunk of randomChunks(next, expected, max)) expect(v.push(chunk)).toBe("pending");
        expect(v.end()).toBe("pass");
        expect(v.decidedAt).toBe(expected.length);
      }
      const wrong = Buffer.from(expected);
      wrong[4 * core.windowSize + 3] ^= 1;
      const v = full(expected);
      expect(v.push(wrong)).toBe("fail");
      expect(v.decidedAt - 1).toBe(4 * core.windowSize + 3);
    });

    it("fails at the first extra byte when the reply runs windows past the expected length", () => {
      const next = rng(11);
      const expected = randomBytes(next, core.windowHalf + 100);
      const reply = Buffer.concat([expected, randomBytes(next, 3 * core.windowSize)]);
      for (const max of [1, 1000, core.windowHalf + 5, 4 * core.windowSize]) {
        const v = full(expected);
        const chunks = randomChunks(next, reply, max);
        let verdict = "pending";
        for (const chunk of chunks) if ((verdict = v.push(chunk)) !== "pending") break;
        expect(verdict).toBe("fail");
        expect(v.decidedAt - 1).toBe(expected.length);
      }
    });

    it("rejects an empty expected reply", () => {
      expect(() => full(new Uint8Array())).toThrow(new VerifyDataError("the expected reply is empty"));
    });
  });

  describe("prefix: the reply starts with the expected bytes", () => {
    const prefix = (expected: Uint8Array) => createVerifier(core, { mode: "prefix", expected });

    it("passes as soon as the expected bytes have arrived, whatever follows", () => {
      const v = prefix(b("+OK ready\r\n"));
      expect(v.push(b("+OK "))).toBe("pending");
      expect(v.push(b("ready\r\n+OK extra"))).toBe("pass");
      expect(v.decidedAt).toBe(11);
      expect(prefix(b("+")).push(b("+PONG\r\n"))).toBe("pass");
    });

    it("fails at the first differing byte, or when the reply ends short", () => {
      const v = prefix(b("+OK ready"));
      expect(v.push(b("+OK reXdy and more"))).toBe("fail");
      expect(v.decidedAt - 1).toBe(6);
      const short = prefix(b("+OK ready"));
      expect(short.push(b("+OK re"))).toBe("pending");
      expect(short.end()).toBe("fail");
      expect(short.decidedAt).toBe(6);
    });

    it("handles expected data longer than the I/O window, pushed in any chunking", () => {
      const next = rng(12);
      const expected = randomBytes(next, 3 * core.windowSize + 5);
      const reply = Buffer.concat([expected, b("tail")]);
      for (const max of [1000, core.windowHalf + 5, 4 * core.windowSize]) {
        const v = prefix(expected);
        let verdict = "pending";
        for (const chunk of randomChunks(next, reply, max)) if ((verdict = v.push(chunk)) !== "pending") break;
        expect(verdict).toBe("pass");
        expect(v.decidedAt).toBe(expected.length);
      }
    });

    it("rejects an empty expected reply", () => {
      expect(() => prefix(new Uint8Array())).toThrow(new VerifyDataError("the expected reply is empty"));
    });
  });

  describe("verifierOpen modes (public ABI: 1 none, 2 full, 3 partial, 4 md5, 5 prefix)", () => {
    it("opens 1–5 and refuses anything else", () => {
      const x = core.exports;
      core.window.set(b("k"));
      for (const mode of [1, 2, 3, 4, 5]) {
        const ctx = x.verifierOpen(mode, mode === 4 ? 16 : 1);
        expect(ctx, `mode ${mode}`).toBeGreaterThanOrEqual(0);
        x.contextRelease(ctx);
      }
      for (const mode of [0, 6, 7, -1]) expect(x.verifierOpen(mode, 1), `mode ${mode}`).toBe(-4);
      expect(x.verifierOpen(5, 0)).toBe(-2);
      expect(x.contextsFree()).toBe(x.contextCount());
    });
  });

  describe("md5 verify", () => {
    const digestOf = (data: Uint8Array) => createHash("md5").update(data).digest();

    it("passes when the whole reply hashes to the digest, and exposes the reply's digest", () => {
      const reply = randomBytes(rng(9), 300_000);
      const v = createVerifier(core, { mode: "md5", digest: digestOf(reply) });
      for (const chunk of randomChunks(rng(10), reply, 5000)) expect(v.push(chunk)).toBe("pending");
      expect(v.end()).toBe("pass");
      expect(v.decidedAt).toBe(reply.length);
      expect(Buffer.from(v.replyDigest!).equals(digestOf(reply))).toBe(true);
    });

    it("fails when the reply differs, reporting the digest it got", () => {
      const v = createVerifier(core, { mode: "md5", digest: digestOf(b("expected")) });
      v.push(b("something else"));
      expect(v.end()).toBe("fail");
      expect(Buffer.from(v.replyDigest!).toString("hex")).toBe(digestOf(b("something else")).toString("hex"));
    });

    it("rejects a digest that is not 16 bytes", () => {
      expect(() => createVerifier(core, { mode: "md5", digest: new Uint8Array(15) }))
        .toThrow(/16 bytes \(32 hex digits\), got 15/);
    });
  });

  describe("none", () => {
    it("passes at the first byte and fails an empty reply", () => {
      const v = createVerifier(core, { mode: "none" });
      expect(v.push(new Uint8Array())).toBe("pending");
      expect(v.push(b("x"))).toBe("pass");
      expect(v.decidedAt).toBe(1);
      expect(createVerifier(core, { mode: "none" }).end()).toBe("fail");
    });
  });

  describe("context pool", () => {
    it("holds contexts only while pending, and says when none is free", () => {
      const total = core.exports.contextCount();
      expect(total).toBe(24);
      const open = Array.from({ length: total }, () => createVerifier(core, { mode: "none" }));
      expect(core.exports.contextsFree()).toBe(0);
      expect(() => createVerifier(core, { mode: "none" })).toThrow(CoreBusyError);
      open[0].push(b("x")); // a verdict frees the context at once
      expect(core.exports.contextsFree()).toBe(1);
      open.forEach((v) => v.release());
      expect(core.exports.contextsFree()).toBe(total);
    });

    it("has 2 slots for keywords up to 4096 bytes and 14 more up to 256", () => {
      const capacities = Array.from({ length: 24 }, (_, i) => core.exports.contextCapacity(i));
      expect(capacities).toEqual([...Array(8).fill(0), ...Array(14).fill(256), 4096, 4096]);
      const large = () => createVerifier(core, { mode: "partial", keyword: new Uint8Array(257).fill(1) });
      const held = [large(), large()];
      expect(large).toThrow(CoreBusyError);
      // Short keywords still find room while the large slots are taken.
      const small = createVerifier(core, { mode: "partial", keyword: b("+PONG") });
      [...held, small].forEach((v) => v.release());
      expect(core.exports.contextsFree()).toBe(24);
    });

    it("gives every Core instance its own pool", () => {
      const other = new Core();
      const held = Array.from({ length: 24 }, () => createVerifier(other, { mode: "none" }));
      expect(core.exports.contextsFree()).toBe(24);
      held.forEach((v) => v.release());
    });
  });
});
