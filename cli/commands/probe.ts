// `catprobe probe <task.json|dir> --broker URL …`: a probe that runs its tasks on schedule and
// publishes every result over MQTT through its durable spool. Runs until SIGTERM or SIGINT
// (then exits 0), or with --once runs each schedule once, waits until the spool is delivered,
// prints a summary and exits as `run` does: 0 every run passed, 1 any failed.
// `catprobe probe --managed …` takes no task files: it runs what its config topic says
// (host/probe/managed.ts), starting with the config it kept on disk (--config-file, default
// next to the spool), and runs for good.

import { mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CorePool } from "../../host/core/pool.js";
import { checkBrokerUrl } from "../broker-url.js";
import { MIN_SPOOL_BYTES, Publisher } from "../../host/mqtt/publisher.js";
import { Spool } from "../../host/mqtt/spool.js";
import { makeRunnable } from "../../host/probe/runner.js";
import { startManagedRun } from "../../host/probe/managed-run.js";
import { runSchedules } from "../../host/probe/schedule.js";
import { loadTasks } from "../../host/task/load.js";
import { plural } from "../../host/text/plural.js";
import { ID_PATTERN, ID_RULE } from "../../host/wire/id.js";
import { labelsProblem } from "../../host/wire/status.js";
import { configTopic } from "../../host/wire/topics.js";
import { defaultProbeId } from "./run.js";
import { runsStatus, runsSummary } from "../summary.js";
import { mqttPassword } from "../secrets.js";
import { UsageError } from "../usage-error.js";
import type { ResultRecord } from "../../host/wire/record.js";

/**
 * How long a stopping probe waits for the broker to take its "offline" and the disconnect: a
 * broker that never acknowledges must not keep a stopped probe alive (what is unacknowledged
 * stays in the spool for the next start).
 */
const CLOSE_TIMEOUT_MS = 5000;

/** `$XDG_STATE_HOME/catprobe/spool-<probe>.db` (default ~/.local/state), its directory created. */
export function defaultSpoolFile(probe: string): string {
  const dir = join(process.env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "catprobe");
  mkdirSync(dir, { recursive: true });
  return join(dir, `spool-${probe}.db`);
}

function wholeNumber(value: string, flag: string, max: number, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${flag} ${value}: must be a whole number from ${min} to ${max}`);
  return n;
}

/** `--label k=v`, repeatable: the key is up to the first "=", the value all after it ("=" included). */
export function parseLabels(flags: string[]): Record<string, string> {
  const labels = new Map<string, string>();
  for (const flag of flags) {
    const at = flag.indexOf("=");
    if (at < 1) throw new UsageError(`--label ${JSON.stringify(flag)}: must be key=value`);
    const key = flag.slice(0, at);
    if (labels.has(key)) throw new UsageError(`--label ${key}: given twice`);
    labels.set(key, flag.slice(at + 1));
  }
  const result = Object.fromEntries(labels); // own properties, "__proto__" included
  const problem = labelsProblem(result);
  if (problem) throw new UsageError(`--label: ${problem}`);
  return result;
}

const aborted = (signal: AbortSignal) => new Promise<void>((resolve) => {
  if (signal.aborted) resolve();
  else signal.addEventListener("abort", () => resolve(), { once: true });
});

export async function probe(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      broker: { type: "string" },
      probe: { type: "string" },
      spool: { type: "string" },
      "spool-bytes": { type: "string", default: String(64 << 20) },
      batch: { type: "string", default: "1" },
      concurrency: { type: "string", default: "64" },
      once: { type: "boolean", default: false },
      "drain-timeout": { type: "string", default: "60000" },
      // The password from a file or CATPROBE_MQTT_PASSWORD (--password is only parsed to say so);
      // the username defaults to the probe id, as the embedded broker and the shipped Mosquitto ACL expect.
      username: { type: "string" },
      password: { type: "string" },
      "password-file": { type: "string" },
      ca: { type: "string" },
      mqtt5: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      managed: { type: "boolean", default: false },
      label: { type: "string", multiple: true, default: [] },
      // where a managed probe keeps the config it applied (default: config-<probe>.json next to the spool)
      "config-file": { type: "string" },
    },
  });
  const managed = values.managed;
  if (managed && positionals.length > 0) throw new UsageError("probe --managed takes no task files: its tasks come from its config topic");
  if (!managed && positionals.length !== 1) throw new UsageError("probe takes one task file or directory, or --managed");
  if (managed && values.once) throw new UsageError("--once is for task files: a managed probe runs for good");
  if (!managed && values["config-file"]) throw new UsageError("--config-file is for --managed");
  if (!values.broker) throw new UsageError("probe needs --broker mqtt://HOST:PORT");
  const brokerUrl = checkBrokerUrl(values.broker);
  const id = values.probe ?? defaultProbeId();
  if (!ID_PATTERN.test(id)) throw new UsageError(`--probe ${JSON.stringify(id)}: must be ${ID_RULE}`);
  const spoolBytes = wholeNumber(values["spool-bytes"]!, "--spool-bytes", 2 ** 40, MIN_SPOOL_BYTES);
  const batch = wholeNumber(values.batch!, "--batch", 1000);
  const concurrency = wholeNumber(values.concurrency!, "--concurrency", 10_000);
  const drainTimeout = wholeNumber(values["drain-timeout"]!, "--drain-timeout", 86_400_000);
  const password = mqttPassword(values.password, values["password-file"]);
  const labels = parseLabels(values.label!);
  const log = (line: string) => console.error(`probe ${id}: ${line}`);
  const pool = new CorePool();
  const tasks = managed ? [] : loadTasks(positionals[0]).map((t) => makeRunnable(t, pool));
  const spoolFile = values.spool ?? defaultSpoolFile(id);
  const configFile = values["config-file"] ?? join(dirname(spoolFile), `config-${id}.json`);
  const spool = new Spool(spoolFile, spoolBytes);
  const publisherOptions = {
    brokerUrl, probe: id, spool,
    username: values.username ?? (password === undefined ? undefined : id), password,
    ca: values.ca ? readFileSync(values.ca) : undefined,
    protocolVersion: values.mqtt5 ? 5 as const : 4 as const,
    batch, labels,
  };
  const waiting = spool.size;
  const droppedBefore = spool.dropped;
  const what = managed ? `managed (${configTopic(id)}, kept in ${configFile})` : plural(tasks.length, "task");
  console.error(`probe ${id}: ${what}, publishing to ${brokerUrl}, spool ${spoolFile}` +
    (waiting ? ` (${plural(waiting, "result")} waiting)` : ""));
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const printJson = (r: ResultRecord) => {
    if (values.json) console.log(JSON.stringify(r));
  };
  const schedule = { probe: id, pool, signal: abort.signal, forever: !values.once, concurrency };
  // A managed probe's wiring (config topic → ManagedProbe → Scheduler, results published) is
  // host/probe/managed-run.ts, shared with the lab's managed fleet.
  const run = managed ? startManagedRun({ publisher: publisherOptions, scheduler: { ...schedule, onResult: printJson }, configFile, log }) : null;
  const publisher = run?.publisher ?? new Publisher({ ...publisherOptions, log });
  try {
    if (run) {
      await aborted(abort.signal);
      await run.scheduler.idle(); // runs in flight finish and are spooled
      return 0;
    }
    const results = await runSchedules(tasks, {
      ...schedule,
      onResult: (r: ResultRecord) => {
        publisher.publish(r);
        printJson(r);
      },
    });
    // Stopped by a signal (a probe that runs for good ends no other way): what is not delivered stays spooled.
    if (!values.once || abort.signal.aborted) return 0;
    const delivered = await publisher.drain(drainTimeout).then(() => true, () => false);
    const sent = waiting + results.length - spool.size - (spool.dropped - droppedBefore);
    console.error(`probe ${id}: ${runsSummary(results)}; ${plural(sent, "result")} delivered, ` +
      `${spool.size} still spooled${delivered ? "" : ` after --drain-timeout ${drainTimeout} ms`}`);
    return delivered ? runsStatus(results) : 1;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await Promise.race([publisher.close(), sleep(CLOSE_TIMEOUT_MS, undefined, { ref: false })]);
    spool.close();
  }
}
