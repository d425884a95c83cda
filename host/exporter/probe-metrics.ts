// A run's result as blackbox_exporter's TCP prober reports a probe (prober/tcp.go, utils.go of
// blackbox_exporter 0.23, names and help texts as it writes them), plus catprobe's code and
// failing step. Like blackbox, the certificate and TLS version families appear only once a TLS
// handshake succeeded; the address families only once DNS got that far (or was not needed).

import { isIP } from "node:net";
import type { ResultRecord } from "../wire/record.js";
import { gauge, type MetricFamily } from "./metrics-text.js";

/** blackbox's ipHash: FNV-1a (32 bits) of the address bytes, 4 for IPv4, 16 for IPv6. */
export function ipHash(address: string): number {
  let h = 0x811c9dc5;
  for (const byte of addressBytes(address)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function addressBytes(address: string): number[] {
  if (isIP(address) === 4) return address.split(".").map(Number);
  // IPv6: expand "::", and a dotted IPv4 tail into two groups
  let text = address.toLowerCase().replace(/%.*$/, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1].split(".").map(Number);
    text = text.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/** Node's "TLSv1.3" as Go's tls.VersionName writes it: "TLS 1.3". */
export function tlsVersionName(version: string): string {
  const m = /^TLSv1(?:\.(\d))?$/.exec(version);
  return m ? `TLS 1.${m[1] ?? "0"}` : version;
}

/** Milliseconds (kept to 0.01 ms in records) as seconds, without float noise: 9.89 → 0.00989. */
const seconds = (ms: number) => Math.round(ms * 100) / 1e5;

export function probeFamilies(r: ResultRecord): MetricFamily[] {
  const families: MetricFamily[] = [
    gauge("probe_success", "Displays whether or not the probe was a success", r.ok ? 1 : 0),
    gauge("probe_duration_seconds", "Returns how long the probe took to complete in seconds", seconds(r.timings.totalMs)),
    gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex", r.code === 607 ? 1 : 0),
    gauge("catprobe_error_code", "The catprobe error code of the run: 0 on success, else 600-609", r.code ?? 0),
    gauge("probe_failed_at_step", "The 0-based index of the step that failed, or -1", r.step ?? -1),
  ];
  // blackbox registers these as it starts resolving; a 605/606 never gets that far
  if (r.code !== 605 && r.code !== 606) {
    const family = r.address ? isIP(r.address) : 0;
    families.push(
      gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", seconds(r.timings.dnsMs ?? 0)),
      gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", family),
      gauge("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes.", r.address ? ipHash(r.address) : 0),
    );
  }
  // After a successful handshake (a 608's certificate facts are of a handshake that failed).
  if (r.tls && r.code !== 608) {
    if (r.tls.notAfter) {
      families.push(gauge("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", Date.parse(r.tls.notAfter) / 1000));
    }
    families.push({
      name: "probe_tls_version_info", help: "Returns the TLS version used or NaN when unknown", type: "gauge",
      samples: [{ labels: { version: r.tls.version ? tlsVersionName(r.tls.version) : "unknown" }, value: r.tls.version ? 1 : NaN }],
    });
  }
  return families;
}
