// Cores for a probe that verifies many replies at once. Each Core holds 24 verifier contexts
// (2 for keywords over 256 bytes); when every core in the pool is busy another is made, up to
// a bound, so concurrency is limited by the scheduler and not by the core's fixed memory.

import { Core, type CoreBuild } from "./core.js";
import { CoreBusyError } from "./errors.js";
import { tryCreateVerifier, type VerifySpec, type Verifier } from "./verifier.js";

export class CorePool {
  private readonly cores: Core[];

  constructor(private readonly build?: CoreBuild, private readonly maxCores = 256) {
    this.cores = [new Core(build)];
  }

  /** A core for stateless work (hex conversion). */
  get primary(): Core {
    return this.cores[0];
  }

  get size(): number {
    return this.cores.length;
  }

  createVerifier(spec: VerifySpec): Verifier {
    for (const core of this.cores) {
      const verifier = tryCreateVerifier(core, spec);
      if (verifier) return verifier;
    }
    if (this.cores.length >= this.maxCores) throw new CoreBusyError(this.cores.length * this.primary.exports.contextCount());
    const core = new Core(this.build);
    this.cores.push(core);
    return tryCreateVerifier(core, spec)!;
  }
}
