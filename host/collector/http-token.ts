// The collector's API token (DESIGN.md "Identity and security"): `Authorization: Bearer TOKEN`.

import { createHash, timingSafeEqual } from "node:crypto";

/** Why `token` cannot be an API token, or undefined: a header carries no control characters and drops surrounding white space. */
export function tokenProblem(token: string): string | undefined {
  if (token === "") return "the token is empty";
  if (token !== token.trim()) return "the token starts or ends with white space";
  if (/[\x00-\x1f\x7f]/.test(token)) return "the token contains a control character";
  return undefined;
}

/**
 * A token as a header value: its UTF-8 bytes, one character each. fetch() takes only such
 * byte strings, and Node's server hands header bytes over the same way (latin1).
 */
export function tokenHeaderBytes(token: string): string {
  return Buffer.from(token, "utf8").toString("latin1");
}

const digest = (text: string) => createHash("sha256").update(text, "latin1").digest();

/**
 * Checks an Authorization header against `token`. Both sides are compared as SHA-256 digests,
 * always of equal length, so that neither the length nor the content of a guess changes the
 * time the comparison takes.
 */
export function bearerCheck(token: string): (authorization: string | undefined) => "ok" | "missing" | "invalid" {
  const expected = digest(tokenHeaderBytes(token));
  return (authorization) => {
    const m = /^Bearer +(.+)$/i.exec(authorization ?? "");
    if (!m) return "missing";
    return timingSafeEqual(digest(m[1]), expected) ? "ok" : "invalid";
  };
}
