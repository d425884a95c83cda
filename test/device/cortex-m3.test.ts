// The release core on a microcontroller: build/core.wasm translated by wasm2c, built for a
// Cortex-M3 with the embedding kit in device/, run on QEMU's mps2-an385. The same cases run on
// Node through the host wrappers (same release core) and on the emulated device must give
// byte-for-byte the same answer lines. See device/build.sh and device/runner.c.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { Core } from "../../host/core/core.js";
import { HexError, hexToBytes, type HexErrorKind } from "../../host/core/hex.js";
import { Md5 } from "../../host/core/md5.js";
import { createVerifier, type VerifySpec } from "../../host/core/verifier.js";
import { RFC1321_VECTORS } from "../fixtures/rfc1321.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const out = `${root}build/device`;
const DEVICE_LIMIT_MS = 60_000;

// The system's tools, not node_modules/.bin (the npm wabt package has its own, newer wasm2c).
const PATH = (process.env.PATH ?? "").split(":").filter((d) => !d.includes("node_modules")).join(":");
function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { env: { ...process.env, PATH } }).status === 0;
}
function hasNewlib(): boolean {
  if (!has("arm-none-eabi-gcc")) return false;
  const lib = spawnSync("arm-none-eabi-gcc", ["-mcpu=cortex-m3", "-mthumb", "-print-file-name=librdimon.a"]).stdout;
  return lib.toString().trim().startsWith("/");
}
const missing = [
  has("wasm2c") ? "" : "wabt",
  has("arm-none-eabi-gcc") ? "" : "gcc-arm-none-eabi",
  hasNewlib() ? "" : "libnewlib-arm-none-eabi",
  has("qemu-system-arm") ? "" : "qemu-system-arm",
].filter(Boolean);
const ready = missing.length === 0;
const hint = `the Cortex-M3 test needs ${missing.join(", ")} (Debian: apt-get install ${missing.join(" ")})`;
const mustRun = process.env.CI === "true";

// ---- seeded randomness (mulberry32), so a failure reproduces
let seed = Number(process.env.CATPROBE_DEVICE_SEED ?? 0x5eed1321) >>> 0;
function rand(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(rand() * n);
function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}
/** Random lengths: many small, some around the window and its half, a few large. */
function length(max: number): number {
  const r = rand();
  if (r < 0.3) return int(80);
  if (r < 0.5) return Math.min(max, 8192 + int(16) - 8);
  if (r < 0.6) return Math.min(max, 16384 + int(16) - 8);
  return int(max + 1);
}
/** Splits n bytes at random points (zero-length chunks included now and then), each ≤ limit. */
function split(n: number, limit = Infinity): number[] {
  const parts: number[] = [];
  let left = n;
  const pieces = 1 + int(6);
  for (let i = 0; i < pieces - 1 && left > 0; i++) {
    const p = rand() < 0.1 ? 0 : Math.min(limit, int(left + 1));
    parts.push(p);
    left -= p;
  }
  while (left > limit) { parts.push(limit); left -= limit; }
  parts.push(left);
  return parts;
}
function cut(data: Uint8Array, lens: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let pos = 0;
  for (const n of lens) { chunks.push(data.subarray(pos, pos + n)); pos += n; }
  return chunks;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// ---- case records: u8 type, u32 length, payload (device/runner.c)
class Writer {
  parts: Buffer[] = [];
  u8(v: number) { this.parts.push(Buffer.from([v])); return this; }
  u16(v: number) { const b = Buffer.alloc(2); b.writeUInt16LE(v); this.parts.push(b); return this; }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.parts.push(b); return this; }
  raw(b: Uint8Array) { this.parts.push(Buffer.from(b)); return this; }
  chunks(lens: number[], data: Uint8Array) { this.u16(lens.length); for (const n of lens) this.u32(n); return this.raw(data); }
  done() { return Buffer.concat(this.parts); }
}

interface Case { type: number; payload: Buffer; expect: (core: Core) => string; what: string }

const KINDS: HexErrorKind[] = ["empty", "odd", "char", "split"];
const MODES = { none: 1, full: 2, partial: 3, md5: 4, prefix: 5 } as const;

function factsCase(): Case {
  return {
    type: 1, payload: Buffer.alloc(0), what: "facts",
    expect: (core) => {
      const x = core.exports;
      const caps = [];
      for (let c = -1; c <= 24; c++) caps.push(x.contextCapacity(c));
      return ["facts", x.abiVersion(), x.windowPtr(), x.windowSize(), x.windowHalf(), x.contextCount(),
        x.maxKeyword(), x.heapBase(), x.contextsFree(), ...caps].join(" ");
    },
  };
}

function selfTestCase(): Case {
  return { type: 2, payload: Buffer.alloc(0), what: "selfTest", expect: (core) => `selftest ${core.selfTest()}` };
}

function md5Case(data: Uint8Array, lens: number[], what: string): Case {
  return {
    type: 3, payload: new Writer().chunks(lens, data).done(), what,
    expect: (core) => {
      const m = new Md5(core);
      for (const c of cut(data, lens)) m.update(c);
      return `md5 ${hex(m.digest())} free ${core.exports.contextsFree()}`;
    },
  };
}

function hexCase(text: Uint8Array, what: string): Case {
  const lens = split(text.length, 16384);
  return {
    type: 4, payload: new Writer().chunks(lens, text).done(), what,
    expect: (core) => {
      try {
        return `hex ok ${hex(hexToBytes(core, text))}`;
      } catch (err) {
        if (!(err instanceof HexError)) throw err;
        return `hex err ${KINDS.indexOf(err.kind) + 1} ${err.offset}`;
      }
    },
  };
}

function verifyCase(spec: VerifySpec, reply: Uint8Array, what: string): Case {
  const lens = split(reply.length);
  const data = spec.mode === "partial" ? spec.keyword : spec.mode === "md5" ? spec.digest
    : spec.mode === "none" ? new Uint8Array(0) : spec.expected;
  return {
    type: 5,
    payload: new Writer().u8(MODES[spec.mode]).u32(data.length).raw(data).chunks(lens, reply).done(),
    what,
    expect: (core) => {
      const v = createVerifier(core, spec);
      for (const c of cut(reply, lens)) v.push(c);
      v.end();
      const digest = v.replyDigest ? hex(v.replyDigest) : "-";
      return `verify ${v.verdict} ${v.decidedAt} ${digest} free ${core.exports.contextsFree()}`;
    },
  };
}

/** Ops: [1, mode, len] opens (keyword of len 'k' bytes), [2, 0, ctx] releases. */
function poolCase(ops: [number, number, number][], what: string): Case {
  const w = new Writer().u16(ops.length);
  for (const [op, a, b] of ops) w.u8(op).u8(a).u16(b);
  return {
    type: 6, payload: w.done(), what,
    expect: (core) => {
      const x = core.exports;
      const parts = ["pool"];
      for (const [op, a, b] of ops) {
        let r: number;
        if (op === 1) {
          core.window.fill(0x6b, 0, b);
          r = x.verifierOpen(a, b);
        } else {
          r = x.contextRelease(b);
        }
        parts.push(`${r}/${x.contextsFree()}`);
      }
      return parts.join(" ");
    },
  };
}

function windowCase(): Case {
  return {
    type: 7, payload: Buffer.alloc(0), what: "lengths outside the window",
    expect: (core) => `window ${core.exports.hexDecode(16385)} ${core.exports.md5Push(0, 1 << 20)}`,
  };
}

/** Hex text of `data`: mixed case, whitespace between some pairs. */
function hexText(data: Uint8Array): string {
  let s = "";
  for (const b of data) {
    const pair = b.toString(16).padStart(2, "0");
    s += rand() < 0.3 ? pair.toUpperCase() : pair;
    const r = rand();
    if (r < 0.1) s += " "; else if (r < 0.12) s += "\r\n"; else if (r < 0.13) s += "\t";
  }
  return s;
}


function makeCases(): Case[] {
  const cases: Case[] = [factsCase(), selfTestCase(), windowCase()];
  for (const [text] of RFC1321_VECTORS) {
    const data = Buffer.from(text, "latin1");
    cases.push(md5Case(data, [data.length], `RFC 1321 "${text.slice(0, 20)}"`));
    cases.push(md5Case(data, split(data.length), `RFC 1321 "${text.slice(0, 20)}" chunked`));
  }
  for (let i = 0; i < 40; i++) {
    const data = bytes(length(40_000));
    cases.push(md5Case(data, split(data.length), `md5 of ${data.length} random bytes`));
  }

  // hex: valid texts, then every error kind at varied offsets
  const enc = (s: string) => Buffer.from(s, "latin1");
  for (let i = 0; i < 25; i++) {
    const data = bytes(length(12_000));
    const text = data.length === 0 ? "00" : hexText(data);
    cases.push(hexCase(enc(rand() < 0.2 ? ` \n${text}\t ` : text), `hex of ${data.length} bytes`));
  }
  for (const t of ["", " ", "\r\n\t ", "a", "abc", "a b", "0g", "zz", "ab cd e", "ab\ncd\n e", "ab c d"]) {
    cases.push(hexCase(enc(t), `hex "${JSON.stringify(t)}"`));
  }
  for (let i = 0; i < 30; i++) {
    const text = hexText(bytes(1 + int(rand() < 0.5 ? 100 : 12_000)));
    const at = int(text.length);
    const kind = i % 3;
    let bad: string;
    if (kind === 0) bad = text.slice(0, at) + String.fromCharCode([0x67, 0x00, 0xff, 0x2d, 0x7f, 0x5a][int(6)]) + text.slice(at);
    else if (kind === 1) bad = text.replace(/\s+$/, "") + "f";
    else {
      // whitespace inside a pair: find a digit followed by a digit and split them
      const m = /[0-9a-fA-F]{2}/g;
      m.lastIndex = at;
      const hit = m.exec(text) ?? m.exec(text.slice(0));
      bad = hit ? text.slice(0, hit.index + 1) + " " + text.slice(hit.index + 1) : text + "a b";
    }
    cases.push(hexCase(enc(bad), `hex error ${["char", "odd", "split"][kind]} near ${at} of ${bad.length}`));
  }

  // verifiers: every mode, passing and failing, split at random points
  for (let i = 0; i < 20; i++) {
    const reply = bytes(length(30_000));
    cases.push(verifyCase({ mode: "none" }, reply, `none, ${reply.length}`));
  }
  for (const mode of ["full", "prefix"] as const) {
    for (let i = 0; i < 24; i++) {
      const expected = bytes(1 + length(24_000));
      let reply: Uint8Array;
      const v = i % 4;
      if (v === 0) reply = expected;
      else if (v === 1) { reply = Uint8Array.from(expected); reply[int(reply.length)] ^= 1 + int(255); }
      else if (v === 2) reply = expected.subarray(0, int(expected.length));
      else reply = Buffer.concat([expected, bytes(1 + int(9000))]);
      cases.push(verifyCase({ mode, expected }, reply, `${mode} ${["equal", "differs", "short", "long"][v]}, ${expected.length}`));
    }
  }
  for (let i = 0; i < 30; i++) {
    const kwLen = 1 + (rand() < 0.6 ? int(256) : int(4096));
    const keyword = bytes(kwLen);
    const reply = bytes(length(30_000));
    const found = i % 3 !== 0 && reply.length >= kwLen;
    if (found) reply.set(keyword, int(reply.length - kwLen + 1));
    cases.push(verifyCase({ mode: "partial", keyword }, reply, `partial ${kwLen} ${found ? "found" : "absent"} in ${reply.length}`));
  }
  // a repetitive keyword and reply, where KMP's fallbacks matter
  for (let i = 0; i < 6; i++) {
    const keyword = Buffer.from("ab".repeat(1 + int(100)) + "c");
    const reply = Buffer.from("ab".repeat(int(5000)) + (i % 2 ? "c" : "") + "ab".repeat(int(50)));
    cases.push(verifyCase({ mode: "partial", keyword }, reply, `partial periodic ${keyword.length}`));
  }
  const digestCore = new Core("release");
  for (let i = 0; i < 16; i++) {
    const reply = bytes(length(30_000));
    const m = new Md5(digestCore);
    m.update(reply);
    const digest = i % 2 ? bytes(16) : m.digest();
    cases.push(verifyCase({ mode: "md5", digest }, reply, `md5 ${i % 2 ? "wrong" : "right"} digest, ${reply.length}`));
  }

  // the context pool: fill with a mix, overfill, release in random order, fill again, drain
  const ops: [number, number, number][] = [];
  const modes = [[1, 0], [2, 10], [5, 10], [4, 16], [3, 5], [3, 256], [3, 257], [3, 4096]] as const;
  for (let i = 0; i < 30; i++) { const [m, l] = modes[int(modes.length)]; ops.push([1, m, l]); }
  for (let i = 0; i < 26; i++) ops.push([1, 1, 0]);
  ops.push([1, 3, 4097], [1, 3, 0], [1, 9, 4], [2, 0, 99], [2, 0, 24]);
  const ids = Array.from({ length: 24 }, (_, i) => i).sort(() => rand() - 0.5);
  for (const c of ids.slice(0, 12)) ops.push([2, 0, c], [2, 0, c]);
  for (let i = 0; i < 14; i++) ops.push([1, 3, i < 3 ? 257 + int(3840) : 1 + int(256)]);
  for (let c = 0; c < 24; c++) ops.push([2, 0, c]);
  cases.push(poolCase(ops, "pool filled and drained"));
  cases.push(factsCase(), selfTestCase());
  return cases;
}

describe("the release core on an emulated Cortex-M3 (QEMU mps2-an385)", () => {
  let sizes = "";
  beforeAll(() => {
    if (!ready) return;
    // One build per run: wasm2c + arm-none-eabi-gcc -Os, about a second.
    sizes = execFileSync("bash", [`${root}device/build.sh`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  });

  it.skipIf(!ready && !mustRun)(
    `answers every case exactly as Node does${ready ? "" : ` [skipped: ${hint}]`}`,
    () => {
      if (!ready) throw new Error(hint);
      const cases = makeCases();
      mkdirSync(out, { recursive: true });
      const file = Buffer.concat([
        ...cases.map((c) => Buffer.concat([new Writer().u8(c.type).u32(c.payload.length).done(), c.payload])),
        Buffer.from([0, 0, 0, 0, 0]),
      ]);
      writeFileSync(`${out}/cases.bin`, file);

      const core = new Core("release");
      const expected = cases.map((c) => c.expect(core));

      const started = Date.now();
      const run = spawnSync("qemu-system-arm", [
        "-M", "mps2-an385", "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native", "-kernel", `${out}/runner.elf`,
      ], { cwd: out, timeout: DEVICE_LIMIT_MS, killSignal: "SIGKILL", maxBuffer: 64 << 20, encoding: "utf8" });
      const seconds = (Date.now() - started) / 1000;
      if (run.error || run.signal) {
        throw new Error(`the device did not finish within ${DEVICE_LIMIT_MS / 1000} s (${run.error?.message ?? run.signal})`);
      }
      const lines = run.stdout.split("\n");
      expect(lines[0], run.stderr).toMatch(/^init 0 stack \d+$/);
      const answers = lines.slice(1, 1 + cases.length);
      for (let i = 0; i < cases.length; i++) {
        if (answers[i] !== expected[i]) {
          const show = (s: string | undefined) => (s && s.length > 300 ? `${s.slice(0, 300)}…` : s);
          expect.fail(`case ${i} (${cases[i].what}): device ${show(answers[i])}\n  node ${show(expected[i])}\n${run.stderr}`);
        }
      }
      const stack = /^stack (\d+)$/.exec(lines[1 + cases.length] ?? "");
      expect(stack, lines.slice(cases.length).join("\n")).not.toBeNull();
      expect(lines[2 + cases.length]).toBe("done");
      expect(run.status).toBe(0);
      // The core's stack (with the runner's and the kit's frames above it) stays within 2 KiB.
      expect(Number(stack![1])).toBeLessThanOrEqual(2048);
      // The RFC 1321 vectors are the published ones, not just equal on both sides.
      const rfc = cases.flatMap((c, i) => (c.what.startsWith("RFC 1321") && !c.what.endsWith("chunked") ? [expected[i].split(" ")[1]] : []));
      expect(rfc).toEqual(RFC1321_VECTORS.map(([, digest]) => digest));
      console.log(`device: ${cases.length} cases, ${file.length} bytes of input, ${seconds.toFixed(1)} s in QEMU, `
        + `core stack ${stack![1]} bytes (init ${lines[0].split(" ")[3]})\n${sizes}`);
    },
  );
});
