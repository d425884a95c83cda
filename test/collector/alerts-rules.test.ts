// The alert rules file: defaults, the example in docs/, and every kind of mistake reported as a
// configuration error naming the file, the rule (name and index), the field and the value.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../host/config-error.js";
import { loadRules, parseDuration, parseRules } from "../../host/collector/alerts/rules.js";

const problems = (json: unknown): string[] => {
  try {
    parseRules("alerts.json", typeof json === "string" ? json : JSON.stringify(json));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("no ConfigError");
};
const hooks = ["http://127.0.0.1:9/hook"];

describe("alert rules file", () => {
  it("parses durations", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("500ms")).toBe(500);
    for (const bad of ["0s", "5", "5 m", "1.5h", "-1m", "m", "5M"]) expect(parseDuration(bad), bad).toBeNull();
  });

  it("fills in defaults and reads the example in docs/", () => {
    const r = parseRules("a.json", JSON.stringify({ rules: [{ name: "r", when: { successRateBelow: 0.9 } },
      { name: "c", when: { certDaysLeftBelow: 14 } }], webhooks: hooks }));
    expect(r.rules[0]).toMatchObject({ windowMs: 300_000, windowText: "5m", minRuns: 1, repeatIntervalMs: 4 * 3_600_000, labels: {}, annotations: {} });
    expect(r.rules[1]).toMatchObject({ windowMs: 86_400_000, windowText: "1d" });
    expect(r).toMatchObject({ evaluationIntervalMs: 5000, receiver: "catprobe",
      delivery: { attempts: 12, backoffMs: 1000, maxBackoffMs: 300_000, timeoutMs: 10_000, maxPending: 10_000 } });
    const example = loadRules("docs/alerts.example.json");
    expect(example.rules.map((x) => x.name)).toEqual(["redis success rate", "TLS handshakes failing at plant 3", "probe offline", "certificate expiring"]);
    expect(example.rules[1].label).toEqual(["site", "plant-3"]);
    expect(example.rules[2].repeatIntervalMs).toBe(3_600_000);
  });

  it("names the rule (by name, and index), the field and the value of each mistake", () => {
    expect(problems({ rules: [
      { name: "Überwachung ✓ 検査", when: { successRateBelow: 1.5 } },
      { name: "codes", when: { code: 612, countAtLeast: 3 } },
      { name: "count", when: { code: 608 } },
      { when: { probeOfflineFor: "2m" } },
      { name: "window", window: "5 min", when: { successRateBelow: 0.5 } },
      { name: "typo", when: { successRateBelow: 0.5 }, minruns: 3 },
      { name: "two", when: { successRateBelow: 0.5, certDaysLeftBelow: 3 } },
      { name: "none", when: {} },
      { name: "offline", when: { probeOfflineFor: "soon" } },
      { name: "label", label: "plant-3", when: { successRateBelow: 0.5 } },
      { name: "task", task: "no spaces", when: { successRateBelow: 0.5 } },
      { name: "labels", labels: { alertname: "x" }, when: { successRateBelow: 0.5 } },
    ], webhooks: hooks })).toEqual([
      'alerts.json: rule "Überwachung ✓ 検査" (rules[0]): when.successRateBelow: must be at most 1 (got 1.5)',
      'alerts.json: rule "codes" (rules[1]): when.code: must be one of 600–609 (got 612)',
      'alerts.json: rule "count" (rules[2]): when.countAtLeast: is required',
      "alerts.json: rules[3]: name: is required",
      'alerts.json: rule "window" (rules[4]): window "5 min": must be a duration like 30s, 5m, 2h or 7d',
      'alerts.json: rule "typo" (rules[5]): unknown field "minruns"',
      'alerts.json: rule "two" (rules[6]): when: unknown field "certDaysLeftBelow"',
      'alerts.json: rule "none" (rules[7]): when {}: needs one of successRateBelow, code with countAtLeast, probeOfflineFor, certDaysLeftBelow',
      'alerts.json: rule "offline" (rules[8]): when.probeOfflineFor "soon": must be a duration like 30s, 5m, 2h or 7d',
      'alerts.json: rule "label" (rules[9]): label: must look like key:value (got "plant-3")',
      'alerts.json: rule "task" (rules[10]): task: must be 1–64 characters of A-Z a-z 0-9 . _ - (got "no spaces")',
      'alerts.json: rule "labels" (rules[11]): labels {"alertname":"x"}: may not set alertname, task, probe, code (the rule sets them)',
    ]);
  });

  it("checks what the schema alone cannot: unique names, scopes and minRuns that fit the condition", () => {
    expect(problems({ rules: [
      { name: "Störung", when: { successRateBelow: 0.5 } },
      { name: "Störung", when: { code: 601, countAtLeast: 1 } },
      { name: "off", task: "redis", when: { probeOfflineFor: "2m" } },
      { name: "min", minRuns: 3, when: { code: 601, countAtLeast: 1 } },
    ], webhooks: hooks })).toEqual([
      'alerts.json: rule "Störung" (rules[1]): name: "Störung" is already the name of rules[0]',
      'alerts.json: rule "off" (rules[2]): task "redis": a probeOfflineFor rule concerns probes (scope it by probe or label)',
      'alerts.json: rule "min" (rules[3]): minRuns 3: applies to successRateBelow rules only',
    ]);
  });

  it("names file-level mistakes: JSON, webhooks, intervals, unknown fields", () => {
    expect(problems("{ rules: [")[0]).toMatch(/^alerts\.json: not valid JSON: /);
    expect(problems({ rules: [], webhooks: [] })).toEqual([
      "alerts.json: rules: needs at least one rule (got [])",
      "alerts.json: webhooks: needs at least one webhook URL (got [])",
    ]);
    expect(problems({ rules: [{ name: "r", when: { successRateBelow: 0.5 } }], webhooks: ["ftp://x", "not a url"],
      repeatInterval: "4 hours", evaluationIntervall: "5s" })).toEqual([
      'alerts.json: webhooks[0] "ftp://x": must be an http:// or https:// URL',
      'alerts.json: webhooks[1] "not a url": must be an http:// or https:// URL',
      'alerts.json: repeatInterval "4 hours": must be a duration like 30s, 5m, 2h or 7d',
      'alerts.json: (top level): unknown field "evaluationIntervall"',
    ]);
    expect(() => parseRules("alerts.json", JSON.stringify({ rules: [{ name: "r", when: { successRateBelow: 0.5 } }], webhooks: hooks })))
      .not.toThrow();
  });

  it("names a file it cannot read", () => {
    const dir = mkdtempSync(join(tmpdir(), "catprobe-rules-"));
    expect(() => loadRules(join(dir, "missing.json"))).toThrow(`${join(dir, "missing.json")}: cannot read: ENOENT`);
    const deep = join(dir, "deep.json");
    writeFileSync(deep, "[".repeat(100));
    expect(() => loadRules(deep)).toThrow("nesting deeper than 64 levels");
  });
});
