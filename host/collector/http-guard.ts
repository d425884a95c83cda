// Who may talk to the collector's HTTP side (DESIGN.md "Identity and security"): first the Host
// check against DNS rebinding, then the API token.

import type { IncomingMessage } from "node:http";
import { isLoopback } from "./address.js";
import { hostCheck } from "./http-host.js";
import { bearerCheck, tokenProblem } from "./http-token.js";

export interface HttpGuardOptions {
  /** where the HTTP side listens (the parsed --http) */
  listen: { host: string; port: number };
  /** --api-token: every request but for the dashboard page needs it; a non-loopback `listen` requires one */
  apiToken?: string;
  /** --metrics-public: /metrics answers without the token */
  metricsPublic?: boolean;
  /** --public-host: names the Host header may carry besides the listen address and loopback names */
  publicHosts?: string[];
}

/** An answer in place of the one asked for. */
export interface Refusal {
  status: 401 | 421;
  headers: Record<string, string>;
  error: string;
}

export type HttpGuard = (req: IncomingMessage, path: string) => Refusal | undefined;

const UNAUTHORIZED = {
  missing: { header: 'Bearer realm="catprobe"', error: "this collector requires Authorization: Bearer <its --api-token>" },
  invalid: { header: 'Bearer realm="catprobe", error="invalid_token"', error: "the API token is not this collector's" },
};

/** Checks the options (a bad one throws, naming its flag) and returns the check of each request. */
export function httpGuard(opts: HttpGuardOptions): HttpGuard {
  const { host, port } = opts.listen;
  const token = opts.apiToken;
  if (token === undefined && !isLoopback(host)) {
    throw new Error(`--http ${host.includes(":") ? `[${host}]` : host}:${port} is reachable beyond this machine: ` +
      "give an API token (--api-token-file FILE, --api-token or CATPROBE_API_TOKEN), or listen on loopback");
  }
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem) throw new Error(`--api-token: ${problem}`);
  const hostOk = hostCheck(host, opts.publicHosts ?? []);
  const bearer = token === undefined ? undefined : bearerCheck(token);
  // The dashboard page holds no data: it loads without the token, then asks for it.
  const open = new Set(["/", ...(opts.metricsPublic ? ["/metrics"] : [])]);
  return (req, path): Refusal | undefined => {
    if (!hostOk(req.headers.host)) {
      return { status: 421, headers: {}, error: `Host ${JSON.stringify(req.headers.host ?? "")} is not a name of this collector (see --public-host)` };
    }
    if (!bearer || open.has(path)) return undefined;
    const verdict = bearer(req.headers.authorization);
    if (verdict === "ok") return undefined;
    return { status: 401, headers: { "www-authenticate": UNAUTHORIZED[verdict].header }, error: UNAUTHORIZED[verdict].error };
  };
}
