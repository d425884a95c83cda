// The exporter's own /metrics: probes by module and result, requests refused by reason, probes
// in flight and the cap, the modules loaded, and a few process figures. Every label set is
// bounded: modules are the loaded task ids (an unknown module is counted by reason alone).

import { metricsText, type MetricFamily, type Sample } from "./metrics-text.js";

export type RefusalReason = "unknown_module" | "missing_target" | "bad_target" | "bad_timeout" | "busy" | "error";

export class ExporterMetrics {
  private readonly probes = new Map<string, { success: number; failure: number }>();
  private readonly refused = new Map<RefusalReason, number>();
  private readonly started = Date.now() / 1000;
  inFlight = 0;
  constructor(readonly concurrency: number, public modules: () => number) {}

  probed(module: string, ok: boolean): void {
    let counts = this.probes.get(module);
    if (!counts) this.probes.set(module, (counts = { success: 0, failure: 0 }));
    counts[ok ? "success" : "failure"]++;
  }

  refuse(reason: RefusalReason): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  text(): string {
    const probeSamples: Sample[] = [...this.probes].flatMap(([module, c]) => [
      { labels: { module, result: "success" }, value: c.success },
      { labels: { module, result: "failure" }, value: c.failure },
    ]);
    const cpu = process.cpuUsage();
    const families: MetricFamily[] = [
      { name: "catprobe_exporter_probes_total", help: "Probes run, by module (task id) and result", type: "counter", samples: probeSamples },
      { name: "catprobe_exporter_refused_total", help: "Probe requests answered without a probe, by reason", type: "counter",
        samples: [...this.refused].map(([reason, value]) => ({ labels: { reason }, value })) },
      { name: "catprobe_exporter_probes_in_flight", help: "Probes running now", type: "gauge", samples: [{ value: this.inFlight }] },
      { name: "catprobe_exporter_concurrency_limit", help: "Probes that may run at once (--concurrency); over it a request gets 503", type: "gauge", samples: [{ value: this.concurrency }] },
      { name: "catprobe_exporter_modules", help: "Modules (tasks) loaded", type: "gauge", samples: [{ value: this.modules() }] },
      { name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", type: "gauge", samples: [{ value: Math.round(this.started * 100) / 100 }] },
      { name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", type: "counter", samples: [{ value: (cpu.user + cpu.system) / 1e6 }] },
      { name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", type: "gauge", samples: [{ value: process.memoryUsage.rss() }] },
    ];
    return metricsText(families);
  }
}
