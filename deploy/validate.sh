#!/usr/bin/env bash
# Checks every artefact of deploy/ with the real tools (no Docker engine is
# needed or used):
#   - Kubernetes manifests: kubernetes-validate --strict for Kubernetes 1.37;
#   - compose.yaml: check-jsonschema against the compose specification
#     schema vendored in check-jsonschema (vendor.compose-spec);
#   - HAProxy configs: haproxy -c;
#   - systemd unit: systemd-analyze verify (where systemd-analyze exists);
#   - Prometheus config with the rules of dashboards/: promtool check config.
# kubernetes-validate and check-jsonschema are installed into a venv under
# target/ when missing. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/deploy-venv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
  echo "validate: installing kubernetes-validate and check-jsonschema into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r deploy/requirements.txt
fi

echo "== kubernetes-validate (Kubernetes 1.37, strict)"
"$venv/bin/kubernetes-validate" --version
"$venv/bin/kubernetes-validate" -k 1.37.0 --strict deploy/k8s/*.yaml 2>&1 | tee "$tmp/k8s.log"
# kubernetes-validate only warns about kinds it has no schema for. The
# Prometheus Operator's PodMonitor (a CRD) and kustomize's Kustomization are
# expected; any other kind (a typo in kind or apiVersion) is an error.
if grep "Couldn't find schema" "$tmp/k8s.log" | grep -v -e "kind PodMonitor " -e "kind Kustomization " ; then
  echo "validate: unexpected kind without a schema" >&2
  exit 1
fi
if grep -q -E "^(ERROR|CRITICAL)" "$tmp/k8s.log"; then
  exit 1
fi

echo "== check-jsonschema: deploy/compose.yaml against the compose specification"
"$venv/bin/check-jsonschema" --version
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

echo "== haproxy -c"
# sed reads to the end, so haproxy never gets SIGPIPE under pipefail (head -1 did, exit 141).
haproxy -v | sed -n 1p
haproxy -c -f deploy/haproxy/haproxy.cfg
# The compose variant names its gateways by Docker DNS, which does not
# resolve here: haproxy warns and still checks everything else.
haproxy -c -f deploy/compose/haproxy.cfg 2>&1 | grep -v "could not resolve address"

echo "== systemd-analyze verify deploy/systemd/lockgate.service"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify insists that ExecStart's binary exists: point it at a real one.
  bin=$PWD/target/release/lockgate
  [ -x "$bin" ] || bin=$PWD/target/debug/lockgate
  [ -x "$bin" ] || bin=$(command -v true)
  sed "s#/usr/local/bin/lockgate#$bin#g" deploy/systemd/lockgate.service > "$tmp/lockgate.service"
  systemd-analyze verify "$tmp/lockgate.service"
  echo "deploy/systemd/lockgate.service: ok"
  systemd-analyze security --offline=yes "$tmp/lockgate.service" 2>/dev/null | tail -1 || true
else
  echo "systemd-analyze not available: skipped"
fi

echo "== promtool check config deploy/compose/prometheus.yml (with dashboards/alerts.yml)"
# The same layout as in the container: rules/ next to the config.
mkdir -p "$tmp/prometheus/rules"
cp deploy/compose/prometheus.yml "$tmp/prometheus/prometheus.yml"
cp dashboards/alerts.yml "$tmp/prometheus/rules/lockgate.yml"
promtool check config "$tmp/prometheus/prometheus.yml"

echo "validate: all deploy artefacts passed"
