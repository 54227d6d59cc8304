//! Rates: deaths per 100,000 inhabitants. (The sums by day, commune and
//! setting are the publisher's, one département at a time.)

pub fn per_100k(deaths: u64, population: u64) -> Option<f64> {
    (population > 0).then(|| deaths as f64 * 100_000.0 / population as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(per_100k(1, 4000), Some(25.0));
        assert_eq!(per_100k(3, 0), None, "no population, no rate");
    }
}
