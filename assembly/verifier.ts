// Reply verifiers, streaming over chunks as they arrive. Each decides as early as it can:
//   none     passes at the first byte;
//   full     the whole reply equals the expected bytes: fails at the first differing byte or at
//            the first byte beyond them, passes when the reply ends with exactly them;
//   prefix   the reply starts with the expected bytes: fails at the first differing byte,
//            passes once they have all arrived (later bytes are not examined);
//   partial  passes at the first occurrence of the keyword (KMP: linear in the reply, whatever
//            the keyword, and the match state carries across chunks);
//   md5      compares the digest of the whole reply when it ends.
// A verdict, once reached, never changes; later pushes return it unchanged.

import { WINDOW, WINDOW_SIZE, WINDOW_HALF, LARGE_KEYWORD } from "./layout";
import { md5Init, md5Update, md5Final } from "./md5";
import {
  acquire, header, kindOf, keywordPtr, capacity,
  KIND_FREE, KIND_NONE, KIND_FULL, KIND_PARTIAL, KIND_MD5, KIND_PREFIX, KIND_MD5_STREAM,
  VERDICT_PENDING, VERDICT_PASS, VERDICT_FAIL,
  ERR_EMPTY, ERR_TOO_LONG, ERR_MODE, ERR_LENGTH, ERR_CONTEXT,
  F_KIND, F_VERDICT, F_LENGTH, F_MATCHED, F_CONSUMED, F_DECIDED_AT, F_EXPECTED_DIGEST, F_MD5,
} from "./contexts";

/**
 * Opens a verifier. `mode` is a KIND_* from none to prefix. `len` and the window hold its data:
 * full, prefix: `len` is the expected length (the bytes themselves come with each push);
 * partial: the keyword is window[0, len); md5: the expected digest is window[0, 16).
 * Returns the context, or ERR_EMPTY / ERR_TOO_LONG / ERR_MODE / ERR_BUSY.
 */
export function verifierOpen(mode: i32, len: i32): i32 {
  if (mode < KIND_NONE || mode > KIND_PREFIX) return ERR_MODE;
  const sized = mode != KIND_NONE && mode != KIND_MD5; // `len` is the data's length
  if (sized && len <= 0) return ERR_EMPTY;
  if (mode == KIND_PARTIAL && len > LARGE_KEYWORD) return ERR_TOO_LONG;
  const ctx = acquire(mode, mode == KIND_PARTIAL ? len : 0);
  if (ctx < 0) return ctx;
  const h = header(ctx);
  store<u32>(h, sized ? len : 0, F_LENGTH);
  if (mode == KIND_PARTIAL) buildFailureTable(ctx, len);
  if (mode == KIND_MD5) {
    memory.copy(h + F_EXPECTED_DIGEST, WINDOW, 16);
    md5Init(h + F_MD5);
  }
  return ctx;
}

function buildFailureTable(ctx: i32, m: i32): void {
  const kw = keywordPtr(ctx);
  const fail = kw + <usize>capacity(ctx);
  memory.copy(kw, WINDOW, m);
  store<u16>(fail, 0);
  let k: i32 = 0;
  for (let q = 1; q < m; q++) {
    const c = load<u8>(kw + q);
    while (k > 0 && load<u8>(kw + k) != c) k = load<u16>(fail + (<usize>(k - 1) << 1));
    if (load<u8>(kw + k) == c) k++;
    store<u16>(fail + (<usize>q << 1), <u16>k);
  }
}

function comparesExpected(kind: i32): bool {
  return kind == KIND_FULL || kind == KIND_PREFIX;
}

function isVerifier(ctx: i32): bool {
  const kind = kindOf(ctx);
  return kind != KIND_FREE && kind != KIND_MD5_STREAM;
}

function decide(h: usize, verdict: i32, at: u32): i32 {
  store<u8>(h, <u8>verdict, F_VERDICT);
  store<u32>(h, at, F_DECIDED_AT);
  return verdict;
}

/**
 * Feeds reply bytes window[0, len). A full or prefix verifier also needs the expected bytes that
 * line up with them at window[WINDOW_HALF, WINDOW_HALF + len) (only those still expected are
 * read), and len ≤ WINDOW_HALF.
 * Returns the verdict (VERDICT_*), or ERR_CONTEXT / ERR_LENGTH.
 */
export function verifierPush(ctx: i32, len: i32): i32 {
  if (!isVerifier(ctx)) return ERR_CONTEXT;
  const h = header(ctx);
  const verdict = <i32>load<u8>(h, F_VERDICT);
  if (verdict != VERDICT_PENDING) return verdict;
  const kind = <i32>load<u8>(h, F_KIND);
  if (len < 0 || len > (comparesExpected(kind) ? WINDOW_HALF : WINDOW_SIZE)) return ERR_LENGTH;
  const before = load<u32>(h, F_CONSUMED);
  store<u32>(h, before + <u32>len, F_CONSUMED);
  if (len == 0) return VERDICT_PENDING;
  if (kind == KIND_NONE) return decide(h, VERDICT_PASS, before + 1);
  if (comparesExpected(kind)) return pushExpected(h, kind, before, len);
  if (kind == KIND_PARTIAL) return pushPartial(ctx, h, before, len);
  md5Update(h + F_MD5, WINDOW, len);
  return VERDICT_PENDING;
}

function pushExpected(h: usize, kind: i32, before: u32, len: i32): i32 {
  const matched = load<u32>(h, F_MATCHED);
  const remaining = load<u32>(h, F_LENGTH) - matched;
  const n = <i32>min<u32>(<u32>len, remaining);
  const expected = WINDOW + <usize>WINDOW_HALF;
  let i: i32 = 0;
  // Eight bytes at a time until a difference, then find it byte by byte.
  while (i + 8 <= n && load<u64>(WINDOW + i) == load<u64>(expected + i)) i += 8;
  while (i < n && load<u8>(WINDOW + i) == load<u8>(expected + i)) i++;
  if (i < n) return decide(h, VERDICT_FAIL, before + <u32>i + 1);
  store<u32>(h, matched + <u32>n, F_MATCHED);
  if (<u32>n == remaining) {
    if (kind == KIND_PREFIX) return decide(h, VERDICT_PASS, before + <u32>n);
    // full: a byte beyond the expected ones fails at once; without one, the end decides
    if (len > n) return decide(h, VERDICT_FAIL, before + <u32>n + 1);
  }
  return VERDICT_PENDING;
}

function pushPartial(ctx: i32, h: usize, before: u32, len: i32): i32 {
  const kw = keywordPtr(ctx);
  const fail = kw + <usize>capacity(ctx);
  const m = load<u32>(h, F_LENGTH);
  const first = load<u8>(kw);
  let q = load<u32>(h, F_MATCHED);
  let i: i32 = 0;
  while (i < len) {
    if (q == 0) {
      i = skipTo(first, i, len);
      if (i == len) break;
    }
    const c = load<u8>(WINDOW + i);
    while (q > 0 && load<u8>(kw + q) != c) q = load<u16>(fail + (<usize>(q - 1) << 1));
    if (load<u8>(kw + q) == c) q++;
    i++;
    if (q == m) return decide(h, VERDICT_PASS, before + <u32>i);
  }
  store<u32>(h, q, F_MATCHED);
  return VERDICT_PENDING;
}

const ONES: u64 = 0x0101010101010101;
const HIGH: u64 = 0x8080808080808080;

/** The index of the next `byte` in window[i, len), or len: a word (or vector) at a time. */
function skipTo(byte: u8, i: i32, len: i32): i32 {
  if (ASC_FEATURE_SIMD) {
    const wanted = i8x16.splat(byte);
    while (i + 16 <= len && !v128.any_true(i8x16.eq(v128.load(WINDOW + i), wanted))) i += 16;
  }
  const pattern = <u64>byte * ONES;
  while (i + 8 <= len) {
    const v = load<u64>(WINDOW + i) ^ pattern; // a zero byte where `byte` is
    if (((v - ONES) & ~v & HIGH) != 0) break;
    i += 8;
  }
  while (i < len && load<u8>(WINDOW + i) != byte) i++;
  return i;
}

/** The reply has ended: decides whatever is still pending and returns the verdict. */
export function verifierEnd(ctx: i32): i32 {
  if (!isVerifier(ctx)) return ERR_CONTEXT;
  const h = header(ctx);
  const verdict = <i32>load<u8>(h, F_VERDICT);
  if (verdict != VERDICT_PENDING) return verdict;
  const consumed = load<u32>(h, F_CONSUMED);
  const kind = <i32>load<u8>(h, F_KIND);
  if (kind != KIND_MD5) {
    // A pending full verifier saw nothing beyond the expected bytes: it passes if it saw them all.
    const exact = kind == KIND_FULL && load<u32>(h, F_MATCHED) == load<u32>(h, F_LENGTH);
    return decide(h, exact ? VERDICT_PASS : VERDICT_FAIL, consumed);
  }
  md5Final(h + F_MD5);
  const same = load<u64>(h + F_MD5) == load<u64>(h + F_EXPECTED_DIGEST)
    && load<u64>(h + F_MD5 + 8) == load<u64>(h + F_EXPECTED_DIGEST + 8);
  return decide(h, same ? VERDICT_PASS : VERDICT_FAIL, consumed);
}

/**
 * Reply bytes examined when the verdict was reached. A full or prefix failure before the end is
 * at −1: the differing byte, or for full the first byte beyond the expected ones.
 */
export function verifierDecidedAt(ctx: i32): i32 {
  if (!isVerifier(ctx)) return ERR_CONTEXT;
  return <i32>load<u32>(header(ctx), F_DECIDED_AT);
}

/** Address of the reply's 16-byte MD5 digest, once an md5 verifier has ended. */
export function verifierDigest(ctx: i32): i32 {
  if (kindOf(ctx) != KIND_MD5) return ERR_CONTEXT;
  const h = header(ctx);
  if (<i32>load<u8>(h, F_VERDICT) == VERDICT_PENDING) return ERR_CONTEXT;
  return <i32>(h + F_MD5);
}
