#!/usr/bin/env bash
# Builds the test control plane into .cache/control-plane/<k8s-version>/bin/:
#   kcp      etcd + kube-apiserver + kube-controller-manager + kubectl (multi-call)
#   kubectl  symlink to kcp (the machine's kubectl may be far from the control plane's version)
#   helm     helm v3 with its Kubernetes version set to the control plane's
# Rebuilds only when versions.env, the Go sources/go.mod/go.sum or the Go version change.
# Idempotent, non-interactive. Env: KCP_BUILD_P (go build -p, default 2), KCP_FORCE_REBUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

GO="$(command -v go || true)"
[ -n "$GO" ] || { [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go; }
if [ -z "$GO" ]; then
  echo "control-plane: Go is not installed; cannot build the test control plane (needs Go >= $(awk '$1=="go"{print $2}' "$here/go.mod"))" >&2
  exit 1
fi
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly -buildvcs=false"

out="$root/.cache/control-plane/$K8S_VERSION"
bin="$out/bin"
stamp_file="$out/.stamp"
stamp="$(
  cd "$here"
  { "$GO" version; cat versions.env go.mod go.sum helm/go.mod helm/go.sum patch-kubernetes.sh; cat ./*.go; } | sha256sum | cut -d' ' -f1
)"
if [ "${KCP_FORCE_REBUILD:-}" != 1 ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] \
   && [ -x "$bin/kcp" ] && [ -x "$bin/helm" ] && [ -e "$bin/kubectl" ]; then
  echo "control-plane: up to date in ${bin#"$root"/} (kubernetes $K8S_VERSION, helm $HELM_VERSION)"
  exit 0
fi

p="${KCP_BUILD_P:-2}"
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
k8s_ldflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata="
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
done

mkdir -p "$bin"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "control-plane: building kubernetes $K8S_VERSION (etcd, kube-apiserver, kube-controller-manager, kubectl) and helm $HELM_VERSION with $("$GO" version | cut -d' ' -f3), -p $p" >&2
start=$(date +%s)
# One source patch (see patch-kubernetes.sh): EndpointSlices may hold the local kubelet's 127.0.X.Y pod IPs.
# The patched module view lives in the cache (stable path, so Go's build cache stays warm across rebuilds).
modfile="$(GO="$GO" bash "$here/patch-kubernetes.sh" "$here" "$out/src")"
(cd "$here" && "$GO" build -p "$p" -trimpath -modfile "$modfile" -ldflags "-s -w$k8s_ldflags" -o "$tmp/kcp" .)
t_kcp=$(( $(date +%s) - start ))
(cd "$here/helm" && "$GO" build -p "$p" -trimpath -ldflags "-s -w $helm_ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)
t_all=$(( $(date +%s) - start ))

mv -f "$tmp/kcp" "$bin/kcp"
mv -f "$tmp/helm" "$bin/helm"
ln -sfn kcp "$bin/kubectl"
echo "$stamp" > "$stamp_file"

size() { du -h "$1" | cut -f1; }
echo "control-plane: built in ${t_all}s (kcp ${t_kcp}s, helm $((t_all - t_kcp))s): kcp $(size "$bin/kcp"), helm $(size "$bin/helm") -> ${bin#"$root"/}"
"$bin/kcp" version >/dev/null
"$bin/helm" version --short >/dev/null
