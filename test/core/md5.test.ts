import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Core } from "../../host/core/core.js";
import { Md5, md5 } from "../../host/core/md5.js";
import { rng, randomBytes, randomChunks, randomInt } from "../helpers/random.js";
import { BUILDS } from "../helpers/builds.js";
import { RFC1321_VECTORS } from "../fixtures/rfc1321.js";

describe.each(BUILDS)("%s core", (build) => {
  const core = new Core(build);

  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  const nodeMd5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

  describe("MD5 in the core", () => {
    it("matches the RFC 1321 test suite", () => {
      for (const [input, digest] of RFC1321_VECTORS) expect(hex(md5(core, input))).toBe(digest);
    });

    it("matches node:crypto at sizes around block and page edges", () => {
      const next = rng(1);
      const sizes = [0, 1, 2, 3, 4, 5, 55, 56, 57, 63, 64, 65, 127, 128, 129, 1000,
        16383, 16384, 16385, 65535, 65536, 65537, 3 * 65536 + 7];
      for (const size of sizes) {
        const data = randomBytes(next, size);
        expect(hex(md5(core, data)), `size ${size}`).toBe(nodeMd5(data));
      }
    });

    it("gives the same digest for every pair of split points of a 200-byte input", () => {
      const data = randomBytes(rng(2), 200);
      const want = nodeMd5(data);
      for (let i = 0; i <= 200; i++) {
        for (let j = i; j <= 200; j++) {
          const got = new Md5(core).update(data.subarray(0, i)).update(data.subarray(i, j))
            .update(data.subarray(j)).digest();
          if (hex(got) !== want) expect.fail(`split at ${i} and ${j}: ${hex(got)} != ${want}`);
        }
      }
    });

    it("chunked equals one-shot for 10,000 random inputs with random chunkings", () => {
      const next = rng(3);
      for (let n = 0; n < 10_000; n++) {
        const data = randomBytes(next, randomInt(next, n % 100 === 0 ? 40_000 : 600));
        const stream = new Md5(core);
        for (const chunk of randomChunks(next, data, 1 + randomInt(next, 200))) stream.update(chunk);
        const got = hex(stream.digest());
        if (got !== nodeMd5(data)) expect.fail(`input ${n} (${data.length} bytes): ${got}`);
        if (got !== hex(md5(core, data))) expect.fail(`input ${n}: chunked differs from one-shot`);
      }
      expect(core.exports.contextsFree()).toBe(core.exports.contextCount());
    });

    it("hashes strings as UTF-8", () => {
      expect(hex(md5(core, "größe 日本"))).toBe(nodeMd5(Buffer.from("größe 日本", "utf8")));
    });

    it("frees its context at digest() and refuses further use", () => {
      const stream = new Md5(core).update("abc");
      stream.digest();
      expect(core.exports.contextsFree()).toBe(core.exports.contextCount());
      expect(() => stream.update("x")).toThrow(/md5Push returned -6/);
    });
  });
});
