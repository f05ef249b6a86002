/**
 * `/etc/cron.hourly/amp-updater`, the hourly update on hosts without systemd
 * (upstart and sysv). `amp disable` takes its execute bit away, which makes
 * run-parts skip it; `amp update` holds its own lock, so an overlapping run
 * waits or gives up by itself.
 *
 * @module
 */

import { BIN_PATH } from "./layout.ts";

/**
 * The text of the cron job.
 *
 * @param options the amp executable; {@linkcode BIN_PATH} by default
 * @example
 * ```ts
 * import { cronUpdaterJob } from "./cron_job.ts";
 * cronUpdaterJob().startsWith("#!/bin/sh\n"); // true
 * ```
 */
export function cronUpdaterJob(options: { binary?: string } = {}): string {
  const binary = options.binary ?? BIN_PATH;
  return `#!/bin/sh
# amp hourly update: policy and ClamAV signatures. Written by amp install;
# amp disable makes it non-executable (run-parts skips it), amp enable restores it.
[ -x ${binary} ] || exit 0
exec ${binary} update
`;
}
