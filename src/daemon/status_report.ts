/**
 * What `amp status` shows: the daemon builds a {@linkcode StatusReport}, the
 * CLI prints it with {@linkcode formatStatus} in the manner of the reference
 * connector's `ampcli status`, or as JSON.
 *
 * @module
 */

import type { ScanSummary } from "../scan/scan_run.ts";
import type { CloudReport } from "./cloud_link.ts";

/** A scan running in the daemon, or the last one. */
export interface ScanState {
  kind: string;
  paths?: string[];
  started: number;
  finished?: number;
  paused?: boolean;
  stopped?: boolean;
  failed?: string;
  summary: ScanSummary;
}

/** The daemon's state. */
export interface StatusReport {
  version: string;
  pid: number;
  startedAt: number;
  /** Cloud connection: Offline when amp.json names no cloud. */
  status: "Connected" | "Disconnected" | "Offline";
  /** The cloud link, when the daemon has one. */
  cloud?: CloudReport;
  policy: { name: string; id: number; serial: number; source: string };
  mode: { file: "audit" | "quarantine"; execute: "passive" | "active"; network: string };
  scan?: ScanState;
  lastScan?: ScanState;
  engines: {
    clamav?: { version: string; signatures: number; dbDir: string };
    blockList: number;
    allowList: number;
    descriptions: string[];
  };
  monitor: {
    backend: string;
    onAccess: boolean;
    onExecute: "passive" | "active" | "off";
    paths: string[];
    events: number;
    queued: number;
    onAccessScanned: number;
    executionsScanned: number;
    detections: number;
    processesKilled: number;
    executionsBlocked: number;
    kernelOverflows: number;
    queueFull: number;
    rescans: number;
    permissionTimeouts: number;
    /** Executables found clean that the kernel skips until they change. */
    ignoredExecutables: number;
  };
  dfc: {
    on: boolean;
    action: string;
    netns?: string;
    lists: Array<{ name: string; entries: number; malformed: number; error?: string }>;
    flows: number;
    matches: number;
    events: number;
    suppressed: number;
    blocked: number;
    blockFailures: number;
    lost: number;
    /** Whether connect audit records name the processes of closed connections (absent: not asked for). */
    connectAudit?: { on: boolean; readded?: number; error?: string };
    /** Flows whose process came from a connect record. */
    joined: number;
    /** Times connect audit records were lost (the socket buffer overflowed). */
    auditLost: number;
  };
  quarantine: { files: number };
  cache: { entries: number; bytes: number };
  events: { total: number };
  faults: string[];
}

/** Local time as `2026-11-26 13:05:01`. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function scanLine(s: ScanState): string {
  const mb = (s.summary.bytes / 1e6).toFixed(1);
  const what = `${s.kind}${s.paths?.length ? ` ${s.paths.join(" ")}` : ""}`;
  return `${what}: ${s.summary.files} files, ${mb} MB, ${s.summary.detections} detections`;
}

function cloudLines(c: CloudReport | undefined): string[] {
  if (!c?.url) return [];
  const who = c.computerId === undefined ? "not registered" : `computer #${c.computerId}`;
  const contact = c.lastContact === undefined ? "never" : formatTime(c.lastContact);
  const why = c.lastError ? `; ${c.lastError}` : "";
  return [`Cloud:        ${c.url} (${who}), last contact ${contact}${why}`];
}

/** The lines of `amp status` after "Connected.". */
export function formatStatus(r: StatusReport): string[] {
  const scan = r.scan
    ? `${r.scan.paused ? "Paused" : "Scanning"} (${scanLine(r.scan)})`
    : "Ready for scan";
  const last = r.lastScan
    ? `${formatTime(r.lastScan.finished ?? r.lastScan.started)} (${scanLine(r.lastScan)}${
      r.lastScan.failed ? `, failed: ${r.lastScan.failed}` : r.lastScan.stopped ? ", stopped" : ""
    })`
    : "None";
  const m = r.monitor;
  const monitor = m.backend === "off"
    ? "off"
    : `${m.backend} (on-access ${m.onAccess ? "on" : "off"}, on-execute ${m.onExecute})`;
  const mode = r.mode.file === "quarantine" ? "Protect" : "Audit";
  const clamav = r.engines.clamav
    ? `ClamAV ${r.engines.clamav.version} (${r.engines.clamav.signatures} signatures)`
    : "ClamAV off or without signatures";
  return [
    `Status:       ${r.status}`,
    ...cloudLines(r.cloud),
    `Mode:         ${mode} (files: ${r.mode.file}, execute: ${r.mode.execute})`,
    `Scan:         ${scan}`,
    `Last Scan:    ${last}`,
    `Policy:       ${r.policy.name} (#${r.policy.id})`,
    `Engines:      ${clamav}; custom detections ${r.engines.blockList} SHA-256; ` +
    `allow list ${r.engines.allowList} SHA-256`,
    `Monitor:      ${monitor}`,
    `Activity:     ${m.onAccessScanned} files and ${m.executionsScanned} executions scanned, ` +
    `${m.detections} detections, ${m.processesKilled} killed, ${m.executionsBlocked} blocked`,
    `Exec cache:   ${m.ignoredExecutables} clean executables skipped by the kernel until changed`,
    `Lost events:  ${m.kernelOverflows} kernel overflows, ${m.queueFull} queue full, ` +
    `${m.rescans} rescans`,
    `DFC:          ${
      r.dfc.on
        ? `on (${r.dfc.action}), lists ${
          r.dfc.lists.map((l) => `${l.name} ${l.entries}`).join(", ")
        }; ${r.dfc.flows} flows, ${r.dfc.events} detections, ${r.dfc.lost} lost${
          r.dfc.connectAudit === undefined
            ? ""
            : r.dfc.connectAudit.on
            ? `; connect audit on (${r.dfc.joined} named${
              r.dfc.auditLost > 0 ? `, records lost ${r.dfc.auditLost} times` : ""
            })`
            : "; connect audit off"
        }`
        : r.dfc.lists.length === 0
        ? "off (no IP lists in the policy)"
        : "off (see faults)"
    }`,
    `Quarantine:   ${r.quarantine.files} files`,
    `Cache:        ${r.cache.entries} verdicts (${(r.cache.bytes / 1e6).toFixed(1)} MB)`,
    `Events:       ${r.events.total}`,
    `Faults:       ${r.faults.length === 0 ? "None" : r.faults.join("; ")}`,
    `Daemon:       pid ${r.pid}, amp ${r.version}, up since ${formatTime(r.startedAt)}`,
  ];
}
