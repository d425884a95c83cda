// npm run bench: every benchmark, then one `ratio <name> <value>` line per comparison.

import { cpus } from "node:os";
import { Ratios } from "./harness.js";
import { benchCollector } from "./collector.bench.js";
import { benchCore } from "./core.bench.js";
import { benchFleet } from "./fleet.bench.js";
import { benchProbe } from "./probe.bench.js";

const ratios = new Ratios();
console.log(`catprobe benchmarks — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"} × ${cpus().length}`);
// `npm run bench -- probe` runs one group; no argument runs all.
const only = process.argv[2];
if (!only || only === "core") await benchCore(ratios);
if (!only || only === "probe") await benchProbe(ratios);
if (!only || only === "collector") await benchCollector(ratios);
if (!only || only === "fleet") await benchFleet();
ratios.print();
