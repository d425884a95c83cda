// catprobe exporter against real servers on loopback: the metrics of each outcome (the lab's
// fault servers, whose codes are known), the 400s and their bodies as blackbox writes them, the
// scrape timeout header, the concurrency cap, the listen and token rules, /metrics and /.

import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ipHash } from "../../host/exporter/probe-metrics.js";
import { startExporter, type Exporter } from "../../host/exporter/server.js";
import { createLabPki, writePkiFiles, type PkiFiles } from "../../simulator/certs.js";
import { startDnsServer, type DnsServer } from "../../simulator/servers/dns.js";
import { refusedPort, startTcpFault, type FaultServer } from "../../simulator/servers/tcp.js";
import { startTlsFault } from "../../simulator/servers/tls.js";
import { get, parseMetrics, startExporterProcess, removeTempDirs, taskDir, tempDir, value, type Exposition } from "./helpers.js";

const PONG = "+PONG\r\n";
const servers: (FaultServer | DnsServer)[] = [];
let exporter: Exporter;
let files: PkiFiles;
let dns: DnsServer;
let ok: FaultServer, silent: FaultServer, tlsOk: FaultServer, tlsUntrusted: FaultServer, unicode: FaultServer;
let refused: number;

/** A text task that sends PING and looks for +PONG, short limits; `extra` overrides. */
function pingTask(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id, target: { host: "db.example.internal", port: 6379 }, connectTimeoutMs: 2000, taskTimeoutMs: 10_000,
    steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG", responseTimeoutMs: 2000, timeoutMs: 4000, idleMs: 200 }],
    ...extra,
  };
}

async function probe(module: string, target: string, headers: Record<string, string> = {}): Promise<Exposition> {
  const r = await get(`${exporter.url}/probe?module=${encodeURIComponent(module)}&target=${encodeURIComponent(target)}`, headers);
  expect(r.status, r.body).toBe(200);
  expect(r.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parseMetrics(r.body);
}

beforeAll(async () => {
  const pki = createLabPki();
  files = writePkiFiles(join(tempDir("exporter-pki"), "pki"), pki);
  ok = await startTcpFault({ kind: "reply", reply: PONG });
  silent = await startTcpFault({ kind: "silent" });
  unicode = await startTcpFault({ kind: "reply", reply: "-ERR schlüssel «fehlt» ✗\r\n" });
  tlsOk = await startTlsFault({ kind: "valid", reply: PONG }, pki);
  tlsUntrusted = await startTlsFault({ kind: "untrusted", reply: PONG }, pki);
  dns = await startDnsServer({ records: { "cache.lab.test": { a: ["127.0.0.1"] } }, faults: { "gone.lab.test": "nxdomain" } });
  servers.push(ok, silent, unicode, tlsOk, tlsUntrusted, dns);
  refused = await refusedPort();
  const dir = taskDir([
    pingTask("redis-ping"),
    pingTask("two-steps", { steps: [
      { send: "PING\r\n", verify: "partial", expect: "+PONG", idleMs: 200 },
      { send: "PING\r\n", verify: "partial", expect: "+PANG", idleMs: 200 },
    ] }),
    pingTask("tls-ping", { target: { host: "localhost", port: 6380, tls: true, ca: files.caFile } }),
    pingTask("lab-dns", { dns: { servers: [dns.address], timeoutMs: 1000 } }),
    pingTask("patient", { connectTimeoutMs: 20_000, taskTimeoutMs: 60_000,
      steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG", responseTimeoutMs: 30_000, timeoutMs: 40_000 }] }),
    pingTask("own-port", { target: { host: "db.example.internal", port: ok.port } }),
    pingTask("bad-hex", { format: "buffer", steps: [{ send: "50494e47 0", verify: "partial", expect: "2b504f4e47" }] }),
  ]);
  exporter = await startExporter({ tasks: dir, listen: "127.0.0.1:0", concurrency: 2 });
});

afterAll(async () => {
  await exporter?.close();
  for (const s of servers) await s.close();

  removeTempDirs();
});

describe("metrics per outcome", () => {
  it("success: blackbox's names, probe_success 1, code 0, no failed step; the target overrides the task's host and port", async () => {
    const m = await probe("redis-ping", `127.0.0.1:${ok.port}`);
    expect(value(m, "probe_success")).toBe(1);
    expect(value(m, "catprobe_error_code")).toBe(0);
    expect(value(m, "probe_failed_at_step")).toBe(-1);
    expect(value(m, "probe_failed_due_to_regex")).toBe(0);
    expect(value(m, "probe_ip_protocol")).toBe(4);
    expect(value(m, "probe_ip_addr_hash")).toBe(3668918509); // blackbox's FNV-1a of 127.0.0.1
    expect(value(m, "probe_duration_seconds")).toBeGreaterThan(0);
    expect(value(m, "probe_duration_seconds")).toBeLessThan(5);
    expect(m.samples.has("probe_ssl_earliest_cert_expiry")).toBe(false);
    expect(m.samples.has("probe_tls_version_info")).toBe(false);
    expect(m.help.get("probe_success")).toBe("Displays whether or not the probe was a success");
    expect(m.type.get("probe_success")).toBe("gauge");
    expect(ok.connections).toBeGreaterThan(0);
  });

  it("an IPv6 target in brackets: probe_ip_protocol 6", async () => {
    const ok6 = await startTcpFault({ kind: "reply", reply: PONG }, { host: "::1" });
    servers.push(ok6);
    const m = await probe("redis-ping", `[::1]:${ok6.port}`);
    expect(value(m, "probe_success")).toBe(1);
    expect(value(m, "probe_ip_protocol")).toBe(6);
    expect(value(m, "probe_ip_addr_hash")).toBe(ipHash("::1"));
  });

  it("connect refused: 601, no failed step", async () => {
    const m = await probe("redis-ping", `127.0.0.1:${refused}`);
    expect(value(m, "probe_success")).toBe(0);
    expect(value(m, "catprobe_error_code")).toBe(601);
    expect(value(m, "probe_failed_at_step")).toBe(-1);
    expect(value(m, "probe_ip_protocol")).toBe(4);
  });

  it("no response: 603 at step 0", async () => {
    const m = await probe("redis-ping", `127.0.0.1:${silent.port}`);
    expect(value(m, "probe_success")).toBe(0);
    expect(value(m, "catprobe_error_code")).toBe(603);
    expect(value(m, "probe_failed_at_step")).toBe(0);
  });

  it("verification failed at the second step: 607, probe_failed_at_step 1, probe_failed_due_to_regex 1", async () => {
    const m = await probe("two-steps", `127.0.0.1:${ok.port}`);
    expect(value(m, "probe_success")).toBe(0);
    expect(value(m, "catprobe_error_code")).toBe(607);
    expect(value(m, "probe_failed_at_step")).toBe(1);
    expect(value(m, "probe_failed_due_to_regex")).toBe(1);
  });

  it("TLS ok: the certificate's expiry and the TLS version, as blackbox names them", async () => {
    const m = await probe("tls-ping", `localhost:${tlsOk.port}`);
    expect(value(m, "probe_success")).toBe(1);
    const expiry = value(m, "probe_ssl_earliest_cert_expiry");
    // the lab certificate is valid for 365 days
    expect(expiry).toBeGreaterThan(Date.now() / 1000 + 360 * 86400);
    expect(expiry).toBeLessThan(Date.now() / 1000 + 370 * 86400);
    const tls = m.samples.get("probe_tls_version_info")!;
    expect(tls).toHaveLength(1);
    expect(tls[0].labels.version).toMatch(/^TLS 1\.[23]$/);
    expect(tls[0].value).toBe(1);
  });

  it("TLS with an untrusted certificate: 608, and no certificate metrics (as blackbox: the handshake failed)", async () => {
    const m = await probe("tls-ping", `localhost:${tlsUntrusted.port}`);
    expect(value(m, "probe_success")).toBe(0);
    expect(value(m, "catprobe_error_code")).toBe(608);
    expect(m.samples.has("probe_ssl_earliest_cert_expiry")).toBe(false);
    expect(m.samples.has("probe_tls_version_info")).toBe(false);
  });

  it("a name through the task's DNS servers: the lookup is timed; NXDOMAIN is a 600 with protocol 0", async () => {
    const m = await probe("lab-dns", `cache.lab.test:${ok.port}`);
    expect(value(m, "probe_success")).toBe(1);
    expect(value(m, "probe_dns_lookup_time_seconds")).toBeGreaterThan(0);
    const gone = await probe("lab-dns", `gone.lab.test:${ok.port}`);
    expect(value(gone, "probe_success")).toBe(0);
    expect(value(gone, "catprobe_error_code")).toBe(600);
    expect(value(gone, "probe_ip_protocol")).toBe(0);
    expect(dns.queries.get("cache.lab.test")).toBeGreaterThan(0);
  });

  it("invalid task data: 605 before any socket, failed at step 0", async () => {
    const m = await probe("bad-hex", `127.0.0.1:${ok.port}`);
    expect(value(m, "catprobe_error_code")).toBe(605);
    expect(value(m, "probe_failed_at_step")).toBe(0);
  });

  it("a target without a port takes the task's port", async () => {
    const m = await probe("own-port", "127.0.0.1");
    expect(value(m, "probe_success")).toBe(1);
    const debug = await get(`${exporter.url}/probe?module=own-port&target=127.0.0.1&debug=true`);
    expect(debug.body).toContain(`"port": ${ok.port}`);
    expect(debug.body).toContain('"host": "127.0.0.1"');
  });

  it("debug=true: the log says why, non-ASCII replies quoted as they came", async () => {
    const r = await get(`${exporter.url}/probe?module=redis-ping&target=127.0.0.1:${unicode.port}&debug=true`);
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^Logs for the probe:\n/);
    expect(r.body).toContain('msg="Probe failed" code=607 step=0');
    expect(r.body).toContain("schlüssel «fehlt» ✗");
    expect(r.body).toContain("Metrics that would have been returned:\n# HELP catprobe_error_code");
    expect(r.body).toContain("catprobe_error_code 607");
  });
});

describe("requests blackbox refuses, answered as blackbox does", () => {
  const raw = (query: string, headers: Record<string, string> = {}) => get(`${exporter.url}/probe${query}`, headers);

  it("an unknown module: 400 `Unknown module \"…\"`", async () => {
    const r = await raw(`?module=nope&target=127.0.0.1:${ok.port}`);
    expect(r.status).toBe(400);
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(r.body).toBe('Unknown module "nope"\n');
  });

  it("no module: blackbox's default, http_2xx, which is unknown here", async () => {
    expect((await raw(`?target=127.0.0.1:${ok.port}`)).body).toBe('Unknown module "http_2xx"\n');
    expect((await raw("")).body).toBe('Unknown module "http_2xx"\n'); // the module is checked first
  });

  it("a module name outside the id alphabet (non-ASCII, quotes, control characters) is quoted as Go's %q does", async () => {
    const r = await raw(`?module=${encodeURIComponent('模块"x\u0001')}&target=127.0.0.1:1`);
    expect(r.status).toBe(400);
    expect(r.body).toBe('Unknown module "模块\\"x\\x01"\n');
  });

  it("a missing target: 400 `Target parameter is missing`", async () => {
    const r = await raw("?module=redis-ping");
    expect(r.status).toBe(400);
    expect(r.body).toBe("Target parameter is missing\n");
    expect((await raw("?module=redis-ping&target=")).body).toBe("Target parameter is missing\n");
  });

  it("a target no task file could name: 400 saying why (blackbox would probe and fail)", async () => {
    for (const [target, why] of [
      ["http://db:80", "without a scheme"],
      ["db:80/path", "is not a number from 1 to 65535"],
      ["db.example:99999", "is not a number from 1 to 65535"],
      ["[db.example]:80", "only an IPv6 address goes in brackets"],
      ["bad host:80", "no scheme, path, port or spaces"],
      ["bücher.example:80", "ASCII form: xn--bcher-kva.example"],
    ] as const) {
      const r = await raw(`?module=redis-ping&target=${encodeURIComponent(target)}`);
      expect(r.status, target).toBe(400);
      expect(r.body, target).toMatch(/^Invalid target: target /);
      expect(r.body, target).toContain(why);
    }
  });

  it("a scrape timeout header that is not a number: 500, as blackbox", async () => {
    const r = await raw(`?module=redis-ping&target=127.0.0.1:${ok.port}`, { "X-Prometheus-Scrape-Timeout-Seconds": "abc" });
    expect(r.status).toBe(500);
    expect(r.body).toBe('Failed to parse timeout from Prometheus header: strconv.ParseFloat: parsing "abc": invalid syntax\n');
  });
});

describe("the scrape timeout header", () => {
  it("caps the task's limits at the header less 0.5 s: a silent server and a 1 s header answer failure within the second", async () => {
    const started = performance.now();
    const r = await get(`${exporter.url}/probe?module=patient&target=127.0.0.1:${silent.port}`, { "X-Prometheus-Scrape-Timeout-Seconds": "1" });
    const ms = performance.now() - started;
    expect(r.status).toBe(200);
    expect(ms).toBeLessThan(1000);
    expect(ms).toBeGreaterThanOrEqual(450);
    const m = parseMetrics(r.body);
    expect(value(m, "probe_success")).toBe(0);
    expect([603, 604, 609]).toContain(value(m, "catprobe_error_code"));
    expect(value(m, "probe_duration_seconds")).toBeGreaterThanOrEqual(0.45);
    expect(value(m, "probe_duration_seconds")).toBeLessThan(0.9);
  });

  it("a longer header leaves the task's own, shorter limits alone", async () => {
    const r = await get(`${exporter.url}/probe?module=redis-ping&target=127.0.0.1:${silent.port}&debug=true`, { "X-Prometheus-Scrape-Timeout-Seconds": "30" });
    expect(r.body).toContain("timeout_seconds=29.5");
    expect(r.body).toContain('"responseTimeoutMs": 2000');
    expect(r.body).toContain("code=603");
  });
});

describe("the concurrency cap", () => {
  it("over --concurrency probes in flight, a request is answered 503 at once with Retry-After", async () => {
    const header = { "X-Prometheus-Scrape-Timeout-Seconds": "1.5" };
    const slow = [1, 2].map(() => get(`${exporter.url}/probe?module=patient&target=127.0.0.1:${silent.port}`, header));
    await new Promise((r) => setTimeout(r, 100));
    const over = await get(`${exporter.url}/probe?module=redis-ping&target=127.0.0.1:${ok.port}`);
    expect(over.status).toBe(503);
    expect(over.headers["retry-after"]).toBe("1");
    expect(over.body).toContain("--concurrency cap is 2");
    expect(over.ms).toBeLessThan(500);
    for (const r of await Promise.all(slow)) expect(r.status).toBe(200);
    expect((await get(`${exporter.url}/probe?module=redis-ping&target=127.0.0.1:${ok.port}`)).status).toBe(200);
  });
});

describe("/metrics and /", () => {
  it("/metrics counts probes by module and result, refusals by reason", async () => {
    const r = await get(`${exporter.url}/metrics`);
    expect(r.status).toBe(200);
    const m = parseMetrics(r.body);
    const probes = m.samples.get("catprobe_exporter_probes_total")!;
    expect(probes.find((s) => s.labels.module === "redis-ping" && s.labels.result === "success")!.value).toBeGreaterThan(0);
    const refused = m.samples.get("catprobe_exporter_refused_total")!;
    expect(refused.find((s) => s.labels.reason === "unknown_module")!.value).toBeGreaterThan(0);
    expect(refused.find((s) => s.labels.reason === "busy")!.value).toBeGreaterThan(0);
    expect(value(m, "catprobe_exporter_modules")).toBe(7);
    expect(value(m, "catprobe_exporter_concurrency_limit")).toBe(2);
    // no unbounded labels: modules only from the task set
    expect(probes.every((s) => exporter.modules.get(s.labels.module) !== undefined)).toBe(true);
  });

  it("/ lists the modules with probe links; unknown paths are 404", async () => {
    const r = await get(`${exporter.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(r.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(r.body).toContain('href="probe?module=redis-ping&amp;target=db.example.internal%3A6379"');
    expect((await get(`${exporter.url}/nope`)).status).toBe(404);
  });
});

describe("POST /-/reload, as blackbox's", () => {
  it("reads the tasks again; a broken file keeps the modules loaded before", async () => {
    const dir = taskDir([pingTask("first")]);
    const e = await startExporter({ tasks: dir, listen: "127.0.0.1:0" });
    try {
      const post = (path: string) => new Promise<number>((resolve, reject) => {
        const req = request(`${e.url}${path}`, { method: "POST" }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode!)); });
        req.on("error", reject);
        req.end();
      });
      expect((await get(`${e.url}/-/reload`)).status).toBe(405);
      writeFileSync(join(dir, "second.json"), JSON.stringify(pingTask("second", { target: { host: "127.0.0.1", port: ok.port } })));
      expect(await post("/-/reload")).toBe(200);
      expect(e.modules.size).toBe(2);
      expect(value(parseMetrics((await get(`${e.url}/probe?module=second&target=127.0.0.1:${ok.port}`)).body), "probe_success")).toBe(1);
      writeFileSync(join(dir, "third.json"), "{ not json");
      expect(await post("/-/reload")).toBe(500);
      expect(e.modules.size).toBe(2);
    } finally {
      await e.close();
    }
  });
});

describe("who may ask", () => {
  it("a non-loopback --listen without a token is refused at start; with one, every endpoint needs it", async () => {
    const dir = taskDir([pingTask("redis-ping")]);
    await expect(startExporter({ tasks: dir, listen: "0.0.0.0:0" })).rejects.toThrow(/reachable beyond this machine: give an API token/);
    const guarded = await startExporter({ tasks: dir, listen: "127.0.0.1:0", apiToken: "s3cret-tøken" });
    try {
      const url = `${guarded.url}/probe?module=redis-ping&target=127.0.0.1:${ok.port}`;
      const none = await get(url);
      expect(none.status).toBe(401);
      expect(none.headers["www-authenticate"]).toContain("Bearer");
      expect((await get(url, { authorization: "Bearer wrong" })).status).toBe(401);
      const bytes = Buffer.from("Bearer s3cret-tøken", "utf8").toString("latin1");
      expect((await get(url, { authorization: bytes })).status).toBe(200);
      expect((await get(`${guarded.url}/metrics`)).status).toBe(401);
      expect((await get(`${guarded.url}/`)).status).toBe(401);
    } finally {
      await guarded.close();
    }
  });

  it("a Host that is not this exporter's is 421 (DNS rebinding)", async () => {
    const r = await get(`${exporter.url}/probe?module=redis-ping&target=127.0.0.1:${ok.port}`, { host: "evil.example:9115" });
    expect(r.status).toBe(421);
  });

  it("the command refuses a non-loopback --listen without a token (exit 2) and a missing --tasks", async () => {
    const dir = taskDir([pingTask("redis-ping")]);
    for (const [args, message] of [
      [["--tasks", dir, "--listen", "0.0.0.0:0"], /--listen 0\.0\.0\.0:0 is reachable beyond this machine/],
      [[], /exporter needs --tasks DIR/],
    ] as const) {
      const child = startExporterProcess([...args]);
      const code = await new Promise<number | null>((resolve) => child.process.once("exit", (c) => resolve(c)));
      expect(code, child.output()).toBe(2);
      expect(child.output()).toMatch(message);
    }
  });
});
