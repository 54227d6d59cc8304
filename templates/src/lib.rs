//! The minijinja templates and static assets of decompte, embedded at compile time.
//!
//! Architecture invariant: this crate holds text and the filters that format
//! numbers and dates the French way; it has no logic of its own and does no IO.
//! `site/` templates are rendered by `publish`, `app/` templates by `ingest-fn`.

use minijinja::{Environment, Value};

/// Colour-blind-safe palette (Okabe and Ito), one colour per setting in order,
/// shared by the charts, the site's cards and the app's.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#7A7A7A", "#E69F00", "#56B4E9", "#F0E442",
];

/// The colour of the setting at `index`.
pub fn setting_color(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// The stylesheet shared by the published site and the app.
pub const STYLESHEET: &str = include_str!("../static/style.css");
/// The form's offline script (progressive enhancement: the form works without it).
pub const OFFLINE_SCRIPT: &str = include_str!("../static/offline.js");
/// The script that announces the end of an idle session and keeps it on request.
pub const SESSION_SCRIPT: &str = include_str!("../static/session.js");
/// The service worker that keeps the form for a reload without network.
pub const SERVICE_WORKER: &str = include_str!("../static/sw.js");

pub mod rgaa;

mod dsfr {
    include!("../static/dsfr/files.rs");
}
/// The Système de design de l'État: its stylesheet (`dsfr.min.css`), fonts
/// and icons by path, as `scripts/dsfr/vendor.sh` brought them in.
pub use dsfr::{dsfr_file, DSFR_NAMES, DSFR_VERSION};

const TEMPLATES: &[(&str, &str)] = &[
    ("site/404.html", include_str!("../site/404.html")),
    ("site/base.html", include_str!("../site/base.html")),
    ("site/index.html", include_str!("../site/index.html")),
    ("site/commune.html", include_str!("../site/commune.html")),
    ("site/lieu.html", include_str!("../site/lieu.html")),
    (
        "site/methodologie.html",
        include_str!("../site/methodologie.html"),
    ),
    ("site/macros.html", include_str!("../site/macros.html")),
    ("site/level.html", include_str!("../site/level.html")),
    (
        "site/completeness.html",
        include_str!("../site/completeness.html"),
    ),
    ("site/communes.html", include_str!("../site/communes.html")),
    (
        "site/departement.html",
        include_str!("../site/departement.html"),
    ),
    (
        "site/accessibilite.html",
        include_str!("../site/accessibilite.html"),
    ),
    (
        "site/mentions-legales.html",
        include_str!("../site/mentions-legales.html"),
    ),
    (
        "site/donnees-personnelles.html",
        include_str!("../site/donnees-personnelles.html"),
    ),
    (
        "site/plan-du-site.html",
        include_str!("../site/plan-du-site.html"),
    ),
    ("app/base.html", include_str!("../app/base.html")),
    ("app/login.html", include_str!("../app/login.html")),
    ("app/aide.html", include_str!("../app/aide.html")),
    ("app/plan.html", include_str!("../app/plan.html")),
    ("app/dictation.html", include_str!("../app/dictation.html")),
    ("app/signals.html", include_str!("../app/signals.html")),
    ("app/macros.html", include_str!("../app/macros.html")),
    ("app/spf.html", include_str!("../app/spf.html")),
    ("app/contacts.html", include_str!("../app/contacts.html")),
    (
        "app/proconnect.html",
        include_str!("../app/proconnect.html"),
    ),
    (
        "app/proconnect_logout.html",
        include_str!("../app/proconnect_logout.html"),
    ),
    ("app/situation.html", include_str!("../app/situation.html")),
    (
        "app/second_factor.html",
        include_str!("../app/second_factor.html"),
    ),
    (
        "app/recovery_codes.html",
        include_str!("../app/recovery_codes.html"),
    ),
    ("app/saisie.html", include_str!("../app/saisie.html")),
    (
        "app/prefecture.html",
        include_str!("../app/prefecture.html"),
    ),
    ("app/error.html", include_str!("../app/error.html")),
    ("app/codes.html", include_str!("../app/codes.html")),
];

/// Every template and the stylesheet, in order: what a publication's state
/// records, so that a new version of the text re-renders every page.
pub fn sources() -> impl Iterator<Item = &'static str> {
    TEMPLATES
        .iter()
        .flat_map(|(name, source)| [*name, *source])
        .chain([STYLESHEET, DSFR_VERSION])
}

/// An environment with every template and the French formatting filters:
/// a copy of one compiled once per process (a publication makes one a
/// département, a hundred in a national morning's publication).
/// Templates are checked by the tests of this crate, so a broken one fails the build's tests.
pub fn environment() -> Environment<'static> {
    static COMPILED: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    COMPILED.get_or_init(compile).clone()
}

fn compile() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in TEMPLATES {
        // Loading embedded templates only fails on a syntax error, which the test below catches.
        if let Err(error) = env.add_template(name, source) {
            panic!("template {name} does not parse: {error}");
        }
    }
    env.set_formatter(html_formatter);
    env.add_filter("fr_int", fr_int);
    env.add_filter("fr_dec", fr_dec);
    env.add_function("columns", columns);
    env
}

/// The names of a table's columns, in order, as the `style` attribute that
/// sets `--c1`, `--c2`, … on it: on a phone, the stylesheet writes each
/// cell's column name above it (`content: var(--cN)`), from this one
/// attribute rather than from a label repeated in every cell. Each argument
/// is a name, a list of names or of objects with a `label` (the settings),
/// or none (a column the table does not have).
fn columns(names: minijinja::value::Rest<Value>) -> Result<Value, minijinja::Error> {
    let mut flat = Vec::new();
    for name in names.iter() {
        if name.is_none() || name.is_undefined() {
            continue;
        }
        if let Some(text) = name.as_str() {
            flat.push(text.to_owned());
            continue;
        }
        for item in name.try_iter()? {
            match item.as_str() {
                Some(text) => flat.push(text.to_owned()),
                None => flat.push(item.get_attr("label")?.to_string()),
            }
        }
    }
    Ok(Value::from_safe_string(format!(
        " style=\"{}\"",
        escape_html(&column_properties(&flat))
    )))
}

/// `--c1:'Jour';--c2:'Hôpital'`: each name a CSS string.
pub fn column_properties(names: &[String]) -> String {
    let mut css = String::new();
    for (index, name) in names.iter().enumerate() {
        if index > 0 {
            css.push(';');
        }
        css.push_str(&format!("--c{}:'", index + 1));
        for c in name.chars() {
            match c {
                '\\' | '\'' => {
                    css.push('\\');
                    css.push(c);
                }
                // A line break ends a CSS string: written as its escape.
                '\n' | '\r' => css.push_str("\\a "),
                c => css.push(c),
            }
        }
        css.push('\'');
    }
    css
}

/// `text` made safe in HTML and SVG, text or attribute: `& < > " '`
/// escaped, `/` left alone (minijinja's default escapes it too, which makes
/// every date read `01&#x2f;04&#x2f;2020` in the source). The one escaper:
/// the templates' formatter and the SVG the publisher writes use it.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Escapes strings with [`escape_html`] where the template auto-escapes.
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text)
            if !value.is_safe() && matches!(state.auto_escape(), minijinja::AutoEscape::Html) =>
        {
            out.write_str(&escape_html(text)).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            })
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// `12345` → `12 345` (narrow no-break space, as French typography wants).
pub fn format_int(n: u64) -> String {
    decompte_core::time::fr_int(n)
}

/// `12.345` → `12,3`.
pub fn format_decimal(x: f64, places: usize) -> String {
    let text = format!("{x:.places$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int = int
        .parse::<u64>()
        .map(format_int)
        .unwrap_or_else(|_| int.to_owned());
    if frac.is_empty() {
        int
    } else {
        format!("{int},{frac}")
    }
}

fn fr_int(value: Value) -> String {
    match u64::try_from(value.clone()) {
        Ok(n) => format_int(n),
        Err(_) => value.to_string(),
    }
}

fn fr_dec(value: Value, places: Option<usize>) -> String {
    if value.is_none() || value.is_undefined() {
        return "—".into();
    }
    match f64::try_from(value.clone()) {
        Ok(x) => format_decimal(x, places.unwrap_or(1)),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_escaper_for_text_and_attributes() {
        assert_eq!(
            escape_html("<a title='x' href=\"/y\">A & B</a>"),
            "&lt;a title=&#39;x&#39; href=&quot;/y&quot;&gt;A &amp; B&lt;/a&gt;"
        );
    }

    #[test]
    fn columns_name_each_column_as_a_css_string_in_an_attribute() {
        let env = environment();
        let html = env
            .render_str(
                "<table{{ columns(\"Jour\", settings, \"Total\" if total, none) }}>",
                minijinja::context! {
                    settings => vec![
                        minijinja::context! { label => "Lieu d'accueil" },
                        minijinja::context! { label => "A\\B \"<x>\"" },
                    ],
                    total => false,
                },
            )
            .expect("render");
        assert_eq!(
            html,
            "<table style=\"--c1:&#39;Jour&#39;;--c2:&#39;Lieu d\\&#39;accueil&#39;;\
             --c3:&#39;A\\\\B &quot;&lt;x&gt;&quot;&#39;\">"
        );
        // A line break cannot end the CSS string.
        assert_eq!(column_properties(&["a\nb".to_owned()]), "--c1:'a\\a b'");
    }

    /// WCAG's contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
                if c <= 0.039_28 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// RGAA 3.3: the map's classes against the black borders of their areas
    /// (the map's background is white, the classes differ from each other
    /// by less than 3:1: the borders tell the areas apart), and the colours
    /// of the five default settings against the white that surrounds each
    /// bar of a chart and each card.
    #[test]
    fn map_and_chart_colours_stand_out_by_three_to_one() {
        let classes: Vec<&str> = STYLESHEET
            .split(".k")
            .skip(1)
            .filter_map(|rule| rule.split_once("--k: ").map(|(_, rest)| &rest[..7]))
            .collect();
        assert_eq!(classes.len(), 6, "{classes:?}");
        assert!(STYLESHEET.contains(".map path { fill: var(--k); stroke: #000;"));
        for class in &classes {
            let ratio = contrast(class, "#000000");
            assert!(
                ratio >= 3.0,
                "map class {class}: {ratio:.2} against its border"
            );
        }
        for colour in &PALETTE[..5] {
            let ratio = contrast(colour, "#ffffff");
            assert!(
                ratio >= 3.0,
                "setting colour {colour}: {ratio:.2} against white"
            );
        }
        // The check can fail: the palette's sixth colour is too light.
        assert!(contrast(PALETTE[5], "#ffffff") < 3.0);
    }

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn escaping_keeps_slashes() {
        let env = environment();
        let html = env
            .render_str(
                "{{ a }} {{ b }}",
                minijinja::context! { a => "01/04/2020", b => "<x> & \"y\" l'z" },
            )
            .expect("render");
        assert_eq!(html, "01/04/2020 &lt;x&gt; &amp; &quot;y&quot; l&#39;z");
    }

    #[test]
    fn french_numbers() {
        assert_eq!(format_int(0), "0");
        assert_eq!(format_int(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(format_decimal(1234.56, 1), "1\u{202f}234,6");
        assert_eq!(format_decimal(3.0, 0), "3");
    }
}
