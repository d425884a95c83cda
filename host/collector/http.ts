// The collector's HTTP side (DESIGN.md "Collector HTTP API"): JSON endpoints, Prometheus
// metrics, server-sent events for live dashboards, and the dashboard page itself; every answer
// passes the guard (Host check, API token) and carries the security headers.

import { readFileSync } from "node:fs";
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { ERROR_CODES } from "../codes.js";
import type { HttpGuard } from "./http-guard.js";
import { securityHeaders } from "./http-headers.js";
import type { CollectorMetrics } from "./metrics.js";
import { QueryError, parseWindow, summary, topErrors, type Filter } from "./stats.js";
import type { Store } from "./store.js";
import { ID_PATTERN } from "../wire/id.js";

const DASHBOARD = fileURLToPath(new URL("./dashboard.html", import.meta.url));
/** Live clients at most; a new one takes the place of the oldest, so idle ones cannot lock out. */
export const MAX_EVENT_CLIENTS = 100;
/** What an evicted client is told to wait before it reconnects (the dashboard polls meanwhile). */
const EVICTED_RETRY_MS = 30_000;

export interface HttpContext {
  store: Store;
  metrics: CollectorMetrics;
  guard: HttpGuard;
}

function send(res: ServerResponse, status: number, body: string, type = "application/json"): void {
  res.writeHead(status, { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" });
  res.end(body);
}

function filter(query: URLSearchParams): Filter {
  const f: Filter = parseWindow(query);
  for (const key of ["task", "probe"] as const) {
    const value = query.get(key);
    if (!value) continue;
    if (!ID_PATTERN.test(value)) throw new QueryError(`${key} must be 1–64 characters of A-Z a-z 0-9 . _ -`);
    f[key] = value;
  }
  return f;
}

/** Live-update channel: `event: results` at most once a second while results arrive. */
class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  add(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_EVENT_CLIENTS) this.evictOldest();
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    res.write(": connected\n\n");
    this.clients.add(res);
    req.on("close", () => this.clients.delete(res));
  }

  /** A Set keeps insertion order: its first client is the longest connected. */
  private evictOldest(): void {
    const oldest = this.clients.values().next().value!;
    this.clients.delete(oldest);
    oldest.end(`retry: ${EVICTED_RETRY_MS}\n\n`);
  }

  stored(count: number): void {
    this.pending += count;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const data = `event: results\ndata: ${JSON.stringify({ count: this.pending })}\n\n`;
      this.pending = 0;
      for (const res of this.clients) res.write(data);
    }, 1000);
  }

  close(): void {
    clearTimeout(this.timer);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

export interface CollectorHttp {
  server: Server;
  events: EventHub;
}

/**
 * Answers requests Node's parser refused (malformed, headers too large, too slow) itself, as
 * Node would, but with the security headers that every answer carries.
 */
function answerClientError(headers: Record<string, string>) {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === "ECONNRESET") return socket.destroy();
    const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines}connection: close\r\ncontent-length: 0\r\n\r\n`);
  };
}

export function createHttp(ctx: HttpContext): CollectorHttp {
  const events = new EventHub();
  const dashboard = readFileSync(DASHBOARD, "utf8");
  const headers = securityHeaders(dashboard);
  // A request without Host reaches the guard (a 421) instead of Node's bare 400.
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    const url = new URL(req.url ?? "/", "http://collector");
    try {
      const refusal = ctx.guard(req, url.pathname);
      if (refusal) {
        for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value);
        return send(res, refusal.status, JSON.stringify({ error: refusal.error }));
      }
      if (req.method !== "GET") return send(res, 405, JSON.stringify({ error: "GET only" }));
      switch (url.pathname) {
        case "/":
          return send(res, 200, dashboard, "text/html");
        case "/api/top-errors":
          return send(res, 200, JSON.stringify(topErrors(ctx.store, filter(url.searchParams))));
        case "/api/summary":
          return send(res, 200, JSON.stringify(summary(ctx.store, filter(url.searchParams))));
        case "/api/codes":
          return send(res, 200, JSON.stringify(ERROR_CODES));
        case "/api/dropped":
          return send(res, 200, JSON.stringify(ctx.store.droppedByProbe()));
        case "/api/events":
          return events.add(req, res);
        case "/metrics":
          ctx.metrics.registry.metrics().then(
            (text) => send(res, 200, text, ctx.metrics.registry.contentType.split(";")[0]),
            (err: Error) => send(res, 500, JSON.stringify({ error: err.message })),
          );
          return;
        case "/healthz":
          return send(res, 200, JSON.stringify({ ok: true }));
        default:
          return send(res, 404, JSON.stringify({ error: `no such endpoint: ${url.pathname}` }));
      }
    } catch (err) {
      if (err instanceof QueryError) return send(res, 400, JSON.stringify({ error: err.message }));
      send(res, 500, JSON.stringify({ error: (err as Error).message }));
    }
  });
  server.on("clientError", answerClientError(headers));
  return { server, events };
}
