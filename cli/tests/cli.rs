//! The `decompte` command, run as a newcomer would run it.

use std::path::Path;
use std::process::{Command, Output};

fn decompte(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_decompte"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run decompte")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Issues a commune's code with `--json`; returns the answer.
fn issue_commune_code(data_dir: &Path, commune: &str) -> serde_json::Value {
    let issued = decompte(
        data_dir,
        &[
            "credentials",
            "issue",
            "--role",
            "commune",
            "--commune",
            commune,
            "--json",
        ],
    );
    assert!(issued.status.success(), "{}", stderr(&issued));
    serde_json::from_str(&stdout(&issued)).expect("json")
}

fn assert_stderr(output: &Output, expected: &str) {
    let text = stderr(output);
    assert!(text.contains(expected), "no « {expected} » in: {text}");
}

#[test]
fn credentials_are_issued_listed_and_revoked_without_storing_the_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = issue_commune_code(dir.path(), "56260");
    let code = json["access_code"].as_str().expect("code").to_owned();
    assert!(code.starts_with("56260-"), "{code}");
    assert_eq!(
        code.len(),
        6 + 28 + 6,
        "the commune, then seven groups of four"
    );
    assert_eq!(json["role"], "commune");
    assert_eq!(json["commune"], "56260");
    let id = json["id"].as_str().expect("id").to_owned();

    let list = decompte(dir.path(), &["credentials", "list", "--json"]);
    let listed = stdout(&list);
    assert!(
        listed.contains(&id) && listed.contains("Mairie de Vannes"),
        "{listed}"
    );
    assert!(!listed.contains(&code), "the list never shows a code");
    let database = std::fs::read(dir.path().join("decompte.sqlite")).expect("database");
    let needle = code.replace('-', "")[5..].to_owned();
    assert!(
        !database
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()),
        "the code is stored only as a hash"
    );

    assert!(decompte(dir.path(), &["credentials", "revoke", &id])
        .status
        .success());
    let again = decompte(dir.path(), &["credentials", "revoke", &id]);
    assert!(!again.status.success());
    assert!(stdout(&decompte(dir.path(), &["credentials", "list"])).contains("révoqué"));

    let wrong = decompte(
        dir.path(),
        &[
            "credentials",
            "issue",
            "--role",
            "commune",
            "--commune",
            "29019",
        ],
    );
    assert!(!wrong.status.success());
    assert_stderr(&wrong, "n'est pas dans le périmètre");
    let missing = decompte(dir.path(), &["credentials", "issue", "--role", "commune"]);
    assert_stderr(&missing, "--commune");
}

#[test]
fn prefecture_codes_are_scoped_to_departements_and_the_ministry_has_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issue = |args: &[&str]| {
        let mut all = vec!["--departements", "56,29,974", "credentials", "issue"];
        all.extend_from_slice(args);
        decompte(dir.path(), &all)
    };
    let brittany = issue(&["--role", "prefecture", "--scope", "56,29", "--json"]);
    assert!(brittany.status.success(), "{}", stderr(&brittany));
    let json: serde_json::Value = serde_json::from_str(&stdout(&brittany)).expect("json");
    assert_eq!(json["role"], "prefecture");
    assert_eq!(json["departements"], serde_json::json!(["29", "56"]));
    assert!(json["access_code"]
        .as_str()
        .is_some_and(|c| c.starts_with("PREF-")));

    let national = issue(&["--role", "national", "--json"]);
    assert!(national.status.success(), "{}", stderr(&national));
    let json: serde_json::Value = serde_json::from_str(&stdout(&national)).expect("json");
    assert_eq!(json["role"], "national");
    assert!(json["access_code"]
        .as_str()
        .is_some_and(|c| c.starts_with("NATL-")));

    let outside = issue(&["--role", "prefecture", "--scope", "35"]);
    assert!(!outside.status.success());
    assert_stderr(
        &outside,
        "le département 35 n'est pas servi par ce déploiement",
    );
    let misplaced = issue(&["--role", "commune", "--commune", "56260", "--scope", "56"]);
    assert!(!misplaced.status.success());
    assert_stderr(
        &misplaced,
        "les départements ne valent que pour un code de préfecture",
    );
    let listed = stdout(&decompte(
        dir.path(),
        &["--departements", "56,29,974", "credentials", "list"],
    ));
    assert!(listed.contains("29,56"), "{listed}");
}

#[test]
fn import_export_and_publish_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("in.csv");
    // The format decompte published before (a row per setting) still imports.
    let mut long = String::from("date,code_commune,nom_commune,lieu,deces\n");
    for (lieu, n) in [
        ("hopital", 2),
        ("ehpad", 1),
        ("esms", 0),
        ("domicile", 0),
        ("autre", 0),
    ] {
        long.push_str(&format!("2020-04-01,56260,Vannes,{lieu},{n}\n"));
    }
    std::fs::write(&csv, &long).expect("write csv");
    let import = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert!(import.status.success(), "{}", stderr(&import));
    assert_stderr(&import, "1 créée(s), 0 corrigée(s), 0 inchangée(s)");

    // The published format, a column per setting, is what export writes.
    let header = "date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total\n";
    let text = format!("{header}2020-04-01,56260,Vannes,2,1,0,0,0,3\n");
    assert_eq!(stdout(&decompte(dir.path(), &["export"])), text);
    // The same file again changes nothing; a lower figure becomes a correction with a reason.
    std::fs::write(&csv, &text).expect("write csv");
    let again = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert_stderr(&again, "0 créée(s), 0 corrigée(s), 1 inchangée(s)");
    let lower = format!("{header}2020-04-01,56260,Vannes,1,1,0,0,0,2\n");
    std::fs::write(&csv, &lower).expect("write csv");
    let corrected = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert_stderr(&corrected, "0 créée(s), 1 corrigée(s)");
    assert_eq!(stdout(&decompte(dir.path(), &["export"])), lower);

    // A file with one bad line imports nothing.
    std::fs::write(
        &csv,
        format!("{lower}2020-04-02,56260,Vannes,-1,0,0,0,0,-1\n"),
    )
    .expect("write csv");
    let refused = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert!(!refused.status.success());
    assert_stderr(&refused, "rien n'est importé");
    assert_eq!(stdout(&decompte(dir.path(), &["export"])), lower);
    // The same commune and day twice, even far apart, is refused.
    std::fs::write(
        &csv,
        format!(
            "{lower}2020-04-02,56260,Vannes,1,0,0,0,0,1\n2020-04-01,56260,Vannes,7,0,0,0,0,7\n"
        ),
    )
    .expect("write csv");
    let twice = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert!(!twice.status.success());
    assert_stderr(
        &twice,
        "ligne 4 : 56260 le 2020-04-01 figure deux fois dans le fichier",
    );
    assert_eq!(stdout(&decompte(dir.path(), &["export"])), lower);
    // A column that is no setting is refused, saying which.
    std::fs::write(
        &csv,
        "date,code_commune,nom_commune,hopital,cimetiere\n2020-04-03,56260,Vannes,1,1\n",
    )
    .expect("write csv");
    let unknown = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert!(!unknown.status.success());
    assert_stderr(&unknown, "colonne inconnue `cimetiere`");

    let publish = decompte(dir.path(), &["publish"]);
    assert!(publish.status.success(), "{}", stderr(&publish));
    let site_csv =
        std::fs::read_to_string(dir.path().join("site/donnees/deces.csv")).expect("site csv");
    assert_eq!(site_csv, lower);
    assert!(dir.path().join("site/communes/56260.html").exists());
    assert!(dir.path().join("site/donnees/deces.csv.gz").exists());
    let second = decompte(dir.path(), &["publish"]);
    assert_stderr(&second, "0 fichier(s) écrit(s)");
}

/// A setting key may begin with a dash (`-x`), which a spreadsheet would run as
/// a formula: every CSV writes it as `'-x`, and the import reads it back.
#[test]
fn csv_cells_never_run_as_formulas_and_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_settings = |args: &[&str]| {
        let mut all = vec!["--settings=-moins=Lieu piégé,hopital=Hôpital"];
        all.extend_from_slice(args);
        decompte(dir.path(), &all)
    };
    let csv = dir.path().join("in.csv");
    std::fs::write(
        &csv,
        "date,code_commune,nom_commune,'-moins,hopital\n2020-04-01,56260,Vannes,3,1\n",
    )
    .expect("write csv");
    let import = with_settings(&["import", csv.to_str().expect("path")]);
    assert!(import.status.success(), "{}", stderr(&import));
    let export = with_settings(&["export"]);
    let text = stdout(&export);
    assert!(
        text.starts_with("date,code_commune,nom_commune,'-moins,hopital,total\n"),
        "{text}"
    );
    assert!(
        !text.lines().any(|line| line
            .split(',')
            .any(|cell| cell.starts_with(['=', '+', '-', '@']))),
        "{text}"
    );
    // What was exported imports back as it is: nothing changes.
    std::fs::write(&csv, &text).expect("write csv");
    let again = with_settings(&["import", csv.to_str().expect("path")]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_stderr(&again, "0 créée(s), 0 corrigée(s), 1 inchangée(s)");
}

#[test]
fn help_is_there_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["credentials", "issue", "--help"],
        vec!["import", "--help"],
    ] {
        let output = decompte(dir.path(), &args);
        assert!(output.status.success());
        assert!(stdout(&output).contains("Usage"), "{args:?}");
    }
    assert!(stdout(&decompte(dir.path(), &["serve", "--help"])).contains("DECOMPTE_LISTEN"));
}

/// The demonstration never reaches production: it listens on loopback only,
/// and refuses a store that holds real reports.
#[test]
fn the_demonstration_stays_away_from_production() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exposed = decompte(dir.path(), &["serve", "--demo", "--listen", "0.0.0.0:0"]);
    assert!(!exposed.status.success());
    assert_stderr(&exposed, "boucle locale");

    let csv = dir.path().join("in.csv");
    let text = "date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total\n\
                2020-04-01,56260,Vannes,1,1,1,1,1,5\n";
    std::fs::write(&csv, text).expect("write csv");
    let import = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert!(import.status.success(), "{}", stderr(&import));
    let demo = decompte(dir.path(), &["serve", "--demo", "--listen", "127.0.0.1:0"]);
    assert!(!demo.status.success());
    assert_stderr(
        &demo,
        "refuse une base qui contient d'autres déclarations que celles de démonstration",
    );
    assert_eq!(stdout(&decompte(dir.path(), &["export"])), text);
}

/// The data folder and the database are the owner's only.
#[cfg(unix)]
#[test]
fn the_data_folder_and_the_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("donnees");
    let issued = decompte(&dir, &["credentials", "issue", "--role", "prefecture"]);
    assert!(issued.status.success(), "{}", stderr(&issued));
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("decompte.sqlite")), 0o600);
}

/// One HTTP/1.1 request on its own connection; the whole answer as text.
fn http(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

fn between<'a>(text: &'a str, before: &str, after: &str) -> &'a str {
    let start = text
        .find(before)
        .map(|i| i + before.len())
        .unwrap_or_else(|| panic!("no « {before} » in {text}"));
    let end = text[start..].find(after).map_or(text.len(), |i| start + i);
    &text[start..end]
}

/// With every log on (`RUST_LOG=trace`), `decompte serve` never writes an
/// access code, a session id, a CSRF token or a second factor, and names
/// every security event: logins, reports recorded, publications asked,
/// refusals.
#[test]
fn secrets_never_reach_the_logs_even_at_trace_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = issue_commune_code(dir.path(), "56260");
    let code = json["access_code"].as_str().expect("code").to_owned();
    let cell = decompte(
        dir.path(),
        &[
            "credentials",
            "issue",
            "--role",
            "prefecture",
            "--second-factor",
            "--json",
        ],
    );
    let cell: serde_json::Value = serde_json::from_str(&stdout(&cell)).expect("json");
    let prefecture = cell["access_code"].as_str().expect("code").to_owned();
    let totp_secret = cell["totp_secret"].as_str().expect("secret").to_owned();
    let recovery = cell["recovery_codes"][0]
        .as_str()
        .expect("recovery")
        .to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let log = dir.path().join("serve.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_decompte"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--old-day-after",
            "0",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("serve");
    wait_for_port(port);
    let page = http(
        port,
        "GET /connexion HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let login_cookie = between(&page, "decompte_login=", ";").to_owned();
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"").to_owned();
    let body = format!("csrf={csrf}&code={code}");
    let answer = http(
        port,
        &format!(
            "POST /connexion HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Cookie: decompte_login={login_cookie}\r\nSec-Fetch-Site: same-origin\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let session = between(&answer, "decompte_session=", ";").to_owned();
    let me = http(
        port,
        &format!(
            "GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Authorization: Bearer {code}\r\nCookie: decompte_session={session}\r\n\r\n"
        ),
    );
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    // The mairie asks for what only the prefecture sees: refused, and logged.
    let refused = http(
        port,
        &format!(
            "GET /api/v1/completeness?date=2020-04-01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Connection: close\r\nAuthorization: Bearer {code}\r\n\r\n"
        ),
    );
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    // The prefecture records a report and asks for a publication.
    let totp =
        decompte_app::second_factor::code_at(&totp_secret, chrono::Utc::now()).expect("a code");
    let post = |path: &str, body: &str| {
        http(
            port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                 Authorization: Bearer {prefecture}\r\nX-TOTP: {totp}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let recorded = post(
        "/api/v1/reports",
        r#"{"commune":"56260","date":"2020-04-01","counts":{"hopital":1,"ehpad":0,"esms":0,"domicile":0,"autre":0}}"#,
    );
    assert!(recorded.starts_with("HTTP/1.1 201"), "{recorded}");
    let asked = post("/api/v1/publications", r#"{"reason":"test"}"#);
    assert!(asked.starts_with("HTTP/1.1 202"), "{asked}");
    let _ = server.kill();
    let _ = server.wait();
    // The publication at start is on record, for the prefecture page.
    let store = decompte_store::SqliteStore::open(&dir.path().join("decompte.sqlite")).expect("db");
    let publications = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(decompte_store::Publications::publications(&store, 10))
        .expect("publications");
    assert!(
        publications
            .iter()
            .any(|p| p.reason == "Démarrage du service" && p.requested_by == "automatique"),
        "{publications:?}"
    );
    let logs = std::fs::read_to_string(&log).expect("logs");
    let plain = without_colours(&logs);
    for event in [
        "event=\"login\"",
        "event=\"access_refused\"",
        "event=\"report_recorded\"",
        "event=\"publication_requested\"",
    ] {
        assert!(plain.contains(event), "no {event} in the logs: {plain}");
    }
    let secret = code.replace('-', "")[5..].to_owned();
    for (what, needle) in [
        ("the access code", code.as_str()),
        ("the code's secret", secret.as_str()),
        ("the session id", session.as_str()),
        ("the CSRF token", csrf.as_str()),
        ("the login token", login_cookie.as_str()),
        ("the prefecture's code", prefecture.as_str()),
        ("the TOTP secret", totp_secret.as_str()),
        ("a recovery code", recovery.as_str()),
        ("the second factor's header", "X-TOTP"),
        ("the second factor's header", "x-totp"),
    ] {
        assert!(!logs.contains(needle), "{what} is in the logs");
    }
}

/// `text` without its terminal colour sequences (`ESC [ … m`).
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for skipped in chars.by_ref() {
                if skipped == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn supervisor_codes_expire_can_be_enrolled_at_issue_and_communes_issued_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issue = |args: &[&str]| {
        let mut all = vec!["credentials", "issue"];
        all.extend_from_slice(args);
        decompte(dir.path(), &all)
    };
    // A prefecture code ends after 90 days, unless told otherwise.
    let cell = issue(&["--role", "prefecture", "--second-factor", "--json"]);
    assert!(cell.status.success(), "{}", stderr(&cell));
    let json: serde_json::Value = serde_json::from_str(&stdout(&cell)).expect("json");
    let expires = json["expires_at"].as_str().expect("an end");
    let days = (chrono::DateTime::parse_from_rfc3339(expires).expect("an instant")
        - chrono::Utc::now().fixed_offset())
    .num_days();
    assert!((89..=90).contains(&days), "{expires}");
    // Enrolled at issue: the secret gives the codes a phone would show.
    let secret = json["totp_secret"].as_str().expect("a TOTP secret");
    assert!(decompte_app::second_factor::code_at(secret, chrono::Utc::now()).is_some());
    assert_eq!(
        json["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "{json}"
    );
    let mayor = issue(&["--role", "commune", "--commune", "56260", "--second-factor"]);
    assert!(!mayor.status.success());
    assert_stderr(
        &mayor,
        "--second-factor ne vaut que pour --role prefecture ou national",
    );
    // A commune code never ends unless asked, and lasts at least a day.
    let over = issue(&[
        "--role",
        "commune",
        "--commune",
        "56121",
        "--expires-in-days",
        "0",
    ]);
    assert!(!over.status.success());
    assert_stderr(&over, "donnez au moins 1 jour : vérifiez --expires-in-days");
    // A refusal names the option to look at again.
    let elsewhere = issue(&["--role", "commune", "--commune", "29019"]);
    assert!(!elsewhere.status.success());
    assert_stderr(
        &elsewhere,
        "vérifiez --commune, ou les --departements du déploiement",
    );
    // Every commune at once, one JSON line each.
    let all = issue(&["--role", "commune", "--every-commune", "--json"]);
    assert!(all.status.success(), "{}", stderr(&all));
    let lines: Vec<serde_json::Value> = stdout(&all)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 249, "every commune of Morbihan");
    assert!(lines.iter().all(|l| l["access_code"]
        .as_str()
        .zip(l["commune"].as_str())
        .is_some_and(|(code, commune)| code.starts_with(commune))));
}

/// The text of a PDF, by poppler's `pdftotext` (Debian `poppler-utils`).
fn pdf_text(path: &Path) -> String {
    let output = Command::new("pdftotext")
        .args(["-layout"])
        .arg(path)
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

/// The access codes written in a text, each as its commune's.
fn codes_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.len() == 40 && word.matches('-').count() == 7)
        .map(str::to_owned)
        .collect()
}

#[test]
fn access_letters_give_each_mairie_its_code_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let letters = dir.path().join("lettres.pdf");
    let url = "https://declarer.morbihan.example";
    let run = |args: &[&str]| {
        let mut all = vec![
            "--public-url",
            url,
            "credentials",
            "issue",
            "--role",
            "commune",
        ];
        all.extend_from_slice(args);
        decompte(dir.path(), &all)
    };
    // Vannes already has a code: every other commune gets a letter.
    issue_commune_code(dir.path(), "56260");
    let written = run(&[
        "--every-commune",
        "--letters",
        letters.to_str().expect("path"),
    ]);
    assert!(written.status.success(), "{}", stderr(&written));
    assert!(
        stdout(&written).is_empty(),
        "a code is shown in its letter only"
    );
    assert_stderr(&written, "248 lettre(s) d'accès écrite(s)");
    let text = pdf_text(&letters);
    let codes = codes_in(&text);
    // Sentences run over lines: compare with single spaces.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(codes.len(), 248, "one code a letter");
    assert!(!text.contains("Maire de Vannes"), "Vannes had its code");
    for expected in [
        "Maire d'Allaire (56001)",
        "https://declarer.morbihan.example/connexion",
        "https://declarer.morbihan.example/aide",
        "Aucun décès ce jour",
        "avant 14 heures",
        "EHPAD",
        "Préfecture du Morbihan",
    ] {
        assert!(text.contains(expected), "no « {expected} » in the letters");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&letters)
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the letters hold codes: owner only");
    // Each code is its commune's, and opens it.
    let allaire = codes
        .iter()
        .find(|c| c.starts_with("56001-"))
        .expect("Allaire's code")
        .clone();
    let hash = decompte_core::AccessCode::parse(&allaire)
        .expect("a code")
        .hash();
    let store = decompte_store::SqliteStore::open(&dir.path().join("decompte.sqlite")).expect("db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let found = runtime
        .block_on(decompte_store::Access::credential_by_hash(&store, &hash))
        .expect("read")
        .expect("the code is stored hashed");
    assert_eq!(
        found.commune.map(|c| c.to_string()).as_deref(),
        Some("56001")
    );
    assert_eq!(found.label, "Mairie d'Allaire");

    // A new letter for Allaire replaces its code.
    let again = dir.path().join("allaire.pdf");
    let replaced = run(&[
        "--commune",
        "56001",
        "--letters",
        again.to_str().expect("path"),
    ]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    let fresh = codes_in(&pdf_text(&again));
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0], allaire);
    let old = runtime
        .block_on(decompte_store::Access::credential_by_hash(&store, &hash))
        .expect("read")
        .expect("still listed");
    assert!(old.revoked_at.is_some(), "the previous code is revoked");
    // Without the address to give, no letter.
    let nowhere = decompte(
        dir.path(),
        &[
            "credentials",
            "issue",
            "--role",
            "commune",
            "--commune",
            "56002",
            "--letters",
            "x.pdf",
        ],
    );
    assert!(!nowhere.status.success());
    assert_stderr(&nowhere, "--letters demande --public-url");
}

#[test]
fn the_morning_report_is_written_as_a_pdf_and_says_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("jour.csv");
    std::fs::write(
        &csv,
        "date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total\n\
         2020-04-05,56260,Vannes,2,1,0,0,0,3\n",
    )
    .expect("csv");
    let imported = decompte(dir.path(), &["import", csv.to_str().expect("path")]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let pdf = dir.path().join("point.pdf");
    let written = decompte(
        dir.path(),
        &[
            "report",
            "--date",
            "2020-04-05",
            "--pdf",
            pdf.to_str().expect("path"),
        ],
    );
    assert!(written.status.success(), "{}", stderr(&written));
    assert_stderr(&written, "Point de situation du 05/04/2020 écrit dans");
    let text = pdf_text(&pdf);
    for expected in [
        "Point de situation du 05/04/2020 · Morbihan (56)",
        "Hôpital ou clinique : 2 le jour",
        "1 commune sur 249 a déclaré le 05/04/2020",
    ] {
        assert!(text.contains(expected), "no « {expected} » in:\n{text}");
    }
    // Nothing asked, or nobody to send to: said, in a failure.
    let nothing = decompte(dir.path(), &["report"]);
    assert!(!nothing.status.success());
    assert_stderr(&nothing, "--pdf FICHIER, --send");
    let nobody = decompte(dir.path(), &["report", "--send"]);
    assert!(!nobody.status.success());
    assert_stderr(&nobody, "--report-to");
}

/// Waits until `decompte serve` listens on `port` (30 s at most).
fn wait_for_port(port: u16) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 30, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// SIGTERM (what a process manager sends before it stops a replica): the
/// server stops accepting, finishes, and exits cleanly.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut server = Command::new(env!("CARGO_BIN_EXE_decompte"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    wait_for_port(port);
    let ready = http(
        port,
        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let sent = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let asked = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed().as_secs() < 15,
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// `store copy` carries the départements served: a source holding others
/// is refused (they would stay behind), and copied once they are named.
#[test]
fn a_copy_leaves_no_departement_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source");
    let csv = dir.path().join("finistere.csv");
    std::fs::write(
        &csv,
        "date,code_commune,nom_commune,hopital,ehpad,esms,domicile,autre,total\n\
         2020-04-01,29019,Brest,2,0,0,1,0,3\n",
    )
    .expect("csv");
    let csv_text = csv.display().to_string();
    let imported = decompte(&source, &["--departements", "29,56", "import", &csv_text]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let from = format!("sqlite:{}", source.join("decompte.sqlite").display());
    let to = format!("sqlite:{}", dir.path().join("copie.sqlite").display());

    // The default départements (56): refused, nothing written.
    let refused = decompte(dir.path(), &["store", "copy", "--from", &from, "--to", &to]);
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(said.contains("départements 29"), "{said}");
    assert!(said.contains("Rien n'a été copié"), "{said}");

    let copied = decompte(
        dir.path(),
        &[
            "--departements",
            "29,56",
            "store",
            "copy",
            "--from",
            &from,
            "--to",
            &to,
        ],
    );
    assert!(copied.status.success(), "{}", stderr(&copied));
    assert!(
        stderr(&copied).contains("29 : 1 version(s)"),
        "{}",
        stderr(&copied)
    );
}
