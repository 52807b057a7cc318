#!/usr/bin/env bash
# Makes a stand-in for python:3.11-slim from Debian bookworm's packages, for machines that reach
# Debian's archive but no container registry. Prints the image name (made once, then reused).
#
# Layout as python:slim where the Dockerfile relies on it: `python` and `python -m pip install`
# work as root on PATH. Debian's interpreter is "externally managed" (PEP 668), so they are those
# of a virtualenv in /opt/venv (PATH puts it first) instead of pip writing into /usr.
# The packages come from the Debian archive apt on this machine already uses (its sources, as
# `apt-get indextargets` reads them), so no mirror host is named here.
set -euo pipefail

SUITE=bookworm
PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
CONTAINERS_ROOT="${CONTAINERS_ROOT:-/var/lib/containers/storage}"
NAME="localhost/geobatch-base:${SUITE}-python${PYTHON_VERSION}"
PACKAGES="python${PYTHON_VERSION},python${PYTHON_VERSION}-venv,python3-venv,ca-certificates"

log() { echo "debian_base: $*" >&2; }
bah() { buildah --root "$CONTAINERS_ROOT" --storage-driver vfs "$@"; }

if bah inspect --type image "$NAME" >/dev/null 2>&1; then
  echo "$NAME"
  exit 0
fi
if [ "$PYTHON_VERSION" != 3.11 ]; then
  log "error: Debian $SUITE has Python 3.11 only; set BASE_IMAGE to a python:$PYTHON_VERSION image"
  exit 1
fi
if ! command -v mmdebstrap >/dev/null; then
  log "installing Debian's mmdebstrap (once)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi

# One "deb URI SUITE COMPONENT" line per Debian index apt is configured with for this suite.
debian_sources() {
  apt-get indextargets --format '$(ORIGIN) $(CREATED_BY) $(REPO_URI) $(RELEASE) $(COMPONENT)' \
    | awk -v suite="$SUITE" '$1 == "Debian" && $2 == "Packages" && $4 ~ ("^" suite "(-updates|-security)?$") \
      { print "deb " $3 " " $4 " " $5 }' | sort -u
}
mapfile -t SOURCES < <(debian_sources)
if [ "${#SOURCES[@]}" = 0 ]; then  # no package lists yet: apt has not read its sources
  apt-get update -qq
  mapfile -t SOURCES < <(debian_sources)
fi
if [ "${#SOURCES[@]}" = 0 ]; then
  log "error: apt on this machine has no Debian $SUITE source (see /etc/apt/sources.list*)"
  exit 1
fi
log "making $NAME from: ${SOURCES[*]}"

work="$(mktemp -d)"
container=""
cleanup() {
  [ -z "$container" ] || bah rm "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# minbase = Essential + Priority: required (useradd comes from passwd), as debian:bookworm-slim.
mmdebstrap --variant=minbase --include="$PACKAGES" \
  --customize-hook="chroot \"\$1\" python${PYTHON_VERSION} -m venv /opt/venv" \
  --customize-hook='chroot "$1" /opt/venv/bin/python -m pip --version' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$SUITE" "$work/rootfs.tar" "${SOURCES[@]}" >&2

container="$(bah from scratch)"
bah add "$container" "$work/rootfs.tar" / >/dev/null
bah config \
  --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --env VIRTUAL_ENV=/opt/venv \
  --cmd python3 \
  --label "org.opencontainers.image.description=Debian $SUITE + python$PYTHON_VERSION (geobatch base)" \
  "$container"
bah commit --rm --quiet "$container" "$NAME" >/dev/null
container=""
echo "$NAME"
