#!/usr/bin/env bash
# The web monitor's browser test needs Debian's Chromium (/usr/bin/chromium). Install it once.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser test (once)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "warning: /usr/bin/chromium is missing and cannot be installed here (needs root and apt);" \
       "the browser test will be skipped" >&2
fi
