// The example alerting rules (docs/prometheus/catprobe-alerts.yml): valid for promtool, and
// their unit tests (catprobe-alerts.test.yml) pass; a copy with a changed threshold or a broken
// expression fails, so these checks can fail.

import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { promtool } from "../helpers/promtool.js";

const DIR = fileURLToPath(new URL("../../docs/prometheus/", import.meta.url));
const RULES = join(DIR, "catprobe-alerts.yml");
const TESTS = join(DIR, "catprobe-alerts.test.yml");

/** A temp copy of the rules and their tests, the rules changed by `edit`. */
function brokenCopy(edit: (rules: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), "catprobe-rules-"));
  const rules = readFileSync(RULES, "utf8");
  const edited = edit(rules);
  expect(edited).not.toBe(rules);
  writeFileSync(join(dir, "catprobe-alerts.yml"), edited);
  copyFileSync(TESTS, join(dir, "catprobe-alerts.test.yml"));
  return dir;
}

describe("example alerting rules", () => {
  it("promtool check rules: valid, every alert of the file", () => {
    const r = promtool(["check", "rules", RULES]);
    expect(r.output).toContain("SUCCESS: 6 rules found");
    expect(r.status, r.output).toBe(0);
  });

  it("promtool test rules: every unit test passes", () => {
    const r = promtool(["test", "rules", TESTS]);
    expect(r.output).toContain("SUCCESS");
    expect(r.status, r.output).toBe(0);
  });

  it("covers each alert in the unit tests", () => {
    const alerts = [...readFileSync(RULES, "utf8").matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tested = new Set([...readFileSync(TESTS, "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    expect(alerts).toHaveLength(6);
    for (const alert of alerts) expect(tested.has(alert), alert).toBe(true);
  });

  it("a changed threshold fails the unit tests, naming the alert", () => {
    const dir = brokenCopy((rules) => rules.replace("> 0.1\n", "> 0.5\n"));
    const r = promtool(["test", "rules", "catprobe-alerts.test.yml"], undefined, dir);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("alertname: CatprobeTaskFailing");
    expect(r.output).toContain("FAILED");
  });

  it("the 14-day certificate window is tested at both edges", () => {
    for (const window of ["13.99", "14.05"]) {
      const dir = brokenCopy((rules) => rules.replace("< 14 * 86400", `< ${window} * 86400`));
      const r = promtool(["test", "rules", "catprobe-alerts.test.yml"], undefined, dir);
      expect(r.status, window).not.toBe(0);
      expect(r.output).toContain("alertname: CatprobeCertExpiringSoon");
    }
  });

  it("a broken expression fails promtool check rules", () => {
    const dir = brokenCopy((rules) => rules.replace("(catprobe_probe_up{probe!=\"_other\"}) == 0", "(catprobe_probe_up{probe!=\"_other\") == 0"));
    const r = promtool(["check", "rules", join(dir, "catprobe-alerts.yml")]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/FAILED|error/i);
  });
});
