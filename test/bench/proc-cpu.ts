// CPU time of processes and of the whole machine, read from /proc (Linux), for benchmarks that
// say where the time went: a process's own user + system time, a process tree's (children it
// has reaped included, so a PostgreSQL backend that exits mid-run still counts), and the busy
// time of all CPUs together (so what other programs on a shared machine took shows as well).

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 1000 / (Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100);

interface Stat { pid: number; ppid: number; own: number; reaped: number }

/** utime + stime and cutime + cstime of one process, in ms; null once it is gone. */
function stat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The fields after the command name in parentheses, from field 3 (state) on.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number);
  return { pid, ppid: f[1], own: (f[11] + f[12]) * TICK_MS, reaped: (f[13] + f[14]) * TICK_MS };
}

const allPids = () => readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);

function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

/** The processes whose arguments include `args` in this order, one after the other. */
export function pidsWithArgs(...args: string[]): number[] {
  return allPids().filter((pid) => {
    const a = argv(pid);
    return a.some((_, i) => args.every((arg, j) => a[i + j] === arg));
  });
}

/** CPU ms of these processes and all their descendants, those already reaped included. */
export function treeCpuMs(roots: number[]): number {
  const stats = allPids().map(stat).filter((s): s is Stat => s !== null);
  const children = new Map<number, Stat[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  let ms = 0;
  const visit = (s: Stat) => {
    ms += s.own + s.reaped;
    for (const c of children.get(s.pid) ?? []) visit(c);
  };
  for (const s of stats) if (roots.includes(s.pid)) visit(s);
  return ms;
}

/** Busy ms of all CPUs together since boot (everything but idle and iowait). */
export function machineBusyMs(): number {
  const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks; // idle and iowait left out
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

/** CPU ms of this process so far. */
export const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
