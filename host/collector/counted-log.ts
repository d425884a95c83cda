// Log lines about bad input, by reason: the first five of each reason, then every thousandth,
// so a misbehaving or hostile client cannot flood the log (every one is still counted in /metrics).

/** A logger of `(reason, text)`: "<verb> (<reason>, #n) <text>"; the text must already be printable. */
export function countedLogger(log: (line: string) => void, verb: string) {
  const seen = new Map<string, number>();
  return (reason: string, text: string) => {
    const n = (seen.get(reason) ?? 0) + 1;
    seen.set(reason, n);
    if (n <= 5 || n % 1000 === 0) log(`${verb} (${reason}, #${n}) ${text}`);
  };
}
