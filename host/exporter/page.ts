// GET /: a short page, as blackbox's: a probe link and a debug link for each module (against
// the task's own target), and /metrics. No script, no style: the CSP forbids both.

import type { Modules } from "./modules.js";

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ENTITIES[c]);

export const PAGE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function landingPage(modules: Modules): string {
  const rows = modules.list().map(({ spec }) => {
    const host = spec.target.host.includes(":") ? `[${spec.target.host}]` : spec.target.host;
    const query = `module=${encodeURIComponent(spec.id)}&target=${encodeURIComponent(`${host}:${spec.target.port}`)}`;
    return `<tr><td>${escape(spec.id)}</td><td>${escape(`${host}:${spec.target.port}`)}${spec.target.tls ? " (TLS)" : ""}</td>` +
      `<td>${spec.steps.length}</td><td><a href="probe?${escape(query)}">Probe</a> <a href="probe?${escape(query)}&amp;debug=true">Debug</a></td></tr>`;
  });
  return `<!doctype html>
<html>
<head><meta charset="utf-8"><title>catprobe exporter</title></head>
<body>
<h1>catprobe exporter</h1>
<p>A blackbox_exporter-compatible TCP prober: <code>/probe?module=&lt;task id&gt;&amp;target=&lt;host:port&gt;</code>.</p>
<p><a href="metrics">Metrics</a></p>
<h2>Modules</h2>
<table border="1"><tr><th>Module</th><th>Task target</th><th>Steps</th><th></th></tr>
${rows.join("\n")}
</table>
</body>
</html>
`;
}
