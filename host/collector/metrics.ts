// Prometheus metrics of one collector (its own registry, so several can run in one process).
//
// Label sets are bounded: codes, reasons and phases are fixed lists; tasks, probes and the
// certificate series are capped (LABEL_CAPS). A value past its cap is counted under OTHER
// ("_other"), so that nothing is lost and sums stay right:
// - results and phase histograms: `task="_other"` counts every task past the cap (a sum);
// - `catprobe_probe_up{probe="_other"}`: how many probes past the cap are online (so
//   `sum(catprobe_probe_up)` is the online count of the whole fleet; `catprobe_probes{state}`
//   has both counts, offline ones past the cap included);
// - `catprobe_cert_expiry_timestamp_seconds{probe="_other"}` (or `task="_other"`): the earliest
//   expiry of the certificates it stands for (a `< 14 days` alert still sees each of them).
//
// storedBatch() runs for every committed batch, so the phase histograms are plain arrays filled
// there and turned into Prometheus values only at a scrape; the gauges are likewise computed
// at a scrape from maps that storedBatch() and probeState() keep current.

import { Counter, Gauge, Histogram, Registry, type Metric } from "prom-client";
import type { StoredRecord, Timings } from "../wire/record.js";
import { REJECT_REASONS, type RejectReason } from "../wire/validate.js";
import { DENY_REASONS, type DenyReason } from "./broker-access.js";

/** The label value that stands for every value past its cap. */
export const OTHER = "_other";

/** The caps of the label sets, the only place they are defined. */
export interface LabelCaps {
  /** distinct `task` values (results, phase histograms, certificate expiry); later tasks are "_other" */
  tasks: number;
  /** distinct `probe` values (probe up, certificate expiry); later probes are "_other" */
  probes: number;
  /**
   * (task, probe) series of the certificate expiry; a later pair is counted under its task with
   * probe "_other", so that gauge has at most certSeries + tasks + 1 series
   */
  certSeries: number;
  /**
   * (task, probe) pairs whose latest certificate is kept one by one (memory, not series); a
   * later pair only lowers its task's "_other" series to the earliest expiry it reports
   */
  certPairs: number;
}
export const LABEL_CAPS: Readonly<LabelCaps> = Object.freeze({ tasks: 500, probes: 1000, certSeries: 2000, certPairs: 100_000 });

/** The timed phases in `catprobe_phase_duration_seconds`, by their label; a null phase is not observed. */
export const PHASE_LABELS = [
  ["dns", "dnsMs"], ["connect", "connectMs"], ["tls", "tlsMs"], ["first_byte", "firstByteMs"], ["total", "totalMs"],
] as const satisfies readonly (readonly [string, keyof Timings])[];

/** Upper bounds in seconds: a millisecond on a LAN to a minute (a task's longest limits). */
export const PHASE_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);

const PHASE_KEYS = PHASE_LABELS.map(([, key]) => key);
// PhaseHistograms.observe() reads the phases in this order
if (PHASE_KEYS.join() !== "dnsMs,connectMs,tlsMs,firstByteMs,totalMs") throw new Error("PHASE_LABELS and observe() differ");
const SLOTS = PHASE_BUCKETS.length + 1; // the last slot: above every bound (+Inf)

/** One task label's phase histograms: per phase, non-cumulative bucket counts, count and sum. */
interface PhaseRow {
  buckets: Float64Array; // PHASE_KEYS.length × SLOTS
  counts: Float64Array;
  sums: Float64Array;
}

/**
 * `catprobe_phase_duration_seconds{task,phase}`, kept in typed arrays: an observation is a
 * bucket search and three increments, where a prom-client Histogram hashes its labels on every
 * observe. It gives the registry what a prom-client Histogram does, so the text is the same.
 */
class PhaseHistograms {
  readonly name = "catprobe_phase_duration_seconds";
  readonly help = "Duration of each phase of a run (dns, connect, tls, first_byte, total), by task; a phase a run did not reach is not observed";
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly rows = new Map<string, PhaseRow>();

  row(task: string): PhaseRow {
    let row = this.rows.get(task);
    if (!row) {
      row = { buckets: new Float64Array(PHASE_KEYS.length * SLOTS), counts: new Float64Array(PHASE_KEYS.length), sums: new Float64Array(PHASE_KEYS.length) };
      this.rows.set(task, row);
    }
    return row;
  }

  /** The phases of PHASE_LABELS, in order, each by its own property access (no keyed loop). */
  observe(row: PhaseRow, t: Timings): void {
    if (t.dnsMs !== null && t.dnsMs !== undefined) add(row, 0, t.dnsMs);
    if (t.connectMs !== null && t.connectMs !== undefined) add(row, 1, t.connectMs);
    if (t.tlsMs !== null && t.tlsMs !== undefined) add(row, 2, t.tlsMs);
    if (t.firstByteMs !== null && t.firstByteMs !== undefined) add(row, 3, t.firstByteMs);
    add(row, 4, t.totalMs);
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const [task, row] of this.rows) {
      for (let p = 0; p < PHASE_KEYS.length; p++) {
        if (row.counts[p] === 0) continue;
        const phase = PHASE_LABELS[p][0];
        let acc = 0;
        for (let b = 0; b < PHASE_BUCKETS.length; b++) {
          acc += row.buckets[p * SLOTS + b];
          values.push({ labels: { task, phase, le: PHASE_BUCKETS[b] }, value: acc, metricName: `${this.name}_bucket` });
        }
        values.push({ labels: { task, phase, le: "+Inf" }, value: row.counts[p], metricName: `${this.name}_bucket` });
        values.push({ labels: { task, phase }, value: row.sums[p], metricName: `${this.name}_sum` });
        values.push({ labels: { task, phase }, value: row.counts[p], metricName: `${this.name}_count` });
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.rows.clear();
  }
}

function add(row: PhaseRow, p: number, ms: number): void {
  const s = ms / 1000;
  let b = 0;
  while (b < PHASE_BUCKETS.length && s > PHASE_BUCKETS[b]) b++;
  row.buckets[p * SLOTS + b]++;
  row.counts[p]++;
  row.sums[p] += s;
}

/** The certificate of one (task, probe) pair as its latest result (by `ts`) had it. */
interface CertEntry {
  task: string; // labels of the series it is counted in
  probe: string;
  ts: number;
  notAfter: string;
  seconds: number;
}

/** A label set capped at `cap` distinct values; later values are OTHER. */
class CappedLabels {
  private readonly seen = new Set<string>();
  constructor(private readonly cap: number) {}
  label(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.cap) return OTHER;
    this.seen.add(value);
    return value;
  }
}

export class CollectorMetrics {
  readonly registry = new Registry();
  private readonly tasks: CappedLabels;
  private readonly probes: CappedLabels;
  private readonly results = new Counter({
    name: "catprobe_results_total", help: "Results stored, by task and code (ok for success)",
    labelNames: ["task", "code"], registers: [this.registry],
  });
  private readonly duplicates = new Counter({
    name: "catprobe_duplicate_results_total", help: "Results received again (QoS 1 re-delivery) and ignored",
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: "catprobe_rejected_total", help: "Rejected messages or batch entries, by reason",
    labelNames: ["reason"], registers: [this.registry],
  });
  private readonly lag = new Histogram({
    name: "catprobe_ingest_lag_seconds", help: "Time from a run's start to its result being stored",
    buckets: [0.05, 0.25, 1, 5, 30, 120, 600, 3600, 86400], registers: [this.registry],
  });
  private readonly dropped = new Counter({
    name: "catprobe_probe_dropped_results_total", help: "Results probes reported dropping from a full spool",
    registers: [this.registry],
  });

  private readonly denied = new Counter({
    name: "catprobe_broker_denied_total", help: "Connections, publishes and subscriptions the embedded broker refused, by reason",
    labelNames: ["reason"], registers: [this.registry],
  });

  private readonly phases = new PhaseHistograms();

  /** probe → online, for every probe a status was recorded of */
  private readonly probeOnline = new Map<string, boolean>();
  /** labels of the probes within the cap */
  private readonly probeLabelOf = new Map<string, string>();

  /** "task\0probe" → its certificate; series: the (task, probe) label pairs given out */
  private readonly certs = new Map<string, CertEntry>();
  private readonly certSeries = new Set<string>();

  constructor(private readonly caps: Readonly<LabelCaps> = LABEL_CAPS) {
    this.tasks = new CappedLabels(caps.tasks);
    this.probes = new CappedLabels(caps.probes);
    for (const reason of REJECT_REASONS) this.rejected.inc({ reason }, 0);
    for (const reason of DENY_REASONS) this.denied.inc({ reason }, 0);
    this.duplicates.inc(0);
    this.registry.registerMetric(this.phases as unknown as Metric);

    const probeOnline = this.probeOnline;
    const probeLabelOf = this.probeLabelOf;
    new Gauge({
      name: "catprobe_probe_up", registers: [this.registry], labelNames: ["probe"],
      help: `1 when the probe's last status said online, 0 offline; probe="${OTHER}": how many probes past the label cap are online`,
      collect() {
        this.reset();
        let others: number | undefined;
        for (const [probe, online] of probeOnline) {
          const label = probeLabelOf.get(probe);
          if (label !== undefined) this.set({ probe: label }, online ? 1 : 0);
          else others = (others ?? 0) + (online ? 1 : 0);
        }
        if (others !== undefined) this.set({ probe: OTHER }, others);
      },
    });
    new Gauge({
      name: "catprobe_probes", registers: [this.registry], labelNames: ["state"],
      help: "Probes by the state of their last status (every probe, those past the label cap included)",
      collect() {
        let online = 0;
        for (const up of probeOnline.values()) if (up) online++;
        this.set({ state: "online" }, online);
        this.set({ state: "offline" }, probeOnline.size - online);
      },
    });
    const certs = this.certs;
    new Gauge({
      name: "catprobe_cert_expiry_timestamp_seconds", registers: [this.registry], labelNames: ["task", "probe"],
      help: `The certificate's notAfter (epoch seconds) in the latest result of each task and probe; a "${OTHER}" series: the earliest of those it stands for`,
      collect() {
        this.reset();
        const earliest = new Map<string, CertEntry>();
        for (const cert of certs.values()) {
          const key = `${cert.task}\0${cert.probe}`;
          const seen = earliest.get(key);
          if (!seen || cert.seconds < seen.seconds) earliest.set(key, cert);
        }
        for (const cert of earliest.values()) this.set({ task: cert.task, probe: cert.probe }, cert.seconds);
      },
    });
  }

  /**
   * Counts a committed batch: one increment per task and code, one lag sample per result, its
   * phases into the phase histograms, its certificate's expiry.
   */
  storedBatch(records: StoredRecord[], now: number): void {
    const byKey = new Map<string, { task: string; code: string; n: number }>();
    let lastTask: string | undefined;
    let label = "";
    let row: PhaseRow | undefined;
    let cert: CertEntry | undefined;
    let certOf: StoredRecord | undefined;
    for (const record of records) {
      if (record.task !== lastTask) {
        // a batch comes from one probe/task topic: one lookup a batch
        lastTask = record.task;
        label = this.tasks.label(record.task);
        row = this.phases.row(label);
      }
      const code = record.code === null ? "ok" : String(record.code);
      const key = `${label}/${code}`;
      const entry = byKey.get(key);
      if (entry) entry.n++;
      else byKey.set(key, { task: label, code, n: 1 });
      this.lag.observe(Math.max(0, (now - record.ts) / 1000));
      this.phases.observe(row!, record.timings);
      const notAfter = record.tls?.notAfter;
      if (notAfter) {
        if (!certOf || certOf.task !== record.task || certOf.probe !== record.probe) cert = this.certs.get(`${record.task}\0${record.probe}`);
        certOf = record;
        cert = this.cert(record, label, notAfter, cert);
      }
    }
    for (const { task, code, n } of byKey.values()) this.results.inc({ task, code }, n);
  }

  /** Keeps the certificate of `record` (task label `task`) unless a later run's is known; its entry. */
  private cert(record: StoredRecord, task: string, notAfter: string, known: CertEntry | undefined): CertEntry | undefined {
    if (known && record.ts < known.ts) return known; // an older run delivered late
    if (known && known.notAfter === notAfter) {
      known.ts = record.ts;
      return known;
    }
    const ms = Date.parse(notAfter);
    if (Number.isNaN(ms)) return known;
    if (known) {
      Object.assign(known, { ts: record.ts, notAfter, seconds: ms / 1000 });
      return known;
    }
    if (this.certs.size >= this.caps.certPairs) return this.foldedCert(task, record.ts, notAfter, ms / 1000);
    const probe = this.probeLabel(record.probe);
    const series = `${task}\0${probe}`;
    const within = this.certSeries.has(series) || this.certSeries.size < this.caps.certSeries;
    if (within) this.certSeries.add(series);
    const created = { task, probe: within ? probe : OTHER, ts: record.ts, notAfter, seconds: ms / 1000 };
    this.certs.set(`${record.task}\0${record.probe}`, created);
    return created;
  }

  /** Past certPairs: one entry per task label (probe "_other") holding the earliest expiry seen. */
  private foldedCert(task: string, ts: number, notAfter: string, seconds: number): CertEntry {
    const key = `${task}\0\0folded`;
    const folded = this.certs.get(key);
    if (folded && folded.seconds <= seconds) return folded;
    const entry = { task, probe: OTHER, ts, notAfter, seconds };
    this.certs.set(key, entry);
    return entry;
  }

  private probeLabel(probe: string): string {
    const known = this.probeLabelOf.get(probe);
    if (known !== undefined) return known;
    const label = this.probes.label(probe);
    if (label !== OTHER) this.probeLabelOf.set(probe, label);
    return label;
  }

  /** A probe's state from its latest status (`catprobe_probe_up`). */
  probeState(probe: string, state: "online" | "offline"): void {
    this.probeLabel(probe);
    this.probeOnline.set(probe, state === "online");
  }

  duplicate(n: number): void {
    this.duplicates.inc(n);
  }

  reject(reason: RejectReason): void {
    this.rejected.inc({ reason });
  }

  /** `n`: how much a probe's reported running total grew. */
  droppedByProbes(n: number): void {
    if (n > 0) this.dropped.inc(n);
  }

  deny(reason: DenyReason): void {
    this.denied.inc({ reason });
  }

  async rejectedCount(reason: RejectReason): Promise<number> {
    return count(this.rejected, reason);
  }

  async deniedCount(reason: DenyReason): Promise<number> {
    return count(this.denied, reason);
  }
}

async function count(counter: Counter<"reason">, reason: string): Promise<number> {
  const m = await counter.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}
