// /metrics of a real collector (embedded broker, results and statuses over MQTT, the text
// fetched over HTTP and parsed): the phase histograms equal the stored records, task by task
// and phase by phase; the task label cap and its "_other" bucket; probe up from statuses;
// certificate expiry from the latest run's notAfter; promtool check metrics on the real text.
// The probe and certificate-series caps on CollectorMetrics itself, with small caps.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../host/collector/collector.js";
import { CollectorMetrics, LABEL_CAPS, OTHER, PHASE_BUCKETS, PHASE_LABELS } from "../../host/collector/metrics.js";
import type { StoredRecord } from "../../host/wire/record.js";
import { resultTopic, statusTopic } from "../../host/wire/topics.js";
import { ProbeClients } from "../helpers/probe-clients.js";
import { promtool } from "../helpers/promtool.js";
import { record } from "../helpers/records.js";
import { until } from "../helpers/until.js";

interface Sample { name: string; labels: Record<string, string>; value: number }

/** The samples of a Prometheus text exposition. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1], labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) });
  }
  return samples;
}

const pick = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const one = (samples: Sample[], name: string, labels: Record<string, string>): number | undefined => {
  const found = pick(samples, name, labels);
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value;
};

const H = "catprobe_phase_duration_seconds";

/** What the phase histograms of `records` must be: per phase, count, sum and cumulative buckets. */
function expectedPhases(records: StoredRecord[]) {
  return PHASE_LABELS.map(([phase, key]) => {
    const seconds = records.map((r) => r.timings[key]).filter((ms): ms is number => ms !== null && ms !== undefined).map((ms) => ms / 1000);
    return { phase, count: seconds.length, sum: seconds.reduce((a, b) => a + b, 0), buckets: PHASE_BUCKETS.map((le) => seconds.filter((s) => s <= le).length) };
  });
}

function expectHistogramsOf(samples: Sample[], task: string, records: StoredRecord[]) {
  for (const { phase, count, sum, buckets } of expectedPhases(records)) {
    if (count === 0) {
      expect(pick(samples, `${H}_count`, { task, phase }), `${task} ${phase}: no run had it`).toEqual([]);
      continue;
    }
    expect(one(samples, `${H}_count`, { task, phase }), `${task} ${phase} count`).toBe(count);
    expect(one(samples, `${H}_sum`, { task, phase }), `${task} ${phase} sum`).toBeCloseTo(sum, 9);
    PHASE_BUCKETS.forEach((le, i) => expect(one(samples, `${H}_bucket`, { task, phase, le: String(le) }), `${task} ${phase} le=${le}`).toBe(buckets[i]));
    expect(one(samples, `${H}_bucket`, { task, phase, le: "+Inf" })).toBe(count);
  }
}

// Durations across the buckets, above the last one (only +Inf), and phases a run never reached.
const MS = [0.4, 1, 2.6, 9, 48, 120, 480, 2400, 15_000, 70_000];
function timed(probe: string, task: string, ts: number, i: number): StoredRecord {
  const failedAt = i % 7; // 0: dns failed, 1: connect failed, else all phases
  const r = record(probe, task, ts, failedAt === 0 ? 600 : failedAt === 1 ? 601 : i % 3 ? null : 607);
  const tls = task === "t-tls";
  r.timings = {
    dnsMs: MS[i % MS.length],
    connectMs: failedAt === 0 ? null : MS[(i * 3) % MS.length],
    tlsMs: tls && failedAt > 1 ? MS[(i * 7) % MS.length] : null,
    sendMs: failedAt > 1 ? 0.1 : null,
    firstByteMs: failedAt > 1 ? MS[(i * 5) % MS.length] : null,
    receiveMs: failedAt > 1 ? 0.2 : null,
    totalMs: MS[(i * 11) % MS.length] + 1,
  };
  return r;
}
const withCert = (r: StoredRecord, notAfter: string | null): StoredRecord =>
  ({ ...r, tls: { version: "TLSv1.3", subject: "CN=site", issuer: "CN=ca", notAfter, daysLeft: null } });

const status = (probe: string, state: "online" | "offline") => JSON.stringify({
  v: 1, probe, state, ts: Date.now(), labels: {}, appliedVersion: null, configError: null, spooled: 0, dropped: 0, software: "catprobe/test",
});

describe("collector /metrics", () => {
  let c: Collector;
  let clients: ProbeClients;
  const now = Date.now();
  let sent = 0;
  const scrape = async () => {
    const res = await fetch(`${c.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const stored = async () => ((await (await fetch(`${c.httpUrl}/api/top-errors?window=24h`)).json()) as { total: number }).total;
  const publish = async (records: StoredRecord[]) => {
    await clients.publish(resultTopic(records[0].probe, records[0].task), JSON.stringify(records.length === 1 ? records[0] : records));
    sent += records.length;
  };

  beforeAll(async () => {
    c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db: join(mkdtempSync(join(tmpdir(), "catprobe-metrics-")), "c.db") });
    clients = new ProbeClients(c.brokerUrl);
  });
  afterAll(async () => {
    await clients.end();
    await c.close();
  });

  it("phase histograms by task and phase equal the stored records; null phases are not observed", async () => {
    let i = 0;
    for (const probe of ["p1", "p2"]) {
      for (const task of ["t-plain", "t-tls"]) {
        // batches of 20, and single records
        for (let b = 0; b < 3; b++) await publish(Array.from({ length: 20 }, () => timed(probe, task, now - 600_000 + i * 10, i++)));
        for (let s = 0; s < 5; s++) await publish([timed(probe, task, now - 600_000 + i * 10, i++)]);
      }
    }
    await until(async () => (await stored()) === sent, "every result stored");
    const samples = parse(await scrape());
    for (const task of ["t-plain", "t-tls"]) {
      const res = await fetch(`${c.httpUrl}/api/results?window=24h&task=${task}&limit=1000`);
      const records = ((await res.json()) as { results: StoredRecord[] }).results;
      expect(records).toHaveLength(130);
      expectHistogramsOf(samples, task, records);
      const ok = records.filter((r) => r.code === null).length;
      expect(one(samples, "catprobe_results_total", { task, code: "ok" })).toBe(ok);
    }
    // t-plain never had a TLS phase: no tls series at all
    expect(pick(samples, `${H}_count`, { task: "t-plain", phase: "tls" })).toEqual([]);
    expect(one(samples, `${H}_count`, { task: "t-tls", phase: "tls" })).toBeGreaterThan(0);
    // the phases: exactly the five
    expect(new Set(pick(samples, `${H}_count`, {}).map((s) => s.labels.phase))).toEqual(new Set(["dns", "connect", "tls", "first_byte", "total"]));
  });

  it("certificate expiry: the notAfter of each task and probe's latest run, not of one delivered late", async () => {
    const newer = "2027-03-01T12:00:00.000Z";
    const older = "2027-01-15T00:00:00.000Z";
    await publish([withCert(timed("p1", "t-tls", now - 1000, 3), newer)]);
    await publish([withCert(timed("p1", "t-tls", now - 5000, 4), older)]); // an older run, delivered after
    await publish([withCert(timed("p2", "t-tls", now - 2000, 5), older)]);
    await publish([withCert(timed("p2", "t-tls", now - 1000, 6), null)]); // no certificate seen: not an expiry
    await until(async () => (await stored()) === sent, "the runs with certificates");
    const samples = parse(await scrape());
    const expiry = "catprobe_cert_expiry_timestamp_seconds";
    expect(one(samples, expiry, { task: "t-tls", probe: "p1" })).toBe(Date.parse(newer) / 1000);
    expect(one(samples, expiry, { task: "t-tls", probe: "p2" })).toBe(Date.parse(older) / 1000);
    expect(pick(samples, expiry, { task: "t-plain" })).toEqual([]);

    // a renewed certificate replaces the old one
    const renewed = "2027-06-01T00:00:00.000Z";
    await publish([withCert(timed("p2", "t-tls", now - 500, 7), renewed)]);
    await until(async () => one(parse(await scrape()), expiry, { task: "t-tls", probe: "p2" }) === Date.parse(renewed) / 1000, "the renewed certificate");
  });

  it("probe up: 1 on an online status, 0 once the probe reports offline", async () => {
    const up = async (probe: string) => one(parse(await scrape()), "catprobe_probe_up", { probe });
    await clients.publish(statusTopic("edge-1"), status("edge-1", "online"));
    await clients.publish(statusTopic("edge-2"), status("edge-2", "online"));
    await until(async () => (await up("edge-1")) === 1 && (await up("edge-2")) === 1, "edge-1 and edge-2 up");
    await clients.publish(statusTopic("edge-1"), status("edge-1", "offline"));
    await until(async () => (await up("edge-1")) === 0, "edge-1 down");
    const samples = parse(await scrape());
    expect(one(samples, "catprobe_probe_up", { probe: "edge-2" })).toBe(1);
    expect(one(samples, "catprobe_probes", { state: "offline" })).toBe(1);
    expect(one(samples, "catprobe_probes", { state: "online" })).toBe(1);
    // within the cap: no "_other"
    expect(pick(samples, "catprobe_probe_up", { probe: OTHER })).toEqual([]);
  });

  it(`at most ${LABEL_CAPS.tasks} task labels; later tasks are summed under "_other" in results, phases and expiry`, async () => {
    const fillers = LABEL_CAPS.tasks - 2; // t-plain and t-tls have two
    // in flight together, in order on one client: every filler before the extras
    await Promise.all(Array.from({ length: fillers }, (_, n) => publish([timed("p1", `fill-${n}`, now - 300_000, n)])));
    await until(async () => (await stored()) === sent, "the fillers stored");
    const extras = [0, 1, 2].map((n) => timed("p1", `extra-${n}`, now - 200_000, 2 + n)); // never failing at dns
    const notAfters = ["2027-05-01T00:00:00.000Z", "2027-02-01T00:00:00.000Z", "2027-04-01T00:00:00.000Z"];
    for (const [n, r] of extras.entries()) await publish([withCert(r, notAfters[n])]);
    await until(async () => (await stored()) === sent, "the tasks past the cap stored");
    const text = await scrape();
    const samples = parse(text);
    const taskLabels = new Set(pick(samples, "catprobe_results_total", {}).map((s) => s.labels.task));
    expect(taskLabels.size).toBe(LABEL_CAPS.tasks + 1);
    expect(taskLabels.has(OTHER)).toBe(true);
    expect([...taskLabels].filter((t) => t.startsWith("extra-"))).toEqual([]);
    expect(new Set(pick(samples, `${H}_count`, {}).map((s) => s.labels.task))).toEqual(taskLabels);
    const results = pick(samples, "catprobe_results_total", { task: OTHER }).reduce((a, s) => a + s.value, 0);
    expect(results).toBe(3);
    expectHistogramsOf(samples, OTHER, extras);
    // the earliest expiry of the tasks it stands for
    expect(one(samples, "catprobe_cert_expiry_timestamp_seconds", { task: OTHER, probe: "p1" })).toBe(Date.parse(notAfters[1]) / 1000);
    // the totals still add up over every label
    const total = pick(samples, "catprobe_results_total", {}).reduce((a, s) => a + s.value, 0);
    expect(total).toBe(sent);
    expect(pick(samples, `${H}_count`, { phase: "total" }).reduce((a, s) => a + s.value, 0)).toBe(sent);
  });

  it("promtool check metrics: the real /metrics text is valid and lint-clean", async () => {
    const text = await scrape();
    expect(text).toContain(`${H}_bucket`);
    const r = promtool(["check", "metrics"], text);
    expect(r.output).toBe("");
    expect(r.status, r.output).toBe(0);
  });
});

describe("probe up at collector start", () => {
  it("comes from the stored probe states, before any new status", async () => {
    const db = join(mkdtempSync(join(tmpdir(), "catprobe-metrics-start-")), "c.db");
    let c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db });
    const clients = new ProbeClients(c.brokerUrl);
    try {
      await clients.publish(statusTopic("edge-8"), status("edge-8", "offline"));
      await clients.publish(statusTopic("edge-9"), status("edge-9", "online"));
      await until(async () => ((await (await fetch(`${c.httpUrl}/api/probes`)).json()) as unknown[]).length === 2, "both probes stored");
    } finally {
      await clients.end();
      await c.close();
    }
    // the embedded broker keeps retained statuses in memory only: a new one hands none over
    c = await startCollector({ mqttListen: "127.0.0.1:0", http: "127.0.0.1:0", db });
    try {
      const up = async () => pick(parse(await (await fetch(`${c.httpUrl}/metrics`)).text()), "catprobe_probe_up", {}).map((s) => [s.labels.probe, s.value]);
      await until(async () => (await up()).length === 2, "the stored states as gauges", 5_000);
      expect(await up()).toEqual([["edge-8", 0], ["edge-9", 1]]);
    } finally {
      await c.close();
    }
  });
});

describe("probe and certificate-series caps (CollectorMetrics, small caps)", () => {
  const at = (ts: number, probe: string, task: string, notAfter: string) =>
    withCert(record(probe, task, ts, null), notAfter);

  it(`probe="_other" counts the online probes past the cap; catprobe_probes counts every probe`, async () => {
    const m = new CollectorMetrics({ tasks: 10, probes: 2, certSeries: 10, certPairs: 1000 });
    m.probeState("a", "online");
    m.probeState("b", "offline");
    m.probeState("c", "online");
    m.probeState("d", "online");
    m.probeState("e", "offline");
    let s = parse(await m.registry.metrics());
    expect(pick(s, "catprobe_probe_up", {}).map((x) => [x.labels.probe, x.value])).toEqual([["a", 1], ["b", 0], [OTHER, 2]]);
    expect(one(s, "catprobe_probes", { state: "online" })).toBe(3);
    expect(one(s, "catprobe_probes", { state: "offline" })).toBe(2);
    // sum(catprobe_probe_up) is the online count of the whole fleet
    expect(pick(s, "catprobe_probe_up", {}).reduce((a, x) => a + x.value, 0)).toBe(3);
    m.probeState("d", "offline");
    m.probeState("b", "online");
    s = parse(await m.registry.metrics());
    expect(pick(s, "catprobe_probe_up", {}).map((x) => [x.labels.probe, x.value])).toEqual([["a", 1], ["b", 1], [OTHER, 1]]);
  });

  it("certificate expiry over one call of several probes and tasks, runs out of order, and an unreadable notAfter", async () => {
    const m = new CollectorMetrics();
    const t = Date.now();
    m.storedBatch([
      at(t, "p1", "web", "2027-01-10T00:00:00Z"), at(t, "p2", "web", "2027-01-20T00:00:00Z"),
      at(t + 2, "p1", "web", "2027-04-10T00:00:00Z"), at(t + 1, "p1", "web", "2027-02-10T00:00:00Z"),
      at(t, "p1", "api", "not a date"), at(t + 3, "p2", "web", "2027-05-20T00:00:00Z"),
    ], t);
    const s = parse(await m.registry.metrics());
    expect(pick(s, "catprobe_cert_expiry_timestamp_seconds", {}).map((x) => [x.labels.task, x.labels.probe, x.value])).toEqual([
      ["web", "p1", Date.parse("2027-04-10T00:00:00Z") / 1000], ["web", "p2", Date.parse("2027-05-20T00:00:00Z") / 1000],
    ]);
  });

  it("certificate series past the cap: under their task with probe \"_other\", the earliest expiry", async () => {
    const m = new CollectorMetrics({ tasks: 2, probes: 10, certSeries: 2, certPairs: 1000 });
    const t = Date.now();
    m.storedBatch([at(t, "p1", "web", "2027-01-10T00:00:00Z")], t);
    m.storedBatch([at(t, "p2", "web", "2027-01-20T00:00:00Z")], t);
    m.storedBatch([at(t, "p3", "web", "2027-01-05T00:00:00Z")], t); // past the series cap
    m.storedBatch([at(t, "p4", "web", "2027-01-07T00:00:00Z")], t);
    m.storedBatch([at(t, "p1", "api", "2027-02-01T00:00:00Z")], t);
    m.storedBatch([at(t, "p1", "extra", "2027-03-01T00:00:00Z")], t); // past the task cap too
    let s = parse(await m.registry.metrics());
    const series = () => pick(s, "catprobe_cert_expiry_timestamp_seconds", {}).map((x) => [x.labels.task, x.labels.probe, new Date(x.value * 1000).toISOString().slice(0, 10)]);
    expect(series()).toEqual([
      ["web", "p1", "2027-01-10"], ["web", "p2", "2027-01-20"], ["web", OTHER, "2027-01-05"],
      ["api", OTHER, "2027-02-01"], [OTHER, OTHER, "2027-03-01"],
    ]);
    // p3 renews: "_other" of web now holds p4's, the earliest left
    m.storedBatch([at(t + 1, "p3", "web", "2027-09-01T00:00:00Z")], t);
    s = parse(await m.registry.metrics());
    expect(series()).toContainEqual(["web", OTHER, "2027-01-07"]);
    expect(series()).toHaveLength(5);
  });

  it("keeps at most certPairs pairs one by one; later pairs lower their task's \"_other\" to the earliest expiry", async () => {
    const m = new CollectorMetrics({ tasks: 10, probes: 1000, certSeries: 1000, certPairs: 2 });
    const t = Date.now();
    m.storedBatch([at(t, "p1", "web", "2027-01-10T00:00:00Z")], t);
    m.storedBatch([at(t, "p2", "web", "2027-01-20T00:00:00Z")], t);
    for (let i = 3; i < 500; i++) m.storedBatch([at(t, `p${i}`, "web", `2027-0${1 + (i % 8)}-15T00:00:00Z`)], t);
    m.storedBatch([at(t, "p900", "web", "2026-12-24T00:00:00Z")], t); // the earliest, past the pairs cap
    const s = parse(await m.registry.metrics());
    expect(pick(s, "catprobe_cert_expiry_timestamp_seconds", {}).map((x) => [x.labels.task, x.labels.probe, new Date(x.value * 1000).toISOString().slice(0, 10)]))
      .toEqual([["web", "p1", "2027-01-10"], ["web", "p2", "2027-01-20"], ["web", OTHER, "2026-12-24"]]);
  });
});
