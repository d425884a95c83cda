import type { CoreBuild } from "../../host/core/core.js";

/** Behaviour suites run against both optimised builds: the portable one devices run, and SIMD. */
export const BUILDS: CoreBuild[] = ["release", "simd"];
