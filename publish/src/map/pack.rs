//! Packs the map contours of `data/contours-*.csv` into the form `map.rs`
//! reads (see `build.rs` for the form): at build time for the `bundled`
//! binary, at first use from the data layer's CSV for the Lambda functions.

use std::fmt::Write as _;

pub fn pack(text: &str) -> Result<Vec<u8>, String> {
    let mut index = Vec::new();
    let mut low = Vec::new();
    let mut high = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        let at = |what: &str| format!("line {}: {what}", number + 1);
        let mut fields = line.splitn(6, ',');
        let code = fields.next().ok_or_else(|| at("no code"))?;
        let mut bbox = [0i64; 4];
        for value in &mut bbox {
            let field = fields.next().ok_or_else(|| at("a short bounding box"))?;
            *value = field
                .parse()
                .map_err(|_| at("a bounding box that is not a number"))?;
        }
        let path = fields.next().ok_or_else(|| at("no path"))?;
        let rings = parse_path(path).ok_or_else(|| at("a path other than M x y l … z rings"))?;
        if unpack_path(&rings) != path {
            return Err(at("a path that would not be drawn again byte for byte"));
        }
        varint(code.len() as u64, &mut index);
        index.extend_from_slice(code.as_bytes());
        for value in [bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]] {
            varint(zigzag(value), &mut index);
        }
        varint(rings.len() as u64, &mut index);
        for ring in &rings {
            varint(zigzag(ring.start.0 - bbox[0]), &mut index);
            varint(zigzag(ring.start.1 - bbox[1]), &mut index);
            varint((ring.moves.len() / 2) as u64, &mut index);
            for &value in &ring.moves {
                let packed = u16::try_from(zigzag(value)).map_err(|_| at("a move too long"))?;
                let [lo, hi] = packed.to_le_bytes();
                low.push(lo);
                high.push(hi);
            }
        }
    }
    let mut packed = u32::try_from(index.len())
        .map_err(|_| "an index over 4 GB".to_owned())?
        .to_le_bytes()
        .to_vec();
    packed.extend(index);
    packed.extend(low);
    packed.extend(high);
    Ok(packed)
}

struct Ring {
    start: (i64, i64),
    /// dx, dy, dx, dy, …
    moves: Vec<i64>,
}

/// `M x yl dx dy … z` rings, as `data-france.sh` writes them.
fn parse_path(path: &str) -> Option<Vec<Ring>> {
    let mut rings = Vec::new();
    for ring in path.split_terminator('z') {
        let ring = ring.strip_prefix('M')?;
        let (start, moves) = ring.split_once('l')?;
        let (x, y) = start.split_once(' ')?;
        let mut values = Vec::new();
        let mut number = String::new();
        for c in moves.chars().chain(std::iter::once(' ')) {
            if (c == ' ' || c == '-') && !number.is_empty() {
                values.push(number.parse().ok()?);
                number.clear();
            }
            if c != ' ' {
                number.push(c);
            }
        }
        if values.len() % 2 != 0 {
            return None;
        }
        rings.push(Ring {
            start: (x.parse().ok()?, y.parse().ok()?),
            moves: values,
        });
    }
    Some(rings)
}

/// The path the map will write for these rings (as `map::Contours::write_path`).
fn unpack_path(rings: &[Ring]) -> String {
    let mut path = String::new();
    for ring in rings {
        let _ = write!(path, "M{} {}l", ring.start.0, ring.start.1);
        for (i, value) in ring.moves.iter().enumerate() {
            if i > 0 && *value >= 0 {
                path.push(' ');
            }
            let _ = write!(path, "{value}");
        }
        path.push('z');
    }
    path
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
