#!/usr/bin/env bash
# Install the system Chromium that the viewer's browser test (tests/test_viewer_browser.py) drives headless.
# Idempotent: does nothing when a chromium binary is already on PATH. Debian/Ubuntu (apt) only; needs root
# or sudo. The test skips with a reason when no chromium is installed, so this script is optional locally.
set -euo pipefail

for bin in chromium chromium-browser google-chrome; do
    if command -v "$bin" >/dev/null 2>&1; then
        echo "install_chromium: $(command -v "$bin") already present ($("$bin" --version 2>/dev/null || echo 'version unknown'))"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: apt-get not found; install Chromium with your package manager" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_chromium: must run as root (or with sudo available) to apt-get install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian names the package `chromium`; Ubuntu's `chromium-browser` is a snap shim, so prefer `chromium`.
$SUDO apt-get install -y -qq --no-install-recommends chromium
echo "install_chromium: installed $(chromium --version)"
