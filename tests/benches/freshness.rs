//! Freshness, locally: the delay from a declaration's 201 to the change on
//! its commune's public page, over 100 declarations, with `decompte serve`'s
//! publication loop (woken by each write). Prints p50, p95 and the maximum.
//! Run with `cargo bench -p decompte-tests --bench freshness`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use decompte_core::time::fr_date;
use decompte_core::Role;
use decompte_tests::{report_body, TestApp};

#[tokio::main]
async fn main() {
    let app = TestApp::start().await;
    app.publish().await;
    app.app
        .spawn_publish_timer(Duration::from_secs(60), None, false);
    let mayor = app.issue(Role::Commune, Some("56260")).await;
    let first = NaiveDate::from_ymd_opt(2020, 3, 1).expect("date");
    let mut delays = Vec::with_capacity(100);
    for day in 0..100 {
        let date = first + chrono::Duration::days(day);
        let answer = app
            .post_json(
                "/api/v1/reports",
                Some(&mayor),
                &report_body("56260", &date.to_string(), [1, 0, 0, 0, 0]),
                &[],
            )
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
        let accepted = Instant::now();
        let shown = fr_date(date);
        loop {
            if app
                .get("/communes/56260.html", None)
                .await
                .text
                .contains(&shown)
            {
                break;
            }
            assert!(
                accepted.elapsed() < Duration::from_secs(120),
                "never published"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        delays.push(accepted.elapsed());
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "freshness over {} declarations: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        delays.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0,
        delays[delays.len() - 1].as_secs_f64() * 1000.0
    );
}
