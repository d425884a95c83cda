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

/** What differs between the servers the guard protects (the collector's, the exporter's). */
export interface GuardedServer {
  /** "collector", "exporter": named in refusals */
  name: string;
  /** the flag of the listen address, named when it is not loopback */
  listenFlag: string;
  /** the WWW-Authenticate realm */
  realm: string;
  /** paths that answer without the token (besides /metrics with metricsPublic) */
  open: string[];
  /** how a client sends the token, added to the 401 for a missing one */
  tokenHint?: string;
}

/** The collector: its dashboard page holds no data; it loads without the token, then asks for it. */
export const COLLECTOR: GuardedServer = { name: "collector", listenFlag: "--http", realm: "catprobe", open: ["/"] };

/** Checks the options (a bad one throws, naming its flag) and returns the check of each request. */
export function httpGuard(opts: HttpGuardOptions, server: GuardedServer = COLLECTOR): HttpGuard {
  const { host, port } = opts.listen;
  const token = opts.apiToken;
  if (token === undefined && !isLoopback(host)) {
    throw new Error(`${server.listenFlag} ${host.includes(":") ? `[${host}]` : host}:${port} is reachable beyond this machine: ` +
      "give an API token (--api-token-file FILE, --api-token or CATPROBE_API_TOKEN), or listen on loopback");
  }
  const problem = token === undefined ? undefined : tokenProblem(token);
  if (problem) throw new Error(`--api-token: ${problem}`);
  const hostOk = hostCheck(host, opts.publicHosts ?? []);
  const bearer = token === undefined ? undefined : bearerCheck(token);
  const open = new Set([...server.open, ...(opts.metricsPublic ? ["/metrics"] : [])]);
  const unauthorized = {
    missing: { header: `Bearer realm="${server.realm}"`,
      error: `this ${server.name} requires Authorization: Bearer <its --api-token>${server.tokenHint ? ` (${server.tokenHint})` : ""}` },
    invalid: { header: `Bearer realm="${server.realm}", error="invalid_token"`, error: `the API token is not this ${server.name}'s` },
  };
  return (req, path): Refusal | undefined => {
    if (!hostOk(req.headers.host)) {
      return { status: 421, headers: {}, error: `Host ${JSON.stringify(req.headers.host ?? "")} is not a name of this ${server.name} (see --public-host)` };
    }
    if (!bearer || open.has(path)) return undefined;
    const verdict = bearer(req.headers.authorization);
    if (verdict === "ok") return undefined;
    return { status: 401, headers: { "www-authenticate": unauthorized[verdict].header }, error: unauthorized[verdict].error };
  };
}
