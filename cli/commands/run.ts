// `catprobe run <task.json|dir> [--probe ID] [--json] [--concurrency N]`: runs each task's
// schedule now and prints every result: a table, or one JSON record a line.
// Exit status 0 when every run passed, 1 when any failed with a code, 2 on a configuration error.

import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { errorCodeInfo } from "../../host/codes.js";
import { CorePool } from "../../host/core/pool.js";
import type { ResultRecord } from "../../host/wire/record.js";
import { makeRunnable } from "../../host/probe/runner.js";
import { runSchedules } from "../../host/probe/schedule.js";
import { loadTasks } from "../../host/task/load.js";
import { ID_PATTERN, ID_RULE } from "../../host/wire/id.js";
import { UsageError } from "../usage-error.js";

/** This machine's name as a probe id: characters outside the id alphabet become '-'. */
export function defaultProbeId(): string {
  return hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64) || "probe";
}

function parse(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      probe: { type: "string" },
      json: { type: "boolean", default: false },
      concurrency: { type: "string", default: "64" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("run takes one task file or directory");
  const probe = values.probe ?? defaultProbeId();
  if (!ID_PATTERN.test(probe)) throw new UsageError(`--probe ${JSON.stringify(probe)}: must be ${ID_RULE}`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new UsageError(`--concurrency ${values.concurrency}: must be a whole number from 1 to 10000`);
  }
  return { path: positionals[0], probe, json: values.json, concurrency };
}

const ms = (v: number | null) => (v === null ? "-" : v.toFixed(1));

function tableRow(r: ResultRecord, run: number): string {
  const t = r.timings;
  const cells = [
    r.task.padEnd(20), `#${run}`.padEnd(5), (r.ok ? "ok" : String(r.code)).padEnd(5),
    (r.step === null ? "-" : String(r.step + 1)).padEnd(5), ms(t.totalMs).padStart(9), ms(t.dnsMs).padStart(8),
    ms(t.connectMs).padStart(8), ms(t.tlsMs).padStart(8), ms(t.firstByteMs).padStart(8),
  ];
  let line = cells.join(" ");
  if (!r.ok) line += `\n${" ".repeat(27)}${errorCodeInfo(r.code!).definition} ${r.message}`;
  return line;
}

const HEADER = ["TASK".padEnd(20), "RUN".padEnd(5), "CODE".padEnd(5), "STEP".padEnd(5), "TOTAL ms".padStart(9),
  "DNS".padStart(8), "CONNECT".padStart(8), "TLS".padStart(8), "TTFB".padStart(8)].join(" ");

/** The table counts steps from 1, as the messages do ("step 1"); JSON records from 0. */
const STEP_LEGEND = 'STEP: the step that failed, counted from 1 as in the messages (JSON "step" counts from 0)';

/** What the summary needs, counted as results arrive: no result is kept in memory. */
class Tally {
  runs = 0;
  failed = 0;
  withStep = 0;
  readonly byCode = new Map<number, number>();
  add(r: ResultRecord): void {
    this.runs++;
    if (r.step !== null) this.withStep++;
    if (r.ok) return;
    this.failed++;
    this.byCode.set(r.code!, (this.byCode.get(r.code!) ?? 0) + 1);
  }
}

function summary(t: Tally): string {
  const codes = [...t.byCode].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([c, n]) => `${c} ×${n}`).join(", ");
  return `${t.runs} run${t.runs === 1 ? "" : "s"}: ${t.runs - t.failed} ok, ` +
    `${t.failed} failed${codes ? ` (${codes})` : ""}`;
}

/**
 * Lines for stdout, written in batches: one write per batch instead of one per result.
 * A batch goes out when it reaches BATCH_CHARS or FLUSH_MS after its first line, so a slow
 * schedule still prints each result as it ends (within FLUSH_MS), and sequential runs of a
 * fast one share a write rather than each paying its own. When stdout does not keep up (a
 * slow pipe), the caller gets a promise to wait on until it drains.
 */
class LineWriter {
  private static readonly BATCH_CHARS = 64 * 1024;
  private static readonly FLUSH_MS = 10;
  private text = "";
  private timer: NodeJS.Timeout | null = null;
  private drained: Promise<void> | null = null;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  line(line: string): void | Promise<void> {
    this.text += line + "\n";
    if (this.text.length >= LineWriter.BATCH_CHARS) return this.flush();
    this.timer ??= setTimeout(() => this.flush(), LineWriter.FLUSH_MS);
    return this.drained ?? undefined;
  }

  flush(): void | Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.text) {
      const ok = this.out.write(this.text);
      this.text = "";
      if (!ok && !this.drained) {
        this.drained = new Promise<void>((resolve) => this.out.once("drain", () => { this.drained = null; resolve(); }));
      }
    }
    return this.drained ?? undefined;
  }
}

export async function run(args: string[]): Promise<number> {
  const opts = parse(args);
  const pool = new CorePool();
  const tasks = loadTasks(opts.path).map((t) => makeRunnable(t, pool));
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  const out = new LineWriter();
  if (!opts.json) out.line(HEADER);
  try {
    const tally = new Tally();
    await runSchedules(tasks, {
      probe: opts.probe,
      pool,
      concurrency: opts.concurrency,
      signal: abort.signal,
      keep: false,
      holdResults: true, // printed, not kept: off the path between two sequential runs
      onResult: (r) => {
        tally.add(r);
        return out.line(opts.json ? JSON.stringify(r) : tableRow(r, Number(r.id.slice(r.id.lastIndexOf("/") + 1))));
      },
    });
    if (!opts.json) {
      out.line(`\n${summary(tally)}`);
      if (tally.withStep > 0) out.line(STEP_LEGEND);
    }
    return tally.failed === 0 ? 0 : 1;
  } finally {
    process.off("SIGINT", stop);
    await out.flush();
  }
}
