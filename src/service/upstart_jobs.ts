/**
 * The upstart jobs (RHEL 6 style hosts): `/etc/init/amp.conf` supervises the
 * daemon, `/etc/init/amp-updater.conf` is a task that runs one update. Only
 * stanzas that upstart 0.6.5 (RHEL 6) understands are used: no `console log`,
 * no `setuid`.
 *
 * @module
 */

import { BIN_PATH, CONFIG_FILE } from "./layout.ts";

/** Options of the job templates. */
export interface UpstartJobOptions {
  /** The amp executable; {@linkcode BIN_PATH} by default. */
  binary?: string;
  /** The local configuration checked before start; {@linkcode CONFIG_FILE} by default. */
  config?: string;
}

/**
 * The text of `/etc/init/amp.conf`.
 *
 * @example
 * ```ts
 * import { upstartAmpJob } from "./upstart_jobs.ts";
 * upstartAmpJob().includes("exec /opt/amp/bin/amp daemon"); // true
 * ```
 */
export function upstartAmpJob(options: UpstartJobOptions = {}): string {
  const binary = options.binary ?? BIN_PATH;
  const config = options.config ?? CONFIG_FILE;
  return `# amp endpoint protection daemon. Written by amp install; amp disable renames
# it to amp.conf.disabled, amp uninstall removes it.
description "amp endpoint protection daemon"

start on runlevel [2345]
stop on runlevel [016]

# Restarted when it dies, but not in a tight loop: at most 10 times in 60 s.
respawn
respawn limit 10 60
# The daemon stops its monitor and closes its databases on SIGTERM.
kill timeout 30

# amp daemon stays in the foreground, so no "expect fork" or "expect daemon".
pre-start script
    if [ ! -x ${binary} ]; then
        logger -t amp "not starting: ${binary} is missing or not executable"
        stop; exit 0
    fi
    if [ ! -r ${config} ]; then
        logger -t amp "not starting: ${config} is missing (run amp install)"
        stop; exit 0
    fi
end script

exec ${binary} daemon
`;
}

/**
 * The text of `/etc/init/amp-updater.conf`: one run of `amp update`
 * (`initctl start amp-updater`); the hourly run comes from cron.
 */
export function upstartUpdaterJob(options: UpstartJobOptions = {}): string {
  const binary = options.binary ?? BIN_PATH;
  return `# amp updater: policy and ClamAV signatures. Started by hand with
# "initctl start amp-updater"; /etc/cron.hourly/amp-updater runs the update hourly.
# Written by amp install; amp disable renames it to amp-updater.conf.disabled.
description "amp updater"

task

exec ${binary} update
`;
}
