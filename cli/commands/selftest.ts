// `catprobe selftest`: the power-on self-test of every core build, with its vital figures.

import { statSync } from "node:fs";
import { Core, corePath, type CoreBuild } from "../../host/core/core.js";

const BUILDS: CoreBuild[] = ["release", "simd", "debug"];

export function selfTest(): number {
  let failed = 0;
  for (const build of BUILDS) {
    const core = new Core(build);
    const result = core.selfTest();
    const size = statSync(corePath(build)).size;
    const status = result === 0 ? "pass" : `FAIL (check ${result})`;
    if (result !== 0) failed++;
    console.log(`${build.padEnd(8)} ${String(size).padStart(6)} bytes  self-test ${status}`);
  }
  return failed === 0 ? 0 : 1;
}
