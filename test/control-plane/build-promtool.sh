#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and unit tester) from the Prometheus Go module into
# .cache/promtool/<version>/bin/promtool, for test/chart/alerts.test.ts (`promtool test rules` on the chart's alerts).
# Rebuilds only when the version or the Go version change. Idempotent, non-interactive.
# Env: PROMTOOL_BUILD_P (go build -p, default 2), PROMTOOL_FORCE_REBUILD=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# Go module version of Prometheus v3.x (module versions are v0.<major><minor>.<patch>: v0.316.0 is Prometheus 3.16.0).
PROMETHEUS_MODULE_VERSION=v0.316.0

GO="$(command -v go || true)"
[ -n "$GO" ] || { [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go; }
if [ -z "$GO" ]; then
  echo "promtool: Go is not installed; cannot build promtool (needs Go >= 1.26)" >&2
  exit 1
fi
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

out="$root/.cache/promtool/$PROMETHEUS_MODULE_VERSION"
bin="$out/bin"
stamp="$({ "$GO" version; echo "$PROMETHEUS_MODULE_VERSION"; } | sha256sum | cut -d' ' -f1)"
if [ "${PROMTOOL_FORCE_REBUILD:-}" != 1 ] && [ -x "$bin/promtool" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "promtool: up to date in ${bin#"$root"/} (prometheus module $PROMETHEUS_MODULE_VERSION)"
  exit 0
fi

mkdir -p "$bin"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "promtool: building github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION with $("$GO" version | cut -d' ' -f3)" >&2
start=$(date +%s)
# `go install module@version` builds in module mode with the module's own go.mod and go.sum (checked by the sumdb).
GOBIN="$tmp" "$GO" install -p "${PROMTOOL_BUILD_P:-2}" -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
mv -f "$tmp/promtool" "$bin/promtool"
echo "$stamp" > "$out/.stamp"
echo "promtool: built in $(( $(date +%s) - start ))s -> ${bin#"$root"/}/promtool" >&2
"$bin/promtool" --version >/dev/null
