// Hex text <-> bytes, in place in the I/O window.
//
// Decoding streams: the host copies the hex text into the window slice by slice and calls
// hexDecode(len) for each; the bytes come back at the window start (in place is safe because
// output never overtakes input). Whitespace may separate byte pairs but not split one: "4 8"
// is a split pair; "48 6" (end) and "48 6 x" are an odd digit count at the lone digit.
// On error the kind and the offset (bytes from the start of the whole text) are kept until
// the next hexReset(); every character before the offset is ASCII, so the byte offset is
// also the character offset in the host's string.

import { WINDOW, WINDOW_SIZE, HEX_TABLE } from "./layout";

export const HEX_OK: i32 = 0;
export const HEX_EMPTY: i32 = 1;
export const HEX_ODD: i32 = 2;
export const HEX_BAD_CHAR: i32 = 3;
export const HEX_SPLIT_PAIR: i32 = 4;

const WS: u8 = 16;
const BAD: u8 = 255;

let pendingNibble: i32 = -1; // a digit waiting for its partner, -1 when none
let pendingOffset: u32 = 0;
let gapOffset: i32 = -1; // whitespace seen after the pending digit, -1 when none
let consumed: u32 = 0;
let decoded: u32 = 0; // bytes output so far
let errorKind: i32 = HEX_OK;
let errorOffset: u32 = 0;

export function initHexTable(): void {
  memory.fill(HEX_TABLE, BAD, 256);
  for (let i = 0; i < 10; i++) store<u8>(HEX_TABLE + 48 + i, <u8>i);
  for (let i = 0; i < 6; i++) {
    store<u8>(HEX_TABLE + 65 + i, <u8>(10 + i));
    store<u8>(HEX_TABLE + 97 + i, <u8>(10 + i));
  }
  store<u8>(HEX_TABLE + 32, WS); // space
  for (let c = 9; c <= 13; c++) store<u8>(HEX_TABLE + c, WS); // \t \n \v \f \r
}

export function hexReset(): void {
  pendingNibble = -1;
  gapOffset = -1;
  consumed = 0;
  decoded = 0;
  errorKind = HEX_OK;
  errorOffset = 0;
}

function fail(kind: i32, offset: u32): i32 {
  errorKind = kind;
  errorOffset = offset;
  return -1;
}

/** Decodes window[0, len) in place; returns the bytes written at the window start, or -1. */
export function hexDecode(len: i32): i32 {
  if (errorKind != HEX_OK) return -1;
  if (len < 0 || len > WINDOW_SIZE) len = 0;
  let i: i32 = 0;
  let out: usize = WINDOW;
  while (i < len) {
    if (pendingNibble >= 0) {
      // A digit is waiting: its partner, whitespace, or an error.
      const v = load<u8>(HEX_TABLE + load<u8>(WINDOW + i));
      if (v < 16) {
        if (gapOffset >= 0) return fail(HEX_SPLIT_PAIR, <u32>gapOffset);
        store<u8>(out++, <u8>((pendingNibble << 4) | v));
        pendingNibble = -1;
      } else if (v == WS) {
        if (gapOffset < 0) gapOffset = <i32>(consumed + i);
      } else {
        return gapOffset >= 0 ? fail(HEX_ODD, pendingOffset) : fail(HEX_BAD_CHAR, consumed + i);
      }
      i++;
      continue;
    }
    // Fast path: sixteen digits at a time (SIMD vectors, or two SWAR words with one check for
    // both) until whitespace, an error or the slice's end.
    if (ASC_FEATURE_SIMD) {
      while (i + 16 <= len && eightPairs(WINDOW + i, out)) {
        out += 8;
        i += 16;
      }
    } else {
      while (i + 16 <= len) {
        const a = load<u64>(WINDOW + i);
        const b = load<u64>(WINDOW + i, 8);
        if ((hexClass(a) & hexClass(b) & ~(a | b) & HIGH) != HIGH) break;
        store<u64>(out, (fourPairs(a) & 0xffffffff) | (fourPairs(b) << 32));
        out += 8;
        i += 16;
      }
    }
    if (i == len) break;
    const hi = load<u8>(HEX_TABLE + load<u8>(WINDOW + i));
    if (hi < 16) {
      // A whole pair inside this slice.
      if (i + 1 < len) {
        const lo = load<u8>(HEX_TABLE + load<u8>(WINDOW + i + 1));
        if (lo < 16) {
          store<u8>(out++, (hi << 4) | lo);
          i += 2;
          continue;
        }
      }
      pendingNibble = hi;
      pendingOffset = consumed + i;
      gapOffset = -1;
    } else if (hi != WS) {
      return fail(HEX_BAD_CHAR, consumed + i);
    }
    i++;
  }
  consumed += len;
  decoded += <u32>(out - WINDOW);
  return <i32>(out - WINDOW);
}

const ONES: u64 = 0x0101010101010101;
const HIGH: u64 = 0x8080808080808080;

/**
 * The top bit of each byte of x (eight ASCII characters, a little-endian u64) set when that
 * character is a hex digit; meaningful only for bytes whose own top bit is clear, which the
 * caller checks (~x & HIGH). SWAR, one word instead of eight table look-ups: for 7-bit bytes,
 * x + (0x7f - n) sets a byte's top bit exactly when the byte is above n, without carrying into
 * the next.
 */
// @ts-ignore: decorator
@inline function hexClass(x: u64): u64 {
  const lower = x | (0x20 * ONES);
  const digit = (x + (0x7f - 0x2f) * ONES) ^ (x + (0x7f - 0x39) * ONES); // '0'..'9'
  const letter = (lower + (0x7f - 0x60) * ONES) ^ (lower + (0x7f - 0x66) * ONES); // 'a'..'f'
  return digit | letter;
}

/** Eight hex digits as four bytes in the low half; the high half is junk. */
// @ts-ignore: decorator
@inline function fourPairs(x: u64): u64 {
  // Digits are their low nibble; letters (bit 6 set) their low nibble + 9.
  const nibbles = (x & (0x0f * ONES)) + ((x >> 6) & ONES) * 9;
  const pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff00ff00ff00ff;
  const packed = (pairs | (pairs >> 8)) & 0x0000ffff0000ffff;
  return packed | (packed >> 16);
}

/** Sixteen hex digits at p as eight bytes at out (SIMD build only); false if any is not one. */
// @ts-ignore: decorator
@inline function eightPairs(p: usize, out: usize): bool {
  const x = v128.load(p);
  const digit = i8x16.sub(x, i8x16.splat(0x30));
  const letter = i8x16.sub(v128.or(x, i8x16.splat(0x20)), i8x16.splat(0x61));
  const isDigit = i8x16.lt_u(digit, i8x16.splat(10));
  if (!i8x16.all_true(v128.or(isDigit, i8x16.lt_u(letter, i8x16.splat(6))))) return false;
  const nibbles = v128.bitselect(digit, i8x16.add(letter, i8x16.splat(10)), isDigit);
  // u16 lane k holds nibbles 2k (low byte) and 2k+1: make its low byte 2k << 4 | 2k+1.
  const pairs = v128.and(v128.or(i16x8.shl(nibbles, 4), i16x8.shr_u(nibbles, 8)), i16x8.splat(0xff));
  store<u64>(out, i64x2.extract_lane(i8x16.narrow_i16x8_u(pairs, pairs), 0));
  return true;
}

/** Ends a decode: 0 when the text was valid, -1 for an empty text or a lone digit. */
export function hexDecodeEnd(): i32 {
  if (errorKind != HEX_OK) return -1;
  if (pendingNibble >= 0) return fail(HEX_ODD, pendingOffset);
  if (decoded == 0) return fail(HEX_EMPTY, 0);
  return 0;
}

export function hexErrorKind(): i32 { return errorKind; }
export function hexErrorOffset(): u32 { return errorOffset; }

/** Encodes window[0, len) in place as 2·len lowercase hex characters (len ≤ half the window). */
export function hexEncode(len: i32): i32 {
  if (len < 0 || len > (WINDOW_SIZE >> 1)) return -1;
  // Back to front: byte i lands at 2i and 2i+1, never over a byte not yet read.
  for (let i = len - 1; i >= 0; i--) {
    const b = <u32>load<u8>(WINDOW + i);
    store<u16>(WINDOW + (i << 1), hexDigit(b >> 4) | (hexDigit(b & 15) << 8));
  }
  return len << 1;
}

// @ts-ignore: decorator
@inline function hexDigit(n: u32): u16 {
  return <u16>(n < 10 ? 48 + n : 87 + n);
}
