//! Two `decompte serve` processes on one PostgreSQL database behind HAProxy
//! behave as one app: a session, a CSRF token, an idempotency key work
//! whichever replica answers; one replica publishes, woken by the other's
//! writes; when it dies, the other takes over and the site stays online.

use std::time::{Duration, Instant};

use decompte_core::Role;
use decompte_store::prelude::*;
use decompte_tests::postgres_local::PostgresLocal;
use decompte_tests::replicas::{LoadBalancer, Replica, ReplicaSettings};
use decompte_tests::{csrf_of, http_client, issue_code, with_code, Browser};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Waits until `path` on `base` contains `needle`; returns how long it took.
async fn until_published(base: &str, path: &str, needle: &str, within: Duration) -> Duration {
    let client = http_client();
    let started = Instant::now();
    loop {
        let text = match client.get(format!("{base}{path}")).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                response.text().await.unwrap_or_default()
            }
            _ => String::new(),
        };
        if text.contains(needle) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{path} does not show `{needle}` after {within:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn api(
    request: reqwest::RequestBuilder,
    code: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = with_code(request, code);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn counts(hopital: u32) -> Value {
    json!({"hopital": hopital, "ehpad": 0, "esms": 0, "domicile": 1, "autre": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_a_load_balancer_are_one_app() {
    let database = PostgresLocal::shared().fresh_database().await;
    let store = decompte_store::PostgresStore::connect(&database)
        .await
        .expect("the store");
    let mairie = issue_code(&store, Role::Commune, Some("56260")).await;
    let prefecture = issue_code(&store, Role::Prefecture, None).await;
    let (settings, _data, public_port) = ReplicaSettings::shared(&database);
    let first = Replica::start("a", &settings);
    assert!(
        first.log_text().contains("Site publié"),
        "the first replica publishes at its start: {}",
        first.log_text()
    );
    let second = Replica::start("b", &settings);
    assert!(
        second
            .log_text()
            .contains("Une autre instance de decompte publie le site"),
        "{}",
        second.log_text()
    );
    let balancer = LoadBalancer::start_on(public_port, &[first.port, second.port]);
    let base = balancer.url("");
    // Nor does the command line publish beside them.
    let refused = std::process::Command::new(decompte_tests::replicas::decompte_binary())
        .arg("publish")
        .env("DECOMPTE_STORE", &database)
        .env("DECOMPTE_DATA_DIR", &settings.data_dir)
        .output()
        .expect("decompte publish");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("publie le site"), "{said}");

    // A mairie, through the load balancer: the login on one replica, the
    // form on the other, its token accepted by the first.
    let mut browser = Browser::at(http_client(), base.clone());
    let login = browser.login(&mairie).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text);
    for _ in 0..4 {
        let form = browser.get("/saisie?date=2020-04-01").await;
        assert_eq!(form.status, StatusCode::OK, "a session on every replica");
    }
    let form = browser.get("/saisie?date=2020-04-01").await;
    let saved = browser
        .declare(&csrf_of(&form.text), "56260", "2020-04-01", [3, 1, 0, 2, 0])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    // On the public site within seconds, whichever replica took it.
    let took = until_published(
        &base,
        "/communes/56260.html",
        "<span class=\"n\">6</span> décès au total",
        Duration::from_secs(5),
    )
    .await;
    println!("a declaration through the load balancer is public after {took:?}");

    // The API with an idempotency key, sent twice (to both replicas): one version.
    let client = http_client();
    let body = json!({"commune": "56260", "date": "2020-04-02", "counts": counts(2)});
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(
            api(
                client.post(balancer.url("/api/v1/reports")).json(&body),
                &mairie,
                Some("replicas-1"),
            )
            .await,
        );
    }
    assert_eq!(answers[0].0, StatusCode::CREATED, "{}", answers[0].1);
    // A replay answers 200 (it created nothing) with the same report.
    assert_eq!(answers[1].0, StatusCode::OK, "{}", answers[1].1);
    assert_eq!(answers[0].1, answers[1].1, "the same answer, replayed");
    let history = store
        .history(
            &decompte_core::CommuneCode::parse("56260").expect("code"),
            chrono::NaiveDate::from_ymd_opt(2020, 4, 2).expect("day"),
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1, "one version for one key");

    // A republication asked of the replica that does not publish: the
    // other runs it.
    let (status, queued) = api(
        client
            .post(second.url("/api/v1/publications"))
            .json(&json!({"reason": "Vérification"})),
        &prefecture,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let id = queued["id"].as_str().expect("an id").to_owned();
    let started = Instant::now();
    loop {
        let (_, record) = api(
            client.get(second.url(&format!("/api/v1/publications/{id}"))),
            &prefecture,
            None,
        )
        .await;
        if record["status"] == "succeeded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the publication queued on the second replica did not run: {record}\n{}",
            first.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only one replica published.
    assert!(
        !second.log_text().contains("scheduled publication"),
        "the second replica published: {}",
        second.log_text()
    );

    // The publishing replica dies: the other takes the lease, the site
    // stays online and keeps being published.
    let killed = Instant::now();
    first.kill();
    let (status, corrected) = api(
        client.post(balancer.url("/api/v1/reports")).json(&json!({
            "commune": "56260",
            "date": "2020-04-01",
            "counts": {"hopital": 7, "ehpad": 1, "esms": 0, "domicile": 2, "autre": 0},
            "replaces_version": 1,
        })),
        &mairie,
        Some("replicas-2"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{corrected}");
    let took = until_published(
        &base,
        "/communes/56260.html",
        "<span class=\"n\">13</span> décès au total",
        Duration::from_secs(15),
    )
    .await;
    println!(
        "after the publishing replica was killed, a correction is public {:?} after the kill",
        killed.elapsed()
    );
    assert!(took < Duration::from_secs(15));
    assert!(
        second.log_text().contains("publisher's lease taken"),
        "{}",
        second.log_text()
    );
    let index = http_client()
        .get(balancer.url("/"))
        .send()
        .await
        .expect("the site");
    assert_eq!(index.status(), StatusCode::OK);

    // A replica stops on SIGTERM, in its own time.
    second.terminate();
}

/// What a stream of writes saw: the days acknowledged, and how long the
/// longest write waited for its answer (resent meanwhile).
#[derive(Debug, Default)]
struct Stream {
    acknowledged: Vec<chrono::NaiveDate>,
    resent: u32,
    longest: Duration,
}

impl Stream {
    /// The write of `date`, first sent at `sent`, got no answer: counted,
    /// and a moment before it is sent again (a minute at most).
    async fn unanswered(&mut self, date: chrono::NaiveDate, sent: Instant) {
        self.resent += 1;
        assert!(
            sent.elapsed() < Duration::from_secs(60),
            "{date} unanswered for a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// The write of `date`, first sent at `sent`, is acknowledged.
    fn answered(&mut self, date: chrono::NaiveDate, sent: Instant) {
        self.longest = self.longest.max(sent.elapsed());
        self.acknowledged.push(date);
    }
}

/// One day after another from 1 March 2020, with its rank, until `stop`.
fn days_until(
    stop: &std::sync::atomic::AtomicBool,
) -> impl Iterator<Item = (i64, chrono::NaiveDate)> + '_ {
    let first = chrono::NaiveDate::from_ymd_opt(2020, 3, 1).expect("day");
    (0..)
        .take_while(|_| !stop.load(std::sync::atomic::Ordering::SeqCst))
        .map(move |n| (n, first + chrono::Duration::days(n)))
}

/// Is `status` an answer that says "try again" (the load balancer found no
/// replica, or the one it chose died with the request)?
fn try_again(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// One new day after another through the API until `stop`, each sent
/// again with its `Idempotency-Key` until it is answered.
async fn api_stream(
    base: String,
    code: String,
    commune: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Stream {
    let client = http_client();
    let mut stream = Stream::default();
    for (n, date) in days_until(&stop) {
        let body = json!({"commune": commune, "date": date.to_string(), "counts": counts(1)});
        let key = format!("stream-{commune}-{n}");
        let sent = Instant::now();
        loop {
            let answer = with_code(client.post(format!("{base}/api/v1/reports")), &code)
                .header("Idempotency-Key", &key)
                .json(&body)
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            match answer {
                Ok(answer) if matches!(answer.status(), StatusCode::CREATED | StatusCode::OK) => {
                    break
                }
                Ok(answer) if try_again(answer.status()) => {}
                Ok(answer) => panic!(
                    "{date}: {} {}",
                    answer.status(),
                    answer.text().await.unwrap_or_default()
                ),
                // The connection itself failed: the same again.
                Err(_) => {}
            }
            stream.unanswered(date, sent).await;
        }
        stream.answered(date, sent);
    }
    stream
}

/// One new day after another with the form until `stop`, each form sent
/// again (its submission token with it) until it is answered.
async fn form_stream(
    base: String,
    code: String,
    commune: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Stream {
    let mut browser = Browser::at(http_client(), base);
    let login = browser.login(&code).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text);
    let mut stream = Stream::default();
    for (_, date) in days_until(&stop) {
        let sent = Instant::now();
        let form = loop {
            match browser.try_get(&format!("/saisie?date={date}")).await {
                Ok(form) if form.status == StatusCode::OK => break form,
                Ok(form) => assert!(try_again(form.status), "{}: {}", form.status, form.text),
                // The connection itself failed: the same again.
                Err(_) => {}
            }
            stream.unanswered(date, sent).await;
        };
        let csrf = csrf_of(&form.text);
        let submission = decompte_tests::hidden_field(&form.text, "submission");
        let date_text = date.to_string();
        let fields = [
            ("csrf", csrf.as_str()),
            ("submission", submission.as_str()),
            ("commune", commune),
            ("date", date_text.as_str()),
            ("n_hopital", "1"),
            ("n_ehpad", "0"),
            ("n_esms", "0"),
            ("n_domicile", "1"),
            ("n_autre", "0"),
            ("reason", ""),
        ];
        loop {
            match browser.try_post_form("/saisie", &fields).await {
                Ok(saved) if saved.status == StatusCode::SEE_OTHER => break,
                Ok(saved) => assert!(try_again(saved.status), "{}: {}", saved.status, saved.text),
                Err(_) => {}
            }
            stream.unanswered(date, sent).await;
        }
        stream.answered(date, sent);
    }
    stream
}

/// Every acknowledged day of `commune` is in the store exactly once, and
/// nothing else is.
async fn exactly_once(store: &dyn Store, commune: &str, stream: &Stream) {
    let code = decompte_core::CommuneCode::parse(commune).expect("code");
    let versions = store
        .versions(&decompte_store::ReportQuery {
            commune: Some(code.clone()),
            ..Default::default()
        })
        .await
        .expect("versions");
    let days: Vec<chrono::NaiveDate> = versions.iter().map(|r| r.date).collect();
    let mut unique = days.clone();
    unique.dedup();
    assert_eq!(days, unique, "{commune}: a day written twice");
    for day in &stream.acknowledged {
        assert!(
            days.contains(day),
            "{commune}: {day} acknowledged, then lost"
        );
    }
    // At most the one write in flight when the stream stopped is there
    // without its answer.
    assert!(
        days.len() <= stream.acknowledged.len() + 1,
        "{commune}: {} days stored for {} acknowledged",
        days.len(),
        stream.acknowledged.len()
    );
}

/// Two replicas on a fresh database behind HAProxy, with a stream of API
/// writes (a mairie of 56260) and one of forms (a mairie of 56121) going
/// through it until [`UnderLoad::finish`].
struct UnderLoad {
    store: decompte_store::PostgresStore,
    settings: ReplicaSettings,
    replicas: [Option<Replica>; 2],
    balancer: LoadBalancer,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    api: tokio::task::JoinHandle<Stream>,
    forms: tokio::task::JoinHandle<Stream>,
    _data: tempfile::TempDir,
}

impl UnderLoad {
    async fn start() -> Self {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        let database = PostgresLocal::shared().fresh_database().await;
        let store = decompte_store::PostgresStore::connect(&database)
            .await
            .expect("the store");
        let api_code = issue_code(&store, Role::Commune, Some("56260")).await;
        let form_code = issue_code(&store, Role::Commune, Some("56121")).await;
        let (settings, data, public_port) = ReplicaSettings::shared(&database);
        let replicas = [
            Some(Replica::start("a", &settings)),
            Some(Replica::start("b", &settings)),
        ];
        let ports: Vec<u16> = replicas.iter().flatten().map(|r| r.port).collect();
        let balancer = LoadBalancer::start_on(public_port, &ports);
        let stop = Arc::new(AtomicBool::new(false));
        let api = tokio::spawn(api_stream(
            balancer.url(""),
            api_code,
            "56260",
            Arc::clone(&stop),
        ));
        let forms = tokio::spawn(form_stream(
            balancer.url(""),
            form_code,
            "56121",
            Arc::clone(&stop),
        ));
        Self {
            store,
            settings,
            replicas,
            balancer,
            stop,
            api,
            forms,
            _data: data,
        }
    }

    /// Starts the replica of `slot` again on its port, named `name`.
    async fn restart(&mut self, slot: usize, port: u16, name: String) {
        let settings = self.settings.clone();
        self.replicas[slot] = Some(
            tokio::task::spawn_blocking(move || Replica::start_on(&name, &settings, Some(port)))
                .await
                .expect("restarted"),
        );
    }

    /// Stops both streams; what each saw, checked exactly once in the store.
    async fn finish(&mut self) -> (Stream, Stream) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let api = (&mut self.api).await.expect("the API stream");
        let forms = (&mut self.forms).await.expect("the form stream");
        exactly_once(&self.store, "56260", &api).await;
        exactly_once(&self.store, "56121", &forms).await;
        (api, forms)
    }
}

/// Failover of a replica: a stream of API writes and of forms through the
/// load balancer while one replica or the other is killed (SIGKILL) and
/// restarted, twenty times: every acknowledged write is stored exactly
/// once, and the site keeps being published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_twenty_times_lose_no_acknowledged_write() {
    let mut load = UnderLoad::start().await;
    let rounds = 20;
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let slot = round % 2;
        let victim = load.replicas[slot].take().expect("a running replica");
        // « a-3 »: the replica's slot and the round (a log file each).
        let name = format!("{}-{round}", ["a", "b"][slot]);
        let port = victim.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        load.restart(slot, port, name).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (api, forms) = load.finish().await;
    println!(
        "{rounds} replicas killed: {} API writes acknowledged ({} sent again, longest {:?}), {} \
         forms ({} sent again, longest {:?})",
        api.acknowledged.len(),
        api.resent,
        api.longest,
        forms.acknowledged.len(),
        forms.resent,
        forms.longest
    );
    assert!(api.acknowledged.len() >= 20, "{api:?}");
    assert!(forms.acknowledged.len() >= 10, "{forms:?}");

    // The site is still published: the last day written is on it.
    let total = 2 * load
        .store
        .versions(&decompte_store::ReportQuery {
            commune: Some(decompte_core::CommuneCode::parse("56260").expect("code")),
            ..Default::default()
        })
        .await
        .expect("versions")
        .len();
    until_published(
        &load.balancer.url(""),
        "/communes/56260.html",
        &format!(
            "<span class=\"n\">{}</span> décès au total",
            decompte_core::time::fr_int(total as u64)
        ),
        Duration::from_secs(15),
    )
    .await;
}

/// Failover of the database: a primary with a synchronous standby; two
/// replicas on the multi-host URL under a stream of writes; the primary
/// killed (SIGKILL) and the standby promoted. The replicas find the new
/// primary by themselves, every write acknowledged is on it exactly once,
/// and the window during which writes fail is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_fails_over_to_its_standby() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let primary = PostgresLocal::start();
    let url = primary.fresh_database().await;
    let name = url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("a database name")
        .to_owned();
    let standby = PostgresLocal::standby_of(&primary);
    primary.make_synchronous().await;
    let both = format!(
        "postgres://decompte@127.0.0.1:{},127.0.0.1:{}/{name}?target_session_attrs=read-write&\
         sslmode=disable",
        primary.port, standby.port
    );
    let store = decompte_store::PostgresStore::connect(&both)
        .await
        .expect("the store");
    let api_code = issue_code(&store, Role::Commune, Some("56260")).await;
    drop(store);
    let (settings, _data, public_port) = ReplicaSettings::shared(&both);
    let first = Replica::start("a", &settings);
    let second = Replica::start("b", &settings);
    let balancer = LoadBalancer::start_on(public_port, &[first.port, second.port]);
    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn(api_stream(
        balancer.url(""),
        api_code,
        "56260",
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let killed = Instant::now();
    tokio::task::spawn_blocking(move || primary.kill())
        .await
        .expect("killed");
    standby.promote().await;
    let promoted = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let stream = stream.await.expect("the stream");
    println!(
        "primary killed, standby promoted {promoted:?} later: {} writes acknowledged, {} sent \
         again, the longest waited {:?}",
        stream.acknowledged.len(),
        stream.resent,
        stream.longest
    );
    assert!(
        stream.longest < promoted + Duration::from_secs(10),
        "writes failed for {:?}, more than 10 s after the promotion ({promoted:?})",
        stream.longest
    );
    let promoted_store = decompte_store::PostgresStore::connect(&standby.url(&name))
        .await
        .expect("the promoted server");
    exactly_once(&promoted_store, "56260", &stream).await;
    // And writes go on after the failover.
    assert!(stream.resent > 0, "no write met the failover: {stream:?}");
    let (status, _) = api(http_client().get(balancer.url("/readyz")), "", None).await;
    assert_eq!(status, StatusCode::OK);
}

/// A rolling upgrade: under a stream of API writes and forms, each replica
/// in turn is asked to stop (SIGTERM: it says so on `/readyz`, the load
/// balancer turns away, then it stops accepting) and started again: not one
/// request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_fails_no_request() {
    let mut load = UnderLoad::start().await;
    for slot in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let old = load.replicas[slot].take().expect("a running replica");
        let name = format!("{}-upgraded", old.name);
        let port = tokio::task::spawn_blocking(move || old.terminate())
            .await
            .expect("stopped");
        load.restart(slot, port, name).await;
        println!("replica {slot} upgraded");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (api, forms) = load.finish().await;
    println!(
        "rolling upgrade of two replicas: {} API writes and {} forms, {} and {} failed",
        api.acknowledged.len(),
        forms.acknowledged.len(),
        api.resent,
        forms.resent
    );
    assert_eq!((api.resent, forms.resent), (0, 0), "requests failed");
}

/// `serve` restarted on its data (a new version, other settings) answers
/// at once, serving the last publication, and publishes every page again
/// behind it: the mairies are not kept waiting for a national publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_answers_first_and_publishes_every_page_again() {
    let (mut settings, _data, _) = ReplicaSettings::shared("sqlite");
    let first = Replica::start("first", &settings);
    assert!(
        first.log_text().contains("Site publié"),
        "the first start publishes before it answers: {}",
        first.log_text()
    );
    let base = first.url("");
    until_published(&base, "/", "Préfecture du Morbihan", Duration::from_secs(5)).await;
    first.terminate();

    settings
        .env
        .push(("DECOMPTE_PUBLISHER".into(), "Préfecture de l'essai".into()));
    let again = Replica::start("again", &settings);
    let base = again.url("");
    // The app answers (the site serves the last publication until the
    // next one, too quick here to be seen).
    let login = http_client()
        .get(format!("{base}/connexion"))
        .send()
        .await
        .expect("the login page");
    assert_eq!(login.status(), StatusCode::OK);
    // Then every page is published again with the new settings.
    until_published(
        &base,
        "/",
        "Préfecture de l&#39;essai",
        Duration::from_secs(60),
    )
    .await;
    // The pages are written before the publication ends and says so.
    let waited = Instant::now();
    let mut log = again.log_text();
    while !log.contains("the site is published again after the start")
        && waited.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = again.log_text();
    }
    let ready = log.find("decompte est prêt").expect("the ready line");
    let published = log
        .find("the site is published again after the start")
        .expect("the publication after the start");
    assert!(
        ready < published,
        "the app says it is ready before it publishes again: {log}"
    );
    assert!(!log.contains("Première publication"), "{log}");
}
