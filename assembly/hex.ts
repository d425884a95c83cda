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
let digits: u32 = 0;
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
  digits = 0;
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
        digits++;
      } else if (v == WS) {
        if (gapOffset < 0) gapOffset = <i32>(consumed + i);
      } else {
        return gapOffset >= 0 ? fail(HEX_ODD, pendingOffset) : fail(HEX_BAD_CHAR, consumed + i);
      }
      i++;
      continue;
    }
    const hi = load<u8>(HEX_TABLE + load<u8>(WINDOW + i));
    if (hi < 16) {
      // Fast path: a whole pair inside this slice.
      if (i + 1 < len) {
        const lo = load<u8>(HEX_TABLE + load<u8>(WINDOW + i + 1));
        if (lo < 16) {
          store<u8>(out++, (hi << 4) | lo);
          digits += 2;
          i += 2;
          continue;
        }
      }
      pendingNibble = hi;
      pendingOffset = consumed + i;
      gapOffset = -1;
      digits++;
    } else if (hi != WS) {
      return fail(HEX_BAD_CHAR, consumed + i);
    }
    i++;
  }
  consumed += len;
  return <i32>(out - WINDOW);
}

/** Ends a decode: 0 when the text was valid, -1 for an empty text or a lone digit. */
export function hexDecodeEnd(): i32 {
  if (errorKind != HEX_OK) return -1;
  if (pendingNibble >= 0) return fail(HEX_ODD, pendingOffset);
  if (digits == 0) return fail(HEX_EMPTY, 0);
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
