// Written by scripts/dsfr/vendor.sh: the DSFR files the site and the app serve.
pub const DSFR_VERSION: &str = "1.15.3";
pub const DSFR_FILES: &[(&str, &[u8])] = &[
    ("dsfr.min.css", include_bytes!("dsfr.min.css")),
    ("fonts/Marianne-Bold.woff2", include_bytes!("fonts/Marianne-Bold.woff2")),
    ("fonts/Marianne-Bold_Italic.woff2", include_bytes!("fonts/Marianne-Bold_Italic.woff2")),
    ("fonts/Marianne-Light.woff2", include_bytes!("fonts/Marianne-Light.woff2")),
    ("fonts/Marianne-Light_Italic.woff2", include_bytes!("fonts/Marianne-Light_Italic.woff2")),
    ("fonts/Marianne-Medium.woff2", include_bytes!("fonts/Marianne-Medium.woff2")),
    ("fonts/Marianne-Medium_Italic.woff2", include_bytes!("fonts/Marianne-Medium_Italic.woff2")),
    ("fonts/Marianne-Regular.woff2", include_bytes!("fonts/Marianne-Regular.woff2")),
    ("fonts/Marianne-Regular_Italic.woff2", include_bytes!("fonts/Marianne-Regular_Italic.woff2")),
    ("fonts/Spectral-ExtraBold.woff2", include_bytes!("fonts/Spectral-ExtraBold.woff2")),
    ("fonts/Spectral-Regular.woff2", include_bytes!("fonts/Spectral-Regular.woff2")),
    ("icons/arrows/arrow-right-s-line.svg", include_bytes!("icons/arrows/arrow-right-s-line.svg")),
    ("icons/system/fr--error-fill.svg", include_bytes!("icons/system/fr--error-fill.svg")),
    ("icons/system/fr--info-fill.svg", include_bytes!("icons/system/fr--info-fill.svg")),
    ("icons/system/fr--success-fill.svg", include_bytes!("icons/system/fr--success-fill.svg")),
    ("icons/system/fr--warning-fill.svg", include_bytes!("icons/system/fr--warning-fill.svg")),
];
