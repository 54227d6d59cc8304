#!/usr/bin/env python3
"""Writes a year of declarations of every commune of data/communes.csv
(34,969 x 365, about 12.8 million lines) in the format `decompte import`
reads (donnees/deces.csv: one line a commune and a day, in date order), as a
crisis fills the store: what the benchmarks of import, publication and
`store copy` at national scale read. Counts are random (seeded), rarer in
small communes. With --long, the same figures in the form decompte published
before and still imports: a line per commune, day and setting (`lieu,deces`).
With --departements 56,29, only those départements' communes.
Usage: scripts/bench/national_csv.py OUT.csv [DAYS] [--long] [--departements CODES]"""
import csv
import datetime
import random
import sys
from pathlib import Path

def main() -> None:
    args = sys.argv[1:]
    long = "--long" in args
    departements = None
    if "--departements" in args:
        at = args.index("--departements")
        departements = set(args[at + 1].split(","))
        del args[at : at + 2]
    args = [a for a in args if a != "--long"]
    out = Path(args[0])
    days = int(args[1]) if len(args) > 1 else 365
    random.seed(56)
    root = Path(__file__).resolve().parents[2]
    with open(root / "data" / "communes.csv", newline="", encoding="utf-8") as f:
        communes = [
            c for c in csv.DictReader(f) if departements is None or c["departement"] in departements
        ]
    start = datetime.date(2020, 3, 1)
    # The likelihood of a death in each setting, a day, grows with the population.
    rarity = [0.9, 0.95, 0.99, 0.9, 0.97]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        settings = ["hopital", "ehpad", "esms", "domicile", "autre"]
        if long:
            writer.writerow(["date", "code_commune", "nom_commune", "lieu", "deces"])
        else:
            writer.writerow(["date", "code_commune", "nom_commune", *settings, "total"])
        for d in range(days):
            day = (start + datetime.timedelta(days=d)).isoformat()
            for commune in communes:
                p = min(0.6, int(commune["population"] or 0) / 20000)
                counts = [1 if random.random() < p * (1 - r) * 10 else 0 for r in rarity]
                if long:
                    for setting, count in zip(settings, counts):
                        writer.writerow([day, commune["code"], commune["nom"], setting, count])
                else:
                    writer.writerow([day, commune["code"], commune["nom"], *counts, sum(counts)])

if __name__ == "__main__":
    main()
