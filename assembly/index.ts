// The core's ABI: every export a host or device runtime may call. See README "Core ABI".

import { initHexTable } from "./hex";
import { WINDOW, WINDOW_SIZE, WINDOW_HALF, CONTEXT_COUNT, LARGE_KEYWORD } from "./layout";
import { capacity } from "./contexts";

export { hexReset, hexDecode, hexDecodeEnd, hexErrorKind, hexErrorOffset, hexEncode } from "./hex";
export { md5Open, md5Push, md5Digest } from "./digest";
export {
  verifierOpen, verifierPush, verifierEnd, verifierDecidedAt, verifierDigest,
} from "./verifier";
export { release as contextRelease, freeCount as contextsFree } from "./contexts";
export { selfTest } from "./selftest";

/** Bumped when an export changes meaning. */
export function abiVersion(): i32 { return 2; }
export function windowPtr(): usize { return WINDOW; }
export function windowSize(): i32 { return WINDOW_SIZE; }
export function windowHalf(): i32 { return WINDOW_HALF; }
export function contextCount(): i32 { return CONTEXT_COUNT; }
export function contextCapacity(ctx: i32): i32 {
  return ctx >= 0 && ctx < CONTEXT_COUNT ? capacity(ctx) : -1;
}
export function maxKeyword(): i32 { return LARGE_KEYWORD; }
/** First byte past static data: the whole map must end within the single 64 KiB page. */
export function heapBase(): usize { return __heap_base; }

initHexTable();
