// Errors the core reports through negative return values, as exceptions the host can act on.

/** Negative results of the core's context exports (assembly/contexts.ts ERR_*). */
export const CORE_ERRORS: Record<number, string> = {
  [-1]: "no free core context",
  [-2]: "empty",
  [-3]: "too long",
  [-4]: "unknown verify mode",
  [-5]: "length outside the I/O window",
  [-6]: "not an open core context",
};

/** All core contexts are in use: the caller should wait, or use another Core instance. */
export class CoreBusyError extends Error {
  constructor(contexts: number) {
    super(`all ${contexts} core contexts are in use; release a verifier or use another Core`);
    this.name = "CoreBusyError";
  }
}

/** Data a verifier cannot use (an empty keyword, one longer than the core holds, a bad digest). */
export class VerifyDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VerifyDataError";
  }
}

/** A core call broke its contract: a bug in the host, never bad user input. */
export class CoreCallError extends Error {
  constructor(call: string, result: number) {
    super(`core ${call} returned ${result} (${CORE_ERRORS[result] ?? "unknown error"})`);
    this.name = "CoreCallError";
  }
}
