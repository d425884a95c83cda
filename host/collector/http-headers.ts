// Headers on every answer of the collector's HTTP side (DESIGN.md "Identity and security").

import { createHash } from "node:crypto";

/** The CSP source that admits one inline <script> or <style> body by its hash. */
const hashSource = (body: string) => `'sha256-${createHash("sha256").update(body, "utf8").digest("base64")}'`;

/** Hash sources of every inline element `tag` in `html`. */
function inlineSources(html: string, tag: "script" | "style"): string {
  return [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => hashSource(m[1])).join(" ");
}

/**
 * The security headers, with a Content-Security-Policy that admits only this collector's own
 * origin and, by hash, the inline script and style of `dashboard` (the one page it serves).
 * Forms may not submit anywhere: the token form is handled by script, never sent as a query.
 * The favicon is a data: URL, so that the page asks for no /favicon.ico.
 */
export function securityHeaders(dashboard: string): Record<string, string> {
  const csp = [
    "default-src 'self'",
    `script-src ${inlineSources(dashboard, "script")}`,
    `style-src ${inlineSources(dashboard, "style")}`,
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    "content-security-policy": csp,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
}
