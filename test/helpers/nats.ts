// A real NATS cluster for tests: `nats-server` nodes on free ports of 127.0.0.1, each with its
// own config file and JetStream store in a temp dir, routes to every other node, and an MQTT
// listener whose streams (sessions, retained messages, QoS 1 messages) are replicated on all
// three. Each node can be stopped, SIGKILLed and restarted on the same ports and store. Never
// the machine's own NATS (4222) or Mosquitto (1883): every port is picked free. Fails with an
// install hint when nats-server is missing.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { refusedPort } from "../../simulator/servers/tcp.js";
import { endProcess } from "./child.js";
import { until } from "./until.js";

export function natsBinary(): string {
  const found = spawnSync("sh", ["-c", "command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null"]).stdout.toString().trim().split("\n")[0];
  if (!found) throw new Error("nats-server not found: apt-get install nats-server");
  return found;
}

export class NatsNode {
  private child: ChildProcess | null = null;
  readonly log: string[] = [];

  constructor(
    readonly name: string,
    readonly configFile: string,
    readonly ports: { client: number; cluster: number; mqtt: number; http: number },
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.ports.mqtt}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Starts (again) with the same config and store; resolves once the process listens for MQTT. */
  async start(): Promise<void> {
    if (this.child) throw new Error(`${this.name} is running`);
    const child = spawn(natsBinary(), ["-c", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => this.log.push(String(d)));
    child.stderr!.on("data", (d) => this.log.push(String(d)));
    this.child = child;
    await until(() => {
      if (child.exitCode !== null) throw new Error(`${this.name} exited: ${this.log.join("")}`);
      return this.log.join("").includes("Listening for MQTT clients");
    }, `${this.name} listening for MQTT`, 10_000);
  }

  /**
   * Whether the node's JetStream is up and in contact with the cluster's meta leader, and with
   * `current` also every stream and consumer replica on it caught up. Under a steady stream of
   * results, a node back from a crash can take minutes to be current, while it already serves.
   */
  async healthy(current = false): Promise<boolean> {
    try {
      return (await fetch(`http://127.0.0.1:${this.ports.http}/healthz${current ? "" : "?js-server-only=true"}`)).ok;
    } catch {
      return false;
    }
  }

  /** A graceful stop (SIGTERM). */
  stop(): Promise<void> {
    return this.end("SIGTERM");
  }

  /** A crash (SIGKILL): whatever it had not replicated or synced is gone with it. */
  kill(): Promise<void> {
    return this.end("SIGKILL");
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = null;
    await endProcess(child, signal);
  }
}

export class NatsCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "catprobe-nats-"));

  private constructor(readonly nodes: NatsNode[]) {}

  /** `size` nodes (3 for a JetStream quorum that survives one lost node; 1 a lone server), all healthy. */
  static async start(size = 3): Promise<NatsCluster> {
    natsBinary();
    const ports = [];
    for (let i = 0; i < size; i++) {
      ports.push({ client: await refusedPort(), cluster: await refusedPort(), mqtt: await refusedPort(), http: await refusedPort() });
    }
    const cluster = new NatsCluster([]);
    for (const [i, own] of ports.entries()) {
      const name = `n${i + 1}`;
      const store = join(cluster.dir, name);
      mkdirSync(store);
      const routes = ports.filter((p) => p !== own).map((p) => `nats-route://127.0.0.1:${p.cluster}`);
      const configFile = join(cluster.dir, `${name}.conf`);
      writeFileSync(configFile, [
        // JetStream in a cluster needs a unique server_name on each node.
        `server_name: ${name}`,
        `listen: 127.0.0.1:${own.client}`,
        `http: 127.0.0.1:${own.http}`,
        `jetstream { store_dir: "${store}" }`,
        // A lone node runs without a cluster: JetStream refuses a cluster without routes.
        ...(size > 1 ? [`cluster { name: catprobe, listen: 127.0.0.1:${own.cluster}, routes: [${routes.join(", ")}] }`] : []),
        // Sessions, retained and QoS 1 messages on every node, so any one node may be lost.
        `mqtt { listen: 127.0.0.1:${own.mqtt}, stream_replicas: ${Math.min(size, 3)}, consumer_replicas: ${Math.min(size, 3)} }`,
      ].join("\n") + "\n");
      cluster.nodes.push(new NatsNode(name, configFile, own));
    }
    await Promise.all(cluster.nodes.map((n) => n.start()));
    await cluster.healthy(30_000, true);
    return cluster;
  }

  /** All MQTT URLs as one `--broker` list, starting at node `first`. */
  brokerList(first = 0): string {
    const n = this.nodes.length;
    return Array.from({ length: n }, (_, i) => this.nodes[(first + i) % n].url).join(",");
  }

  /** Resolves once every running node is healthy (JetStream up, in the cluster; or also current). */
  healthy(ms = 30_000, current = false): Promise<void> {
    return until(async () => (await Promise.all(this.nodes.filter((n) => n.running).map((n) => n.healthy(current)))).every(Boolean),
      `a healthy NATS cluster${current ? ", every replica current" : ""}`, ms, 200);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
