// catprobe exporter side by side with the real blackbox_exporter (Debian's
// prometheus-blackbox-exporter), both started here, probing the same loopback servers with
// equivalent modules: the same metric names for the same outcomes (less the few each side has
// alone, listed below), the same HELP and TYPE lines, the same probe_success, and the same
// answers to requests blackbox refuses.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLabPki } from "../../simulator/certs.js";
import { refusedPort, startTcpFault, type FaultServer } from "../../simulator/servers/tcp.js";
import { startTlsFault } from "../../simulator/servers/tls.js";
import { tcpServer, type TestServer } from "../helpers/tcp.js";
import {
  freePort, get, parseMetrics, requireBinary, startChild, startExporterProcess, removeTempDirs, taskDir, tempDir, waitForHttp,
  type Child, type Exposition,
} from "./helpers.js";

const BLACKBOX = "/usr/bin/prometheus-blackbox-exporter";

/** Families only blackbox writes: the certificate chain's details, which the probe runner does not keep. */
const BLACKBOX_ONLY = new Set(["probe_ssl_last_chain_expiry_timestamp_seconds", "probe_ssl_last_chain_info"]);
/** Families only catprobe writes: its error code and the failing step. */
const CATPROBE_ONLY = new Set(["catprobe_error_code", "probe_failed_at_step"]);

let blackbox: Child, catprobe: Child;
let blackboxUrl: string, catprobeUrl: string;
const servers: (FaultServer | TestServer)[] = [];
const targets: Record<string, string> = {};

beforeAll(async () => {
  requireBinary(BLACKBOX, "prometheus-blackbox-exporter");
  const dir = tempDir("blackbox");
  const labPki = createLabPki();
  const caFile = join(dir, "lab-ca.pem");
  writeFileSync(caFile, labPki.ca.cert);
  const ok = await startTcpFault({ kind: "reply", reply: "+PONG\r\n" });
  const silent = await startTcpFault({ kind: "silent" });
  // answers without the keyword, then closes: blackbox's regexp then fails on the end of input
  const wrong = await tcpServer((socket) => socket.once("data", () => socket.end("-ERR wrong\r\n")));
  const tls = await startTlsFault({ kind: "valid", reply: "+PONG\r\n" }, labPki);
  const untrusted = await startTlsFault({ kind: "untrusted", reply: "+PONG\r\n" }, labPki);
  const ok6 = await startTcpFault({ kind: "reply", reply: "+PONG\r\n" }, { host: "::1" });
  servers.push(ok, silent, wrong, tls, untrusted, ok6);
  Object.assign(targets, {
    ok: `127.0.0.1:${ok.port}`, ok6: `[::1]:${ok6.port}`, refused: `127.0.0.1:${await refusedPort()}`, silent: `127.0.0.1:${silent.port}`,
    wrong: `127.0.0.1:${wrong.port}`, tls: `127.0.0.1:${tls.port}`, untrusted: `127.0.0.1:${untrusted.port}`,
  });

  // The same dialog both ways: blackbox's `send` adds "\n"; its expect is a regexp on each line.
  const config = join(dir, "blackbox.yml");
  writeFileSync(config, `modules:
  redis-ping:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - send: "PING"
        - expect: "\\\\+PONG"
  redis-tls:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ${caFile}
      query_response:
        - send: "PING"
        - expect: "\\\\+PONG"
`);
  const step = { send: "PING\n", verify: "partial", expect: "+PONG", idleMs: 300, responseTimeoutMs: 5000, timeoutMs: 8000 };
  const tasks = taskDir([
    { id: "redis-ping", target: { host: "cache.example.internal", port: 6379 }, steps: [step] },
    { id: "redis-tls", target: { host: "cache.example.internal", port: 6380, tls: true, ca: caFile }, steps: [step] },
  ], join(dir, "tasks"));

  const [bPort, cPort] = [await freePort(), await freePort()];
  blackbox = startChild(BLACKBOX, [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${bPort}`]);
  catprobe = startExporterProcess(["--tasks", tasks, "--listen", `127.0.0.1:${cPort}`]);
  blackboxUrl = `http://127.0.0.1:${bPort}`;
  catprobeUrl = `http://127.0.0.1:${cPort}`;
  await Promise.all([waitForHttp(`${blackboxUrl}/metrics`, blackbox), waitForHttp(`${catprobeUrl}/metrics`, catprobe)]);
});

afterAll(async () => {
  await blackbox?.stop();
  await catprobe?.stop();
  for (const s of servers) await s.close();

  removeTempDirs();
});

interface Both { blackbox: Exposition; catprobe: Exposition; ms: { blackbox: number; catprobe: number } }

async function probeBoth(module: string, target: string, headers: Record<string, string> = { "X-Prometheus-Scrape-Timeout-Seconds": "3" }): Promise<Both> {
  const query = `/probe?module=${module}&target=${encodeURIComponent(target)}`;
  const [b, c] = await Promise.all([get(blackboxUrl + query, headers), get(catprobeUrl + query, headers)]);
  expect(b.status, b.body).toBe(200);
  expect(c.status, c.body).toBe(200);
  expect(c.headers["content-type"]).toBe(b.headers["content-type"]);
  return { blackbox: parseMetrics(b.body), catprobe: parseMetrics(c.body), ms: { blackbox: b.ms, catprobe: c.ms } };
}

const names = (e: Exposition, without: Set<string>) => [...e.samples.keys()].filter((n) => !without.has(n)).sort();
const one = (e: Exposition, name: string) => e.samples.get(name)?.[0]?.value;

function expectSameShape(both: Both): void {
  expect(names(both.catprobe, CATPROBE_ONLY)).toEqual(names(both.blackbox, BLACKBOX_ONLY));
  for (const name of names(both.blackbox, BLACKBOX_ONLY)) {
    expect(both.catprobe.help.get(name), name).toBe(both.blackbox.help.get(name));
    expect(both.catprobe.type.get(name), name).toBe(both.blackbox.type.get(name));
  }
  for (const name of ["probe_success", "probe_ip_protocol", "probe_ip_addr_hash", "probe_failed_due_to_regex"]) {
    expect(one(both.catprobe, name), name).toBe(one(both.blackbox, name));
  }
}

describe("the same targets through blackbox_exporter and catprobe exporter", () => {
  it("success", async () => {
    const both = await probeBoth("redis-ping", targets.ok);
    expectSameShape(both);
    expect(one(both.catprobe, "probe_success")).toBe(1);
    expect(one(both.catprobe, "catprobe_error_code")).toBe(0);
  });

  it("success over IPv6: the same protocol and address hash", async () => {
    const both = await probeBoth("redis-ping", targets.ok6);
    expectSameShape(both);
    expect(one(both.catprobe, "probe_success")).toBe(1);
    expect(one(both.catprobe, "probe_ip_protocol")).toBe(6);
  });

  it("connection refused", async () => {
    const both = await probeBoth("redis-ping", targets.refused);
    expectSameShape(both);
    expect(one(both.catprobe, "probe_success")).toBe(0);
    expect(one(both.catprobe, "catprobe_error_code")).toBe(601);
  });

  it("no response: both give up before the scrape timeout (1 s header) and report failure", async () => {
    const both = await probeBoth("redis-ping", targets.silent, { "X-Prometheus-Scrape-Timeout-Seconds": "1" });
    expectSameShape(both);
    expect(one(both.catprobe, "probe_success")).toBe(0);
    expect(both.ms.blackbox).toBeLessThan(1000);
    expect(both.ms.catprobe).toBeLessThan(1000);
    // both spend about the header less 0.5 s
    expect(Math.abs(one(both.catprobe, "probe_duration_seconds")! - one(both.blackbox, "probe_duration_seconds")!)).toBeLessThan(0.2);
  });

  it("a reply without the keyword: probe_failed_due_to_regex 1 on both; catprobe says 607 at step 0", async () => {
    const both = await probeBoth("redis-ping", targets.wrong);
    expectSameShape(both);
    expect(one(both.blackbox, "probe_failed_due_to_regex")).toBe(1);
    expect(one(both.catprobe, "catprobe_error_code")).toBe(607);
    expect(one(both.catprobe, "probe_failed_at_step")).toBe(0);
  });

  it("TLS: the same certificate expiry and TLS version", async () => {
    const both = await probeBoth("redis-tls", targets.tls);
    expectSameShape(both);
    expect(one(both.catprobe, "probe_success")).toBe(1);
    expect(one(both.catprobe, "probe_ssl_earliest_cert_expiry")).toBe(one(both.blackbox, "probe_ssl_earliest_cert_expiry"));
    expect(both.catprobe.samples.get("probe_tls_version_info")).toEqual(both.blackbox.samples.get("probe_tls_version_info"));
  });

  it("TLS with an untrusted certificate: no certificate families on either side", async () => {
    const both = await probeBoth("redis-tls", targets.untrusted);
    expectSameShape(both);
    expect(one(both.catprobe, "probe_success")).toBe(0);
    expect(one(both.catprobe, "catprobe_error_code")).toBe(608);
  });
});

describe("requests blackbox refuses: the same status and body", () => {
  for (const [what, query, headers] of [
    ["an unknown module", "?module=nope&target=127.0.0.1:1", {}],
    ["no module (blackbox's default, http_2xx)", "?target=127.0.0.1:1", {}],
    ["a non-ASCII module name", `?module=${encodeURIComponent("模块\"\u0001")}&target=127.0.0.1:1`, {}],
    ["a missing target", "?module=redis-ping", {}],
    ["a scrape timeout that is no number", "?module=redis-ping&target=127.0.0.1:1", { "X-Prometheus-Scrape-Timeout-Seconds": "soon" }],
  ] as const) {
    it(what, async () => {
      const [b, c] = await Promise.all([get(blackboxUrl + "/probe" + query, headers), get(catprobeUrl + "/probe" + query, headers)]);
      expect(b.status).toBeGreaterThanOrEqual(400);
      expect(c.status).toBe(b.status);
      expect(c.body).toBe(b.body);
      expect(c.headers["content-type"]).toBe(b.headers["content-type"]);
    });
  }

  it("where they differ: a target without a valid host is a probe failure to blackbox, a 400 to catprobe", async () => {
    const query = `/probe?module=redis-ping&target=${encodeURIComponent("bad host:80")}`;
    const [b, c] = await Promise.all([get(blackboxUrl + query), get(catprobeUrl + query)]);
    expect(b.status).toBe(200);
    expect(parseMetrics(b.body).samples.get("probe_success")?.[0].value).toBe(0);
    expect(c.status).toBe(400);
    expect(c.body).toMatch(/^Invalid target: /);
  });
});
