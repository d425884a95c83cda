// Hex text <-> bytes through the core. Text is copied into the I/O window slice by slice and
// decoded in place there; errors come back as HexError with the kind and character offset.

import { Core } from "./core.js";

export type HexErrorKind = "empty" | "odd" | "char" | "split";

// Order matches assembly/hex.ts HEX_* (1-based).
const KINDS: HexErrorKind[] = ["empty", "odd", "char", "split"];

export class HexError extends Error {
  /** Offset of the offending character (0 for an empty input). */
  readonly offset: number;
  readonly kind: HexErrorKind;
  constructor(kind: HexErrorKind, offset: number, char: string) {
    super(describe(kind, offset, char));
    this.name = "HexError";
    this.kind = kind;
    this.offset = offset;
  }
}

function describe(kind: HexErrorKind, offset: number, char: string): string {
  switch (kind) {
    case "empty": return "no hex digits";
    case "odd": return `odd number of hex digits: ${char} at offset ${offset} has no partner`;
    case "char": return `invalid hex character ${char} at offset ${offset}`;
    case "split": return `whitespace inside a byte pair at offset ${offset}`;
  }
}

/** A character for a message: 'g' when printable, U+0007 style otherwise. */
function showChar(text: string | Uint8Array, offset: number): string {
  const code = typeof text === "string" ? text.codePointAt(offset) : text[offset];
  if (code === undefined) return "end of data";
  if (code > 0x20 && code < 0x7f) return `'${String.fromCharCode(code)}'`;
  const hex = code.toString(16).toUpperCase().padStart(4, "0");
  if (typeof text !== "string") return `byte 0x${hex.slice(2)}`;
  const printable = code > 0xa0 && !(code >= 0xd800 && code <= 0xdfff);
  return printable ? `'${String.fromCodePoint(code)}' (U+${hex})` : `U+${hex}`;
}

const encoder = new TextEncoder();

/**
 * A character above U+00FF. V8 answers this for a string stored one byte per character without
 * looking at the characters (no such string can match), so the test is free for the strings hex
 * text usually is; a string stored two bytes per character is scanned up to the first match.
 */
const WIDE = /[^\x00-\xff]/;

/** Views of a core's I/O window, made once: a Buffer to write() text into, and the first half,
 * which is what a full slice of hex decodes to. */
interface WindowViews {
  buffer: Buffer;
  half: Uint8Array;
}

const windowViews = new WeakMap<Core, WindowViews>();

function views(core: Core): WindowViews {
  let v = windowViews.get(core);
  if (!v) {
    const win = core.window;
    v = { buffer: Buffer.from(win.buffer, win.byteOffset, win.byteLength), half: win.subarray(0, win.length >> 1) };
    windowViews.set(core, v);
  }
  return v;
}

/**
 * Decodes hex text (case-insensitive; whitespace between byte pairs) to bytes.
 * A string's offsets are character offsets: every character before an error is ASCII.
 *
 * A string with no character above U+00FF goes into the window as latin1, one byte per
 * character (a copy, where UTF-8 encoding costs twice as long); any other as UTF-8. Both give
 * the core the same bytes up to the first non-ASCII character, which is never a hex digit nor
 * whitespace, so the result and the error are the same either way.
 */
export function hexToBytes(core: Core, text: string | Uint8Array): Uint8Array {
  const x = core.exports;
  const win = core.window;
  const w = core.windowSize;
  // Every byte is written before it is returned: no need to zero the output first.
  const size = text.length >> 1;
  const out = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
  let written = 0;
  x.hexReset();
  const { buffer, half } = views(core);
  const latin1 = typeof text === "string" && !WIDE.test(text);
  for (let pos = 0; pos < text.length;) {
    let len: number;
    if (latin1) {
      len = buffer.write((text as string).substring(pos, pos + w), 0, w, "latin1");
      pos += len;
    } else if (typeof text === "string") {
      const r = encoder.encodeInto(text.substring(pos, pos + w), win);
      pos += r.read;
      len = r.written;
    } else {
      len = Math.min(w, text.length - pos);
      win.set(text.subarray(pos, pos + len));
      pos += len;
    }
    const n = x.hexDecode(len);
    if (n < 0) break;
    out.set(n === half.length ? half : win.subarray(0, n), written);
    written += n;
  }
  if (x.hexDecodeEnd() !== 0) {
    const kind = KINDS[x.hexErrorKind() - 1];
    const offset = x.hexErrorOffset();
    throw new HexError(kind, offset, showChar(text, offset));
  }
  return out.subarray(0, written);
}

/** Encodes bytes as lowercase hex. */
export function bytesToHex(core: Core, bytes: Uint8Array): string {
  const x = core.exports;
  const slice = core.windowSize >> 1;
  const ptr = x.windowPtr();
  let hex = "";
  for (let pos = 0; pos < bytes.length; pos += slice) {
    const chunk = bytes.subarray(pos, pos + slice);
    core.window.set(chunk);
    const n = x.hexEncode(chunk.length);
    hex += Buffer.from(core.exports.memory.buffer, ptr, n).toString("latin1");
  }
  return hex;
}
