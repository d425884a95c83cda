import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

function cli(args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, ["bin/catprobe.js", ...args], { input, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("catprobe CLI, core commands", () => {
  it("selftest passes on every build and exits 0", () => {
    const r = cli(["selftest"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^release +\d+ bytes {2}self-test pass$/m);
    expect(r.stdout).toMatch(/^simd +\d+ bytes {2}self-test pass$/m);
  });

  it("md5 prints the digest of a file and of standard input", () => {
    const file = join(mkdtempSync(join(tmpdir(), "catprobe-")), "reply.bin");
    const data = Buffer.alloc(100_000, "catprobe");
    writeFileSync(file, data);
    const digest = createHash("md5").update(data).digest("hex");
    expect(cli(["md5", file]).stdout).toBe(`${digest}  ${file}\n`);
    expect(cli(["md5", "-"], data).stdout).toBe(`${digest}  -\n`);
  });

  it("names a missing file, and exits 2 on a usage error", () => {
    const missing = cli(["md5", "/nonexistent/reply.bin"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("cannot read /nonexistent/reply.bin");
    const unknown = cli(["frobnicate"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expect(unknown.stderr).toContain("usage: catprobe <command>");
  });

  it("answers a bad option or value with one line and a pointer to --help, not the whole usage", () => {
    const badValue = cli(["run", "x.json", "--concurrency", "lots"]);
    expect(badValue.status).toBe(2);
    expect(badValue.stderr).toBe("catprobe: --concurrency lots: must be a whole number from 1 to 10000\nsee catprobe --help\n");
    const unknownOption = cli(["run", "x.json", "--frobnicate"]);
    expect(unknownOption.status).toBe(2);
    expect(unknownOption.stderr.trim().split("\n")).toHaveLength(2);
    expect(unknownOption.stderr).toContain("see catprobe --help");
  });

  it("demo verifies a dribbled reply from a loopback server", () => {
    const r = cli(["demo"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/keyword "\+PONG": pass after 5 bytes in \d+ segments/);
  });
});
