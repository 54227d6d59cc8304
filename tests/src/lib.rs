//! The app under test and its helpers, shared by the end-to-end tests.
//!
//! [`TestApp::start`] runs exactly what `decompte serve` runs (the same
//! router, the SQLite store, the in-process publisher writing to a folder) on a
//! free loopback port, in a temporary data directory. Every helper fails loudly.

pub mod cut;
pub mod dynamodb_local;
pub mod lambda_local;
pub mod lighthouse;
pub mod national;
pub mod oidc_provider;
pub mod postgres_local;
pub mod process;
pub mod replicas;
pub mod s3_local;
pub mod smtp_local;
pub mod stream_pump;
pub mod webdriver;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use decompte::{LocalApp, Options};
use decompte_app::auth::issue_credential;
use decompte_core::issuance::Issue;
use decompte_core::{CommuneCode, Report, Role};
use decompte_store::{ReportQuery, Store};
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub app: LocalApp,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }
}

/// Everything the store holds about reports: current values and every version.
#[derive(Debug, PartialEq)]
pub struct ReportsSnapshot {
    pub current: Vec<Report>,
    pub versions: Vec<Report>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the app after letting the test adjust its settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Options)) -> Self {
        let (dir, listener, mut settings) = Self::prepare().await;
        adjust(&mut settings);
        let app = LocalApp::open(&settings).await.expect("open the app");
        Self::serve(app, listener, dir).await
    }

    /// Starts the app going by `clock` (set to the hour a test needs).
    pub async fn start_at(
        clock: Arc<dyn decompte_core::clock::Clock>,
        adjust: impl FnOnce(&mut Options),
    ) -> Self {
        let (dir, listener, mut settings) = Self::prepare().await;
        adjust(&mut settings);
        let app = LocalApp::open_with_clock(&settings, clock)
            .await
            .expect("open the app");
        Self::serve(app, listener, dir).await
    }

    /// Starts the app on a given store (DynamoDB Local, say) with default settings.
    pub async fn start_on(store: Arc<dyn Store>) -> Self {
        Self::start_on_with(store, |_| {}).await
    }

    /// Starts the app on a given store after letting the test adjust its settings.
    pub async fn start_on_with(store: Arc<dyn Store>, adjust: impl FnOnce(&mut Options)) -> Self {
        let (dir, listener, mut settings) = Self::prepare().await;
        adjust(&mut settings);
        let app = LocalApp::with_store(&settings, store).expect("open the app");
        Self::serve(app, listener, dir).await
    }

    /// Starts the app on `store`, serving `departements`.
    pub async fn start_serving(store: Arc<dyn Store>, departements: &[&str]) -> Self {
        Self::start_on_with(store, |options| {
            options.departements = departements.iter().map(|d| (*d).to_owned()).collect();
        })
        .await
    }

    /// Issues a prefecture's access code scoped to `departements`.
    pub async fn issue_prefecture_of(&self, departements: &[&str]) -> String {
        issue_scoped_code(
            self.app.store.as_ref(),
            Role::Prefecture,
            None,
            departements,
        )
        .await
    }

    /// A temporary data folder, a loopback port, and default settings for them.
    async fn prepare() -> (tempfile::TempDir, tokio::net::TcpListener, Options) {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address: SocketAddr = listener.local_addr().expect("local address");
        let mut settings = Options::for_data_dir(dir.path().to_path_buf());
        settings.public_url = Some(format!("http://{address}"));
        // The tests replay the 2020 crisis, years before today: no warning
        // for an old day (the warnings' own tests turn it back on).
        settings.old_day_after = 0;
        (dir, listener, settings)
    }

    async fn serve(
        app: LocalApp,
        listener: tokio::net::TcpListener,
        dir: tempfile::TempDir,
    ) -> Self {
        let address: SocketAddr = listener.local_addr().expect("local address");
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let router = app.router();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop.await;
            };
            if let Err(error) = decompte::serve_on(listener, router, stopped).await {
                panic!("test server failed: {error}");
            }
        });
        let client = http_client();
        Self {
            base: format!("http://{address}"),
            app,
            client,
            _dir: dir,
            shutdown: Some(shutdown),
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.app.store)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Issues an access code and returns it as a person would type it.
    pub async fn issue(&self, role: Role, commune: Option<&str>) -> String {
        issue_code(self.app.store.as_ref(), role, commune).await
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the body");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// Sends a request, with `Authorization: Bearer` if a code is given (and
    /// a prefecture's or the ministry's second factor, in `X-TOTP`).
    async fn send(request: reqwest::RequestBuilder, code: Option<&str>) -> Answer {
        let request = match code {
            Some(code) => with_code(request, code),
            None => request,
        };
        Self::answer(request.send().await.expect("HTTP request")).await
    }

    pub async fn get(&self, path: &str, code: Option<&str>) -> Answer {
        Self::send(self.client.get(self.url(path)), code).await
    }

    /// POSTs JSON with a bearer code and optional extra headers.
    pub async fn post_json(
        &self,
        path: &str,
        code: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::send(request, code).await
    }

    /// POSTs raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        code: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let request = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        Self::send(request, code).await
    }

    /// Current reports and every version of every (commune, day) that has one.
    pub async fn snapshot(&self) -> ReportsSnapshot {
        let store = self.store();
        let current = store
            .current_reports(&ReportQuery::default())
            .await
            .expect("read reports");
        let mut versions = Vec::new();
        for report in &current {
            versions.extend(
                store
                    .history(&report.commune, report.date)
                    .await
                    .expect("read history"),
            );
        }
        ReportsSnapshot { current, versions }
    }

    /// Runs a publication now and returns the published files by path.
    pub async fn publish(&self) -> decompte_publish::Outcome {
        self.app
            .publisher
            .publish(Utc::now())
            .await
            .expect("publish")
    }

    pub fn site_file(&self, path: &str) -> String {
        std::fs::read_to_string(self.app.site_dir.join(path))
            .unwrap_or_else(|e| panic!("site file {path}: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The tests' one HTTP client: it never follows redirects, so that a test
/// sees each answer as the server gave it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// A browser: keeps cookies, reads CSRF tokens out of forms, never follows redirects.
pub struct Browser {
    client: reqwest::Client,
    /// What paths are relative to: the app's address.
    base: String,
    pub cookies: BTreeMap<String, String>,
    /// The app's clock: the phone's authenticator shows the app's time.
    clock: Arc<dyn decompte_core::clock::Clock>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            clock: Arc::clone(&app.app.state.clock),
            ..Self::at(app.client.clone(), app.url(""))
        }
    }

    /// A browser of the app at `base` (a function URL, say).
    pub fn at(client: reqwest::Client, base: String) -> Self {
        Self {
            client,
            base,
            cookies: BTreeMap::new(),
            clock: Arc::new(decompte_core::clock::SystemClock),
        }
    }

    /// The cookies held, as a `Cookie` header.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, answer: &Answer) {
        for cookie in answer.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn get_request(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.try_get(path).await.expect("GET")
    }

    /// [`Browser::get`], a failed connection returned rather than a panic
    /// (what a browser shows before its user tries again).
    pub async fn try_get(&mut self, path: &str) -> Result<Answer, reqwest::Error> {
        let response = self.get_request(path).send().await?;
        let answer = TestApp::answer(response).await;
        self.keep_cookies(&answer);
        Ok(answer)
    }

    /// A GET whose body is bytes (a PDF), with the status and the headers.
    pub async fn get_bytes(&mut self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self.get_request(path).send().await.expect("GET");
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.bytes().await.expect("body").to_vec();
        (status, headers, body)
    }

    /// Posts a form from one of the app's own pages, as a browser does: with
    /// `Sec-Fetch-Site: same-origin` and the app's `Origin`.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.try_post_form(path, fields).await.expect("POST")
    }

    /// [`Browser::post_form`], a failed connection returned rather than a panic.
    pub async fn try_post_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let origin = decompte_config::origin_of(&self.base).unwrap_or_default();
        self.try_post_form_with(
            path,
            fields,
            &[("sec-fetch-site", "same-origin"), ("origin", &origin)],
        )
        .await
    }

    /// Posts a form with the given request headers instead (a page of another
    /// site posting into the app, say: `Sec-Fetch-Site: cross-site`).
    pub async fn post_form_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_post_form_with(path, fields, headers)
            .await
            .expect("POST")
    }

    async fn try_post_form_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await?;
        let answer = TestApp::answer(response).await;
        self.keep_cookies(&answer);
        Ok(answer)
    }

    /// Posts a form with a file (`multipart/form-data`), as a browser does
    /// from one of the app's own pages: `fields`, then the file `file`
    /// named `filename`.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> Answer {
        let boundary = "decompte-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let (name, filename, bytes) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let origin = decompte_config::origin_of(&self.base).unwrap_or_default();
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("sec-fetch-site", "same-origin")
            .header("origin", origin)
            .body(body)
            .send()
            .await
            .expect("POST");
        let answer = TestApp::answer(response).await;
        self.keep_cookies(&answer);
        answer
    }

    /// Submits the form of `/saisie` with its CSRF token `csrf`: the counts in
    /// the order hopital, ehpad, esms, domicile, autre, no reason.
    pub async fn declare(
        &mut self,
        csrf: &str,
        commune: &str,
        date: &str,
        counts: [u32; 5],
    ) -> Answer {
        let counts = counts.map(|n| n.to_string());
        self.post_form(
            "/saisie",
            &[
                ("csrf", csrf),
                ("commune", commune),
                ("date", date),
                ("n_hopital", &counts[0]),
                ("n_ehpad", &counts[1]),
                ("n_esms", &counts[2]),
                ("n_domicile", &counts[3]),
                ("n_autre", &counts[4]),
                ("reason", ""),
            ],
        )
        .await
    }

    /// Posts an access code to the login page; returns the answer (for a
    /// prefecture code, the page asking for its second factor).
    pub async fn login_code_only(&mut self, code: &str) -> Answer {
        let page = self.get("/connexion").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let csrf = csrf_of(&page.text);
        self.post_form("/connexion", &[("csrf", &csrf), ("code", code)])
            .await
    }

    /// Logs in through the login page; returns the answer to the last POST.
    /// A prefecture or national code is followed by its test second factor
    /// (the next step's code if this one was already used in the last 30 s).
    pub async fn login(&mut self, code: &str) -> Answer {
        let answer = self.login_code_only(code).await;
        if !answer.text.contains("action=\"/connexion/verification\"") {
            return answer;
        }
        let mut last = answer;
        for steps_ahead in [0, 1] {
            let Some(totp) = second_factor_at(code, self.clock.now(), steps_ahead) else {
                return last;
            };
            let csrf = csrf_of(&last.text);
            last = self
                .post_form(
                    "/connexion/verification",
                    &[("csrf", &csrf), ("code", &totp)],
                )
                .await;
            if last.status != StatusCode::UNAUTHORIZED {
                break;
            }
        }
        last
    }
}

/// Writes a first version of a commune's day straight to the store, as a
/// test's past: `counts` in the order hopital, ehpad, esms, domicile, autre.
pub async fn write_counts(app: &TestApp, commune: &str, date: chrono::NaiveDate, counts: [u32; 5]) {
    let mut report = sample_report(&CommuneCode::parse(commune).expect("code"), date, 1, 0);
    for (key, count) in ["hopital", "ehpad", "esms", "domicile", "autre"]
        .into_iter()
        .zip(counts)
    {
        report.counts.insert(key.to_owned(), count);
    }
    report.recorded_by = "test".into();
    app.store()
        .write_report(decompte_store::Ledgered::for_fixtures(), &report, None)
        .await
        .expect("write");
}

/// [`write_counts`]: `hopital` deaths at hospital, one at home.
pub async fn write_day(app: &TestApp, commune: &str, date: chrono::NaiveDate, hopital: u32) {
    write_counts(app, commune, date, [hopital, 0, 0, 1, 0]).await;
}

/// A report for benchmarks and load: `hopital` deaths at hospital, one at home.
pub fn sample_report(
    commune: &CommuneCode,
    date: chrono::NaiveDate,
    version: u32,
    hopital: u32,
) -> Report {
    Report {
        commune: commune.clone(),
        date,
        counts: [
            ("hopital", hopital),
            ("ehpad", 0),
            ("esms", 0),
            ("domicile", 1),
            ("autre", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        version,
        recorded_at: Utc::now(),
        recorded_by: "bench".into(),
        source: decompte_core::Source::Api,
        reason: (version > 1).then(|| "correction".to_owned()),
        warnings: Vec::new(),
    }
}

/// The communes of the default scope (Morbihan, 249), and its site configuration.
pub fn morbihan() -> (Vec<CommuneCode>, decompte_publish::SiteConfig) {
    let settings = Options::for_data_dir(std::env::temp_dir());
    let config = decompte_publish::SiteConfig::from_options(&settings).expect("config");
    let communes = config.scope.communes().map(|c| c.code.clone()).collect();
    (communes, config)
}

/// Loads a year of reports from every commune of `communes`, from `start`,
/// with `writers` concurrent writers, each recorded on its own day at 18:00
/// UTC as during a real crisis; `skip` says which (commune index, day) to leave
/// out. Returns how many reports were written.
pub async fn load_year(
    store: Arc<dyn Store>,
    communes: &[CommuneCode],
    start: chrono::NaiveDate,
    writers: usize,
    skip: fn(usize, i64) -> bool,
) -> usize {
    let mut tasks = Vec::new();
    for worker in 0..writers {
        let store = Arc::clone(&store);
        let communes = communes.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            for (index, commune) in communes
                .iter()
                .enumerate()
                .filter(|(i, _)| i % writers == worker)
            {
                for day in (0..365).filter(|day| !skip(index, *day)) {
                    let date = start + chrono::Duration::days(day);
                    let hopital =
                        u32::try_from((index + usize::try_from(day).unwrap_or(0)) % 3).unwrap_or(0);
                    let mut report = sample_report(commune, date, 1, hopital);
                    report.recorded_at = date.and_hms_opt(18, 0, 0).unwrap_or_default().and_utc();
                    store
                        .write_report(decompte_store::Ledgered::for_fixtures(), &report, None)
                        .await
                        .expect("load a report");
                    written += 1;
                }
            }
            written
        }));
    }
    let mut written = 0;
    for task in tasks {
        written += task.await.expect("a loader");
    }
    written
}

/// Writes version 2 of `commune`'s `date`, now, with `hopital` deaths at hospital.
pub async fn correct(
    store: &dyn Store,
    commune: &CommuneCode,
    date: chrono::NaiveDate,
    hopital: u32,
) {
    let mut corrected = sample_report(commune, date, 2, hopital);
    corrected.recorded_at = Utc::now();
    store
        .write_report(decompte_store::Ledgered::for_fixtures(), &corrected, None)
        .await
        .expect("correction");
}

/// `Authorization: Bearer code`, and for a prefecture or national code the
/// second factor's current code in `X-TOTP` (see [`issue_scoped_code`]).
pub fn with_code(request: reqwest::RequestBuilder, code: &str) -> reqwest::RequestBuilder {
    let request = request.bearer_auth(code);
    match second_factor_now(code, 0) {
        Some(totp) => request.header("x-totp", totp),
        None => request,
    }
}

/// The second-factor secret the tests give a prefecture or national code:
/// derived from the code, so that whoever holds the code in a test can
/// compute its six digits. `None` for a commune's code.
pub fn test_totp_secret(code: &str) -> Option<String> {
    use sha2::Digest;
    let parsed = decompte_core::AccessCode::parse(code)?;
    let supervisor = [
        decompte_core::auth::PREFECTURE_TAG,
        decompte_core::auth::NATIONAL_TAG,
    ]
    .contains(&parsed.tag());
    supervisor.then(|| {
        let digest = sha2::Sha256::digest(format!("decompte-test-totp:{}", parsed.hash()));
        decompte_app::second_factor::secret_of(&digest[..20])
    })
}

/// The six digits of `code`'s test second factor, `steps_ahead` steps of 30 s from now.
pub fn second_factor_now(code: &str, steps_ahead: i64) -> Option<String> {
    second_factor_at(code, Utc::now(), steps_ahead)
}

/// [`second_factor_now`] on a phone whose clock reads `now`.
pub fn second_factor_at(
    code: &str,
    now: chrono::DateTime<Utc>,
    steps_ahead: i64,
) -> Option<String> {
    let at = now + chrono::Duration::seconds(30 * steps_ahead);
    decompte_app::second_factor::code_at(&test_totp_secret(code)?, at)
}

/// Issues an access code for `role` (and `commune`) in `store`; returns the code.
pub async fn issue_code(store: &dyn Store, role: Role, commune: Option<&str>) -> String {
    issue_scoped_code(store, role, commune, &[]).await
}

/// Issues an access code for `role`, `commune` and `departements` (a
/// prefecture's scope) in `store`; returns the code.
pub async fn issue_scoped_code(
    store: &dyn Store,
    role: Role,
    commune: Option<&str>,
    departements: &[&str],
) -> String {
    issue_labelled_code(store, role, commune, departements, "test").await
}

/// The same, with the label people know the code by; a prefecture's or the
/// ministry's code with its test second factor enrolled.
pub async fn issue_labelled_code(
    store: &dyn Store,
    role: Role,
    commune: Option<&str>,
    departements: &[&str],
    label: &str,
) -> String {
    let commune = commune.map(|c| CommuneCode::parse(c).expect("commune code"));
    let new = Issue {
        departements: departements.iter().map(|d| (*d).to_owned()).collect(),
        ..Issue::new(role, commune, label)
    };
    let (credential, code) = issue_credential(store, new, None, Utc::now())
        .await
        .expect("issue a credential");
    let code = code.display_grouped();
    // A supervisor's second factor, enrolled with the secret its code gives.
    if let Some(secret) = test_totp_secret(&code) {
        let enrolled = store
            .begin_second_factor(&credential.id, &secret)
            .await
            .expect("begin the enrolment")
            && store
                .confirm_second_factor(&credential.id, &secret, 0, &[], Utc::now())
                .await
                .expect("confirm the enrolment");
        assert!(enrolled, "the test second factor is enrolled");
    }
    code
}

/// The CSRF token in the first form of a page.
pub fn csrf_of(html: &str) -> String {
    hidden_field(html, "csrf")
}

/// The value of the first field named `name` of a page (a hidden one, say).
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no {name} in page: {html}"));
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A full report body for the API.
/// A report's API body. It confirms in advance any plausibility warning (a
/// test's figures are what the test needs, not what a commune would see);
/// the warnings' own tests build theirs without.
pub fn report_body(commune: &str, date: &str, counts: [u32; 5]) -> Value {
    serde_json::json!({
        "confirm": true,
        "commune": commune,
        "date": date,
        "counts": {
            "hopital": counts[0],
            "ehpad": counts[1],
            "esms": counts[2],
            "domicile": counts[3],
            "autre": counts[4],
        },
    })
}

/// The text of a PDF, by poppler's `pdftotext` (Debian `poppler-utils`,
/// installed by `scripts/tools.sh`).
pub fn pdf_text(pdf: &[u8]) -> String {
    let folder = tempfile::tempdir().expect("folder");
    let path = folder.path().join("document.pdf");
    std::fs::write(&path, pdf).expect("write the PDF");
    let output = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "pdftotext is missing ({e}): run ./scripts/tools.sh, which installs poppler-utils"
            )
        });
    assert!(output.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A checker of `tests/infra/.venv` (cfn-lint, checkov, kubernetes-validate,
/// its Python); fails, saying how to install it, if absent.
pub fn infra_tool(name: &str) -> std::process::Command {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("infra/.venv/bin")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run ./scripts/tools.sh, which installs the infrastructure checkers",
        path.display()
    );
    std::process::Command::new(path)
}

/// Runs `command` (`what`, for messages); returns its output, standard
/// output then error; fails with it if the program failed.
pub fn run_tool(command: &mut std::process::Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

/// Fails unless checkov's `report` ran `at_least` checks and none failed.
pub fn assert_checkov_clean(report: &str, at_least: u32) {
    let passed: u32 = report
        .split("Passed checks: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("checkov ran no check:\n{report}"));
    assert!(passed >= at_least, "checkov checked too little:\n{report}");
    assert!(report.contains("Failed checks: 0,"), "{report}");
}
