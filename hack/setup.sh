#!/usr/bin/env bash
# One-shot set-up on a fresh machine; idempotent and fast when everything is present.
#  - Debian packages the tests use (prometheus/promtool, lua, chromium for the browser tests) via
#    apt-get, only if missing;
#  - the Python virtualenv .venv with the project and its dev tools (pinned by hack/constraints.txt);
#  - the control plane, helm and Kueue binaries, built from Go modules (hack/controlplane/build.sh).
# Usage: hack/setup.sh [MODULE ...]   (modules of build.sh; default: all of them, helm and kueue too;
# `make demo` asks for kubernetes etcd kwok only: helm and kueue are for the tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
# The browser tests drive Debian's Chromium with Playwright (never `playwright install`).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >&2
  # The prometheus package starts a system service on :9090; the tests run their own. Stop
  # that service (and only it: through its own init system), never other prometheus processes.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $sudo_cmd systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    $sudo_cmd service prometheus stop >/dev/null 2>&1 || true
  fi
fi

stamp_files=(pyproject.toml)
[ -f hack/constraints.txt ] && stamp_files+=(hack/constraints.txt)
stamp=.venv/.installed-$(cat "${stamp_files[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >&2
  constraints=()
  [ -f hack/constraints.txt ] && constraints=(-c hack/constraints.txt)
  .venv/bin/pip install -q "${constraints[@]}" -e ".[dev]" >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi

bin_dir=$(hack/controlplane/build.sh "$@")
echo "$bin_dir"
