/**
 * The files and links that integrate amp with each init system: what install
 * writes, what disable and enable toggle, what uninstall removes.
 *
 * @module
 */

import { cronUpdaterJob } from "./cron_job.ts";
import {
  CRON_UPDATER,
  type EnableLink,
  type InitSystem,
  SYSTEMD_LINKS,
  SYSTEMD_SERVICE,
  SYSTEMD_UPDATER_SERVICE,
  SYSTEMD_UPDATER_TIMER,
  SYSV_LINKS,
  SYSV_SCRIPT,
  UPSTART_JOB,
  UPSTART_UPDATER_JOB,
} from "./layout.ts";
import { ampServiceUnit, updaterServiceUnit, updaterTimerUnit } from "./systemd_units.ts";
import { sysvInitScript } from "./sysv_script.ts";
import { upstartAmpJob, upstartUpdaterJob } from "./upstart_jobs.ts";

/** A file install writes. */
export interface InitFile {
  path: string;
  content: string;
  mode: number;
}

/** What one init system needs. */
export interface InitIntegration {
  /** Job, unit and script files, and the cron job where cron runs the updater. */
  files: InitFile[];
  /** Links that enable the service (systemd wants, sysv rc links); none for upstart. */
  links: readonly EnableLink[];
  /** The file whose presence (in any state) means amp is installed for this init. */
  marker: string;
}

/**
 * The integration of amp with `init`.
 *
 * @example
 * ```ts
 * import { initIntegration } from "./init_files.ts";
 * initIntegration("systemd").files.map((f) => f.path);
 * // ["/etc/systemd/system/amp.service", "/etc/systemd/system/amp-updater.service",
 * //  "/etc/systemd/system/amp-updater.timer"]
 * ```
 */
export function initIntegration(init: InitSystem): InitIntegration {
  const cron: InitFile = { path: CRON_UPDATER, content: cronUpdaterJob(), mode: 0o755 };
  switch (init) {
    case "upstart":
      return {
        files: [
          { path: UPSTART_JOB, content: upstartAmpJob(), mode: 0o644 },
          { path: UPSTART_UPDATER_JOB, content: upstartUpdaterJob(), mode: 0o644 },
          cron,
        ],
        links: [],
        marker: UPSTART_JOB,
      };
    case "systemd":
      return {
        files: [
          { path: SYSTEMD_SERVICE, content: ampServiceUnit(), mode: 0o644 },
          { path: SYSTEMD_UPDATER_SERVICE, content: updaterServiceUnit(), mode: 0o644 },
          { path: SYSTEMD_UPDATER_TIMER, content: updaterTimerUnit(), mode: 0o644 },
        ],
        links: SYSTEMD_LINKS,
        marker: SYSTEMD_SERVICE,
      };
    case "sysv":
      return {
        files: [{ path: SYSV_SCRIPT, content: sysvInitScript(), mode: 0o755 }, cron],
        links: SYSV_LINKS,
        marker: SYSV_SCRIPT,
      };
  }
}
