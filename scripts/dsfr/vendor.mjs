// Writes templates/static/dsfr/: dsfr.min.css (the core and the components
// decompte uses, concatenated, each url() rewritten to a file copied next
// to it), fonts/ (woff2 only: every browser that runs the DSFR reads it),
// icons/, VERSION, and files.rs (the list the templates crate reads).
import { readFileSync, writeFileSync, mkdirSync, rmSync, copyFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { PurgeCSS } from "purgecss";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, "../../templates/static/dsfr");
const pkg = path.dirname(require.resolve("@gouvfr/dsfr/package.json"));
const version = JSON.parse(readFileSync(path.join(pkg, "package.json"), "utf8")).version;
const dist = path.join(pkg, "dist");
const repository = path.resolve(here, "../..");

// Only the rules whose classes the pages can use: every class written in a
// template, in the app's script or in HTML written in Rust. The rest (the
// grid, utilities, the dark theme, variants no page uses) would make every
// first visit wait for a stylesheet ten times larger, and every page lay
// out against it.
const content = ["templates/**/*.html", "templates/static/*.js", "publish/src/**/*.rs",
  "app/src/**/*.rs", "cli/src/**/*.rs"].map((glob) => path.join(repository, glob));
async function used(text) {
  const [result] = await new PurgeCSS().purge({
    content,
    css: [{ raw: text }],
    // The theme and the variables every component reads.
    safelist: { standard: [/^:root$/, /^html$/, /^body$/], greedy: [/data-fr-scheme/] },
  });
  return result.css;
}

// The core, then only the components the pages use.
const parts = [
  "core/core.main.min.css",
  ...["logo", "header", "footer", "skiplink", "breadcrumb", "link", "button", "table", "card",
    "tile", "tag", "badge", "callout", "alert", "notice", "form", "input", "select",
    "checkbox"].map((c) => `component/${c}/${c}.main.min.css`),
];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const copied = new Set();
let css = `/* DSFR ${version} (@gouvfr/dsfr, MIT; Marianne: reserved to State services) — ${parts.length} parts */\n`;
for (const part of parts) {
  const file = path.join(dist, part);
  let text = readFileSync(file, "utf8").replace(/\/\*# sourceMappingURL=.*?\*\//g, "");
  text = await used(text);
  // Fonts: woff2 only.
  text = text.replace(/,\s*url\([^)]*\.woff\)\s*format\("woff"\)/g, "");
  // A font that arrives late is not swapped in (the text would move under
  // the reader: a layout shift); the public site's pages preload the two
  // they use, so that a first visit gets them in time on most connections,
  // and every later page has them from the cache.
  text = text.replace(/font-display:swap/g, "font-display:optional");
  text = text.replace(/url\(([^)]+)\)/g, (whole, target) => {
    const clean = target.replace(/^["']|["']$/g, "");
    if (clean.startsWith("data:") || clean.startsWith("#")) return whole;
    const source = path.resolve(path.dirname(file), clean);
    const relative = path.relative(dist, source).split(path.sep).join("/");
    if (!copied.has(relative)) {
      mkdirSync(path.join(out, path.dirname(relative)), { recursive: true });
      copyFileSync(source, path.join(out, relative));
      copied.add(relative);
    }
    return `url(${relative})`;
  });
  css += text + "\n";
}
writeFileSync(path.join(out, "dsfr.min.css"), css);
writeFileSync(path.join(out, "VERSION"), `@gouvfr/dsfr ${version}\n`);
writeFileSync(path.join(out, "README.md"), [
  `# Système de design de l'État (DSFR) ${version}`,
  "",
  "Written by `scripts/dsfr/vendor.sh` from the npm package `@gouvfr/dsfr` (pinned in",
  "`scripts/dsfr/package.json`); do not edit by hand. Licence: Etalab 2.0, with a restricted",
  "use: the State's brand (the « République française » block) and the Marianne typeface",
  "are reserved to State services. A deployment that is not one runs with",
  "`--theme neutre` (`DECOMPTE_THEME=neutre`): the same layout, without either.",
  "",
].join("\n"));
const files = ["dsfr.min.css", ...[...copied].sort()];
const rust = [
  "// Written by scripts/dsfr/vendor.sh: the DSFR files the site and the app serve.",
  `pub const DSFR_VERSION: &str = "${version}";`,
  "/// The files, by path under the DSFR's folder.",
  "pub const DSFR_NAMES: &[&str] = &[",
  ...files.map((f) => `    "${f}",`),
  "];",
  "/// The bytes of one of them: compiled in, or read from the Lambda functions'",
  "/// data layer (decompte-bundle).",
  "pub fn dsfr_file(name: &str) -> Option<&'static [u8]> {",
  "    Some(match name {",
  ...files.map((f) => `        "${f}" => decompte_bundle::file!("templates/static/dsfr/${f}"),`),
  "        _ => return None,",
  "    })",
  "}",
  "",
].join("\n");
writeFileSync(path.join(out, "files.rs"), rust);
console.log(`DSFR ${version}: ${files.length} files, stylesheet ${css.length} bytes`);
