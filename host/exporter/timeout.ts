// How long a probe may take: blackbox_exporter's rule (prober/handler.go getTimeout). Prometheus
// sends its scrape timeout in X-Prometheus-Scrape-Timeout-Seconds; the probe gets that less
// an offset (blackbox's --timeout-offset, 0.5 s), so the answer is back before Prometheus gives
// up on the scrape. Without the header blackbox assumes 120 s. The task's own limits apply
// when they are shorter (its taskTimeoutMs plays the part of a module's `timeout`).

export const SCRAPE_TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds";
export const DEFAULT_TIMEOUT_OFFSET_S = 0.5;
const NO_HEADER_S = 120;

export class TimeoutHeaderError extends Error {}

/** Go's strconv.ParseFloat, for the forms a scrape timeout takes ("10", "9.5", "1e1"). */
function parseSeconds(text: string): number {
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) {
    throw new TimeoutHeaderError(`strconv.ParseFloat: parsing ${JSON.stringify(text)}: invalid syntax`);
  }
  return Number(text);
}

/**
 * The most, in milliseconds, a probe may take for a request with this header value. An offset
 * that would leave nothing (a header of 0.5 s or less) is not taken off: the probe then gets the
 * header's own time, so it still answers within the scrape rather than never.
 */
export function probeBudgetMs(header: string | undefined, offsetS = DEFAULT_TIMEOUT_OFFSET_S): number {
  let seconds = header === undefined || header === "" ? 0 : parseSeconds(header.trim());
  if (seconds < 0) throw new TimeoutHeaderError(`the scrape timeout ${header} is negative`);
  if (seconds === 0) seconds = NO_HEADER_S;
  const capped = seconds - offsetS > 0 ? seconds - offsetS : seconds;
  return Math.max(1, Math.floor(capped * 1000));
}
