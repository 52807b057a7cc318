#!/usr/bin/env bash
# Builds the worker image (batch_image/Dockerfile) on this machine: `make image`.
#
#   scripts/build_image.sh [REQUIREMENTS_FILE]
#
# With Docker (`docker info` succeeds) it runs `docker build`. Without a daemon it uses buildah
# (vfs storage, chroot isolation: no daemon, no overlay mounts, no user namespaces), installing
# Debian's buildah when it is missing and we are root. The base image is the build argument
# BASE_IMAGE; when the default public base cannot be pulled (no registry but PyPI and Debian
# here), an equivalent base is made from Debian's packages (scripts/debian_base.sh).
#
# Environment (all optional):
#   IMAGE               tag of the result (default localhost/geobatch-worker:latest)
#   BASE_IMAGE          base image (default the public python:$PYTHON_VERSION-slim from ECR Public)
#   PYTHON_VERSION      default 3.11
#   GEOBATCH_BUILDER    docker | buildah (default: docker if its daemon answers, else buildah)
#   GEOBATCH_DEBIAN_BASE=1   skip the pull and use the Debian-built base
#   REQUIREMENTS_PYTHON the interpreter that reads the worker's requirements (default .venv/bin/python)
#   CONTAINERS_ROOT     buildah's storage (default /var/lib/containers/storage): the base and the
#                       cached layers live there between runs
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REQUIREMENTS_FILE="${1:-}"
PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
PUBLIC_BASE="public.ecr.aws/docker/library/python:${PYTHON_VERSION}-slim"
BASE_IMAGE="${BASE_IMAGE:-}"
IMAGE="${IMAGE:-localhost/geobatch-worker:latest}"
CONTAINERS_ROOT="${CONTAINERS_ROOT:-/var/lib/containers/storage}"
export CONTAINERS_ROOT
# The pull only starts once the registry answered; a registry that answers but stalls is cut off here.
PULL_TIMEOUT="${PULL_TIMEOUT:-900}"

log() { echo "build_image: $*" >&2; }

# The worker's requirements and their closure, from batch_image/pyproject.toml with constraints.txt's
# versions. The closure is read from installed metadata: the project's virtualenv (`make venv`)
# has exactly constraints.txt's tree, as the synthesis that writes CodeBuild's buildspec does.
REQUIREMENTS_PYTHON="${REQUIREMENTS_PYTHON:-$ROOT/.venv/bin/python}"
if [ ! -x "$REQUIREMENTS_PYTHON" ]; then
  log "error: $REQUIREMENTS_PYTHON is missing: run \`make venv\` first (or set REQUIREMENTS_PYTHON)"
  exit 1
fi
WORKER_REQUIREMENTS="$("$REQUIREMENTS_PYTHON" "$ROOT/stacks/requirements.py" worker)"

# A context laid out like the repository, as the Dockerfile (and CodeBuild's buildspec) expect:
# only the four inputs, so neither docker nor buildah walks .venv or node_modules.
make_context() {
  local ctx="$1"
  mkdir -p "$ctx/batch_image" "$ctx/lambdas" "$ctx/sdk"
  cp -R "$ROOT/batch_image/." "$ctx/batch_image/"
  cp -R "$ROOT/lambdas/geobatch_core" "$ctx/lambdas/geobatch_core"
  cp -R "$ROOT/sdk/geobatch" "$ctx/sdk/geobatch"
  find "$ctx" \( -name __pycache__ -o -name '*.pyc' -o -name '*.egg-info' -o -name build \) -prune -exec rm -rf {} +
  if [ -n "$REQUIREMENTS_FILE" ]; then
    cp "$REQUIREMENTS_FILE" "$ctx/requirements.txt"
  else
    : >"$ctx/requirements.txt"
  fi
}

docker_answers() {
  command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1
}

ensure_buildah() {
  command -v buildah >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's buildah (once)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
  else
    log "error: neither a Docker daemon nor buildah; install buildah (apt-get install buildah) as root"
    exit 1
  fi
}

bah() { buildah --root "$CONTAINERS_ROOT" --storage-driver vfs "$@"; }

have_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

# Does the registry of image $1 answer at all? (any HTTP status counts, 401 included)
registry_answers() {
  local registry="${1%%/*}"
  curl -sS -m 10 -o /dev/null "https://$registry/v2/" 2>/dev/null
}

# Prints the base image to build on, pulling or making it first.
choose_base() {
  if [ -n "$BASE_IMAGE" ]; then  # asked for: it must be there or pullable, never substituted
    have_image "$BASE_IMAGE" || timeout "$PULL_TIMEOUT" buildah --root "$CONTAINERS_ROOT" \
      --storage-driver vfs pull --quiet "$BASE_IMAGE" >/dev/null
    echo "$BASE_IMAGE"
    return
  fi
  if [ "${GEOBATCH_DEBIAN_BASE:-0}" != 1 ]; then
    if have_image "$PUBLIC_BASE"; then
      echo "$PUBLIC_BASE"
      return
    fi
    if registry_answers "$PUBLIC_BASE" \
      && timeout "$PULL_TIMEOUT" buildah --root "$CONTAINERS_ROOT" --storage-driver vfs pull --quiet \
        "$PUBLIC_BASE" >/dev/null; then
      echo "$PUBLIC_BASE"
      return
    fi
    log "cannot pull $PUBLIC_BASE: building an equivalent base from Debian's packages"
  fi
  PYTHON_VERSION="$PYTHON_VERSION" bash "$ROOT/scripts/debian_base.sh"
}

build_with_docker() {
  local ctx="$1"
  local args=(--build-arg "PYTHON_VERSION=$PYTHON_VERSION" --build-arg REQUIREMENTS=requirements.txt
    --build-arg "WORKER_REQUIREMENTS=$WORKER_REQUIREMENTS")
  [ -z "$BASE_IMAGE" ] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  docker build -f "$ctx/batch_image/Dockerfile" "${args[@]}" -t "$IMAGE" "$ctx"
}

build_with_buildah() {
  local ctx="$1" base
  ensure_buildah
  base="$(choose_base)"
  log "base image: $base"
  local args=(--build-arg "PYTHON_VERSION=$PYTHON_VERSION" --build-arg "BASE_IMAGE=$base"
    --build-arg REQUIREMENTS=requirements.txt --build-arg "WORKER_REQUIREMENTS=$WORKER_REQUIREMENTS")
  # Behind a TLS-inspecting proxy pip must trust this machine's CAs: its bundle is mounted for the
  # build only (it never ends up in the image).
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    args+=(--volume /etc/ssl/certs/ca-certificates.crt:/run/geobatch-build-ca.crt:ro
      --build-arg PIP_CA_BUNDLE=/run/geobatch-build-ca.crt)
  fi
  # buildah's layer cache still spends minutes on vfs copies when nothing changed, so an image
  # whose inputs (context, arguments, base) are those of this build is kept as it is.
  local inputs
  inputs="$({ tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C "$ctx" .
    printf '%s\n' "${args[@]}" "$(bah inspect --type image --format '{{.FromImageID}}' "$base")"; } \
    | sha256sum | cut -c1-64)"
  if [ "$(bah inspect --type image --format '{{index .OCIv1.Config.Labels "geobatch.inputs"}}' "$IMAGE" \
    2>/dev/null)" = "$inputs" ]; then
    log "$IMAGE is up to date (same inputs $inputs)"
    return
  fi
  bah bud --isolation chroot --layers --pull=never --network host -f "$ctx/batch_image/Dockerfile" \
    "${args[@]}" --label "geobatch.inputs=$inputs" -t "$IMAGE" "$ctx"
}

CTX=""
trap '[ -z "$CTX" ] || rm -rf "$CTX"' EXIT

main() {
  local started
  started=$(date +%s)
  CTX="$(mktemp -d)"
  make_context "$CTX"
  local builder="${GEOBATCH_BUILDER:-}"
  if [ -z "$builder" ]; then
    if docker_answers; then builder=docker; else builder=buildah; fi
  fi
  log "building $IMAGE with $builder (requirements: ${REQUIREMENTS_FILE:-none})"
  case "$builder" in
    docker) build_with_docker "$CTX" ;;
    buildah) build_with_buildah "$CTX" ;;
    *) log "error: GEOBATCH_BUILDER must be docker or buildah, not $builder"; exit 2 ;;
  esac
  log "built $IMAGE in $(($(date +%s) - started)) s"
}

main
