import { describe, expect, it } from "vitest";
import { Core } from "../../host/core/core.js";
import { HexError, bytesToHex, hexToBytes } from "../../host/core/hex.js";
import { rng, randomBytes, randomInt } from "../helpers/random.js";
import { BUILDS } from "../helpers/builds.js";

describe.each(BUILDS)("%s core", (build) => {
  const core = new Core(build);

  const W = core.windowSize;

  function hexError(text: string | Uint8Array): HexError {
    try {
      hexToBytes(core, text);
    } catch (err) {
      expect(err).toBeInstanceOf(HexError);
      return err as HexError;
    }
    throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
  }

  describe("hex decode", () => {
    it("decodes upper and lower case, with whitespace between pairs", () => {
      expect(Buffer.from(hexToBytes(core, "48656C6c6F")).toString()).toBe("Hello");
      expect(Buffer.from(hexToBytes(core, " 48 65\t6c\r\n6c  6f \n")).toString()).toBe("Hello");
      expect(Array.from(hexToBytes(core, "00ff7F80"))).toEqual([0, 255, 127, 128]);
      expect(Array.from(hexToBytes(core, "\v0a\f0b"))).toEqual([10, 11]);
    });

    it("accepts bytes as well as strings", () => {
      expect(Array.from(hexToBytes(core, Buffer.from("de ad be ef")))).toEqual([0xde, 0xad, 0xbe, 0xef]);
    });

    it("reports an empty input, including whitespace only", () => {
      for (const text of ["", " ", "\r\n\t "]) {
        const err = hexError(text);
        expect([err.kind, err.offset]).toEqual(["empty", 0]);
        expect(err.message).toBe("no hex digits");
      }
    });

    it("reports an odd digit count at the digit without a partner", () => {
      expect([hexError("a").kind, hexError("a").offset]).toEqual(["odd", 0]);
      const err = hexError("48 65 6");
      expect([err.kind, err.offset]).toEqual(["odd", 6]);
      expect(err.message).toBe("odd number of hex digits: '6' at offset 6 has no partner");
      expect(hexError("48656c6 ").offset).toBe(6);
    });

    it("reports an invalid character with its offset", () => {
      const err = hexError("48656g6c");
      expect([err.kind, err.offset]).toEqual(["char", 5]);
      expect(err.message).toBe("invalid hex character 'g' at offset 5");
      expect(hexError("0x41").offset).toBe(1);
      expect(hexError("g0").offset).toBe(0);
      expect(hexError("41,42").message).toBe("invalid hex character ',' at offset 2");
      expect(hexError("41\u000042").message).toBe("invalid hex character U+0000 at offset 2");
      expect(hexError("41 é2").message).toBe("invalid hex character 'é' (U+00E9) at offset 3");
      expect(hexError("41😀").message).toBe("invalid hex character '😀' (U+1F600) at offset 2");
      expect(hexError(Buffer.from([0x34, 0x31, 0xff])).message).toBe("invalid hex character byte 0xFF at offset 2");
    });

    it("rejects whitespace inside a byte pair", () => {
      const err = hexError("48 6 5");
      expect([err.kind, err.offset]).toEqual(["split", 4]);
      expect(err.message).toBe("whitespace inside a byte pair at offset 4");
      expect(hexError("4\n8").offset).toBe(1);
    });

    it("the first error wins", () => {
      expect(hexError("4g 6").kind).toBe("char");
      expect([hexError("4 g").kind, hexError("4 g").offset]).toEqual(["odd", 0]);
      expect([hexError("4  8").kind, hexError("4  8").offset]).toEqual(["split", 1]);
    });

    it("handles pairs and errors that straddle I/O window slices", () => {
      // One leading space puts a byte pair across the boundary between the first two slices.
      const body = "ab".repeat(W);
      expect(hexToBytes(core, " " + body).length).toBe(W);
      // A digit at the end of one slice and whitespace at the start of the next.
      const split = hexError("a".repeat(W - 1) + " 0");
      expect([split.kind, split.offset]).toEqual(["split", W - 1]);
      // An invalid character far past the first slice keeps its absolute offset.
      const far = "00".repeat(3 * W) + "zz";
      expect([hexError(far).kind, hexError(far).offset]).toEqual(["char", 6 * W]);
      // A lone digit at the very end of a long input.
      expect(hexError("00".repeat(W) + "7").offset).toBe(2 * W);
      // Non-ASCII text longer than a slice still reports the character offset.
      expect(hexError("00".repeat(W) + "ü" + "0".repeat(W)).offset).toBe(2 * W);
    });

    it("checks every byte value at every position of the sixteen-digit fast path", () => {
      // Two blocks of sixteen digits after an offset of 0–1 characters, so that each position
      // of both SWAR words (and of a SIMD vector) sees each byte value; whitespace is left out
      // (its meaning depends on where it is), every other non-digit is an invalid character.
      const digits = Buffer.from("0123456789abcdefABCDEF0123456789");
      const isHex = (c: number) => /[0-9a-fA-F]/.test(String.fromCharCode(c));
      for (const lead of [0, 1]) {
        for (let pos = lead; pos < lead + 32; pos++) {
          for (let c = 0; c < 256; c++) {
            if (c === 32 || (c >= 9 && c <= 13)) continue;
            const text = Buffer.alloc(lead + 32 + (lead ? 1 : 0), 0x20);
            digits.copy(text, lead);
            text[pos] = c;
            if (isHex(c)) {
              const expected = Buffer.from(text.toString("latin1").trim(), "hex");
              expect(Buffer.from(hexToBytes(core, text)).equals(expected)).toBe(true);
            } else {
              const err = hexError(text);
              expect([err.kind, err.offset]).toEqual(["char", pos]);
            }
          }
        }
      }
    });

    it("never takes a character above U+00FF for the byte it ends in", () => {
      // U+0130, U+0120 and U+0161 end in the bytes of '0', space and 'a'.
      for (const wide of ["\u0130", "\u0120", "\u0161", "\u{1F600}"]) {
        expect([hexError(wide + "0").kind, hexError(wide + "0").offset]).toEqual(["char", 0]);
        expect(hexError("0a" + wide + "0").offset).toBe(2);
        const far = hexError("00".repeat(W) + wide + "0".repeat(W));
        expect([far.kind, far.offset]).toEqual(["char", 2 * W]);
      }
      // Latin-1 characters are invalid wherever they are, in a string stored one or two bytes
      // per character.
      expect(hexError("00".repeat(W) + "\u00e9").offset).toBe(2 * W);
      const twoByte = ("ab".repeat(W) + "\u0100").slice(0, 2 * W) + "\u00ff";
      expect([hexError(twoByte).kind, hexError(twoByte).offset]).toEqual(["char", 2 * W]);
      const valid = ("cd".repeat(W) + "\u0100").slice(0, 2 * W);
      expect(Buffer.from(hexToBytes(core, valid)).equals(Buffer.alloc(W, 0xcd))).toBe(true);
    });

    it("round-trips random bytes, and agrees with Buffer on valid hex", () => {
      const next = rng(4);
      for (let n = 0; n < 500; n++) {
        const bytes = randomBytes(next, randomInt(next, n % 50 === 0 ? 3 * W : 300) + 1);
        const hex = bytesToHex(core, bytes);
        expect(hex).toBe(Buffer.from(bytes).toString("hex"));
        expect(Buffer.from(hexToBytes(core, hex)).equals(Buffer.from(bytes))).toBe(true);
        expect(Buffer.from(hexToBytes(core, hex.toUpperCase())).equals(Buffer.from(bytes))).toBe(true);
      }
    });
  });

  describe("hex encode", () => {
    it("encodes lowercase, including inputs larger than the window", () => {
      expect(bytesToHex(core, new Uint8Array([0, 1, 0xab, 0xff]))).toBe("0001abff");
      expect(bytesToHex(core, new Uint8Array())).toBe("");
      const big = randomBytes(rng(5), W * 2 + 3);
      expect(bytesToHex(core, big)).toBe(Buffer.from(big).toString("hex"));
    });
  });
});
