// Written by scripts/dsfr/vendor.sh: the DSFR files the site and the app serve.
pub const DSFR_VERSION: &str = "1.15.3";
/// The files, by path under the DSFR's folder.
pub const DSFR_NAMES: &[&str] = &[
    "dsfr.min.css",
    "fonts/Marianne-Bold.woff2",
    "fonts/Marianne-Bold_Italic.woff2",
    "fonts/Marianne-Light.woff2",
    "fonts/Marianne-Light_Italic.woff2",
    "fonts/Marianne-Medium.woff2",
    "fonts/Marianne-Medium_Italic.woff2",
    "fonts/Marianne-Regular.woff2",
    "fonts/Marianne-Regular_Italic.woff2",
    "fonts/Spectral-ExtraBold.woff2",
    "fonts/Spectral-Regular.woff2",
    "icons/arrows/arrow-right-s-line.svg",
    "icons/system/fr--error-fill.svg",
    "icons/system/fr--info-fill.svg",
    "icons/system/fr--success-fill.svg",
    "icons/system/fr--warning-fill.svg",
];
/// The bytes of one of them: compiled in, or read from the Lambda functions'
/// data layer (decompte-bundle).
pub fn dsfr_file(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "dsfr.min.css" => decompte_bundle::file!("templates/static/dsfr/dsfr.min.css"),
        "fonts/Marianne-Bold.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Bold.woff2"),
        "fonts/Marianne-Bold_Italic.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Bold_Italic.woff2"),
        "fonts/Marianne-Light.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Light.woff2"),
        "fonts/Marianne-Light_Italic.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Light_Italic.woff2"),
        "fonts/Marianne-Medium.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Medium.woff2"),
        "fonts/Marianne-Medium_Italic.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Medium_Italic.woff2"),
        "fonts/Marianne-Regular.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Regular.woff2"),
        "fonts/Marianne-Regular_Italic.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Marianne-Regular_Italic.woff2"),
        "fonts/Spectral-ExtraBold.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Spectral-ExtraBold.woff2"),
        "fonts/Spectral-Regular.woff2" => decompte_bundle::file!("templates/static/dsfr/fonts/Spectral-Regular.woff2"),
        "icons/arrows/arrow-right-s-line.svg" => decompte_bundle::file!("templates/static/dsfr/icons/arrows/arrow-right-s-line.svg"),
        "icons/system/fr--error-fill.svg" => decompte_bundle::file!("templates/static/dsfr/icons/system/fr--error-fill.svg"),
        "icons/system/fr--info-fill.svg" => decompte_bundle::file!("templates/static/dsfr/icons/system/fr--info-fill.svg"),
        "icons/system/fr--success-fill.svg" => decompte_bundle::file!("templates/static/dsfr/icons/system/fr--success-fill.svg"),
        "icons/system/fr--warning-fill.svg" => decompte_bundle::file!("templates/static/dsfr/icons/system/fr--warning-fill.svg"),
        _ => return None,
    })
}
