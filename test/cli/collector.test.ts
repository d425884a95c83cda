// `catprobe collector` refuses clearly, and exits, when its ports are taken or its HTTP side
// would be open to the network; its token flags reach the HTTP side.

import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "catprobe-coll-"));
const db = join(dir, "c.db");
/** Runs `catprobe collector` to its end (CATPROBE_API_TOKEN unset unless `env` sets it). */
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)(process.execPath, ["bin/catprobe.js", "collector", "--db", db, ...args],
    { env: { ...process.env, CATPROBE_API_TOKEN: "", ...env } })
    .then(() => ({ code: 0, stderr: "" }), (err: { code: number; stderr: string }) => err);

describe("catprobe collector", () => {
  it("names a taken MQTT or HTTP port and exits 2", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as { port: number }).port;
    try {
      const mqttTaken = await run(["--mqtt-listen", `127.0.0.1:${port}`, "--http", "127.0.0.1:0"]);
      expect(mqttTaken.code).toBe(2);
      expect(mqttTaken.stderr).toContain(`cannot listen for MQTT on 127.0.0.1:${port}`);
      expect(mqttTaken.stderr).toContain(`use it with --broker mqtt://127.0.0.1:${port}`);
      const httpTaken = await run(["--mqtt-listen", "127.0.0.1:0", "--http", `127.0.0.1:${port}`]);
      expect(httpTaken.code).toBe(2);
      expect(httpTaken.stderr).toContain(`cannot serve HTTP on 127.0.0.1:${port}`);
    } finally {
      taken.close();
    }
  }, 30_000);

  it("refuses a non-loopback --http without a token and exits 2", async () => {
    const r = await run(["--mqtt-listen", "127.0.0.1:0", "--http", "0.0.0.0:0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--http 0.0.0.0:0 is reachable beyond this machine: give an API token " +
      "(--api-token-file FILE, --api-token or CATPROBE_API_TOKEN), or listen on loopback");
  }, 30_000);

  it("names a missing or empty token file, or a token given twice, and exits 2", async () => {
    const missing = join(dir, "no-such-token");
    const empty = join(dir, "empty-token");
    writeFileSync(empty, "  \nsecond line\n");
    const cases: [string[], string][] = [
      [["--api-token-file", missing], `--api-token-file ${missing}: cannot read the token file (ENOENT`],
      [["--api-token-file", empty], `--api-token-file ${empty}: the first line is empty; it must hold the token`],
      [["--api-token-file", empty, "--api-token", "t"], "give --api-token or --api-token-file, not both"],
      [["--api-token", " t"], "--api-token: the token starts or ends with white space"],
    ];
    for (const [args, message] of cases) {
      const r = await run(["--mqtt-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain(message);
    }
  }, 30_000);

  it("serves with the token from --api-token-file (its first line, trimmed) or CATPROBE_API_TOKEN", async () => {
    const file = join(dir, "token");
    writeFileSync(file, "  file-token \n");
    for (const [args, env, token] of [[["--api-token-file", file], {}, "file-token"], [[], { CATPROBE_API_TOKEN: "env-token" }, "env-token"]] as const) {
      const child = spawn(process.execPath, ["bin/catprobe.js", "collector", "--db", db, "--mqtt-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", ...args],
        { env: { ...process.env, CATPROBE_API_TOKEN: "", ...env }, stdio: ["ignore", "pipe", "inherit"] });
      try {
        let out = "";
        child.stdout.setEncoding("utf8");
        const url = await new Promise<string>((resolve, reject) => {
          child.stdout.on("data", (chunk: string) => {
            out += chunk;
            const m = /dashboard and API at (\S+)\//.exec(out);
            if (m) resolve(m[1]);
          });
          child.on("exit", (code) => reject(new Error(`collector exited ${code}: ${out}`)));
        });
        expect((await fetch(`${url}/api/summary`)).status).toBe(401);
        expect((await fetch(`${url}/api/summary`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      } finally {
        if (child.exitCode === null && child.kill("SIGTERM")) await once(child, "exit");
      }
    }
  }, 30_000);
});
