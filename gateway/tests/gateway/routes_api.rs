//! The Routes API as `hookroom serve` mounts it: its paths go to it (admin
//! only), every other path to the webhook gateway; route changes are
//! written back to the `--config` file.

use crate::support::{ADMIN, Gateway, TOKEN, request};

async fn code(gateway: &Gateway, head: &str, token: &str, body: &str) -> (u16, String) {
    let (status, text) = request(
        gateway.addr,
        &format!("{head} HTTP/1.1\r\nAuthorization: Bearer {token}"),
        body.as_bytes(),
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    (
        status,
        json["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn routes_api_paths_go_to_it_and_others_to_the_gateway() {
    let gateway = Gateway::start(&[]);
    // The Routes API's own answers: an agent token is refused, an admin
    // token reads.
    assert_eq!(
        code(&gateway, "GET /api/routes", TOKEN, "").await,
        (403, "forbidden".into())
    );
    assert_eq!(code(&gateway, "GET /api/routes", ADMIN, "").await.0, 200);
    assert_eq!(
        code(&gateway, "GET /api/deliveries", ADMIN, "").await.0,
        200
    );
    // The gateway's own paths still answer.
    assert_eq!(code(&gateway, "GET /operations", ADMIN, "").await.0, 200);
    assert_eq!(
        code(&gateway, "GET /api/unknown", ADMIN, "").await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn a_route_added_through_the_api_is_written_to_the_config_file() {
    let dir = std::env::temp_dir().join(format!("hookroom-routes-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.json");
    std::fs::copy(crate::support::routes_file(), &routes).unwrap();
    let mut command = crate::support::command();
    command
        .env("HOOKROOM_ADMIN_TOKEN", ADMIN)
        .arg("serve")
        .arg("--config")
        .arg(&routes)
        .args(["--store", "memory", "--listen", "127.0.0.1:0"]);
    let gateway = Gateway::spawn(command);
    let (status, _) = code(
        &gateway,
        "POST /api/routes",
        ADMIN,
        r#"{"source":"github","event":"release.*","target_room":"releases"}"#,
    )
    .await;
    assert_eq!(status, 201);
    let written = std::fs::read_to_string(&routes).unwrap();
    assert!(written.contains("\"releases\""), "{written}");
    drop(gateway);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Another process (here: the test) changes the `--config` file: the
/// gateway follows it within a few seconds.
#[tokio::test]
async fn a_routes_file_changed_by_another_process_is_followed() {
    let dir = std::env::temp_dir().join(format!("hookroom-routes-follow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.json");
    std::fs::copy(crate::support::routes_file(), &routes).unwrap();
    let mut command = crate::support::command();
    command
        .env("HOOKROOM_ADMIN_TOKEN", ADMIN)
        .arg("serve")
        .arg("--config")
        .arg(&routes)
        .args(["--store", "memory", "--listen", "127.0.0.1:0"]);
    let gateway = Gateway::spawn(command);
    let file = hookroom::route::RoutesFile::new(&routes);
    let mut specs = file.load().unwrap().routes;
    specs.push(hookroom::route::RouteSpec::new(
        "github",
        "release.*",
        "from-elsewhere",
    ));
    // A different modification time than the file had at start.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    file.save_routes(&specs).unwrap();
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    loop {
        let (status, body) = request(
            gateway.addr,
            &format!("GET /api/routes HTTP/1.1\r\nAuthorization: Bearer {ADMIN}"),
            b"",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body.contains("from-elsewhere") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never followed the file: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(gateway);
    std::fs::remove_dir_all(&dir).unwrap();
}
