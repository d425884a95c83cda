// A real Mosquitto broker for tests: its own process, config and persistence in a temp dir, on
// a free port, so a test can stop, kill and restart it. Fails with an install hint when missing.
//
// By default it runs the shipped configuration, docs/mosquitto/catprobe.conf, with only the
// listener (this test's port on 127.0.0.1, plus its TLS lines), the persistence directory, the
// log lines and the authentication lines replaced; `config: "defaults"` runs Mosquitto's own
// defaults instead (max_queued_messages 1000, autosave_interval 1800, no max_packet_size …).
//
// Authentication, three ways: by default anonymous clients with any client id (the shipped
// allow_anonymous/password_file/acl_file/use_username_as_clientid lines become
// `allow_anonymous true`), for tests about delivery rather than identity; `users` requires
// these passwords and nothing else (no ACL, client ids kept); `auth` keeps the shipped lines as
// they are, with password_file pointing at a file the real mosquitto_passwd made in the temp
// dir and acl_file at an unchanged copy of docs/mosquitto/catprobe.acl.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { refusedPort } from "../../simulator/servers/tcp.js";
import { endProcess } from "./child.js";

/** The Mosquitto configuration catprobe ships. */
export const CATPROBE_CONF = fileURLToPath(new URL("../../docs/mosquitto/catprobe.conf", import.meta.url));
/** The access control list catprobe ships (acl_file of the shipped configuration). */
export const CATPROBE_ACL = fileURLToPath(new URL("../../docs/mosquitto/catprobe.acl", import.meta.url));

/** The directives of the shipped configuration that decide who may connect and do what. */
export const AUTH_DIRECTIVES: ReadonlySet<string> = new Set(["allow_anonymous", "password_file", "acl_file", "use_username_as_clientid"]);

/** The directives of a Mosquitto configuration text, in order, comments and blank lines left out. */
export function directives(text: string): { name: string; value: string; line: number }[] {
  return text.split("\n").flatMap((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return [];
    const [name, ...rest] = line.split(/\s+/);
    return [{ name, value: rest.join(" "), line: i }];
  });
}

/** The value of a directive given once in the shipped configuration (throws if absent). */
export function shippedSetting(name: string): string {
  const found = directives(readFileSync(CATPROBE_CONF, "utf8")).filter((d) => d.name === name);
  if (found.length !== 1) throw new Error(`${CATPROBE_CONF}: expected one ${name}, found ${found.length}`);
  return found[0].value;
}

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
  /** require these users (name → password) instead of allowing anonymous clients; no ACL */
  users?: Record<string, string>;
  /** the shipped authentication and authorization (password_file, acl_file,
   * use_username_as_clientid) with a password file of these users (name → password) */
  auth?: { users: Record<string, string> };
  /** "catprobe" (default): docs/mosquitto/catprobe.conf; "defaults": Mosquitto's own defaults,
   * with only the listener, persistence (true, in the temp dir) and the log lines set */
  config?: "catprobe" | "defaults";
}

const LOG_LINES = ["log_dest stderr", "log_type error", "log_type warning", "log_type notice"];

export class Mosquitto {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), "catprobe-mosquitto-"));
  readonly log: string[] = [];
  /** the configuration file this broker runs */
  readonly configFile = join(this.dir, "mosquitto.conf");

  private constructor(readonly port: number, readonly options: MosquittoOptions) {
    // Run as root, mosquitto drops to its own user, which must be able to read and write here.
    chmodSync(this.dir, 0o777);
    const file = (name: string, text: string) => {
      writeFileSync(join(this.dir, name), text, { mode: 0o644 });
      return join(this.dir, name);
    };
    const listener = [
      `listener ${port} 127.0.0.1`,
      ...(options.tls
        ? [`cafile ${file("ca.pem", options.tls.ca)}`, `certfile ${file("cert.pem", options.tls.cert)}`,
          `keyfile ${file("key.pem", options.tls.key)}`]
        : []),
    ];
    if (options.users && options.auth) throw new Error("Mosquitto.start: users or auth, not both");
    if (options.auth && options.config === "defaults") throw new Error("Mosquitto.start: auth runs the shipped configuration's lines");
    const auth = options.auth ? null
      : options.users ? ["allow_anonymous false", `password_file ${this.passwords(options.users)}`]
        : ["allow_anonymous true"];
    const persistence = `persistence_location ${this.dir}/`;
    const lines = (options.config ?? "catprobe") === "defaults"
      ? [...listener, ...auth!, "persistence true", persistence, ...LOG_LINES]
      : this.shipped(listener, auth, persistence);
    writeFileSync(this.configFile, lines.join("\n") + "\n");
  }

  /**
   * The shipped file with this broker's listener, persistence directory and log; its
   * authentication lines replaced by `auth`, or (null) kept with the password and ACL files
   * moved into the temp dir.
   */
  private shipped(listener: string[], auth: string[] | null, persistence: string): string[] {
    const replaced = new Set<string>();
    const out: string[] = [];
    for (const d of directives(readFileSync(CATPROBE_CONF, "utf8"))) {
      const at = `${CATPROBE_CONF}:${d.line + 1}`;
      if (d.name === "listener") {
        if (d.value !== "1883 127.0.0.1" || replaced.has("listener")) throw new Error(`${at}: expected one listener, 1883 127.0.0.1`);
        out.push(...listener);
      } else if (AUTH_DIRECTIVES.has(d.name)) {
        if (!replaced.has("listener")) throw new Error(`${at}: ${d.name} before the listener`);
        if (replaced.has(d.name)) throw new Error(`${at}: ${d.name} twice`);
        replaced.add(d.name);
        if (auth) {
          if (!replaced.has("auth")) out.push(...auth);
        } else if (d.name === "password_file") {
          out.push(`password_file ${this.passwords(this.options.auth!.users)}`);
        } else if (d.name === "acl_file") {
          const acl = join(this.dir, "catprobe.acl");
          copyFileSync(CATPROBE_ACL, acl);
          chmodSync(acl, 0o644);
          out.push(`acl_file ${acl}`);
        } else {
          out.push(`${d.name} ${d.value}`);
        }
      } else if (d.name === "persistence_location") {
        out.push(persistence);
      } else if (d.name.startsWith("log_")) {
        continue;
      } else {
        out.push(`${d.name} ${d.value}`);
      }
      replaced.add(AUTH_DIRECTIVES.has(d.name) ? "auth" : d.name);
    }
    for (const needed of ["listener", "persistence_location", ...AUTH_DIRECTIVES]) {
      if (!replaced.has(needed)) throw new Error(`${CATPROBE_CONF}: no ${needed}`);
    }
    return [...out, ...LOG_LINES];
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
    const child = spawn(mosquittoBinary(), ["-c", this.configFile], { stdio: ["ignore", "pipe", "pipe"] });
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
    await this.end("SIGTERM");
  }

  /** Kills it (SIGKILL): it keeps only what its last autosave wrote. */
  async kill(): Promise<void> {
    await this.end("SIGKILL");
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = null;
    await endProcess(child, signal);
  }
}
