#!/usr/bin/env bash
# Makes a patched view of the k8s.io/kubernetes module for the test control plane and prints the path of a go.mod
# to build with (`go build -modfile=<it>`): the module's files are symlinked (no copy), the patched file is real,
# and the go.mod is ours plus `replace k8s.io/kubernetes => <patched view>`.
#
# The one patch: the local kubelet gives every Pod its own loopback address 127.0.1.N (so all replicas bind the
# same port without network namespaces). Pod status accepts loopback IPs, but the apiserver's ValidateEndpointIP
# (pkg/apis/core/validation) rejects 127.0.0.0/8 in EndpointSlices, so Services would never get endpoints.
# The patch allows 127.0.X.Y with X != 0 (the kubelet's pod range) and nothing else in that range.
# (`go build -overlay` cannot replace files inside GOMODCACHE, hence the symlinked view.)
set -euo pipefail
here="$1"      # test/control-plane (our module)
out_dir="$2"   # work dir for the patched view
GO="${GO:-go}"
module_dir="$(cd "$here" && "$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes)"
if [ -z "$module_dir" ] || [ ! -d "$module_dir" ]; then
  (cd "$here" && "$GO" mod download k8s.io/kubernetes)
  module_dir="$(cd "$here" && "$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes)"
fi
rel=pkg/apis/core/validation/validation.go
needle='	if ip.IsLoopback() {'
count="$(grep -cxF "$needle" "$module_dir/$rel" || true)"
if [ "$count" != 1 ]; then
  echo "patch-kubernetes.sh: expected exactly one '$needle' in $module_dir/$rel, found $count; update the patch for this Kubernetes version" >&2
  exit 1
fi
view="$out_dir/kubernetes"
rm -rf "$view"
mkdir -p "$out_dir"
cp -rs "$module_dir" "$view"
chmod -R u+w "$view"
rm -f "$view/$rel"
awk -v needle="$needle" '
  $0 == needle { print "\tif ip.IsLoopback() && !(ip.To4() != nil && ip.To4()[1] == 0 && ip.To4()[2] != 0) { // ha-signer test control plane: allow the local kubelet pod range 127.0.1.0-127.0.255.255"; next }
  { print }
' "$module_dir/$rel" > "$view/$rel"
grep -q 'ha-signer test control plane' "$view/$rel"
cp "$here/go.mod" "$out_dir/go.mod"
cp "$here/go.sum" "$out_dir/go.sum"
printf '\nreplace k8s.io/kubernetes => %s\n' "$view" >> "$out_dir/go.mod"
echo "$out_dir/go.mod"
