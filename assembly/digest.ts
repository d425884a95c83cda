// MD5 streams over pool contexts: open, update with window slices, final.

import { WINDOW_SIZE, WINDOW } from "./layout";
import { md5Init, md5Update, md5Final } from "./md5";
import {
  acquire, header, kindOf, KIND_MD5_STREAM, ERR_CONTEXT, ERR_LENGTH, F_MD5, F_VERDICT,
  VERDICT_PENDING, VERDICT_PASS,
} from "./contexts";

/** Opens an MD5 stream; returns its context or ERR_BUSY. */
export function md5Open(): i32 {
  const ctx = acquire(KIND_MD5_STREAM, 0);
  if (ctx >= 0) md5Init(header(ctx) + F_MD5);
  return ctx;
}

/** Hashes window[0, len). */
export function md5Push(ctx: i32, len: i32): i32 {
  if (kindOf(ctx) != KIND_MD5_STREAM || <i32>load<u8>(header(ctx), F_VERDICT) != VERDICT_PENDING) {
    return ERR_CONTEXT;
  }
  if (len < 0 || len > WINDOW_SIZE) return ERR_LENGTH;
  md5Update(header(ctx) + F_MD5, WINDOW, len);
  return 0;
}

/** Finishes the stream (once); returns the address of its 16-byte digest, valid until release. */
export function md5Digest(ctx: i32): i32 {
  if (kindOf(ctx) != KIND_MD5_STREAM) return ERR_CONTEXT;
  const h = header(ctx);
  if (<i32>load<u8>(h, F_VERDICT) == VERDICT_PENDING) {
    md5Final(h + F_MD5);
    store<u8>(h, <u8>VERDICT_PASS, F_VERDICT);
  }
  return <i32>(h + F_MD5);
}
