# Shell functions shared by every amp package scriptlet, deb and rpm alike:
# packaging/build.ts pastes this file into each scriptlet. The scriptlets only
# call the packaged executable; the init files and the cron file are written
# by `amp install` from its own templates, so there is one copy of them.
#
# amp_root is dpkg's DPKG_ROOT: empty in normal operation, the target root when
# dpkg installs elsewhere with --force-script-chrootless. rpm always runs
# scriptlets chrooted into its --root, so under rpm it is empty.
amp_root=${DPKG_ROOT:-}
amp_bin="$amp_root/opt/amp/bin/amp"

# Whether amp install may start the service: not when told not to
# (AMP_NO_START=1), not into another root, not inside a chroot or image build
# (/ is not pid 1's root: the test of Debian's ischroot, which RHEL lacks), and
# not without an init daemon as pid 1 (a container build).
amp_can_start() {
  case "${AMP_NO_START:-0}" in 0 | "") ;; *) return 1 ;; esac
  [ -z "$amp_root" ] || return 1
  [ "$(stat -Lc %d:%i / 2>/dev/null)" = "$(stat -Lc %d:%i /proc/1/root/ 2>/dev/null)" ] || return 1
  case "$(cat /proc/1/comm 2>/dev/null)" in systemd | init | upstart) return 0 ;; esac
  return 1
}

# Install or upgrade in place: directories, config, policy, init files, cron
# file, service start. The binary is already where amp install would copy it.
amp_install() {
  set -- --binary "$amp_bin"
  [ -z "$amp_root" ] || set -- "$@" --root "$amp_root"
  amp_can_start || set -- "$@" --no-start
  "$amp_bin" install "$@"
  if [ -d "$amp_root/usr/src/ampavflt-@VERSION@" ]; then
    echo "amp: the ampavflt kernel module sources are in /usr/src/ampavflt-@VERSION@" \
      "(dkms install ampavflt/@VERSION@, or amp kmod build)"
  fi
}

# Before the files go: stop and disable the service, then remove what amp
# install made (quarantine and databases stay). A failure is reported but does
# not block the removal: an unremovable package helps nobody.
amp_remove() {
  if [ ! -x "$amp_bin" ]; then
    echo "amp: $amp_bin is missing: cannot run amp disable and amp uninstall" >&2
    return 0
  fi
  set --
  [ -z "$amp_root" ] || set -- --root "$amp_root"
  "$amp_bin" disable "$@" || echo "amp: amp disable failed (status $?); removing anyway" >&2
  "$amp_bin" uninstall "$@" || echo "amp: amp uninstall failed (status $?); removing anyway" >&2
}

# Purge (dpkg only), after the package's files are gone, so without amp:
# configuration, databases, quarantine and logs.
amp_purge() {
  rm -rf "$amp_root/etc/amp" "$amp_root/var/lib/amp" "$amp_root/var/log/amp" "$amp_root/run/amp"
}
