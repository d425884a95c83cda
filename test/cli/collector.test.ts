// `catprobe collector` refuses clearly, and exits, when its ports are taken.

import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

describe("catprobe collector", () => {
  it("names a taken MQTT or HTTP port and exits 2", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as { port: number }).port;
    const db = join(mkdtempSync(join(tmpdir(), "catprobe-coll-")), "c.db");
    const run = (args: string[]) => promisify(execFile)(process.execPath, ["bin/catprobe.js", "collector", "--db", db, ...args])
      .then(() => ({ code: 0, stderr: "" }), (err: { code: number; stderr: string }) => err);
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
});
