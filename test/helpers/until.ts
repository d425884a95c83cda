/**
 * Polls `check` every `everyMs` until it holds; fails naming `what` after `ms`, so that nothing
 * waits forever. Benchmarks that time the wait poll more often than the 50 ms tests need.
 */
export async function until(
  check: () => boolean | Promise<boolean>, what: string, ms = 20_000, everyMs = 50,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
