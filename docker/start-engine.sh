#!/usr/bin/env bash
# Make a Docker engine and a base image available on a machine without them (root only).
# Prints `export DOCKER_HOST=...` for the engine it found or started. Exits 1, saying why,
# when it cannot. Nothing is pulled from a registry: the base image is built with debootstrap.
#   BASE_IMAGE  name of the base image to ensure (default dlgrader-base:bookworm)
#   ENGINE_DIR  where a started engine keeps its data (default /var/tmp/dlgrader-docker)
#   STORAGE_DRIVER  the engine's (default overlay2 where an overlay mounts under ENGINE_DIR, else vfs)
set -uo pipefail
BASE_IMAGE="${BASE_IMAGE:-dlgrader-base:bookworm}"
ENGINE_DIR="${ENGINE_DIR:-/var/tmp/dlgrader-docker}"
SOCK="$ENGINE_DIR/docker.sock"
say() { echo "start-engine: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "needs root to start an engine"; exit 1; }
# One at a time: two runs at once would start two engines or debootstrap into one rootfs.
mkdir -p "$(dirname "$ENGINE_DIR")"
exec 9>"$ENGINE_DIR.lock"
flock 9 || { say "could not lock $ENGINE_DIR.lock"; exit 1; }
overlay_mounts() {  # can an overlay be mounted with its upper layer under ENGINE_DIR?
  local d ok
  d="$(mktemp -d "$ENGINE_DIR.overlay-probe.XXXXXX")" || return 1
  mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
  mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" \
    2>/dev/null && umount "$d/merged"
  ok=$?
  rm -rf "$d"
  return $ok
}
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}") >&2 \
    || { say "could not install ${need[*]}"; exit 1; }
fi
if [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
  SOCK_URL="$DOCKER_HOST"
else
  SOCK_URL="unix://$SOCK"
  if ! DOCKER_HOST="$SOCK_URL" docker info >/dev/null 2>&1; then
    mkdir -p "$ENGINE_DIR/data"
    # overlay2 where the kernel and the filesystem under ENGINE_DIR allow it; vfs works
    # everywhere but copies the image's whole root filesystem for every container and step
    DRIVER="${STORAGE_DRIVER:-}"
    [ -n "$DRIVER" ] || { overlay_mounts && DRIVER=overlay2 || DRIVER=vfs; }
    for driver in "$DRIVER" vfs; do
      say "starting dockerd ($driver) on $SOCK"
      nohup dockerd --storage-driver="$driver" --iptables=false --bridge=none \
        --data-root "$ENGINE_DIR/data" --exec-root "$ENGINE_DIR/exec" \
        --pidfile "$ENGINE_DIR/dockerd.pid" --host "$SOCK_URL" \
        >"$ENGINE_DIR/dockerd.log" 2>&1 9>&- &  # 9: the lock stays ours
      pid=$!
      for _ in $(seq 60); do
        DOCKER_HOST="$SOCK_URL" docker info >/dev/null 2>&1 && break 2
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
      done
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
      say "dockerd ($driver) did not start: $(tail -3 "$ENGINE_DIR/dockerd.log")"
      [ "$driver" = vfs ] && exit 1
    done
  fi
fi
export DOCKER_HOST="$SOCK_URL"
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  ROOTFS="$ENGINE_DIR/rootfs"
  # whatever a failed debootstrap left mounted inside the rootfs goes before the folder does
  unmount_rootfs() { for m in proc sys dev/pts dev; do umount -l "$ROOTFS/$m" 2>/dev/null; done; }
  trap 'unmount_rootfs; rm -rf "$ROOTFS"' EXIT
  unmount_rootfs
  rm -rf "$ROOTFS"
  say "building $BASE_IMAGE with debootstrap"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,bubblewrap \
    bookworm "$ROOTFS" >"$ENGINE_DIR/debootstrap.log" 2>&1 || {
      say "debootstrap failed: $(tail -3 "$ENGINE_DIR/debootstrap.log")"; exit 1; }
  CA="$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile or "")' 2>/dev/null)"
  [ -n "$CA" ] && [ -f "$CA" ] && cp "$CA" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  unmount_rootfs
  tar -C "$ROOTFS" -c . | docker import - "$BASE_IMAGE" >/dev/null || { say "docker import failed"; exit 1; }
fi
echo "export DOCKER_HOST=$SOCK_URL"
