// Power-on self-test: known answers for MD5 (RFC 1321 appendix A.5), hex and every verifier.
// Returns 0 when all pass, otherwise the number of the first failing check. It needs one free
// context and overwrites the I/O window, so a device calls it at boot, before other work.

import { WINDOW, WINDOW_HALF } from "./layout";
import { hexReset, hexDecode, hexDecodeEnd, hexEncode, hexErrorKind, hexErrorOffset,
  HEX_ODD, HEX_BAD_CHAR, HEX_SPLIT_PAIR, HEX_EMPTY } from "./hex";
import { md5Open, md5Push, md5Digest } from "./digest";
import { verifierOpen, verifierPush, verifierEnd, verifierDecidedAt } from "./verifier";
import { release, freeCount, KIND_NONE, KIND_FULL, KIND_PARTIAL, KIND_MD5, KIND_PREFIX,
  VERDICT_PENDING, VERDICT_PASS, VERDICT_FAIL } from "./contexts";

const ERR_NO_CONTEXT: i32 = 99;

/** Copies the string's characters (all ASCII here) into the window at `at`; returns the length. */
function put(s: string, at: usize = 0): i32 {
  for (let i = 0; i < s.length; i++) store<u8>(WINDOW + at + i, <u8>s.charCodeAt(i));
  return s.length;
}

function windowEquals(s: string, at: usize = 0): bool {
  for (let i = 0; i < s.length; i++) {
    if (load<u8>(WINDOW + at + i) != <u8>s.charCodeAt(i)) return false;
  }
  return true;
}

// RFC 1321 A.5 digests, as raw bytes to keep the module small.
const RFC_DIGESTS = memory.data<u8>([
  0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e,
  0x0c, 0xc1, 0x75, 0xb9, 0xc0, 0xf1, 0xb6, 0xa8, 0x31, 0xc3, 0x99, 0xe2, 0x69, 0x77, 0x26, 0x61,
  0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72,
  0xf9, 0x6b, 0x69, 0x7d, 0x7c, 0xb7, 0x93, 0x8d, 0x52, 0x5a, 0x2f, 0x31, 0xaa, 0xf1, 0x61, 0xd0,
  0xc3, 0xfc, 0xd3, 0xd7, 0x61, 0x92, 0xe4, 0x00, 0x7d, 0xfb, 0x49, 0x6c, 0xca, 0x67, 0xe1, 0x3b,
  0xd1, 0x74, 0xab, 0x98, 0xd2, 0x77, 0xd9, 0xf5, 0xa5, 0x61, 0x1c, 0x2c, 0x9f, 0x41, 0x9d, 0x9f,
  0x57, 0xed, 0xf4, 0xa2, 0x2b, 0xe3, 0xc9, 0x55, 0xac, 0x49, 0xda, 0x2e, 0x21, 0x07, 0xb6, 0x7a
]);

/** MD5 of `message` × `repeat`, fed in `chunk`-byte pieces, equals RFC digest `vector`. */
function md5Is(message: string, vector: i32, chunk: i32 = 64, repeat: i32 = 1): bool {
  const ctx = md5Open();
  if (ctx < 0) return false;
  const total = message.length * repeat;
  for (let off = 0; off < total; off += chunk) {
    const n = min(chunk, total - off);
    for (let i = 0; i < n; i++) store<u8>(WINDOW + i, <u8>message.charCodeAt((off + i) % message.length));
    md5Push(ctx, n);
  }
  const digest = <usize>md5Digest(ctx);
  const expected = RFC_DIGESTS + <usize>(vector << 4);
  const ok = load<u64>(digest) == load<u64>(expected) && load<u64>(digest, 8) == load<u64>(expected, 8);
  release(ctx);
  return ok;
}

function hexFails(text: string, kind: i32, offset: u32): bool {
  hexReset();
  if (hexDecode(put(text)) >= 0 && hexDecodeEnd() == 0) return false;
  return hexErrorKind() == kind && hexErrorOffset() == offset;
}

function hexDecodes(text: string, bytes: string): bool {
  hexReset();
  return hexDecode(put(text)) == bytes.length && hexDecodeEnd() == 0 && windowEquals(bytes);
}

/** Runs a verifier over `reply` in `chunk`-byte pieces; returns verdict * 1000 + decidedAt. */
function verify(mode: i32, data: string, reply: string, chunk: i32): i32 {
  let ctx: i32;
  if (mode == KIND_MD5) {
    memory.copy(WINDOW, RFC_DIGESTS + 32, 16); // md5("abc")
    ctx = verifierOpen(mode, 16);
  } else {
    ctx = verifierOpen(mode, mode == KIND_PARTIAL ? put(data) : data.length);
  }
  if (ctx < 0) return -1;
  let verdict: i32 = VERDICT_PENDING;
  for (let off = 0; off < reply.length && verdict == VERDICT_PENDING; off += chunk) {
    const n = min(chunk, reply.length - off);
    for (let i = 0; i < n; i++) {
      store<u8>(WINDOW + i, <u8>reply.charCodeAt(off + i));
      // The expected bytes for full and prefix; the other verifiers do not read them.
      if (off + i < data.length) store<u8>(WINDOW + WINDOW_HALF + i, <u8>data.charCodeAt(off + i));
    }
    verdict = verifierPush(ctx, n);
  }
  if (verdict == VERDICT_PENDING) verdict = verifierEnd(ctx);
  const result = verdict * 1000 + verifierDecidedAt(ctx);
  release(ctx);
  return result;
}

const PASS: i32 = VERDICT_PASS * 1000;
const FAIL: i32 = VERDICT_FAIL * 1000;

export function selfTest(): i32 {
  if (freeCount() == 0) return ERR_NO_CONTEXT;
  // MD5, RFC 1321 A.5, whole and one byte at a time
  if (!md5Is("", 0)) return 1;
  if (!md5Is("a", 1)) return 2;
  if (!md5Is("abc", 2)) return 3;
  if (!md5Is("message digest", 3)) return 4;
  if (!md5Is("abcdefghijklmnopqrstuvwxyz", 4)) return 5;
  if (!md5Is("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 5)) return 6;
  if (!md5Is("1234567890", 6, 64, 8)) return 7;
  if (!md5Is("1234567890", 6, 1, 8)) return 8;
  // hex
  if (!hexDecodes("48 65\t6C 6c\r\n6F", "Hello")) return 10;
  if (!hexFails("abc", HEX_ODD, 2)) return 11;
  if (!hexFails("4g", HEX_BAD_CHAR, 1)) return 12;
  if (!hexFails("00 4 8", HEX_SPLIT_PAIR, 4)) return 13;
  if (!hexFails(" ", HEX_EMPTY, 0)) return 14;
  if (hexEncode(put("Hi\xff")) != 6 || !windowEquals("4869ff")) return 15;
  // verifiers: verdict and the reply bytes examined when it was reached
  if (verify(KIND_NONE, "", "x", 1) != PASS + 1) return 20;
  if (verify(KIND_NONE, "", "", 1) != FAIL + 0) return 21;
  if (verify(KIND_FULL, "+OK", "+OK", 2) != PASS + 3) return 22;
  if (verify(KIND_FULL, "+OK", "+NO", 1) != FAIL + 2) return 23;
  if (verify(KIND_FULL, "+OK", "+O", 1) != FAIL + 2) return 24;
  if (verify(KIND_PARTIAL, "abab", "aababab", 1) != PASS + 5) return 25;
  if (verify(KIND_PARTIAL, "aab", "aaaaaaab", 3) != PASS + 8) return 26;
  if (verify(KIND_PARTIAL, "abc", "ababab", 2) != FAIL + 6) return 27;
  if (verify(KIND_MD5, "", "abc", 1) != PASS + 3) return 28;
  if (verify(KIND_MD5, "", "abd", 2) != FAIL + 3) return 29;
  // full fails at the first byte beyond the expected ones; prefix passes before it
  if (verify(KIND_FULL, "+OK", "+OK more", 2) != FAIL + 4) return 30;
  if (verify(KIND_PREFIX, "+OK", "+OK more", 2) != PASS + 3) return 31;
  if (verify(KIND_PREFIX, "+OK", "+NO", 1) != FAIL + 2) return 32;
  if (verify(KIND_PREFIX, "+OK", "+O", 1) != FAIL + 2) return 33;
  return 0;
}
