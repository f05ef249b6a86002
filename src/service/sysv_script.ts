/**
 * `/etc/init.d/amp`, the sysvinit script: LSB headers (so insserv and
 * update-rc.d order it), and start, stop, restart, reload, force-reload and
 * status. It uses start-stop-daemon where there is one (Debian) and plain
 * shell otherwise. `amp daemon` stays in the foreground; the script puts it
 * in the background and keeps its pid in a pid file.
 *
 * @module
 */

import { BIN_PATH } from "./layout.ts";

/** Options of {@linkcode sysvInitScript}. */
export interface SysvScriptOptions {
  /** The amp executable; {@linkcode BIN_PATH} by default. */
  binary?: string;
  /** The pid file; `/var/run/amp.pid` by default (/var/run exists on old and new hosts). */
  pidFile?: string;
}

/**
 * The text of `/etc/init.d/amp`. Exit codes follow LSB: `status` gives 0
 * running, 1 dead with a pid file, 3 not running; a missing executable is 5.
 *
 * @example
 * ```ts
 * import { sysvInitScript } from "./sysv_script.ts";
 * sysvInitScript().includes("# Provides:          amp\n"); // true
 * ```
 */
export function sysvInitScript(options: SysvScriptOptions = {}): string {
  const binary = options.binary ?? BIN_PATH;
  const pidFile = options.pidFile ?? "/var/run/amp.pid";
  return `#!/bin/sh
### BEGIN INIT INFO
# Provides:          amp
# Required-Start:    $local_fs $remote_fs $syslog
# Required-Stop:     $local_fs $remote_fs $syslog
# Should-Start:      $network
# Should-Stop:       $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: amp endpoint protection daemon
# Description:       Scans files as they are written and executed, and
#                    quarantines or audits them according to the policy.
### END INIT INFO
#
# Written by amp install; amp disable removes its rc links, amp uninstall
# removes it.

PATH=/sbin:/usr/sbin:/bin:/usr/bin
NAME=amp
DAEMON=${binary}
PIDFILE=${pidFile}
# Seconds a stopping daemon gets before it is killed.
STOP_TIMEOUT=30

# The pid in the pid file, if that process is still amp (pids are reused; after
# an upgrade the running executable shows as "(deleted)").
running_pid() {
    [ -r "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null)
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
        "$DAEMON" | "$DAEMON (deleted)") echo "$pid"; return 0 ;;
    esac
    return 1
}

do_start() {
    if [ ! -x "$DAEMON" ]; then
        echo "$NAME: $DAEMON is missing or not executable" >&2
        return 5
    fi
    if pid=$(running_pid); then
        echo "$NAME is already running (pid $pid)"
        return 0
    fi
    echo "Starting $NAME"
    if command -v start-stop-daemon >/dev/null 2>&1; then
        start-stop-daemon --start --quiet --background --make-pidfile \\
            --pidfile "$PIDFILE" --exec "$DAEMON" -- daemon
    else
        "$DAEMON" daemon </dev/null >/dev/null 2>&1 &
        echo $! >"$PIDFILE"
    fi
}

do_stop() {
    if ! pid=$(running_pid); then
        echo "$NAME is not running"
        rm -f "$PIDFILE"
        return 0
    fi
    echo "Stopping $NAME"
    if command -v start-stop-daemon >/dev/null 2>&1; then
        start-stop-daemon --stop --quiet --retry "TERM/$STOP_TIMEOUT/KILL/5" --pidfile "$PIDFILE"
    else
        kill -TERM "$pid" 2>/dev/null
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$STOP_TIMEOUT" ]; do
            sleep 1
            waited=$((waited + 1))
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$PIDFILE"
    return 0
}

do_reload() {
    if ! pid=$(running_pid); then
        echo "$NAME is not running" >&2
        return 7
    fi
    echo "Reloading $NAME (policy, signatures, log level)"
    kill -HUP "$pid"
}

do_status() {
    if pid=$(running_pid); then
        echo "$NAME is running (pid $pid)"
        return 0
    fi
    if [ -e "$PIDFILE" ]; then
        echo "$NAME is not running, but $PIDFILE exists"
        return 1
    fi
    echo "$NAME is not running"
    return 3
}

case "$1" in
    start) do_start ;;
    stop) do_stop ;;
    restart | force-reload) do_stop && do_start ;;
    reload) do_reload ;;
    status) do_status ;;
    *)
        echo "Usage: $0 {start|stop|restart|reload|force-reload|status}" >&2
        exit 2
        ;;
esac
`;
}
