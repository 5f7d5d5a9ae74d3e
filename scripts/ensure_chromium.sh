#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is present for tests/test_browser.py; the one
# install script for the test programs is scripts/ensure_services.sh (idempotent, one line when it
# cannot install).
exec bash "$(dirname "$0")/ensure_services.sh" chromium
