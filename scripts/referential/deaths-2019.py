#!/usr/bin/env python3
"""Writes data/deces-2019.csv — deaths of all causes in 2019 by département,
what the form's plausibility warnings scale by population — from INSEE's
daily deaths by département (cumulative per day; `Total_deces_2019` of the
year's last day). The INSEE files the project holds are in ../shared/data:

    python3 scripts/referential/deaths-2019.py ../shared/data/insee-deces-quotidiens-dep*.csv
"""
import csv
import re
import sys
from pathlib import Path

rows = {}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as file:
        lines = list(csv.DictReader(file, delimiter=";"))
    last = lines[-1]
    departement = re.sub(r"^Dept_", "", last["Zone"])
    rows[departement] = int(last["Total_deces_2019"])

out = Path(__file__).resolve().parents[2] / "data" / "deces-2019.csv"
with open(out, "w", encoding="utf-8", newline="") as file:
    file.write("departement,deces_2019\n")
    for departement, deaths in sorted(rows.items()):
        file.write(f"{departement},{deaths}\n")
print(f"{out}: {len(rows)} département(s)")
