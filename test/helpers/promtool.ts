// Prometheus's promtool for tests (`check metrics`, `check rules`, `test rules`). Fails with an
// install hint when missing: a test that needs it never passes by skipping.

import { spawnSync } from "node:child_process";

export function promtoolBinary(): string {
  const found = spawnSync("sh", ["-c", "command -v promtool || ls /usr/bin/promtool 2>/dev/null"]).stdout.toString().trim().split("\n")[0];
  if (!found) throw new Error("promtool not found: apt-get install prometheus");
  return found;
}

/** Runs promtool with `args` (and `input` on stdin); its exit status and output. */
export function promtool(args: string[], input?: string, cwd?: string): { status: number | null; output: string } {
  const r = spawnSync(promtoolBinary(), args, { input, cwd, encoding: "utf8", timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
