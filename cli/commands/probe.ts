// `catprobe probe <task.json|dir> --broker URL …`: a probe that runs its tasks on schedule and
// publishes every result over MQTT through its durable spool. Runs until SIGTERM or SIGINT
// (then exits 0), or with --once runs each schedule once, waits until the spool is delivered,
// prints a summary and exits as `run` does: 0 every run passed, 1 any failed.

import { mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CorePool } from "../../host/core/pool.js";
import { checkBrokerUrl } from "../broker-url.js";
import { MIN_SPOOL_BYTES, Publisher } from "../../host/mqtt/publisher.js";
import { Spool } from "../../host/mqtt/spool.js";
import { makeRunnable } from "../../host/probe/runner.js";
import { runSchedules } from "../../host/probe/schedule.js";
import { loadTasks } from "../../host/task/load.js";
import { plural } from "../../host/text/plural.js";
import { ID_PATTERN, ID_RULE } from "../../host/wire/id.js";
import { defaultProbeId } from "./run.js";
import { runsStatus, runsSummary } from "../summary.js";
import { mqttPassword } from "../secrets.js";
import { UsageError } from "../usage-error.js";

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
    },
  });
  if (positionals.length !== 1) throw new UsageError("probe takes one task file or directory");
  if (!values.broker) throw new UsageError("probe needs --broker mqtt://HOST:PORT");
  const brokerUrl = checkBrokerUrl(values.broker);
  const id = values.probe ?? defaultProbeId();
  if (!ID_PATTERN.test(id)) throw new UsageError(`--probe ${JSON.stringify(id)}: must be ${ID_RULE}`);
  const spoolBytes = wholeNumber(values["spool-bytes"]!, "--spool-bytes", 2 ** 40, MIN_SPOOL_BYTES);
  const batch = wholeNumber(values.batch!, "--batch", 1000);
  const concurrency = wholeNumber(values.concurrency!, "--concurrency", 10_000);
  const drainTimeout = wholeNumber(values["drain-timeout"]!, "--drain-timeout", 86_400_000);
  const password = mqttPassword(values.password, values["password-file"]);
  const pool = new CorePool();
  const tasks = loadTasks(positionals[0]).map((t) => makeRunnable(t, pool));
  const spoolFile = values.spool ?? defaultSpoolFile(id);
  const spool = new Spool(spoolFile, spoolBytes);
  const publisher = new Publisher({
    brokerUrl, probe: id, spool,
    username: values.username ?? (password === undefined ? undefined : id), password,
    ca: values.ca ? readFileSync(values.ca) : undefined,
    protocolVersion: values.mqtt5 ? 5 : 4,
    batch,
    log: (line) => console.error(`probe ${id}: ${line}`),
  });
  const waiting = spool.size;
  const droppedBefore = spool.dropped;
  console.error(`probe ${id}: ${plural(tasks.length, "task")}, publishing to ${brokerUrl}, spool ${spoolFile}` +
    (waiting ? ` (${plural(waiting, "result")} waiting)` : ""));
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    const results = await runSchedules(tasks, {
      probe: id, pool, signal: abort.signal, forever: !values.once, concurrency,
      onResult: (r) => {
        publisher.publish(r);
        if (values.json) console.log(JSON.stringify(r));
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
