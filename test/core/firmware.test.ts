// The release core's firmware constraints: small, no imports, one fixed 64 KiB page, no
// allocation, MVP-portable features, and a passing self-test on a second, non-V8 engine.

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import wabt from "wabt";
import { beforeAll, describe, expect, it } from "vitest";
import { Core, corePath } from "../../host/core/core.js";
import { hexToBytes } from "../../host/core/hex.js";
import { md5 } from "../../host/core/md5.js";
import { createVerifier } from "../../host/core/verifier.js";

const release = readFileSync(corePath("release"));
let wat = "";

beforeAll(async () => {
  const w = await wabt();
  const module = w.readWasm(release, { readDebugNames: false, simd: false, reference_types: false, threads: false });
  module.validate(); // throws when the module needs a feature that is switched off
  wat = module.toText({ foldExprs: false, inlineExport: false });
  module.destroy();
});

/** The data segments as [offset, bytes], read from the text form. */
function dataSegments(text: string): [number, Buffer][] {
  const segments: [number, Buffer][] = [];
  for (const m of text.matchAll(/\(data \(;\d+;\) \(i32\.const (\d+)\) "((?:[^"\\]|\\.)*)"\)/g)) {
    const bytes = m[2].replace(/\\([0-9a-f]{2})|\\(.)/g, (_, h, c) => (h ? String.fromCharCode(parseInt(h, 16)) : c));
    segments.push([Number(m[1]), Buffer.from(bytes, "latin1")]);
  }
  return segments;
}

describe("firmware constraints of the release core", () => {
  it("is at most 8 KiB", () => {
    expect(release.length).toBeLessThanOrEqual(8192);
  });

  it("imports nothing", () => {
    expect(WebAssembly.Module.imports(new WebAssembly.Module(release))).toEqual([]);
  });

  it("declares one 64 KiB page, initial = maximum, and never grows it", () => {
    expect(wat).toMatch(/\(memory \(;0;\) 1 1\)/);
    expect(wat).not.toContain("memory.grow");
    const core = new Core("release");
    expect(core.exports.heapBase()).toBeLessThanOrEqual(65536);
  });

  it("validates with SIMD, reference types and threads switched off", () => {
    expect(wat).not.toMatch(/\bv128\b|externref|funcref/);
  });

  it("passes its self-test in Node, as do the SIMD and debug builds", () => {
    expect(new Core("release").selfTest()).toBe(0);
    expect(new Core("simd").selfTest()).toBe(0);
    expect(new Core("debug").selfTest()).toBe(0);
  });

  it("keeps SIMD to the Node-only build, which does use it", async () => {
    const w = await wabt();
    const simd = readFileSync(corePath("simd"));
    expect(() => w.readWasm(simd, { simd: true }).validate()).not.toThrow();
    expect(() => w.readWasm(simd, { simd: false }).validate()).toThrow();
  });

  it("allocates nothing: after a million operations memory and static data are unchanged", () => {
    const core = new Core("release");
    const memory = core.exports.memory;
    const segments = dataSegments(wat);
    expect(segments.length).toBeGreaterThan(0);
    const payload = Buffer.from("+PONG\r\n");
    for (let i = 0; i < 250_000; i++) {
      hexToBytes(core, "2b 50 4f 4e 47");
      md5(core, payload);
      const v = createVerifier(core, { mode: "partial", keyword: payload.subarray(0, 5) });
      v.push(payload);
      const full = createVerifier(core, { mode: "full", expected: payload });
      full.push(payload);
      full.end();
      createVerifier(core, { mode: "none" }).end();
    }
    expect(memory.buffer.byteLength).toBe(65536);
    expect(core.exports.contextsFree()).toBe(core.exports.contextCount());
    const bytes = new Uint8Array(memory.buffer);
    for (const [offset, data] of segments) {
      expect(Buffer.from(bytes.subarray(offset, offset + data.length)).equals(data), `data at ${offset}`).toBe(true);
    }
    expect(core.selfTest()).toBe(0);
  });
});

const interp = spawnSync("sh", ["-c", "command -v wasm-interp"]).stdout.toString().trim();
const hint = "wasm-interp not found: install WABT (Debian: apt-get install wabt)";
const mustRun = process.env.CI === "true";

describe("a second, non-V8 engine", () => {
  it.skipIf(!interp && !mustRun)(
    `selfTest() returns 0 under WABT's wasm-interp with SIMD and reference types off${interp ? "" : ` [skipped: ${hint}]`}`,
    () => {
      if (!interp) throw new Error(hint);
      const out = execFileSync(interp, [
        corePath("release"), "--disable-simd", "--disable-reference-types", "--run-all-exports",
      ]).toString();
      expect(out).toMatch(/^selfTest\(\) => i32:0$/m);
    },
  );
});
