// The context pool: a fixed table of slots, each an MD5 stream or a reply verifier.
//
// Header fields (HEADER_SIZE bytes per slot):
//   0  u8  kind        KIND_* below; KIND_FREE when the slot is unused
//   1  u8  verdict     VERDICT_*
//   4  u32 length      full, prefix: expected length; partial: keyword length
//   8  u32 matched     full, prefix: bytes matched so far; partial: KMP state
//  12  u32 consumed    reply bytes pushed
//  16  u32 decidedAt   reply bytes examined when the verdict was reached
//  20  16 bytes        md5 verifier: the expected digest
//  40  MD5 state (md5.ts), whose first 16 bytes hold the digest after finalisation
// Slots with a keyword capacity also own KMP storage: the keyword, then a u16 failure table.

import {
  HEADERS, HEADER_SIZE, CONTEXT_COUNT, BARE_SLOTS, SMALL_SLOTS, SMALL_KEYWORD, SMALL_AREA,
  LARGE_KEYWORD, LARGE_AREA,
} from "./layout";

// Kinds 1–5 are the verify modes verifierOpen takes (public ABI); MD5 streams are internal.
export const KIND_FREE: i32 = 0;
export const KIND_NONE: i32 = 1;
export const KIND_FULL: i32 = 2;
export const KIND_PARTIAL: i32 = 3;
export const KIND_MD5: i32 = 4;
export const KIND_PREFIX: i32 = 5;
export const KIND_MD5_STREAM: i32 = 6;

export const VERDICT_PENDING: i32 = 0;
export const VERDICT_PASS: i32 = 1;
export const VERDICT_FAIL: i32 = 2;

// Negative results shared by every export that takes or opens a context.
export const ERR_BUSY: i32 = -1; // no free slot with enough keyword capacity
export const ERR_EMPTY: i32 = -2; // empty keyword or expected reply
export const ERR_TOO_LONG: i32 = -3; // keyword longer than the largest slot
export const ERR_MODE: i32 = -4; // unknown verify mode
export const ERR_LENGTH: i32 = -5; // a length outside the I/O window
export const ERR_CONTEXT: i32 = -6; // not an open context of the right kind

export const F_KIND: usize = 0;
export const F_VERDICT: usize = 1;
export const F_LENGTH: usize = 4;
export const F_MATCHED: usize = 8;
export const F_CONSUMED: usize = 12;
export const F_DECIDED_AT: usize = 16;
export const F_EXPECTED_DIGEST: usize = 20;
export const F_MD5: usize = 40;

// @ts-ignore: decorator
@inline export function header(ctx: i32): usize {
  return HEADERS + <usize>(ctx * HEADER_SIZE);
}

export function capacity(ctx: i32): i32 {
  if (ctx < BARE_SLOTS) return 0;
  return ctx < BARE_SLOTS + SMALL_SLOTS ? SMALL_KEYWORD : LARGE_KEYWORD;
}

/** Start of the slot's keyword; its u16 failure table follows at keyword + capacity. */
export function keywordPtr(ctx: i32): usize {
  const small = ctx - BARE_SLOTS;
  if (small < SMALL_SLOTS) return SMALL_AREA + <usize>(small * SMALL_KEYWORD * 3);
  return LARGE_AREA + <usize>((small - SMALL_SLOTS) * LARGE_KEYWORD * 3);
}

/** Claims the tightest free slot holding `need` keyword bytes; ERR_BUSY when none is free. */
export function acquire(kind: i32, need: i32): i32 {
  for (let ctx = 0; ctx < CONTEXT_COUNT; ctx++) {
    const h = header(ctx);
    if (<i32>load<u8>(h, F_KIND) == KIND_FREE && capacity(ctx) >= need) {
      memory.fill(h, 0, F_MD5);
      store<u8>(h, <u8>kind, F_KIND);
      return ctx;
    }
  }
  return ERR_BUSY;
}

/** The context's kind, or KIND_FREE for an out-of-range or unused index. */
export function kindOf(ctx: i32): i32 {
  if (ctx < 0 || ctx >= CONTEXT_COUNT) return KIND_FREE;
  return <i32>load<u8>(header(ctx), F_KIND);
}

export function release(ctx: i32): i32 {
  if (kindOf(ctx) == KIND_FREE) return ERR_CONTEXT;
  store<u8>(header(ctx), <u8>KIND_FREE, F_KIND);
  return 0;
}

export function freeCount(): i32 {
  let n = 0;
  for (let ctx = 0; ctx < CONTEXT_COUNT; ctx++) if (kindOf(ctx) == KIND_FREE) n++;
  return n;
}
