// The collector's HTTP side (DESIGN.md "Collector HTTP API"): JSON endpoints, Prometheus
// metrics, server-sent events for live dashboards, and the dashboard page itself.

import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { ERROR_CODES } from "../codes.js";
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

export function createHttp(ctx: HttpContext): CollectorHttp {
  const events = new EventHub();
  const dashboard = readFileSync(DASHBOARD, "utf8");
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://collector");
    try {
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
  return { server, events };
}
