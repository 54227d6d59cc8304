//! A small W3C WebDriver client over HTTP, to drive headless Chromium through
//! ChromeDriver (Debian's `chromium` and `chromium-driver`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver process on a free loopback port, stopped on drop.
pub struct ChromeDriver {
    child: Child,
    base: String,
    client: reqwest::Client,
    _profiles: tempfile::TempDir,
}

impl ChromeDriver {
    /// Starts ChromeDriver, or fails saying how to install it.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port for ChromeDriver");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): run ./scripts/test.sh, \
                which installs Debian's chromium and chromium-driver"
                )
            });
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _profiles: tempfile::tempdir().expect("profile folder"),
        };
        for _ in 0..100 {
            if let Ok(response) = driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                if response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool())
                    == Some(true)
                {
                    return driver;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready on port {port} within 10 s");
    }

    /// Opens a headless Chromium; with `javascript: false`, pages run no script at all.
    pub async fn session(&self, javascript: bool) -> Session {
        let chromium = which("chromium")
            .unwrap_or_else(|| panic!("chromium is not installed: run ./scripts/test.sh"));
        let profile = tempfile::tempdir_in(self._profiles.path())
            .expect("profile")
            .keep();
        let mut options = json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                // Overlay scrollbars, as on a phone: they take no width from the page.
                "--hide-scrollbars",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=412,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let body = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let answer: Value = self
            .client
            .post(format!("{}/session", self.base))
            .json(&body)
            .send()
            .await
            .expect("new WebDriver session")
            .json()
            .await
            .expect("WebDriver answer");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {answer}"))
            .to_owned();
        let session = Session {
            base: format!("{}/session/{id}", self.base),
            client: self.client.clone(),
        };
        session
            .call(
                "POST",
                "/timeouts",
                json!({"script": 60_000, "pageLoad": 60_000}),
            )
            .await;
        session
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of `program` on the PATH.
pub fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .map(|path| path.display().to_string())
}

/// One browser window.
pub struct Session {
    base: String,
    client: reqwest::Client,
}

impl Session {
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url).json(&body),
        };
        let answer: Value = request
            .send()
            .await
            .expect("WebDriver call")
            .json()
            .await
            .expect("WebDriver answer");
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.call("GET", "/source", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page holds `text` (a click that submits a form returns
    /// before the next page has loaded) and returns the page.
    pub async fn wait_for_text(&self, text: &str) -> String {
        let mut page = String::new();
        for _ in 0..150 {
            page = self.source().await;
            if page.contains(text) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no « {text} » in the page after 15 s:\n{page}");
    }

    /// Waits until the browser is on a page whose path starts with `path`
    /// (a text shown on the page before and after a click is no sign that
    /// the next page has loaded).
    pub async fn wait_for_path(&self, path: &str) {
        let mut url = String::new();
        for _ in 0..150 {
            url = self.url().await;
            let after_host = url.splitn(4, '/').nth(3).unwrap_or_default();
            if format!("/{after_host}").starts_with(path) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not on {path} after 15 s, but on {url}");
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> String {
        let element = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        element[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    pub async fn clear(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/clear"), json!({}))
            .await;
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Runs an asynchronous script; it calls its last argument with the result.
    pub async fn execute_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// A command of the DevTools protocol (through ChromeDriver).
    pub async fn devtools(&self, command: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    /// Shows pages at `width` × `height` CSS pixels. Not as a "mobile"
    /// device: its browser would widen the layout to fit a page too wide and
    /// zoom out, which hides the fault a test looks for.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    }

    /// The whole page as a PNG image, beyond the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }

    pub async fn quit(self) {
        self.call("DELETE", "", Value::Null).await;
    }
}
