import { describe, expect, it } from "vitest";
import { Core } from "../../host/core/core.js";
import { VerifyDataError } from "../../host/core/errors.js";
import { createVerifier, type Verdict } from "../../host/core/verifier.js";
import { rng, randomBytes, randomChunks, randomInt } from "../helpers/random.js";
import { BUILDS } from "../helpers/builds.js";

describe.each(BUILDS)("%s core", (build) => {
  const core = new Core(build);

  const b = (s: string) => Buffer.from(s, "utf8");

  /** Pushes the chunks until a verdict, then ends the reply; returns verdict and decidedAt. */
  function run(keyword: Uint8Array, chunks: Uint8Array[]): [Verdict, number] {
    const v = createVerifier(core, { mode: "partial", keyword });
    let verdict: Verdict = "pending";
    for (const chunk of chunks) {
      verdict = v.push(chunk);
      if (verdict !== "pending") break;
    }
    if (verdict === "pending") verdict = v.end();
    return [verdict, v.decidedAt];
  }

  /** Where a correct matcher decides: just past the first occurrence, or the reply's length. */
  function reference(keyword: Uint8Array, reply: Uint8Array): [Verdict, number] {
    const at = Buffer.from(reply).indexOf(Buffer.from(keyword));
    return at >= 0 ? ["pass", at + keyword.length] : ["fail", reply.length];
  }

  function bytewise(data: Uint8Array): Uint8Array[] {
    return Array.from(data, (_, i) => data.subarray(i, i + 1));
  }

  describe("partial match", () => {
    it("finds a keyword split at every position across two chunks", () => {
      const reply = b("HTTP/1.1 200 OK\r\nServer: lab\r\n\r\n+PONG and more");
      const keyword = b("+PONG");
      const at = reply.indexOf(keyword);
      for (let cut = 0; cut <= reply.length; cut++) {
        expect(run(keyword, [reply.subarray(0, cut), reply.subarray(cut)]), `cut ${cut}`)
          .toEqual(["pass", at + keyword.length]);
      }
    });

    it("finds a keyword fed one byte at a time, and fails when it never comes", () => {
      expect(run(b("abcab"), bytewise(b("ababcabcab")))).toEqual(["pass", 7]);
      expect(run(b("abcabd"), bytewise(b("abcabcabcab")))).toEqual(["fail", 11]);
    });

    it("finds a keyword at the very start and at the very end", () => {
      expect(run(b("OK"), [b("OK then")])).toEqual(["pass", 2]);
      expect(run(b("then"), [b("OK "), b("then")])).toEqual(["pass", 7]);
      expect(run(b("exact"), [b("exact")])).toEqual(["pass", 5]);
    });

    it("handles self-overlapping and adversarial keywords", () => {
      const cases: [string, string][] = [
        ["aab", "aaaaaaaaab"], ["abab", "abaabab"], ["aaaa", "aaabaaaa"], ["abcabd", "abcabcabd"],
        ["aabaab", "aabaabaab"], ["abacabab", "abacabacabab"], ["ab", "ba"],
      ];
      for (const [keyword, reply] of cases) {
        for (const chunks of [[b(reply)], bytewise(b(reply))]) {
          expect(run(b(keyword), chunks), `${keyword} in ${reply}`).toEqual(reference(b(keyword), b(reply)));
        }
      }
    });

    it("stays linear: a 4096-byte 'aaaa…ab' keyword against 8 MiB of 'a'", () => {
      // A naive matcher does ~34 billion comparisons here and would not finish in the test timeout.
      const keyword = Buffer.alloc(4096, "a");
      keyword[4095] = 0x62;
      const slab = Buffer.alloc(1 << 16, "a");
      const v = createVerifier(core, { mode: "partial", keyword });
      for (let i = 0; i < 128; i++) expect(v.push(slab)).toBe("pending");
      expect(v.push(b("b"))).toBe("pass");
      expect(v.decidedAt).toBe(128 * 65536 + 1);
    });

    it("matches multibyte UTF-8 keywords split inside a character", () => {
      for (const word of ["größe", "日本語", "😀ok", "naïve café"]) {
        const reply = b(`header ${word} trailer`);
        const keyword = b(word);
        const want = reference(keyword, reply);
        for (let cut = 0; cut <= reply.length; cut++) {
          expect(run(keyword, [reply.subarray(0, cut), reply.subarray(cut)]), `${word} cut ${cut}`).toEqual(want);
        }
        expect(run(keyword, bytewise(reply))).toEqual(want);
      }
    });

    it("agrees with Buffer.indexOf on 5,000 random replies with random chunkings", () => {
      const next = rng(6);
      for (let n = 0; n < 5_000; n++) {
        const alphabet = 2 + randomInt(next, 3);
        const reply = randomBytes(next, randomInt(next, 400), alphabet);
        const keyword = randomBytes(next, 1 + randomInt(next, 8), alphabet);
        const got = run(keyword, randomChunks(next, reply, 1 + randomInt(next, 40)));
        const want = reference(keyword, reply);
        if (got[0] !== want[0] || got[1] !== want[1]) {
          expect.fail(`case ${n}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
        }
      }
      expect(core.exports.contextsFree()).toBe(core.exports.contextCount());
    });

    it("finds a keyword across chunks larger than the I/O window", () => {
      const reply = Buffer.alloc(3 * core.windowSize + 100, "x");
      b("NEEDLE").copy(reply, core.windowSize - 3); // straddles the first slice boundary
      expect(run(b("NEEDLE"), [reply])).toEqual(["pass", core.windowSize + 3]);
    });

    it("supports keywords up to the core's limit and rejects longer or empty ones", () => {
      expect(core.maxKeyword).toBe(4096);
      const longest = randomBytes(rng(7), 4096);
      expect(run(longest, [b("pre"), longest])).toEqual(["pass", 3 + 4096]);
      expect(() => createVerifier(core, { mode: "partial", keyword: new Uint8Array(4097) }))
        .toThrow(new VerifyDataError("the keyword is 4097 bytes; the core supports at most 4096"));
      expect(() => createVerifier(core, { mode: "partial", keyword: new Uint8Array() }))
        .toThrow(new VerifyDataError("the keyword is empty"));
    });

    it("keeps the verdict once reached", () => {
      const v = createVerifier(core, { mode: "partial", keyword: b("OK") });
      expect(v.push(b("OK"))).toBe("pass");
      expect(v.push(b("more"))).toBe("pass");
      expect(v.end()).toBe("pass");
      expect(v.received).toBe(6);
    });
  });
});
