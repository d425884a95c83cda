// Who may ask the exporter for probes: the collector's rules (host/collector/http-guard.ts,
// DESIGN.md "Identity and security"). Unlike the collector's dashboard, the exporter's page
// lists the modules and their targets, so no path but /metrics (with --metrics-public) is open.

import { httpGuard, type HttpGuard, type HttpGuardOptions } from "../collector/http-guard.js";

export function exporterGuard(opts: HttpGuardOptions): HttpGuard {
  return httpGuard(opts, {
    name: "exporter", listenFlag: "--listen", realm: "catprobe-exporter", open: [],
    tokenHint: "Prometheus: authorization: { credentials_file: … }",
  });
}
