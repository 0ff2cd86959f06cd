#!/usr/bin/env bash
# promtool checks of the rules, and of a metrics scrape when given one:
#   dashboards/check.sh [scrape.txt | http://127.0.0.1:9380/metrics]
set -euo pipefail
cd "$(dirname "$0")"
promtool check rules alerts.yml
(cd tests && promtool test rules alerts_test.yml)
if [ $# -gt 0 ]; then
  case "$1" in
    http*) curl -fsS "$1" | promtool check metrics ;;
    *) promtool check metrics < "$1" ;;
  esac
fi
