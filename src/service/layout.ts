/**
 * Where `amp install` puts things, as host paths (joined under `--root` by
 * {@linkcode resolveUnderRoot}), and which init files belong to which init
 * system. Install, disable, enable and uninstall all read this one table, so
 * that each undoes exactly what the other made.
 *
 * @module
 */

/** The init systems amp integrates with. */
export const INIT_SYSTEMS = ["upstart", "systemd", "sysv"] as const;

/** One of {@linkcode INIT_SYSTEMS}. */
export type InitSystem = typeof INIT_SYSTEMS[number];

/** The installed executable. */
export const BIN_PATH = "/opt/amp/bin/amp";
/** The local configuration. */
export const CONFIG_FILE = "/etc/amp/amp.json";
/** The policy in force. */
export const POLICY_FILE = "/etc/amp/policy.json";
/** amp's state: databases and the quarantine. */
export const STATE_DIR = "/var/lib/amp";
/** The events database. */
export const EVENTS_DB = "/var/lib/amp/events.db";
/** amp's logs. */
export const LOG_DIR = "/var/log/amp";
/** The installer's log (install, uninstall; disable and enable too). */
export const INSTALLER_LOG = "/var/log/amp/ampinstaller.log";
/** The daemon's runtime directory (socket); made by the daemon, not by install. */
export const RUN_DIR = "/run/amp";

/** A directory amp owns, with its mode (owner root:root). */
export interface OwnedDir {
  path: string;
  mode: number;
}

/**
 * Directories install creates and owns, parents first. `/run/amp` is not
 * among them: /run is a tmpfs emptied at boot, so the daemon (or systemd's
 * `RuntimeDirectory=`) creates it at every start.
 */
export const OWNED_DIRS: readonly OwnedDir[] = [
  { path: "/opt/amp", mode: 0o755 },
  { path: "/opt/amp/bin", mode: 0o755 },
  { path: "/etc/amp", mode: 0o755 },
  { path: "/etc/amp/lists", mode: 0o755 },
  { path: STATE_DIR, mode: 0o700 },
  { path: "/var/lib/amp/quarantine", mode: 0o700 },
  { path: LOG_DIR, mode: 0o700 },
];

/** The upstart jobs. */
export const UPSTART_JOB = "/etc/init/amp.conf";
/** The upstart updater task. */
export const UPSTART_UPDATER_JOB = "/etc/init/amp-updater.conf";
/** The systemd service unit. */
export const SYSTEMD_SERVICE = "/etc/systemd/system/amp.service";
/** The systemd updater service (run by the timer). */
export const SYSTEMD_UPDATER_SERVICE = "/etc/systemd/system/amp-updater.service";
/** The systemd updater timer. */
export const SYSTEMD_UPDATER_TIMER = "/etc/systemd/system/amp-updater.timer";
/** The sysvinit script. */
export const SYSV_SCRIPT = "/etc/init.d/amp";
/** The hourly updater for cron (upstart and sysv hosts; systemd uses the timer). */
export const CRON_UPDATER = "/etc/cron.hourly/amp-updater";

/** A symbolic link that enables a service (what `systemctl enable` or `update-rc.d` make). */
export interface EnableLink {
  path: string;
  target: string;
}

/** The `wants` links `systemctl enable amp.service amp-updater.timer` would make. */
export const SYSTEMD_LINKS: readonly EnableLink[] = [
  { path: "/etc/systemd/system/multi-user.target.wants/amp.service", target: SYSTEMD_SERVICE },
  {
    path: "/etc/systemd/system/timers.target.wants/amp-updater.timer",
    target: SYSTEMD_UPDATER_TIMER,
  },
];

/** The rc links of the sysv script: start at 20 in 2–5, kill at 80 in 0, 1, 6. */
export const SYSV_LINKS: readonly EnableLink[] = [
  ...[2, 3, 4, 5].map((n) => ({ path: `/etc/rc${n}.d/S20amp`, target: "../init.d/amp" })),
  ...[0, 1, 6].map((n) => ({ path: `/etc/rc${n}.d/K80amp`, target: "../init.d/amp" })),
];

/** Suffix of an upstart job renamed by `amp disable` (upstart ignores files not ending in .conf). */
export const DISABLED_SUFFIX = ".disabled";

/** Every file or link install may have made for any init system (what uninstall removes). */
export const ALL_INIT_PATHS: readonly string[] = [
  UPSTART_JOB,
  UPSTART_JOB + DISABLED_SUFFIX,
  UPSTART_UPDATER_JOB,
  UPSTART_UPDATER_JOB + DISABLED_SUFFIX,
  ...SYSTEMD_LINKS.map((l) => l.path),
  SYSTEMD_SERVICE,
  SYSTEMD_UPDATER_SERVICE,
  SYSTEMD_UPDATER_TIMER,
  ...SYSV_LINKS.map((l) => l.path),
  SYSV_SCRIPT,
  CRON_UPDATER,
];
