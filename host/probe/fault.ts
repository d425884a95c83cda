// A run's failure: one of the 600–609 codes, the failing step (index) and a message a person
// understands. Thrown by the phase that sees it, caught once by the runner.

import type { ErrorCode } from "../codes.js";
import type { TlsFacts } from "../wire/record.js";

export class RunFault extends Error {
  /** the facts of a certificate that arrived before a failed handshake; the runner records them */
  tls?: TlsFacts;

  constructor(readonly code: ErrorCode, message: string, readonly step: number | null = null) {
    super(message);
    this.name = "RunFault";
  }
}

/** A node error's code and text, for messages: "connection refused (ECONNREFUSED)". */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset by peer",
    EPIPE: "connection closed by peer",
    EHOSTUNREACH: "host unreachable",
    ENETUNREACH: "network unreachable",
    ETIMEDOUT: "timed out",
    EADDRNOTAVAIL: "address not available",
  };
  if (e?.code && known[e.code]) return `${known[e.code]} (${e.code})`;
  return e?.code ? `${e.message} (${e.code})` : String(e?.message ?? err);
}

/** An error raised by the TLS layer (an alert from the peer, a failed verification). */
export function isTlsError(err: unknown): boolean {
  return /^ERR_SSL_|^ERR_TLS_/.test((err as NodeJS.ErrnoException)?.code ?? "");
}
