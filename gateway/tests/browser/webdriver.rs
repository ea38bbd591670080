//! Just enough of the W3C WebDriver protocol to drive a headless Chromium
//! through `chromedriver`: one HTTP/1.1 request per command, JSON in and
//! out.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a wait for the page lasts before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The element key of the WebDriver protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and its driver are, or why they are missing.
pub fn find_tools() -> Result<(String, String), String> {
    let browser = std::env::var("CHROMIUM").ok().or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| which(name))
    });
    let driver = std::env::var("CHROMEDRIVER")
        .ok()
        .or_else(|| which("chromedriver"));
    match (browser, driver) {
        (Some(browser), Some(driver)) => Ok((browser, driver)),
        _ => Err("chromium and chromedriver are not installed \
                  (apt-get install chromium chromium-driver)"
            .into()),
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .map(|path| path.to_string_lossy().into_owned())
    })
}

/// A running `chromedriver`, killed when dropped.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it is ready.
    pub async fn start(driver: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok((200, status)) = call(driver.addr, "GET", "/status", None).await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver never got ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless browser session, `width` pixels wide, in the light or
    /// dark color scheme.
    pub async fn session(&self, browser: &str, width: u32, dark: bool) -> Session {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},900"),
        ];
        if dark {
            args.push("--force-dark-mode".to_owned());
            args.push("--blink-settings=preferredColorScheme=0".to_owned());
        }
        // A window is at least 500 pixels wide: narrower is a phone's
        // screen, emulated.
        let mut options = json!({"binary": browser, "args": args});
        if width < 500 {
            options["mobileEmulation"] =
                json!({"deviceMetrics": {"width": width, "height": 740, "pixelRatio": 1}});
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let (status, answer) = call(self.addr, "POST", "/session", Some(&capabilities))
            .await
            .expect("chromedriver answers");
        assert_eq!(status, 200, "no session: {answer}");
        let id = answer["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Session {
            addr: self.addr,
            id,
        }
    }
}

/// One browser session.
pub struct Session {
    addr: SocketAddr,
    id: String,
}

impl Session {
    async fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        let (status, answer) = call(self.addr, method, &path, body)
            .await
            .expect("chromedriver answers");
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["value"].clone()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body) with `args` in the page.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script`, whose last argument is the callback it calls with
    /// its answer.
    pub async fn run_async(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/async",
            Some(&json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until the expression `js` is truthy in the page; answers its
    /// value.
    pub async fn wait_for(&self, js: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let script = format!("return ({js});");
        loop {
            let value = self.run(&script, json!([])).await;
            if !(value.is_null() || value == false || value == 0 || value == "") {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed `{js}`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element `css` selects.
    pub async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                "POST",
                "/element",
                Some(&json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().expect("an element").to_owned()
    }

    /// Types `text` into the element `css` selects, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({"text": text})),
        )
        .await;
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        )
        .await;
    }

    /// Accepts the open `confirm` dialog.
    pub async fn accept_alert(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let path = format!("/session/{}/alert/accept", self.id);
            if let Ok((200, _)) = call(self.addr, "POST", &path, Some(&json!({}))).await {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "no dialog opened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let value = self.command("GET", "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64"))
            .expect("a PNG")
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let path = format!("/session/{}", self.id);
        let _ = call(self.addr, "DELETE", &path, None).await;
    }
}

/// One WebDriver request on a fresh connection.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    // chromedriver keeps the connection open whatever the request says:
    // the answer ends after its Content-Length.
    let read = async {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    let body = answer[end + 4..end + 4 + length].to_vec();
                    return Ok::<_, std::io::Error>((head, body));
                }
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("chromedriver closed the connection"));
            }
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    // Starting a browser is the slowest command.
    let (head, body) = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .map_err(|_| std::io::Error::other("chromedriver timed out"))??;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, value))
}
