#!/usr/bin/env python3
"""Writes a year of declarations of every commune of data/communes.csv
(34,969 x 365, about 12.8 million lines) in the format `decompte import`
reads (donnees/deces.csv: one line a commune and a day, in date order), as a
crisis fills the store: what the benchmarks of import, publication and
`store copy` at national scale read. Counts are random (seeded), rarer in
small communes. Usage: scripts/bench/national_csv.py OUT.csv [DAYS]"""
import csv
import datetime
import random
import sys
from pathlib import Path

def main() -> None:
    out = Path(sys.argv[1])
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 365
    random.seed(56)
    root = Path(__file__).resolve().parents[2]
    with open(root / "data" / "communes.csv", newline="", encoding="utf-8") as f:
        communes = list(csv.DictReader(f))
    start = datetime.date(2020, 3, 1)
    # The likelihood of a death in each setting, a day, grows with the population.
    rarity = [0.9, 0.95, 0.99, 0.9, 0.97]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["date", "code_commune", "nom_commune", "hopital", "ehpad", "esms", "domicile", "autre", "total"])
        for d in range(days):
            day = (start + datetime.timedelta(days=d)).isoformat()
            for commune in communes:
                p = min(0.6, int(commune["population"] or 0) / 20000)
                counts = [1 if random.random() < p * (1 - r) * 10 else 0 for r in rarity]
                writer.writerow([day, commune["code"], commune["nom"], *counts, sum(counts)])

if __name__ == "__main__":
    main()
