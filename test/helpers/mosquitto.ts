// A real Mosquitto broker for tests: its own process, config and persistence in a temp dir, on
// a free port, so a test can stop and restart it. Fails with an install hint when missing.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { refusedPort } from "../../simulator/servers/tcp.js";

export function mosquittoBinary(): string {
  const found = spawnSync("sh", ["-c", "command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null"]).stdout.toString().trim().split("\n")[0];
  if (!found) throw new Error("mosquitto not found: apt-get install mosquitto");
  return found;
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

export interface MosquittoOptions {
  /** serve MQTT over TLS with these PEM texts */
  tls?: { ca: string; cert: string; key: string };
  /** require these users (name → password) instead of allowing anonymous clients */
  users?: Record<string, string>;
}

export class Mosquitto {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), "catprobe-mosquitto-"));
  readonly log: string[] = [];

  private constructor(readonly port: number, readonly options: MosquittoOptions) {
    // Run as root, mosquitto drops to its own user, which must be able to read and write here.
    chmodSync(this.dir, 0o777);
    const file = (name: string, text: string) => {
      writeFileSync(join(this.dir, name), text, { mode: 0o644 });
      return join(this.dir, name);
    };
    const tls = options.tls
      ? [`cafile ${file("ca.pem", options.tls.ca)}`, `certfile ${file("cert.pem", options.tls.cert)}`,
        `keyfile ${file("key.pem", options.tls.key)}`]
      : [];
    const auth = options.users ? ["allow_anonymous false", `password_file ${this.passwords(options.users)}`] : ["allow_anonymous true"];
    writeFileSync(join(this.dir, "mosquitto.conf"), [
      `listener ${port} 127.0.0.1`,
      ...tls,
      ...auth,
      "persistence true",
      `persistence_location ${this.dir}/`,
      "autosave_interval 1",
      "max_queued_messages 100000",
      "log_dest stdout",
      "log_type error",
      "log_type warning",
    ].join("\n") + "\n");
  }

  private passwords(users: Record<string, string>): string {
    const path = join(this.dir, "passwd");
    writeFileSync(path, "", { mode: 0o644 });
    for (const [user, password] of Object.entries(users)) {
      const r = spawnSync("mosquitto_passwd", ["-b", path, user, password]);
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed (apt-get install mosquitto): ${r.stderr}`);
    }
    chmodSync(path, 0o644);
    return path;
  }

  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const broker = new Mosquitto(await refusedPort(), options);
    await broker.restart();
    return broker;
  }

  get url(): string {
    return `${this.options.tls ? "mqtts" : "mqtt"}://127.0.0.1:${this.port}`;
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
