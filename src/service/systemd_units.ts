/**
 * The systemd units: `amp.service` (the daemon), `amp-updater.service` (one
 * update) and `amp-updater.timer` (hourly).
 *
 * Hardening is chosen for what the daemon does: it marks every file system
 * with fanotify, reads netlink (proc connector, sock_diag, conntrack), kills
 * other users' processes, quarantines files anywhere (/usr/bin, /home, /tmp)
 * and restores them with their owner and mode. The reasons for each option,
 * and for each one left out, are written in the unit itself, where an
 * administrator reading `systemctl cat amp` will see them.
 *
 * @module
 */

import { BIN_PATH } from "./layout.ts";

/** Options of the unit templates. */
export interface SystemdUnitOptions {
  /** The amp executable; {@linkcode BIN_PATH} by default. */
  binary?: string;
}

/**
 * The text of `/etc/systemd/system/amp.service`.
 *
 * @example
 * ```ts
 * import { ampServiceUnit } from "./systemd_units.ts";
 * ampServiceUnit().includes("ExecStart=/opt/amp/bin/amp daemon\n"); // true
 * ```
 */
export function ampServiceUnit(options: SystemdUnitOptions = {}): string {
  const binary = options.binary ?? BIN_PATH;
  return `# amp endpoint protection daemon. Written by amp install (amp uninstall removes
# it); put local changes in a drop-in: systemctl edit amp.service
[Unit]
Description=amp endpoint protection daemon
After=local-fs.target network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${binary} daemon
# SIGHUP reloads amp.json's log level, the policy and the ClamAV signatures.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
# The daemon stops its monitor and closes its databases on SIGTERM.
TimeoutStopSec=30s
# /run/amp holds the IPC socket (root only); made at each start, removed at stop.
RuntimeDirectory=amp
RuntimeDirectoryMode=0700
# Files the daemon creates (databases, logs) are private to root.
UMask=0077
# fanotify and the scan workers hold many descriptors at once.
LimitNOFILE=65536

# Hardening that leaves protection intact:
# the daemon never needs to gain privileges through setuid programs,
NoNewPrivileges=yes
# nor realtime scheduling,
RestrictRealtime=yes
# nor another execution domain,
LockPersonality=yes
# nor new namespaces,
RestrictNamespaces=yes
# nor system calls of another architecture (x32, i386),
SystemCallArchitectures=native
# and it talks only over unix sockets (syslog), netlink (proc connector,
# sock_diag, conntrack) and IP (the cloud).
RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6
#
# Left out on purpose:
# - ProtectSystem=, ProtectHome=, PrivateTmp=, ReadOnlyPaths=: malware is
#   quarantined wherever it is written (/usr/bin, /home, /tmp) and must be seen
#   where it is; these would hide it or make it impossible to move.
# - Everything that gives the service its own mount namespace (the options
#   above, and ProtectKernelTunables=, ProtectKernelModules=, ProtectKernelLogs=,
#   ProtectControlGroups=, PrivateDevices=): the daemon reports and quarantines
#   the paths it reads back from fanotify descriptors, which must be the host's
#   paths, and it lists the host's mounts for full scans.
# - ProtectClock=: it implies a device allow list (DeviceAllow=char-rtc), which
#   closes every other device node, including /dev/ampavflt (kernel module backend).
# - ProtectHostname=: a private UTS namespace would keep the old host name after
#   a rename, and every event carries the host name.
# - RestrictSUIDSGID=: restoring a quarantined setuid file must restore its mode.
# - MemoryDenyWriteExecute=: the JavaScript engine compiles code at run time.
# - CapabilityBoundingSet=: fanotify (CAP_SYS_ADMIN), netlink (CAP_NET_ADMIN),
#   killing and inspecting any process (CAP_KILL, CAP_SYS_PTRACE), reading and
#   restoring any file (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN) and loading
#   the kernel module (CAP_SYS_MODULE) leave little of root's set to drop.

[Install]
WantedBy=multi-user.target
`;
}

/** The text of `/etc/systemd/system/amp-updater.service`: one run of `amp update`. */
export function updaterServiceUnit(options: SystemdUnitOptions = {}): string {
  const binary = options.binary ?? BIN_PATH;
  return `# amp updater: policy and ClamAV signatures, run hourly by amp-updater.timer.
# Written by amp install; amp uninstall removes it.
[Unit]
Description=amp updater (policy and ClamAV signatures)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=${binary} update
# An update yields to the work of the machine.
Nice=10
IOSchedulingClass=idle
`;
}

/** The text of `/etc/systemd/system/amp-updater.timer`: hourly, spread, caught up after downtime. */
export function updaterTimerUnit(): string {
  return `# Runs amp-updater.service hourly. Written by amp install; amp disable stops
# and disables it with amp.service, amp enable starts it again.
[Unit]
Description=Hourly amp update

[Timer]
OnCalendar=hourly
# Hosts installed together do not all ask the mirror at the same second.
RandomizedDelaySec=15min
# A run missed while the host was off is made at the next boot.
Persistent=true

[Install]
WantedBy=timers.target
`;
}
