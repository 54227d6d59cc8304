#!/usr/bin/env bash
# Regenerates data/communes.csv and data/departements.csv from the pinned npm package.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent
node generate.mjs
