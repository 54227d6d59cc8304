// Regenerates the commune referential of decompte from the npm package
// @etalab/decoupage-administratif (MIT licence; data from INSEE's Code officiel
// géographique). Run it with `scripts/referential/generate.sh`.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, "../../data");
const pkgDir = path.dirname(require.resolve("@etalab/decoupage-administratif/package.json"));
const version = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;

// A CSV field is quoted only when it needs to be, with inner quotes doubled.
const field = (value) => {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

const communes = JSON.parse(readFileSync(path.join(pkgDir, "data/communes.json"), "utf8"))
  // Only current communes: communes déléguées, associées and the arrondissements
  // municipaux of Paris, Lyon and Marseille are not reporting units.
  .filter((c) => c.type === "commune-actuelle")
  .sort((a, b) => a.code.localeCompare(b.code));
const rows = communes.map((c) => [c.code, c.nom, c.departement, c.population ?? 0].map(field).join(","));
writeFileSync(path.join(out, "communes.csv"), ["code,nom,departement,population", ...rows].join("\n") + "\n");

const departements = JSON.parse(readFileSync(path.join(pkgDir, "data/departements.json"), "utf8"))
  .sort((a, b) => a.code.localeCompare(b.code));
writeFileSync(
  path.join(out, "departements.csv"),
  ["code,nom", ...departements.map((d) => [d.code, d.nom].map(field).join(","))].join("\n") + "\n",
);

writeFileSync(path.join(out, "VERSION"), `@etalab/decoupage-administratif ${version}\n`);
console.log(`${communes.length} communes, ${departements.length} départements (package ${version})`);
