// The exporter's HTTP side: /probe (blackbox-compatible), /metrics (its own), / (a short page),
// POST /-/reload (the tasks read again, as blackbox reloads its configuration).
// Every request passes the guard first; every answer carries the security headers.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { CorePool } from "../core/pool.js";
import { parseHostPort } from "../collector/address.js";
import { Semaphore } from "../probe/semaphore.js";
import { exporterGuard } from "./guard.js";
import { TEXT_CONTENT_TYPE } from "./metrics-text.js";
import { Modules } from "./modules.js";
import { landingPage, PAGE_CSP } from "./page.js";
import { handleProbe, type Answer, type ProbeContext } from "./probe-handler.js";
import { ExporterMetrics } from "./self-metrics.js";

export const DEFAULT_LISTEN = "127.0.0.1:9115";
export const DEFAULT_CONCURRENCY = 64;

export interface ExporterOptions {
  tasks: string;
  listen?: string;
  apiToken?: string;
  metricsPublic?: boolean;
  publicHosts?: string[];
  /** probes in flight at most; over it a probe request is answered 503 at once */
  concurrency?: number;
  timeoutOffsetS?: number;
  probe?: string;
  /** where reloads are reported */
  log?: (line: string) => void;
}

export interface Exporter {
  url: string;
  modules: Modules;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  "content-security-policy": PAGE_CSP,
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

function reply(res: ServerResponse, a: Answer, head = false): void {
  const body = Buffer.from(a.body, "utf8");
  res.writeHead(a.status, { ...SECURITY_HEADERS, ...a.headers, "content-type": a.contentType, "content-length": body.length });
  res.end(head ? undefined : body);
}

export async function startExporter(opts: ExporterOptions): Promise<Exporter> {
  const listen = parseHostPort(opts.listen ?? DEFAULT_LISTEN, "--listen");
  const guard = exporterGuard({ listen, apiToken: opts.apiToken, metricsPublic: opts.metricsPublic, publicHosts: opts.publicHosts });
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const pool = new CorePool();
  const modules = new Modules(opts.tasks, pool);
  const metrics = new ExporterMetrics(concurrency, () => modules.size);
  const ctx: ProbeContext = {
    modules, pool, metrics, slots: new Semaphore(concurrency), timeoutOffsetS: opts.timeoutOffsetS, probe: opts.probe ?? "exporter",
  };

  /** blackbox's /-/reload: the tasks read again; on any problem the loaded ones stay. */
  const reload = (method: string): Answer => {
    const text = (status: number, body: string, headers?: Record<string, string>): Answer =>
      ({ status, contentType: "text/plain; charset=utf-8", body, headers });
    if (method !== "POST") return text(405, "This endpoint requires a POST request.\n", { allow: "POST" });
    try {
      modules.reload();
      opts.log?.(`reloaded ${modules.size} module${modules.size === 1 ? "" : "s"} from ${opts.tasks}`);
      return text(200, "");
    } catch (err) {
      opts.log?.(`reload failed, keeping the modules loaded before\n${(err as Error).message}`);
      return text(500, `failed to reload config: ${(err as Error).message}\n`);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://exporter.invalid");
    const refusal = guard(req, url.pathname);
    if (refusal) return reply(res, { status: refusal.status, contentType: "text/plain; charset=utf-8", body: `${refusal.error}\n`, headers: refusal.headers });
    const method = req.method ?? "GET";
    const head = method === "HEAD";
    if (!["GET", "HEAD", "POST"].includes(method)) {
      return reply(res, { status: 405, contentType: "text/plain; charset=utf-8", body: "Method not allowed\n", headers: { allow: "GET, HEAD, POST" } });
    }
    switch (url.pathname) {
      case "/probe":
        return reply(res, await handleProbe(url.searchParams, req.headers, ctx), head);
      case "/metrics":
        return reply(res, { status: 200, contentType: TEXT_CONTENT_TYPE, body: metrics.text() }, head);
      case "/":
        return reply(res, { status: 200, contentType: "text/html; charset=utf-8", body: landingPage(modules) }, head);
      case "/-/reload":
        return reply(res, reload(method));
      default:
        return reply(res, { status: 404, contentType: "text/plain; charset=utf-8", body: "Not found: the exporter serves /probe, /metrics and /\n" }, head);
    }
  };

  const server: Server = createServer((req, res) => {
    req.resume(); // a POST body is not read: the query says everything
    handle(req, res).catch((err: Error) => {
      metrics.refuse("error");
      if (!res.headersSent) reply(res, { status: 500, contentType: "text/plain; charset=utf-8", body: `probe failed: ${err.message}\n` });
      else res.destroy();
    });
  });
  server.requestTimeout = 10 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    modules,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
