// The collector's HTTP side (DESIGN.md "Collector HTTP API", "Fleet control plane"): JSON
// endpoints, the task set and the probes, Prometheus metrics, server-sent events for live
// dashboards, and the dashboard page itself; every answer passes the guard (Host check, API
// token) and carries the security headers.

import { readFileSync } from "node:fs";
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { ERROR_CODES } from "../codes.js";
import type { AlertEngine } from "./alerts/alerts.js";
import type { Fleet } from "./fleet.js";
import { BodyError, readJson } from "./http-body.js";
import type { HttpGuard } from "./http-guard.js";
import { securityHeaders } from "./http-headers.js";
import type { CollectorMetrics } from "./metrics.js";
import { listResults, resultsQuery } from "./results.js";
import { QueryError, parseWindow, summary, topErrors, type Filter } from "./stats.js";
import type { Store } from "./store.js";
import { checkTaskSet } from "./task-set-check.js";
import { ID_PATTERN } from "../wire/id.js";

const DASHBOARD = fileURLToPath(new URL("./dashboard.html", import.meta.url));
/** Live clients at most; a new one takes the place of the oldest, so idle ones cannot lock out. */
export const MAX_EVENT_CLIENTS = 100;
/** What an evicted client is told to wait before it reconnects (the dashboard polls meanwhile). */
const EVICTED_RETRY_MS = 30_000;
/** The most a `PUT /api/tasks` body may hold: many task files of a few kilobytes each. */
export const MAX_TASK_SET_BYTES = 16 << 20;

export interface HttpContext {
  store: Store;
  metrics: CollectorMetrics;
  guard: HttpGuard;
  fleet: Fleet;
  /** the alert engine of --alerts, once started */
  alerts?: { engine?: AlertEngine };
}

function send(res: ServerResponse, status: number, body: string, type = "application/json"): void {
  res.writeHead(status, { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" });
  res.end(body);
}

/** `label=key:value` pairs (split at the first colon; repeated: every pair must match). */
function labelPairs(query: URLSearchParams): [string, string][] {
  return query.getAll("label").map((pair) => {
    const colon = pair.indexOf(":");
    if (colon < 1) throw new QueryError(`label must look like key:value (got "${pair.slice(0, 80)}")`);
    return [pair.slice(0, colon), pair.slice(colon + 1)];
  });
}

async function filter(query: URLSearchParams, fleet: Fleet): Promise<Filter> {
  const f: Filter = parseWindow(query);
  for (const key of ["task", "probe"] as const) {
    const value = query.get(key);
    if (!value) continue;
    if (!ID_PATTERN.test(value)) throw new QueryError(`${key} must be 1–64 characters of A-Z a-z 0-9 . _ -`);
    f[key] = value;
  }
  const labels = labelPairs(query);
  if (labels.length) f.probes = await fleet.probes.withLabels(labels);
  return f;
}

/** `PUT /api/tasks`: the whole set replaced, or every problem and nothing applied. */
async function putTasks(req: IncomingMessage, res: ServerResponse, fleet: Fleet): Promise<void> {
  const checked = checkTaskSet(await readJson(req, MAX_TASK_SET_BYTES));
  if ("error" in checked) return send(res, 400, JSON.stringify(checked));
  send(res, 200, JSON.stringify(await fleet.apply(checked.tasks)));
}

/** A row of `GET /api/probes`: the collector's own publishing error before the probe's. */
async function probeRows(fleet: Fleet) {
  const [desiredVersion, probes] = await Promise.all([fleet.tasks.version(), fleet.probes.list()]);
  return probes.map(({ publishError, ...p }) => ({
    probe: p.probe, state: p.state, lastSeen: p.lastSeen, labels: p.labels, desiredVersion, appliedVersion: p.appliedVersion,
    configError: publishError ?? p.configError, spooled: p.spooled, dropped: p.dropped, software: p.software,
  }));
}

async function results(query: URLSearchParams, ctx: HttpContext) {
  const f = await filter(query, ctx.fleet);
  const { code, limit } = resultsQuery(query);
  return { from: f.from, to: f.to, results: await listResults(ctx.store, f, code, limit) };
}

/** Answers an error the handlers throw: a bad query or body is the client's, anything else ours. */
function sendError(res: ServerResponse, err: Error): void {
  if (res.headersSent) return void res.destroy(); // too late for a status: the client sees the answer cut off
  if (err instanceof QueryError) return send(res, 400, JSON.stringify({ error: err.message }));
  if (err instanceof BodyError) {
    // A body not read to its end would be taken for the next request.
    res.setHeader("connection", "close");
    return send(res, err.status, JSON.stringify({ error: err.message }));
  }
  send(res, 500, JSON.stringify({ error: err.message }));
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
    // A database that fails answers 500 with its error, as anything else the handlers throw.
    answer(req, res).catch((err: Error) => sendError(res, err));
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://collector");
    const refusal = ctx.guard(req, url.pathname);
    if (refusal) {
      for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value);
      return send(res, refusal.status, JSON.stringify({ error: refusal.error }));
    }
    if (url.pathname === "/api/tasks" && req.method === "PUT") return putTasks(req, res, ctx.fleet);
    if (req.method !== "GET") {
      res.setHeader("allow", url.pathname === "/api/tasks" ? "GET, PUT" : "GET");
      return send(res, 405, JSON.stringify({ error: url.pathname === "/api/tasks" ? "GET or PUT only" : "GET only" }));
    }
    const json = (value: unknown) => send(res, 200, JSON.stringify(value));
    switch (url.pathname) {
      case "/":
        return send(res, 200, dashboard, "text/html");
      case "/api/top-errors":
        return json(await topErrors(ctx.store, await filter(url.searchParams, ctx.fleet)));
      case "/api/summary":
        return json(await summary(ctx.store, await filter(url.searchParams, ctx.fleet)));
      case "/api/results":
        return json(await results(url.searchParams, ctx));
      case "/api/tasks":
        return json(await ctx.fleet.tasks.current());
      case "/api/probes":
        return json(await probeRows(ctx.fleet));
      case "/api/codes":
        return json(ERROR_CODES);
      case "/api/dropped":
        return json(await ctx.store.droppedByProbe());
      case "/api/alerts":
        return json(ctx.alerts?.engine ? { enabled: true, ...await ctx.alerts.engine.view() } : { enabled: false, firing: [], resolved: [] });
      case "/api/events":
        return events.add(req, res);
      case "/metrics":
        return send(res, 200, await ctx.metrics.registry.metrics(), ctx.metrics.registry.contentType.split(";")[0]);
      case "/healthz":
        return json({ ok: true });
      default:
        return send(res, 404, JSON.stringify({ error: `no such endpoint: ${url.pathname}` }));
    }
  }

  server.on("clientError", answerClientError(headers));
  return { server, events };
}
