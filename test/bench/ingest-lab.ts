// The servers of the ingest benchmark, all the benchmark's own, on free loopback ports, never
// the machine's (1883, 4222, 5432): a Mosquitto with the shipped configuration, a 3-node NATS
// cluster (MQTT over JetStream, streams on all three nodes) and a PostgreSQL cluster made with
// initdb in a temp dir (test/helpers: fsync off, as for the tests); and a temp dir for SQLite
// files. Stopped and deleted by stop(), which also runs on SIGINT/SIGTERM, and if starting one
// of them fails. cpu() reads how much CPU each of them (and this process, and the machine) has
// used so far.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mosquitto } from "../helpers/mosquitto.js";
import { NatsCluster } from "../helpers/nats.js";
import { Postgres } from "../helpers/postgres.js";
import { machineBusyMs, ownCpuMs, pidsWithArgs, treeCpuMs } from "./proc-cpu.js";

/** CPU ms so far: this process, each server, and the whole machine. */
export interface CpuSnapshot { catprobe: number; mosquitto: number; nats: number; postgres: number; machine: number }

export class IngestLab {
  /** for the collectors' SQLite files */
  readonly dir = mkdtempSync(join(tmpdir(), "catprobe-bench-ingest-"));
  private readonly pids: { mosquitto: number[]; nats: number[]; postgres: number[] };
  private readonly onSignal = () => {
    void this.stop().finally(() => process.exit(130));
  };

  private constructor(readonly mosquitto: Mosquitto, readonly nats: NatsCluster, readonly postgres: Postgres) {
    this.pids = {
      mosquitto: pidsWithArgs("-c", mosquitto.configFile),
      nats: nats.nodes.flatMap((n) => pidsWithArgs("-c", n.configFile)),
      // pg_ctl passes the options to the postmaster as arguments; its backends are its children
      postgres: pidsWithArgs("-p", String(postgres.port), "-c", "listen_addresses=127.0.0.1"),
    };
    for (const [name, pids] of Object.entries(this.pids)) {
      if (!pids.length) throw new Error(`no ${name} process found for the CPU figures`);
    }
    process.once("SIGINT", this.onSignal).once("SIGTERM", this.onSignal);
  }

  static async start(): Promise<IngestLab> {
    const started: { stop(): unknown }[] = [];
    const start = async <T extends { stop(): unknown }>(server: Promise<T>) => {
      const s = await server;
      started.push(s);
      return s;
    };
    try {
      const mosquitto = await start(Mosquitto.start());
      const nats = await start(NatsCluster.start(3));
      const postgres = await start(Postgres.start());
      return new IngestLab(mosquitto, nats, postgres);
    } catch (err) {
      await Promise.allSettled(started.map((s) => s.stop()));
      throw err;
    }
  }

  cpu(): CpuSnapshot {
    return {
      catprobe: ownCpuMs(),
      mosquitto: treeCpuMs(this.pids.mosquitto),
      nats: treeCpuMs(this.pids.nats),
      postgres: treeCpuMs(this.pids.postgres),
      machine: machineBusyMs(),
    };
  }

  /**
   * Whether, within `ms`, every NATS node came to hold no QoS 1 message and no subscriber's
   * consumer on the MQTT message stream: a run starts after the last one's leftovers (messages
   * being removed, a deleted session's consumer) are cleared, not while NATS still works on them.
   */
  async natsSettled(ms = 30_000): Promise<boolean> {
    const clear = async (port: number) => {
      const jsz = await (await fetch(`http://127.0.0.1:${port}/jsz?streams=true`)).json() as
        { account_details?: { stream_detail?: { name: string; state: { messages: number; consumer_count: number } }[] }[] };
      const msgs = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((d) => d.name === "$MQTT_msgs");
      return !msgs || (msgs.state.messages === 0 && msgs.state.consumer_count === 0);
    };
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if ((await Promise.all(this.nats.nodes.map((n) => clear(n.ports.http).catch(() => false)))).every(Boolean)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  async stop(): Promise<void> {
    process.off("SIGINT", this.onSignal).off("SIGTERM", this.onSignal);
    const stopped = await Promise.allSettled([this.mosquitto.stop(), this.nats.stop(), (async () => this.postgres.stop())()]);
    rmSync(this.dir, { recursive: true, force: true });
    const failed = stopped.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}
