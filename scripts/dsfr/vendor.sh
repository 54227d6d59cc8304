#!/usr/bin/env bash
# Brings the parts of the Système de design de l'État (npm @gouvfr/dsfr,
# pinned in package.json) that the site and the app use into
# templates/static/dsfr: one stylesheet, the Marianne fonts (woff2) and the
# icons it names. Served from the site itself, never from a CDN.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund --silent 2>/dev/null || npm install --ignore-scripts --no-audit --no-fund --silent
node vendor.mjs
