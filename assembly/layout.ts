// The core's memory map. Everything lives in one 64 KiB page, fixed at compile time:
// the I/O window the host copies data through, and a pool of contexts (MD5 streams and
// reply verifiers). Nothing is allocated after start-up, so the page never grows.

/** Bytes the host may copy in or out per call. */
export const WINDOW_SIZE: i32 = 16384;
/** Full-match pushes carry the reply at the window start and the expected bytes here. */
export const WINDOW_HALF: i32 = WINDOW_SIZE >> 1;
export const WINDOW: usize = memory.data(WINDOW_SIZE, 16);

/** Context pool: slots in ascending keyword capacity, so the first free fit is the tightest. */
export const BARE_SLOTS: i32 = 8; // no keyword storage: none / full / md5 verifiers, MD5 streams
export const SMALL_SLOTS: i32 = 14;
export const SMALL_KEYWORD: i32 = 256;
export const LARGE_SLOTS: i32 = 2;
export const LARGE_KEYWORD: i32 = 4096;
export const CONTEXT_COUNT: i32 = BARE_SLOTS + SMALL_SLOTS + LARGE_SLOTS;

/** Per-context header; see contexts.ts for the fields. */
export const HEADER_SIZE: i32 = 128;
export const HEADERS: usize = memory.data(CONTEXT_COUNT * HEADER_SIZE, 16);

// A keyword of capacity N needs N bytes for itself and 2N for its KMP failure table (u16).
export const SMALL_AREA: usize = memory.data(SMALL_SLOTS * SMALL_KEYWORD * 3, 16);
export const LARGE_AREA: usize = memory.data(LARGE_SLOTS * LARGE_KEYWORD * 3, 16);

/** Lookup table for hex digits: 0–15 digit value, WS whitespace, BAD anything else. */
export const HEX_TABLE: usize = memory.data(256, 16);
