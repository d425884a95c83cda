// Streaming reply verifiers through the core. push() each chunk as it arrives; the answer is
// "pending" until the core decides; end() decides at the end of the reply. The core context
// is held only while the verdict is pending: it is freed the moment one is reached, or by
// release() when the caller gives up (a timeout).

import { Core } from "./core.js";
import { CoreBusyError, CoreCallError, VerifyDataError } from "./errors.js";

export type VerifySpec =
  | { mode: "none" }
  | { mode: "full"; expected: Uint8Array }
  | { mode: "prefix"; expected: Uint8Array }
  | { mode: "partial"; keyword: Uint8Array }
  | { mode: "md5"; digest: Uint8Array };

export type VerifyMode = VerifySpec["mode"];
export type Verdict = "pending" | "pass" | "fail";

// assembly/contexts.ts KIND_* and VERDICT_*.
const MODE_IDS: Record<VerifyMode, number> = { none: 1, full: 2, partial: 3, md5: 4, prefix: 5 };
const VERDICTS: Verdict[] = ["pending", "pass", "fail"];
const ERR_BUSY = -1;

export interface Verifier {
  readonly mode: VerifyMode;
  readonly verdict: Verdict;
  /**
   * Reply bytes examined when the verdict was reached. A full or prefix fail before the end is
   * at -1: the differing byte, or for full the first byte beyond the expected ones.
   */
  readonly decidedAt: number;
  /** Reply bytes pushed so far. */
  readonly received: number;
  /** MD5 of the whole reply, once an md5 verifier has ended. */
  readonly replyDigest: Uint8Array | null;
  push(chunk: Uint8Array): Verdict;
  end(): Verdict;
  /** Gives up on a pending verifier and frees its core context; harmless once decided. */
  release(): void;
}

/** Throws VerifyDataError when the core cannot verify with this data; returns its length. */
export function checkVerifySpec(core: Core, spec: VerifySpec): number {
  switch (spec.mode) {
    case "partial":
      if (spec.keyword.length === 0) throw new VerifyDataError("the keyword is empty");
      if (spec.keyword.length > core.maxKeyword) {
        throw new VerifyDataError(
          `the keyword is ${spec.keyword.length} bytes; the core supports at most ${core.maxKeyword}`);
      }
      return spec.keyword.length;
    case "full":
    case "prefix":
      if (spec.expected.length === 0) throw new VerifyDataError("the expected reply is empty");
      return spec.expected.length;
    case "md5":
      if (spec.digest.length !== 16) {
        throw new VerifyDataError(`an MD5 digest is 16 bytes (32 hex digits), got ${spec.digest.length}`);
      }
      return 16;
    case "none":
      return 0;
  }
}

/** Checks the spec's data and opens a core context for it; null when every context is in use. */
export function tryCreateVerifier(core: Core, spec: VerifySpec): Verifier | null {
  const x = core.exports;
  const len = checkVerifySpec(core, spec);
  if (spec.mode === "partial") core.window.set(spec.keyword);
  if (spec.mode === "md5") core.window.set(spec.digest);
  const ctx = x.verifierOpen(MODE_IDS[spec.mode], spec.mode === "md5" ? 16 : len);
  if (ctx === ERR_BUSY) return null;
  if (ctx < 0) throw new CoreCallError("verifierOpen", ctx);
  return new CoreVerifier(core, spec, ctx);
}

/** Checks the spec's data and opens a core context for it; CoreBusyError when none is free. */
export function createVerifier(core: Core, spec: VerifySpec): Verifier {
  const verifier = tryCreateVerifier(core, spec);
  if (!verifier) throw new CoreBusyError(core.exports.contextCount());
  return verifier;
}

class CoreVerifier implements Verifier {
  verdict: Verdict = "pending";
  decidedAt = 0;
  received = 0;
  replyDigest: Uint8Array | null = null;
  readonly mode: VerifyMode;
  private ctx: number;

  constructor(private readonly core: Core, private readonly spec: VerifySpec, ctx: number) {
    this.mode = spec.mode;
    this.ctx = ctx;
  }

  push(chunk: Uint8Array): Verdict {
    const { window, windowSize, windowHalf, exports: x } = this.core;
    const expected = "expected" in this.spec ? this.spec.expected : null;
    const slice = expected ? windowHalf : windowSize;
    const start = this.received;
    this.received += chunk.length;
    for (let pos = 0; pos < chunk.length && this.verdict === "pending"; pos += slice) {
      const part = chunk.length <= slice ? chunk : chunk.subarray(pos, pos + slice); // no view for a chunk that fits
      window.set(part);
      // Full and prefix compare against the expected bytes that line up with this slice. Past
      // the expected length the slice is short or empty: the core reads only the bytes still
      // expected, and full fails at the first reply byte beyond them.
      if (expected) window.set(expected.subarray(start + pos, start + pos + part.length), windowHalf);
      this.settle(x.verifierPush(this.ctx, part.length), "verifierPush");
    }
    return this.verdict;
  }

  end(): Verdict {
    if (this.verdict === "pending") this.settle(this.core.exports.verifierEnd(this.ctx), "verifierEnd");
    return this.verdict;
  }

  release(): void {
    if (this.ctx >= 0) this.core.exports.contextRelease(this.ctx);
    this.ctx = -1;
  }

  private settle(result: number, call: string): void {
    if (result < 0) throw new CoreCallError(call, result);
    this.verdict = VERDICTS[result];
    if (this.verdict === "pending") return;
    const x = this.core.exports;
    this.decidedAt = x.verifierDecidedAt(this.ctx);
    if (this.mode === "md5") this.replyDigest = this.core.read(x.verifierDigest(this.ctx), 16);
    this.release();
  }
}
