// A progress line for long lab runs: redrawn in place on a terminal, a plain line every few
// seconds otherwise (CI logs).

import type { LabProgress } from "./lab.js";

export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): { update(p: LabProgress): void; end(): void } {
  const tty = stream.isTTY === true;
  let lastLine = 0;
  let drawn = false;
  return {
    update(p) {
      const width = 28;
      const filled = p.total ? Math.round((p.done / p.total) * width) : 0;
      const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
      const text = `${bar} ${p.done}/${p.total || "?"} runs · ${p.delivered} delivered · ${p.failed} failed` +
        (p.mismatches ? ` · ${p.mismatches} MISMATCHED` : "");
      if (tty) {
        stream.write(`\r${text}\x1b[K`);
        drawn = true;
      } else if (Date.now() - lastLine > 3000 || p.done === p.total) {
        lastLine = Date.now();
        stream.write(`${text}\n`);
      }
    },
    end() {
      if (drawn) stream.write("\n");
    },
  };
}
