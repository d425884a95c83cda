// A real Mosquitto broker for tests: its own process, config and persistence in a temp dir, on
// a free port, so a test can stop and restart it. Fails with an install hint when missing.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function mosquittoBinary(): string {
  const found = spawnSync("sh", ["-c", "command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null"]).stdout.toString().trim().split("\n")[0];
  if (!found) throw new Error("mosquitto not found: apt-get install mosquitto");
  return found;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

export class Mosquitto {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), "catprobe-mosquitto-"));
  readonly log: string[] = [];

  private constructor(readonly port: number) {
    // Run as root, mosquitto drops to its own user, which must be able to write the persistence file.
    chmodSync(this.dir, 0o777);
    writeFileSync(join(this.dir, "mosquitto.conf"), [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence true",
      `persistence_location ${this.dir}/`,
      "autosave_interval 1",
      "max_queued_messages 100000",
      "log_dest stdout",
      "log_type error",
      "log_type warning",
    ].join("\n") + "\n");
  }

  static async start(): Promise<Mosquitto> {
    const broker = new Mosquitto(await freePort());
    await broker.restart();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port with the same persistence; resolves once it accepts. */
  async restart(): Promise<void> {
    if (this.child) await this.stop();
    const child = spawn(mosquittoBinary(), ["-c", join(this.dir, "mosquitto.conf")], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => this.log.push(String(d)));
    child.stderr!.on("data", (d) => this.log.push(String(d)));
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (await accepting(this.port)) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not start on port ${this.port}: ${this.log.join("")}`);
  }

  /** Stops gracefully (SIGTERM), so the persistence file is written. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  }
}
