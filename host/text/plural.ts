/** "1 result", "2 results": a count with its noun, for every message that counts things. */
export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : many}`;
}
