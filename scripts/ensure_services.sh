#!/usr/bin/env bash
# Make sure the external programs the tests drive are installed:
#   * Debian's Chromium (headless) for tests/test_browser.py and the reports' browser checks;
#   * PostgreSQL server binaries (Debian's `postgresql`, version 15 on bookworm) for
#     tests/test_database.py, which initialises a throw-away cluster in a temporary directory;
#   * Java 17 (Debian's `openjdk-17-jre-headless`) for pyspark in tests/test_spark.py.
#
# Usage (from the Makefile's test target, before pytest):
#     bash scripts/ensure_services.sh            # both
#     bash scripts/ensure_services.sh postgres   # or just one: chromium | postgres | java
# Idempotent: installs nothing when the binaries are present. Installing needs root (or
# passwordless sudo) and network access to the Debian mirrors; when neither is available it prints
# one line per missing service and exits 0, so the rest of the suite still runs (the tests that
# need the service then fail with a message naming this script).
set -euo pipefail

want="${1:-all}"

CHROMIUM="${CUSTVALUE_CHROMIUM:-/usr/bin/chromium}"
have_chromium() {
    [ -x "$CHROMIUM" ]
}
have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1
}
have_java() {
    command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -Eq 'version "(1[7-9]|2[0-9])'
}

missing=()
if [[ "$want" == all || "$want" == chromium ]] && ! have_chromium; then
    missing+=(chromium fonts-dejavu-core)
fi
if [[ "$want" == all || "$want" == postgres ]] && ! have_postgres; then
    missing+=(postgresql)
fi
if [[ "$want" == all || "$want" == java ]] && ! have_java; then
    missing+=(openjdk-17-jre-headless)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_services: ${missing[*]} not found and apt-get is not available; install them by hand" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ensure_services: ${missing[*]} not found; run 'sudo apt-get update && sudo apt-get install -y ${missing[*]}'" >&2
        exit 0
    fi
fi

echo "ensure_services: installing Debian's ${missing[*]} (needed by the browser, database and Spark tests)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The postgresql package would start a system cluster on port 5432; the tests never use it.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "ensure_services: done (${missing[*]})" >&2
