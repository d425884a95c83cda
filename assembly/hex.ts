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
  // The SWAR masks, loaded from memory rather than written as constants: V8 then keeps them in
  // registers or reads them as memory operands instead of a 10-byte movabs before every use
  // (5-10% of the loop's time on x64).
  const kLower = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS);
  const kDigitLo = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 8);
  const kDigitHi = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 16);
  const kLetterLo = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 24);
  const kLetterHi = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 32);
  const kHigh = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 40);
  const kOnes = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 48);
  const kLow = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 56);
  const kEven = ASC_FEATURE_SIMD ? 0 : load<u64>(SWAR_MASKS, 64);
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
      let p = WINDOW + i;
      const end = WINDOW + len - 16;
      while (p <= end) {
        const a = load<u64>(p);
        const b = load<u64>(p, 8);
        const la = a | kLower, lb = b | kLower;
        const ca = ((a + kDigitLo) ^ (a + kDigitHi)) | ((la + kLetterLo) ^ (la + kLetterHi));
        const cb = ((b + kDigitLo) ^ (b + kDigitHi)) | ((lb + kLetterLo) ^ (lb + kLetterHi));
        if (((a | b | ~(ca & cb)) & kHigh) != 0) break;
        const pa = pairs(a, kLow, kOnes, kEven), pb = pairs(b, kLow, kOnes, kEven);
        // pairs() leaves four bytes in bytes 0-1 and 4-5: two u16 stores take them as they are.
        store<u16>(out, <u16>pa);
        store<u16>(out, <u16>(pa >> 32), 2);
        store<u16>(out, <u16>pb, 4);
        store<u16>(out, <u16>(pb >> 32), 6);
        out += 8;
        p += 16;
      }
      i = <i32>(p - WINDOW);
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

/**
 * Masks for the release build's SWAR path (eight characters to a u64), most a byte repeated
 * eight times. The digit test: for 7-bit bytes, x + (0x7f - n) sets a byte's top bit exactly
 * when the byte is above n, without carrying into the next; so (x + 0x50) ^ (x + 0x46) flags
 * '0'..'9' and, on l = x | 0x20, (l + 0x1f) ^ (l + 0x19) flags 'a'..'f' and 'A'..'F'. A byte
 * with its own top bit set fails the check by itself, whatever its carry did to the others.
 */
const SWAR_MASKS: usize = ASC_FEATURE_SIMD ? 0 : memory.data<u64>([
  0x20 * ONES, // kLower
  (0x7f - 0x2f) * ONES, (0x7f - 0x39) * ONES, // kDigitLo, kDigitHi: '0'..'9'
  (0x7f - 0x60) * ONES, (0x7f - 0x66) * ONES, // kLetterLo, kLetterHi: 'a'..'f'
  0x80 * ONES, // kHigh
  ONES, // kOnes
  0x0f * ONES, // kLow
  0x00ff00ff00ff00ff, // kEven
]); // not in the SIMD build, which has no use for it

/**
 * Eight hex digits (a little-endian u64, already checked) as four bytes: the first two in
 * bytes 0-1, the other two in bytes 4-5; the rest is junk.
 */
// @ts-ignore: decorator
@inline function pairs(x: u64, low: u64, ones: u64, even: u64): u64 {
  // Digits are their low nibble; letters (bit 6 set) their low nibble + 9.
  const nibbles = (x & low) + ((x >> 6) & ones) * 9;
  const bytes = ((nibbles << 4) | (nibbles >> 8)) & even; // one byte in each u16
  return bytes | (bytes >> 8);
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
