// Loads the WebAssembly core and gives typed access to its exports and its I/O window.
// Every other module in host/core goes through a Core; nothing else touches core memory.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { instantiateSync } from "@assemblyscript/loader";

/** The core's ABI (assembly/index.ts; README "Core ABI"). */
export interface CoreExports {
  memory: WebAssembly.Memory;
  abiVersion(): number;
  windowPtr(): number;
  windowSize(): number;
  windowHalf(): number;
  contextCount(): number;
  contextCapacity(ctx: number): number;
  contextsFree(): number;
  contextRelease(ctx: number): number;
  maxKeyword(): number;
  heapBase(): number;
  hexReset(): void;
  hexDecode(len: number): number;
  hexDecodeEnd(): number;
  hexErrorKind(): number;
  hexErrorOffset(): number;
  hexEncode(len: number): number;
  md5Open(): number;
  md5Push(ctx: number, len: number): number;
  md5Digest(ctx: number): number;
  verifierOpen(mode: number, len: number): number;
  verifierPush(ctx: number, len: number): number;
  verifierEnd(ctx: number): number;
  verifierDecidedAt(ctx: number): number;
  verifierDigest(ctx: number): number;
  selfTest(): number;
}

/**
 * release: the portable firmware build devices run (no SIMD, at most 8 KiB).
 * simd: the same source with WebAssembly SIMD fast paths, for Node hosts.
 * debug: unoptimised, with names and assertions.
 */
export type CoreBuild = "release" | "simd" | "debug";
const BUILDS: readonly CoreBuild[] = ["release", "simd", "debug"];

const ABI_VERSION = 2;

/** Where a build lives: build/core.wasm, build/core.simd.wasm or build/core.debug.wasm. */
export function corePath(build: CoreBuild): string {
  const file = build === "release" ? "core.wasm" : `core.${build}.wasm`;
  return fileURLToPath(new URL(`../../build/${file}`, import.meta.url));
}

const compiled = new Map<CoreBuild, WebAssembly.Module>();

function compile(build: CoreBuild): WebAssembly.Module {
  let module = compiled.get(build);
  if (!module) {
    const path = corePath(build);
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = Uint8Array.from(readFileSync(path));
    } catch (err) {
      throw new Error(`cannot read the WebAssembly core at ${path} (run \`npm run build\`): ${(err as Error).message}`);
    }
    module = new WebAssembly.Module(bytes);
    compiled.set(build, module);
  }
  return module;
}

/**
 * The build a Node host uses unless told otherwise: CATPROBE_CORE (release, simd or debug),
 * else simd where this engine runs WebAssembly SIMD, else the portable release build.
 */
export function defaultBuild(): CoreBuild {
  const chosen = process.env.CATPROBE_CORE;
  if (chosen) {
    if (!BUILDS.includes(chosen as CoreBuild)) {
      throw new Error(`CATPROBE_CORE=${chosen}: expected one of ${BUILDS.join(", ")}`);
    }
    return chosen as CoreBuild;
  }
  return simdSupported() ? "simd" : "release";
}

let simd: boolean | undefined;

function simdSupported(): boolean {
  // The smallest module using a v128 value: (func (result v128) (v128.const i32x4 0 0 0 0)).
  simd ??= WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123,
    3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]));
  return simd;
}

/** One instance of the core: its own 64 KiB memory and context pool. */
export class Core {
  readonly exports: CoreExports;
  /** Bytes of the I/O window, and the offset where full and prefix expected bytes go. */
  readonly windowSize: number;
  readonly windowHalf: number;
  readonly maxKeyword: number;
  /** Live view of the window; valid for the life of the instance (the memory never grows). */
  readonly window: Uint8Array;
  readonly memory: Uint8Array;

  readonly build: CoreBuild;

  constructor(build: CoreBuild = defaultBuild()) {
    this.build = build;
    // No imports: the release core needs none, and a core that asked for one would fail here.
    const { exports } = instantiateSync<Record<string, unknown>>(compile(build), {});
    this.exports = exports as unknown as CoreExports;
    const abi = this.exports.abiVersion();
    if (abi !== ABI_VERSION) throw new Error(`core ABI version ${abi}, this host speaks ${ABI_VERSION}`);
    this.windowSize = this.exports.windowSize();
    this.windowHalf = this.exports.windowHalf();
    this.maxKeyword = this.exports.maxKeyword();
    this.memory = new Uint8Array(this.exports.memory.buffer);
    this.window = this.memory.subarray(this.exports.windowPtr(), this.exports.windowPtr() + this.windowSize);
  }

  /** Copies `length` bytes at core address `ptr` out of the core. */
  read(ptr: number, length: number): Uint8Array {
    return this.memory.slice(ptr, ptr + length);
  }

  /** Runs the power-on self-test: 0 when every known answer matched, else the failing check. */
  selfTest(): number {
    return this.exports.selfTest();
  }
}

let shared: Core | undefined;

/** A process-wide core for callers that do not need their own instance. */
export function defaultCore(): Core {
  shared ??= new Core();
  return shared;
}
