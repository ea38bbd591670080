//! The dashboard in a real browser: headless Chromium driven through
//! `chromedriver` (Debian's `chromium` and `chromium-driver`) against the
//! built `hookroom` binary. Without them each test says so loudly and
//! skips, except under `CI=true`, where it fails. The accessibility audit
//! also needs axe-core from npm (`AXE_CORE_JS`, or `npm install --prefix
//! target/npm axe-core`).
//!
//! Screenshots of each main view are written to `target/browser/`.

#[allow(unreachable_pub, dead_code)]
#[path = "../gateway/support.rs"]
mod support;
#[allow(unreachable_pub, dead_code)]
mod webdriver;

use std::path::PathBuf;

use serde_json::{Value, json};

use support::{ADMIN, GITHUB_SECRET, Gateway, TOKEN, api, request};
use webdriver::{Driver, Session};

/// The browser and its driver, or `None` after a loud skip (a failure
/// under `CI=true`).
fn tools(test: &str) -> Option<(String, String)> {
    match webdriver::find_tools() {
        Ok(tools) => Some(tools),
        Err(why) => skip(test, &why),
    }
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {why} (CI=true: a missing tool fails the run)");
    }
    eprintln!("\n*** SKIPPED {test}: {why} ***\n");
    None
}

/// The cargo target directory this test was built in.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/debug/deps/browser-<hash>
    exe.ancestors().nth(3).expect("a target dir").to_path_buf()
}

async fn save_screenshot(session: &Session, name: &str) {
    let dir = target_dir().join("browser");
    std::fs::create_dir_all(&dir).expect("target/browser");
    std::fs::write(dir.join(format!("{name}.png")), session.screenshot().await)
        .expect("a screenshot written");
}

/// A gateway with the test tokens, a browser `width` pixels wide, and the
/// page signed in with `token`.
async fn open(browser: &str, driver: &Driver, width: u32, token: &str) -> (Gateway, Session) {
    let gateway = Gateway::start(&[]);
    let session = driver.session(browser, width, false).await;
    sign_in(&session, &gateway, token).await;
    (gateway, session)
}

async fn sign_in(session: &Session, gateway: &Gateway, token: &str) {
    session
        .goto(&format!("http://{}/dashboard/", gateway.addr))
        .await;
    session.type_into("#token", token).await;
    session.click("#signin-form button[type=submit]").await;
    session
        .wait_for("!document.getElementById('nav').hidden")
        .await;
}

/// Sends a signed GitHub `pull_request.opened` (routed to `pr-review`)
/// with `title` as the pull request's title; answers the task id.
async fn deliver(gateway: &Gateway, delivery: &str, title: &str) -> String {
    let body = json!({
        "action": "opened",
        "pull_request": {"number": 7, "title": title, "body": title,
                         "html_url": "https://github.com/o/r/pull/7"},
        "repository": {"full_name": "o/r"},
    })
    .to_string();
    let signature = hookroom::verify::github::sign(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let (status, text) = request(
        gateway.addr,
        &format!(
            "POST /webhook/github HTTP/1.1\r\nX-GitHub-Event: pull_request\r\n\
             X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}"
        ),
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    answer["task_id"].as_str().expect("a task id").to_owned()
}

/// Claims `task` as an agent; answers its claim token.
async fn claim(gateway: &Gateway, task: &str) -> String {
    let (status, claimed) = api(
        gateway.addr,
        &format!("POST /api/tasks/{task}/claim"),
        r#"{"agent_id":"agent-1","lease_seconds":60}"#,
    )
    .await;
    assert_eq!(status, 200, "{claimed}");
    claimed["claim_token"].as_str().unwrap().to_owned()
}

/// Reports the job's progress through the Jobs API, as an agent does.
async fn progress(gateway: &Gateway, task: &str, percentage: u32, step: &str) {
    let body = json!({"status": "RUNNING", "message": format!("at {percentage}"),
        "progress": {"percentage": percentage, "current_step": step,
                     "completed_steps": percentage / 25, "total_steps": 4}});
    let (status, answer) = api(
        gateway.addr,
        &format!("POST /api/jobs/{task}/status"),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_appears_live_in_its_room_and_its_progress_moves_the_bar() {
    let Some((browser, driver)) = tools("live task and progress") else {
        return;
    };
    let driver = Driver::start(&driver).await;
    let (gateway, session) = open(&browser, &driver, 1280, ADMIN).await;

    // The rooms view fills in live too.
    session
        .wait_for("document.getElementById('live').textContent === 'live'")
        .await;
    let first = deliver(&gateway, "d-live-0", "First pull request").await;
    session
        .wait_for("document.querySelector('#rooms [data-room=\"pr-review\"]')")
        .await;
    save_screenshot(&session, "rooms").await;

    session
        .goto(&format!("http://{}/dashboard/#tasks", gateway.addr))
        .await;
    session
        .wait_for("document.getElementById('live').textContent === 'live'")
        .await;
    session
        .wait_for(&format!(
            "document.querySelector('tr[data-task=\"{first}\"]')"
        ))
        .await;
    // A marker a reload would lose.
    session.run("window.__noReload = 42;", json!([])).await;
    let task = deliver(&gateway, "d-live-1", "Add the dashboard").await;
    let room = session
        .wait_for(&format!(
            "document.querySelector('tr[data-task=\"{task}\"]')?.dataset.room"
        ))
        .await;
    assert_eq!(room, "pr-review");
    let first_row = session
        .run(
            "return document.querySelector('#tasks tbody tr').dataset.task;",
            json!([]),
        )
        .await;
    assert_eq!(first_row, task.as_str(), "the newest task is on top");
    assert_eq!(
        session.run("return window.__noReload;", json!([])).await,
        42
    );

    // Claimed: the row's status changes without a reload.
    let token = claim(&gateway, &task).await;
    assert!(!token.is_empty());
    session
        .wait_for(&format!(
            "document.querySelector('tr[data-task=\"{task}\"] [data-status]')?.dataset.status === 'RUNNING'"
        ))
        .await;
    save_screenshot(&session, "tasks").await;

    // The task's page: the bar moves with each report, the history grows.
    session
        .goto(&format!("http://{}/dashboard/#task/{task}", gateway.addr))
        .await;
    session
        .wait_for("document.getElementById('job-progress')")
        .await;
    session
        .wait_for("document.getElementById('live').textContent === 'live'")
        .await;
    let history = number(
        &session
            .wait_for("document.querySelectorAll('#history li').length")
            .await,
    );
    progress(&gateway, &task, 40, "tests").await;
    let value = session
        .wait_for("document.getElementById('job-progress').value === 40 && 40")
        .await;
    assert_eq!(number(&value), 40.0);
    progress(&gateway, &task, 75, "review").await;
    session
        .wait_for("document.getElementById('job-progress').value === 75")
        .await;
    let step = session
        .run(
            "return document.getElementById('job-step').textContent;",
            json!([]),
        )
        .await;
    assert!(step.as_str().unwrap().contains("review"), "{step}");
    assert!(step.as_str().unwrap().contains("3/4 steps"), "{step}");
    let grown = number(
        &session
            .run(
                "return document.querySelectorAll('#history li').length;",
                json!([]),
            )
            .await,
    );
    assert!(grown >= history + 2.0, "history {history} -> {grown}");
    // Opening the task is navigation within the page: still no reload.
    assert_eq!(
        session.run("return window.__noReload;", json!([])).await,
        42
    );
    save_screenshot(&session, "task").await;
    session.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_and_script_in_a_payload_render_as_text() {
    let Some((browser, driver)) = tools("markup renders as text") else {
        return;
    };
    let driver = Driver::start(&driver).await;
    let (gateway, session) = open(&browser, &driver, 1280, ADMIN).await;
    let evil = r#"<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b id="injected">bold</b>"#;
    session
        .goto(&format!("http://{}/dashboard/#tasks", gateway.addr))
        .await;
    session
        .wait_for("document.getElementById('live').textContent === 'live'")
        .await;
    let task = deliver(&gateway, "d-evil", evil).await;
    session
        .wait_for(&format!(
            "document.querySelector('tr[data-task=\"{task}\"]')"
        ))
        .await;
    session
        .goto(&format!("http://{}/dashboard/#task/{task}", gateway.addr))
        .await;
    session.wait_for("document.getElementById('payload')").await;
    session
        .run("document.querySelector('details').open = true;", json!([]))
        .await;
    let checks = session
        .run(
            "return {
                title: document.getElementById('task-title').textContent,
                payload: document.getElementById('payload').textContent,
                pwned: window.__pwned === undefined ? null : window.__pwned,
                injected: document.getElementById('injected') !== null,
                images: document.querySelectorAll('main img').length,
                scripts: document.scripts.length,
            };",
            json!([]),
        )
        .await;
    assert_eq!(
        checks["title"],
        format!("[PR] opened #7: {evil}"),
        "{checks}"
    );
    assert!(
        checks["payload"]
            .as_str()
            .unwrap()
            .contains("<script>window.__pwned=2</script>")
    );
    assert_eq!(checks["pwned"], Value::Null, "a script ran: {checks}");
    assert_eq!(checks["injected"], false, "{checks}");
    assert_eq!(checks["images"], 0, "{checks}");
    assert_eq!(checks["scripts"], 1, "only app.js: {checks}");
    save_screenshot(&session, "markup").await;
    session.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_actions_and_the_api_refuses_them() {
    let Some((browser, driver)) = tools("viewer sees no actions") else {
        return;
    };
    let driver = Driver::start(&driver).await;
    // Where the server has no /api/whoami, the agent token is shown as a
    // viewer.
    let (gateway, session) = open(&browser, &driver, 360, TOKEN).await;
    let task = deliver(&gateway, "d-viewer", "Needs an answer").await;
    let token = claim(&gateway, &task).await;
    let ask = json!({"claim_token": token, "prompt": "Merge or <b>close</b>?"}).to_string();
    let (status, asked) = api(gateway.addr, &format!("POST /api/tasks/{task}/ask"), &ask).await;
    assert_eq!(status, 200, "{asked}");

    session
        .goto(&format!("http://{}/dashboard/#task/{task}", gateway.addr))
        .await;
    let prompt = session
        .wait_for("document.getElementById('input-prompt')?.textContent")
        .await;
    assert_eq!(prompt, "Merge or <b>close</b>?");
    let seen = session
        .run(
            "return {
                role: document.getElementById('role').textContent,
                form: document.getElementById('input-form') !== null,
                actions: [...document.querySelectorAll('main button')]
                    .filter((b) => b.offsetParent !== null)
                    .map((b) => b.textContent),
                deliveries: document.querySelector('nav a[href=\"#deliveries\"]').hidden,
                routes: document.querySelector('nav a[href=\"#routes\"]').hidden,
                width: window.innerWidth,
                overflow: document.documentElement.scrollWidth > window.innerWidth,
            };",
            json!([]),
        )
        .await;
    // The environment's agent token: an agent, which the page offers no
    // action either.
    assert_eq!(seen["role"], "agent", "{seen}");
    assert_eq!(seen["form"], false, "{seen}");
    assert_eq!(seen["actions"], json!(["Copy id"]), "{seen}");
    assert_eq!(seen["deliveries"], true, "{seen}");
    assert_eq!(seen["routes"], true, "{seen}");
    // Usable at 360 pixels: nothing wider than the screen.
    assert_eq!(seen["width"], 360, "{seen}");
    assert_eq!(seen["overflow"], false, "{seen}");
    save_screenshot(&session, "viewer-360").await;

    // Forced from the page with the same token, the API refuses a replay.
    let refused = session
        .run_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/deliveries/' + arguments[0] + '/replay', {method: 'POST',
                 headers: {Authorization: 'Bearer ' + sessionStorage.getItem('hookroom.token')}})
               .then((r) => done(r.status), (e) => done(String(e)));",
            json!([task]),
        )
        .await;
    assert!(
        refused == 401 || refused == 403,
        "replay answered {refused}"
    );
    session.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_answers_the_prompt_and_the_agent_gets_it() {
    let Some((browser, driver)) = tools("answer input") else {
        return;
    };
    let driver = Driver::start(&driver).await;
    let (gateway, session) = open(&browser, &driver, 1280, ADMIN).await;
    let task = deliver(&gateway, "d-ask", "Needs an answer").await;
    let token = claim(&gateway, &task).await;
    let ask = json!({"claim_token": token, "prompt": "Which branch?"}).to_string();
    let (status, _) = api(gateway.addr, &format!("POST /api/tasks/{task}/ask"), &ask).await;
    assert_eq!(status, 200);
    session
        .goto(&format!("http://{}/dashboard/#task/{task}", gateway.addr))
        .await;
    session
        .wait_for("document.getElementById('input-form')")
        .await;
    session
        .type_into("#input-answer", r#"{"branch":"main"}"#)
        .await;
    session.click("#input-form button[type=submit]").await;
    session.accept_alert().await;
    let take = json!({"claim_token": token}).to_string();
    let deadline = tokio::time::Instant::now() + webdriver::PATIENCE;
    loop {
        let (status, taken) = api(
            gateway.addr,
            &format!("POST /api/tasks/{task}/take_input"),
            &take,
        )
        .await;
        assert_eq!(status, 200, "{taken}");
        if taken["input"] != Value::Null {
            assert_eq!(taken["input"], json!({"branch": "main"}));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the answer never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let artifact = json!({"artifacts": [{"name": "report.md", "type": "text/markdown", "size": 12,
        "download_url": "https://example.com/report.md"}, {"name": "evil", "download_url": "javascript:alert(1)"}]});
    let (status, attached) = api(
        gateway.addr,
        &format!("POST /api/jobs/{task}/status"),
        &artifact.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{attached}");
    let done = json!({"claim_token": token, "result": {"ok": true}}).to_string();
    let (status, _) = api(gateway.addr, &format!("POST /api/tasks/{task}/done"), &done).await;
    assert_eq!(status, 200);
    session
        .wait_for("document.querySelector('#task-status [data-status]')?.dataset.status === 'DONE'")
        .await;
    let artifacts = session
        .wait_for(
            "document.querySelectorAll('#artifacts li').length === 2 && \
             [...document.querySelectorAll('#artifacts li')].map((li) => \
               [li.textContent, li.querySelector('a')?.href ?? null])",
        )
        .await;
    assert_eq!(
        artifacts,
        json!([
            [
                "report.md (text/markdown · 12 bytes)",
                "https://example.com/report.md"
            ],
            ["evil (file)", null]
        ]),
        "a javascript: link is shown as text"
    );
    session.quit().await;
}

/// axe-core's source, or why it is missing.
fn axe_source() -> Result<String, String> {
    let path = std::env::var_os("AXE_CORE_JS").map_or_else(
        || target_dir().join("npm/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    );
    std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "axe-core is not at {} ({e}); npm install --prefix target/npm axe-core, or set AXE_CORE_JS",
            path.display()
        )
    })
}

/// The serious and critical violations axe-core finds in the page.
async fn audit(session: &Session, axe: &str) -> Vec<String> {
    session
        .run(&format!("{axe}\nreturn true;"), json!([]))
        .await;
    let found = session
        .run_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then((r) => done(r.violations.map((v) =>
                 ({id: v.id, impact: v.impact, nodes: v.nodes.length}))),
               (e) => done(String(e)));",
            json!([]),
        )
        .await;
    let violations = found
        .as_array()
        .unwrap_or_else(|| panic!("axe failed: {found}"));
    eprintln!("axe: {found}");
    violations
        .iter()
        .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
        .map(Value::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_core_finds_no_serious_or_critical_violations() {
    let Some((browser, driver)) = tools("axe-core audit") else {
        return;
    };
    let axe = match axe_source() {
        Ok(axe) => axe,
        Err(why) => return skip("axe-core audit", &why).unwrap_or(()),
    };
    let driver = Driver::start(&driver).await;
    for dark in [false, true] {
        let gateway = Gateway::start(&[]);
        let session = driver.session(&browser, 1280, dark).await;
        session
            .goto(&format!("http://{}/dashboard/", gateway.addr))
            .await;
        session
            .wait_for("!document.getElementById('signin').hidden")
            .await;
        let mut serious = audit(&session, &axe).await;
        sign_in(&session, &gateway, ADMIN).await;
        let task = deliver(&gateway, "d-axe", "Audit me").await;
        claim(&gateway, &task).await;
        progress(&gateway, &task, 50, "checks").await;
        for (view, ready) in [
            ("rooms", "#rooms [data-room]"),
            ("tasks", "#tasks tbody tr"),
            (&*format!("task/{task}"), "#job-progress"),
            ("deliveries", "#deliveries tbody tr"),
            ("routes", "#routes li"),
        ] {
            session
                .goto(&format!("http://{}/dashboard/#{view}", gateway.addr))
                .await;
            session
                .wait_for(&format!("document.querySelector('{ready}')"))
                .await;
            for violation in audit(&session, &axe).await {
                serious.push(format!("{view}: {violation}"));
            }
            if dark && view == "rooms" {
                save_screenshot(&session, "rooms-dark").await;
            }
        }
        session.quit().await;
        assert!(serious.is_empty(), "dark {dark}: {serious:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_why_a_route_does_not_match_and_replay_makes_a_new_task() {
    let Some((browser, driver)) = tools("explain and replay") else {
        return;
    };
    let driver = Driver::start(&driver).await;
    let (gateway, session) = open(&browser, &driver, 1280, ADMIN).await;
    let task = deliver(&gateway, "d-replay", "Replay me").await;

    session
        .goto(&format!("http://{}/dashboard/#routes", gateway.addr))
        .await;
    session
        .wait_for("document.querySelector('#routes li')")
        .await;
    session
        .run(
            "document.getElementById('x-event').value = 'pull_request.closed';",
            json!([]),
        )
        .await;
    session.click("#explain button[type=submit]").await;
    let decision = session
        .wait_for("document.getElementById('decision')?.textContent")
        .await;
    assert!(
        decision.as_str().unwrap().starts_with("Ignored")
            || decision.as_str().unwrap().contains("default room"),
        "{decision}"
    );
    let why = session
        .run(
            "return [...document.querySelectorAll('#explained li')]
                 .map((li) => li.textContent)
                 .find((text) => text.startsWith('github pull_request.opened'));",
            json!([]),
        )
        .await;
    let why = why
        .as_str()
        .expect("the pull_request.opened route is explained");
    assert!(why.contains("no match: event"), "{why}");
    assert!(why.contains("pull_request.closed"), "{why}");
    save_screenshot(&session, "routes").await;

    session
        .goto(&format!("http://{}/dashboard/#deliveries", gateway.addr))
        .await;
    session
        .wait_for("document.querySelector('#deliveries tbody tr button')")
        .await;
    session.click("#deliveries tbody tr button").await;
    session.accept_alert().await;
    session
        .wait_for("document.querySelectorAll('#deliveries tbody tr').length === 2")
        .await;
    let toast = session
        .wait_for("document.getElementById('toast').textContent")
        .await;
    assert_eq!(toast, "Replayed into pr-review.");
    save_screenshot(&session, "deliveries").await;
    let (status, page) = request(
        gateway.addr,
        &format!("GET /api/deliveries HTTP/1.1\r\nAuthorization: Bearer {ADMIN}"),
        b"",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    let ids: Vec<&str> = page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&task.as_str()) && ids.iter().any(|id| *id != task));
    session.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_show_on_every_page_for_an_admin() {
    let Some((browser, driver)) = tools("alerts") else {
        return;
    };
    let driver = Driver::start(&driver).await;
    let gateway = Gateway::start(&[]);
    // More refused signatures than the alert rule allows.
    for i in 0..12 {
        let (status, _) = request(
            gateway.addr,
            &format!(
                "POST /webhook/github HTTP/1.1\r\nX-GitHub-Event: ping\r\n\
                 X-GitHub-Delivery: bad-{i}\r\nX-Hub-Signature-256: sha256=00"
            ),
            b"{}",
        )
        .await;
        assert_eq!(status, 401);
    }
    // The rules are evaluated every few seconds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, health) = request(
            gateway.addr,
            &format!("GET /health HTTP/1.1\r\nAuthorization: Bearer {ADMIN}"),
            b"",
        )
        .await;
        if health.contains("\"alerts\"") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert fired: {health}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let session = driver.session(&browser, 1280, false).await;
    sign_in(&session, &gateway, ADMIN).await;
    let banner = session
        .wait_for("!document.getElementById('alerts').hidden && document.getElementById('alerts').textContent")
        .await;
    assert!(
        banner.as_str().unwrap().contains("auth_failures"),
        "{banner}"
    );
    session
        .goto(&format!("http://{}/dashboard/#tasks", gateway.addr))
        .await;
    assert_eq!(
        session
            .run(
                "return document.getElementById('alerts').hidden;",
                json!([])
            )
            .await,
        false,
        "the banner stays on every view"
    );
    save_screenshot(&session, "alerts").await;
    session.quit().await;
}
