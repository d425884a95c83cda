// `catprobe lab`: --json, --keep (the dashboard keeps serving until interrupted), a scenario
// error, and `lab serve <fault>`.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "catprobe-lab-cli-"));
const scenario = join(dir, "tiny.json");
writeFileSync(scenario, JSON.stringify({
  name: "tiny", fleet: { count: 2 }, runs: 3,
  tasks: [{ id: "ping", send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n", faults: { ok: 2, "wrong-reply": 1, refused: 1 } }],
}));

function start(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ["bin/catprobe.js", "lab", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const out = { text: "" };
  child.stdout.on("data", (d) => (out.text += d));
  child.stderr.on("data", (d) => (out.text += d));
  return { child, out };
}

async function waitFor(out: { text: string }, pattern: RegExp, ms = 30_000): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(out.text);
    if (m) return m;
    if (Date.now() > end) throw new Error(`no ${pattern} in: ${out.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("catprobe lab", () => {
  it("--json prints the report as one JSON object and exits 0 when it matches", async () => {
    const { child, out } = start([scenario, "--json"]);
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    const report = JSON.parse(out.text.trim().split("\n").pop()!);
    expect(report).toMatchObject({ scenario: "tiny", runs: 6, identical: true, mismatches: [] });
    expect(report.collector).toEqual(report.truth);
  }, 60_000);

  it("--keep keeps the collector and dashboard serving until interrupted", async () => {
    const { child, out } = start([scenario, "--keep"]);
    const [, url] = await waitFor(out, /dashboard: (http:\/\/\S+)\//);
    const top = await (await fetch(`${url}/api/top-errors?window=1h`)).json();
    expect(top).toMatchObject({ total: 6 });
    expect((await fetch(`${url}/`)).headers.get("content-type")).toContain("text/html");
    child.kill("SIGINT");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  }, 60_000);

  it("names the file, field and problem of a bad scenario, and exits 2", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ name: "bad", fleet: { count: 0 }, runs: 1, tasks: [{ id: "x", send: "a", expect: "b", reply: "c", faults: { "no-such-fault": 1 } }] }));
    const { child, out } = start([bad]);
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(out.text).toContain(`${bad}: fleet.count:`);
    expect(out.text).toContain(`${bad}: tasks[0].faults`);
  }, 30_000);

  it("`lab serve <fault>` starts one fault server and prints where it listens", async () => {
    const { child, out } = start(["serve", "wrong-reply"]);
    const [, host, port] = await waitFor(out, /^wrong-reply \(.+\) at (127\.0\.0\.1):(\d+)$/m);
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(port), host, () => s.write("PING\r\n"));
      s.once("data", (d) => { resolve(d.toString()); s.destroy(); });
      s.once("error", reject);
    });
    expect(reply).toBe("-ERR wrong reply\r\n");
    child.kill("SIGINT");
    expect((await once(child, "exit"))[0]).toBe(0);
  }, 30_000);

  it("removes its temp dir at the end, and when interrupted mid-run; keeps it with --keep", async () => {
    const tmp = mkdtempSync(join(dir, "tmp-"));
    const labDirs = () => readdirSync(tmp).filter((f) => f.startsWith("catprobe-lab-"));
    const done = start([scenario, "--json"], { TMPDIR: tmp });
    expect((await once(done.child, "exit"))[0]).toBe(0);
    expect(labDirs()).toEqual([]);

    const slow = join(dir, "slow.json");
    writeFileSync(slow, JSON.stringify({ name: "slow", fleet: { count: 1 }, runs: 50, intervalMs: 200,
      tasks: [{ id: "ping", send: "PING\r\n", expect: "+PONG", reply: "+PONG\r\n", faults: { ok: 1 } }] }));
    const cut = start([slow], { TMPDIR: tmp });
    await waitFor(cut.out, /\d+\/250 runs|\d+\/50 runs/);
    expect(labDirs()).toHaveLength(1);
    cut.child.kill("SIGINT");
    await once(cut.child, "exit");
    expect(labDirs()).toEqual([]);

    const kept = start([scenario, "--keep"], { TMPDIR: tmp });
    const [, keptDir] = await waitFor(kept.out, /the lab's files stay in (\S+)\)/);
    kept.child.kill("SIGINT");
    await once(kept.child, "exit");
    expect(labDirs()).toEqual([keptDir.split("/").pop()]);
  }, 60_000);

  it("`lab serve tls-ok` prints where its CA is and the names on its certificate", async () => {
    const { child, out } = start(["serve", "tls-ok"]);
    const [, port] = await waitFor(out, /^tls-ok \(.+\) at 127\.0\.0\.1:(\d+) \(TLS\)$/m);
    const [, caFile] = await waitFor(out, /^ {2}lab CA: (\S+)/m);
    expect(out.text).toMatch(/^ {2}certificate names: localhost, 127\.0\.0\.1, ::1/m);
    // Trusting that file alone verifies the server under one of those names.
    const reply = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: "127.0.0.1", port: Number(port), servername: "localhost", ca: readFileSync(caFile) }, () => s.write("PING\r\n"));
      s.once("data", (d) => { resolve(d.toString()); s.destroy(); });
      s.once("error", reject);
    });
    expect(reply).toBe("+PONG\r\n");
    child.kill("SIGINT");
    expect((await once(child, "exit"))[0]).toBe(0);
  }, 30_000);
});
