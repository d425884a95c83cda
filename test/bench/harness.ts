// A small benchmark harness: warm up, then take the median of several timed samples.

export interface Measurement {
  name: string;
  opsPerSec: number;
  bytesPerOp: number;
}

const WARMUP_MS = 150;
const SAMPLE_MS = 200;
const SAMPLES = 7;

function sample(fn: () => unknown, ms: number): number {
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  // Batches keep the clock out of the measurement for tiny operations.
  let batch = 1;
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    elapsed = performance.now() - start;
    if (elapsed < ms / 20) batch *= 2;
  }
  return (ops * 1000) / elapsed;
}

/**
 * Measures the contenders in interleaved rounds (one sample of each per round), so that a
 * burst of machine noise lands on all of them rather than on whichever ran at that moment.
 */
export function measureAll(bytesPerOp: number, cases: Record<string, () => unknown>): Measurement[] {
  const entries = Object.entries(cases);
  for (const [, fn] of entries) sample(fn, WARMUP_MS);
  const rates = entries.map(() => [] as number[]);
  for (let round = 0; round < SAMPLES; round++) {
    entries.forEach(([, fn], i) => rates[i].push(sample(fn, SAMPLE_MS)));
  }
  return entries.map(([name], i) => {
    const sorted = rates[i].sort((a, b) => a - b);
    return { name, opsPerSec: sorted[SAMPLES >> 1], bytesPerOp };
  });
}

export function formatRate(m: Measurement): string {
  const mbps = (m.opsPerSec * m.bytesPerOp) / 1e6;
  const r = m.opsPerSec;
  const ops = r >= 1e6 ? `${(r / 1e6).toFixed(2)} M` : r >= 1e4 ? `${(r / 1e3).toFixed(1)} k` : `${r.toFixed(0)} `;
  return `${m.name.padEnd(34)} ${ops}ops/s`.padEnd(52) + `${mbps.toFixed(1).padStart(9)} MB/s`;
}

/** Collects `ratio <name> <value>` lines, printed together at the end of the run. */
export class Ratios {
  private readonly lines: string[] = [];
  add(name: string, ours: Measurement, peer: Measurement): void {
    this.addValue(name, ours.opsPerSec / peer.opsPerSec);
  }
  addValue(name: string, ratio: number): void {
    this.lines.push(`ratio ${name} ${ratio.toFixed(2)}`);
  }
  print(): void {
    console.log("");
    for (const line of this.lines) console.log(line);
  }
}
