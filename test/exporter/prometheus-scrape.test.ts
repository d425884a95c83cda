// A real Prometheus (Debian's `prometheus`) scrapes catprobe exporter through the relabelling
// scrape_config the README gives (blackbox_exporter's): each static target becomes the probe's
// `target` parameter and the `instance` label, the exporter's address is the one scraped.
// probe_success and catprobe_error_code are read back through Prometheus's HTTP API. A second
// job scrapes an exporter that requires a token, with `authorization: credentials_file`.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { refusedPort, startTcpFault, type FaultServer } from "../../simulator/servers/tcp.js";
import { PROJECT_ROOT, freePort, get, requireBinary, startChild, startExporterProcess, removeTempDirs, taskDir, tempDir, waitForHttp, type Child } from "./helpers.js";

const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";
const TOKEN = "exporter-token-for-the-test";

let prometheus: Child;
const exporters: Child[] = [];
let server: FaultServer;
let promUrl: string;
let okTarget: string, refusedTarget: string;

beforeAll(async () => {
  requireBinary(PROMETHEUS, "prometheus");
  const dir = tempDir("prometheus");
  server = await startTcpFault({ kind: "reply", reply: "+PONG\r\n" });
  okTarget = `127.0.0.1:${server.port}`;
  refusedTarget = `127.0.0.1:${await refusedPort()}`;
  const tasks = taskDir([{
    id: "redis-ping", target: { host: "cache.example.internal", port: 6379 },
    steps: [{ send: "PING\r\n", verify: "partial", expect: "+PONG", idleMs: 200 }],
  }], join(dir, "tasks"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

  const [open, guarded, prom] = [await freePort(), await freePort(), await freePort()];
  exporters.push(
    startExporterProcess(["--tasks", tasks, "--listen", `127.0.0.1:${open}`]),
    startExporterProcess(["--tasks", tasks, "--listen", `127.0.0.1:${guarded}`, "--api-token-file", tokenFile]),
  );
  for (const [e, port] of [[exporters[0], open], [exporters[1], guarded]] as const) await waitForHttp(`http://127.0.0.1:${port}/`, e);

  const relabel = (exporter: number) => `    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:${exporter}
`;
  const config = join(dir, "prometheus.yml");
  writeFileSync(config, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: catprobe
    metrics_path: /probe
    params:
      module: [redis-ping]
    static_configs:
      - targets: [${okTarget}, ${refusedTarget}]
${relabel(open)}  - job_name: catprobe-token
    metrics_path: /probe
    params:
      module: [redis-ping]
    authorization:
      type: Bearer
      credentials_file: ${tokenFile}
    static_configs:
      - targets: [${okTarget}]
${relabel(guarded)}`);
  promUrl = `http://127.0.0.1:${prom}`;
  prometheus = startChild(PROMETHEUS, [
    `--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${prom}`,
  ]);
  await waitForHttp(`${promUrl}/-/ready`, prometheus);
});

afterAll(async () => {
  await prometheus?.stop();
  for (const e of exporters) await e.stop();
  await server?.close();

  removeTempDirs();
});

interface VectorSample { metric: Record<string, string>; value: [number, string] }

async function query(expr: string): Promise<VectorSample[]> {
  const r = await get(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  expect(r.status, r.body).toBe(200);
  return (JSON.parse(r.body) as { data: { result: VectorSample[] } }).data.result;
}

/** Polls the query until it has `count` series; bounded, with what Prometheus said on failure. */
async function seriesOf(expr: string, count: number, ms = 30_000): Promise<Map<string, number>> {
  const end = Date.now() + ms;
  for (;;) {
    const result = await query(expr);
    if (result.length >= count) return new Map(result.map((s) => [`${s.metric.job}/${s.metric.instance}`, Number(s.value[1])]));
    if (Date.now() > end) {
      const targets = await get(`${promUrl}/api/v1/targets`);
      throw new Error(`${expr}: ${result.length} of ${count} series after ${ms} ms; targets: ${targets.body}\n${prometheus.output()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

it("Prometheus scrapes the exporter through the relabelling config: probe_success and catprobe_error_code per target", async () => {
  const success = await seriesOf("probe_success", 3);
  expect(success.get(`catprobe/${okTarget}`)).toBe(1);
  expect(success.get(`catprobe/${refusedTarget}`)).toBe(0);
  expect(success.get(`catprobe-token/${okTarget}`)).toBe(1);
  const codes = await seriesOf("catprobe_error_code", 3);
  expect(codes.get(`catprobe/${okTarget}`)).toBe(0);
  expect(codes.get(`catprobe/${refusedTarget}`)).toBe(601);
  const up = await seriesOf("up", 3);
  expect([...up.values()]).toEqual([1, 1, 1]); // the token job got in
  expect((await seriesOf("probe_duration_seconds", 3)).size).toBe(3);
});

it("the README's example scrape config (docs/prometheus/exporter-scrape.yml) is valid Prometheus configuration", () => {
  requireBinary(PROMTOOL, "prometheus");
  const r = spawnSync(PROMTOOL, ["check", "config", "--syntax-only", join(PROJECT_ROOT, "docs/prometheus/exporter-scrape.yml")], { encoding: "utf8" });
  expect(r.status, r.stdout + r.stderr).toBe(0);
});
