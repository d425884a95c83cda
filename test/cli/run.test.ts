// `catprobe run`: table and NDJSON output, exit statuses, task directories, configuration errors.

import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tcpServer, type TestServer } from "../helpers/tcp.js";

let echo: TestServer;
let dir: string;
beforeAll(async () => {
  echo = await tcpServer((sock) => sock.on("data", (d) => sock.write(d)));
  dir = mkdtempSync(join(tmpdir(), "catprobe-run-"));
});
afterAll(() => echo.close());

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/catprobe.js", ...args]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function taskFile(name: string, task: object): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(task));
  return file;
}

const passing = () => ({
  id: "echo-ok", target: { host: "127.0.0.1", port: echo.port }, count: 2, intervalMs: 0,
  steps: [{ send: "PING\r\n", verify: "partial", expect: "PING" }],
});

describe("catprobe run", () => {
  it("prints one JSON record a line and exits 0 when every run passed", async () => {
    const r = await cli(["run", taskFile("ok.json", passing()), "--json", "--probe", "edge-7"]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ v: 1, probe: "edge-7", task: "echo-ok", ok: true, code: null, bytesSent: 6 });
    expect(lines.map((l) => l.id.split("/")[3]).sort()).toEqual(["0", "1"]);
    expect(r.stdout.endsWith("}\n")).toBe(true);
  });

  it("prints every result of a long sequential schedule, the table with its summary", async () => {
    const many = { ...passing(), id: "echo-many", count: 300 };
    const json = await cli(["run", taskFile("many.json", many), "--json"]);
    expect(json.status).toBe(0);
    expect(json.stdout.trim().split("\n").map((l) => JSON.parse(l).id.split("/")[3]).sort((a, b) => a - b))
      .toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
    const table = await cli(["run", taskFile("many.json", many)]);
    expect(table.stdout.split("\n").filter((l) => /^echo-many +#\d+ +ok /.test(l))).toHaveLength(300);
    expect(table.stdout).toMatch(/\n300 runs: 300 ok, 0 failed\n$/);
    expect(table.stdout).not.toContain("STEP:");
  });

  it("prints a table with the definition and message of failures, and exits 1", async () => {
    const failing = { ...passing(), id: "echo-bad", count: 1, steps: [{ send: "PING\r\n", verify: "full", expect: "PONG\r\n" }] };
    const r = await cli(["run", taskFile("bad.json", failing)]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^TASK +RUN +CODE +STEP +TOTAL ms/m);
    expect(r.stdout).toMatch(/^echo-bad +#0 +607 +1 /m);
    expect(r.stdout).toContain('Failed to verify the keyword. step 1: reply differs from the expected reply "PONG\\r\\n" at byte 1');
    expect(r.stdout).toContain("1 run: 0 ok, 1 failed (607 ×1)");
    expect(r.stdout).toContain('STEP: the step that failed, counted from 1 as in the messages (JSON "step" counts from 0)');
    const json = await cli(["run", taskFile("bad.json", failing), "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: 607, step: 0 });
  });

  it("runs every task file of a directory", async () => {
    const sub = mkdtempSync(join(dir, "tasks-"));
    writeFileSync(join(sub, "a.json"), JSON.stringify({ ...passing(), id: "a", count: 1 }));
    writeFileSync(join(sub, "b.json"), JSON.stringify({ ...passing(), id: "b", count: 1 }));
    writeFileSync(join(sub, "notes.txt"), "not a task");
    const r = await cli(["run", sub, "--json"]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n").map((l) => JSON.parse(l).task).sort()).toEqual(["a", "b"]);
  });

  it("exits 2 on a configuration error, naming the file, field and problem, and runs nothing", async () => {
    const file = taskFile("broken.json", { ...passing(), target: { host: "127.0.0.1" }, steps: [{ verify: "contains" }] });
    const before = echo.connections;
    const r = await cli(["run", file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${file}: target.port: is required`);
    expect(r.stderr).toContain(`${file}: steps[0].verify: Invalid option: expected one of "none"|"full"|"prefix"|"partial"|"md5" (got "contains")`);
    expect(r.stdout).toBe("");
    expect(echo.connections).toBe(before);
  });

  it("exits 2 for a file that is not JSON, a missing file, and a bad probe id", async () => {
    const notJson = taskFile("nojson.json", {});
    writeFileSync(notJson, "{ id: ");
    expect((await cli(["run", notJson])).stderr).toMatch(/nojson\.json: not valid JSON: /);
    const missing = await cli(["run", join(dir, "absent.json")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("absent.json: cannot read: ENOENT");
    const badProbe = await cli(["run", taskFile("ok2.json", passing()), "--probe", "edge 7"]);
    expect(badProbe.status).toBe(2);
    expect(badProbe.stderr).toContain('--probe "edge 7": must be 1–64 characters of A-Z a-z 0-9 . _ -');
  });
});
