// `catprobe collector --alerts FILE` as a process: SIGKILLed while a notification is due (its
// webhook down), it sends that notification after the restart, once; a restart after the
// delivery sends nothing again, and the alert keeps its state (no second firing). A bad rules
// file stops the start with exit 2, naming the rule and the field.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ProbeClients } from "../helpers/probe-clients.js";
import { many } from "../helpers/records.js";
import { until } from "../helpers/until.js";
import { WebhookReceiver } from "../helpers/webhook-receiver.js";

const EVERY_MS = 250;

interface Running {
  child: ChildProcess;
  brokerUrl: string;
  httpUrl: string;
  stderr: () => string;
}

/** Starts `catprobe collector` and waits for its addresses. */
async function collector(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, ["bin/catprobe.js", "collector", "--mqtt-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", ...args],
    { env: { ...process.env, CATPROBE_API_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => { out += c; });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => { err += c; });
  await until(() => /dashboard and API at (\S+)\//.test(out) || child.exitCode !== null, "the collector's start", 30_000);
  if (child.exitCode !== null) throw new Error(`collector exited ${child.exitCode}: ${err}`);
  return {
    child,
    brokerUrl: /results from (\S+)/.exec(out)![1],
    httpUrl: /dashboard and API at (\S+)\//.exec(out)![1],
    stderr: () => err,
  };
}

async function kill(c: Running, signal: NodeJS.Signals): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = once(c.child, "exit");
  c.child.kill(signal);
  await exited;
}

describe("catprobe collector --alerts", () => {
  it("sends a notification due when it was SIGKILLed after the restart, once; no second firing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catprobe-alertkill-"));
    const spare = await WebhookReceiver.start();
    const port = spare.port;
    await spare.stop(); // the webhook is down while the first collector runs
    const rules = join(dir, "alerts.json");
    writeFileSync(rules, JSON.stringify({
      webhooks: [`http://127.0.0.1:${port}/hook`], evaluationInterval: `${EVERY_MS}ms`, repeatInterval: "1h",
      delivery: { backoff: "200ms", maxBackoff: "500ms" },
      rules: [{ name: "Störung ✓", window: "10m", when: { successRateBelow: 0.5 }, annotations: { summary: "{{task}}: 検査 {{value}}" } }],
    }));
    const args = ["--db", join(dir, "c.db"), "--alerts", rules];
    const first = await collector(args);
    let hook: WebhookReceiver | undefined;
    let second: Running | undefined;
    let third: Running | undefined;
    try {
      const clients = new ProbeClients(first.brokerUrl);
      await clients.publish("catprobe/v1/results/p1/t1", JSON.stringify(many(4, "p1", "t1", Date.now(), 607)));
      await clients.end();
      // due, attempted, not delivered
      await until(() => first.stderr().includes("attempt 2 of 12 failed"), "two failed attempts");
      await kill(first, "SIGKILL");

      hook = await WebhookReceiver.start(port);
      second = await collector(args);
      await until(() => hook!.received.length >= 1, "the notification after the restart");
      await new Promise((r) => setTimeout(r, 8 * EVERY_MS));
      expect(hook.received).toHaveLength(1);
      const n = hook.received[0].body;
      expect(n.status).toBe("firing");
      expect(n.alerts[0].labels).toEqual({ alertname: "Störung ✓", task: "t1", probe: "p1" });
      expect(n.alerts[0].annotations.summary).toBe("t1: 検査 0");
      const api = (await (await fetch(`${second.httpUrl}/api/alerts`)).json()) as { firing: { startsAt: number }[] };
      expect(api.firing.map((a) => a.startsAt)).toEqual([Date.parse(n.alerts[0].startsAt)]);

      // Delivered: a restart (killed again) sends nothing more.
      await kill(second, "SIGKILL");
      third = await collector(args);
      await new Promise((r) => setTimeout(r, 8 * EVERY_MS));
      expect(hook.received).toHaveLength(1);
      await kill(third, "SIGTERM");
      expect(third.child.exitCode).toBe(0);
    } finally {
      for (const c of [first, second, third]) if (c) await kill(c, "SIGKILL");
      await hook?.stop();
    }
  }, 60_000);

  it("exits 2 on a bad rules file, naming the file, the rule and the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "catprobe-alertbad-"));
    const rules = join(dir, "alerts.json");
    writeFileSync(rules, JSON.stringify({ webhooks: ["http://127.0.0.1:9/hook"],
      rules: [{ name: "ok", when: { successRateBelow: 0.5 } }, { name: "Prüfung ✗", when: { code: 608, countAtLeast: 0 } }] }));
    const child = spawn(process.execPath, ["bin/catprobe.js", "collector", "--db", join(dir, "c.db"), "--mqtt-listen", "127.0.0.1:0",
      "--http", "127.0.0.1:0", "--alerts", rules], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (c: string) => { err += c; });
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(err).toContain(`${rules}: rule "Prüfung ✗" (rules[1]): when.countAtLeast: `);
    expect(err).toContain("(got 0)");
  }, 30_000);
});
