// The layers, as imports: cli/ sits above host/ and simulator/; the simulator builds on host/;
// host/wire/ (with host/codes.ts) is the leaf every side imports the wire contract from.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(dir, f));
}

/** Project files a source imports, as paths from the root ("host/wire/id.ts"). */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)"(\.[^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)).replace(/\.js$/, ".ts"));
}

function violations(dir: string, allowed: (target: string) => boolean, except: string[] = []): string[] {
  return sources(dir).filter((f) => !except.includes(f))
    .flatMap((f) => imports(f).filter((t) => !allowed(t)).map((t) => `${f} imports ${t}`));
}

const under = (...dirs: string[]) => (t: string) => dirs.some((d) => t === d || t.startsWith(`${d}/`));

describe("layers", () => {
  it("finds the imports it checks (the scan itself works)", () => {
    expect(imports("cli/commands/lab.ts")).toContain("simulator/lab.ts");
    expect(imports("cli/main.ts")).toContain("cli/commands/run.ts");
  });

  it("host/ imports neither the command layer nor the simulator (host/cli.ts is only the entry)", () => {
    expect(violations("host", under("host"), ["host/cli.ts"])).toEqual([]);
    expect(imports("host/cli.ts")).toEqual(["cli/main.ts"]);
  });

  it("the simulator builds on host/, never on the command layer", () => {
    expect(violations("simulator", under("host", "simulator"))).toEqual([]);
  });

  it("the wire contract is a leaf: host/wire/ imports only itself and the code table", () => {
    expect(violations("host/wire", (t) => under("host/wire")(t) || t === "host/codes.ts")).toEqual([]);
  });

  it("the collector takes the record, topics and ids from the wire contract, not from the probe's code", () => {
    // (the task schema it may use: it checks task sets exactly as `run` checks files)
    expect(violations("host/collector", (t) => !under("host/probe", "host/mqtt")(t))).toEqual([]);
  });

  it("zod comes in through host/zod.ts alone, so the bin's bundle of it holds only what that names", () => {
    const direct = [...sources("host"), ...sources("simulator"), ...sources("cli")]
      .filter((f) => f !== "host/zod.ts" && /from\s+"zod(\/[^"]*)?"/.test(readFileSync(join(ROOT, f), "utf8")));
    expect(direct).toEqual([]);
    expect(imports("host/task/schema.ts")).toContain("host/zod.ts");
  });

  it("the MQTT client options both sides share (broker lists, the MQTT 5 fallback) stand alone", () => {
    expect(violations("host/mqtt-client", under("host/mqtt-client"))).toEqual([]);
  });
});
