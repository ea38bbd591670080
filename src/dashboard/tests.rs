use super::*;
use tower_service::Service;

fn get(dashboard: &mut Dashboard, method: Method, path: &str) -> Response<Full<Bytes>> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(())
        .unwrap();
    match dashboard.call(request).into_inner() {
        Ok(response) => response,
    }
}

async fn text(response: Response<Full<Bytes>>) -> String {
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn serves_the_page_and_its_assets_with_strict_headers() {
    let mut dashboard = Dashboard::default();
    for (path, kind) in [
        ("/dashboard/", "text/html"),
        ("/dashboard/index.html", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
        ("/dashboard/icon.svg", "image/svg+xml"),
    ] {
        let response = get(&mut dashboard, Method::GET, path);
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert!(!text(response).await.is_empty(), "{path}");
    }
}

#[test]
fn the_policy_forbids_inline_code_framing_and_other_origins() {
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(part), "{part}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[tokio::test]
async fn the_page_has_no_inline_script_or_style_and_nothing_from_elsewhere() {
    let page = text(get(&mut Dashboard::default(), Method::GET, "/dashboard/")).await;
    assert!(!page.contains("<script>"), "inline script");
    assert!(!page.contains("<style"), "inline style");
    assert!(!page.contains(" style="), "style attribute");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "a remote asset"
    );
    assert!(!APP_JS.contains("innerHTML") && !APP_JS.contains("outerHTML"));
    assert!(!APP_JS.contains("insertAdjacentHTML") && !APP_JS.contains("eval("));
}

#[tokio::test]
async fn the_api_base_is_written_into_the_page_escaped() {
    let mut dashboard = Dashboard::builder().api_base("/x\"><script>/").build();
    let page = text(get(&mut dashboard, Method::GET, "/dashboard/")).await;
    assert!(
        page.contains(r#"content="/x&quot;&gt;&lt;script&gt;""#),
        "{page}"
    );
    let page = text(get(&mut Dashboard::default(), Method::GET, "/dashboard/")).await;
    assert!(page.contains(r#"<meta name="hookroom-api" content="">"#));
}

#[tokio::test]
async fn any_prefix_and_the_root() {
    let mut dashboard = Dashboard::builder().prefix("/ops/board/").build();
    assert_eq!(dashboard.prefix(), "/ops/board");
    assert!(dashboard.serves_path("/ops/board/app.js"));
    assert!(dashboard.serves_path("/ops/board"));
    assert!(!dashboard.serves_path("/ops/boards"));
    assert_eq!(
        get(&mut dashboard, Method::GET, "/ops/board/app.js").status(),
        200
    );
    let moved = get(&mut dashboard, Method::GET, "/ops/board");
    assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(moved.headers()[header::LOCATION], "/ops/board/");
    assert_eq!(
        get(&mut dashboard, Method::GET, "/dashboard/").status(),
        404
    );

    let mut root = Dashboard::builder().prefix("/").build();
    assert_eq!(get(&mut root, Method::GET, "/").status(), 200);
    assert_eq!(get(&mut root, Method::GET, "/app.css").status(), 200);
}

#[tokio::test]
async fn head_has_no_body_other_methods_and_paths_are_refused() {
    let mut dashboard = Dashboard::default();
    let head = get(&mut dashboard, Method::HEAD, "/dashboard/app.js");
    assert_eq!(head.status(), 200);
    assert!(text(head).await.is_empty());
    let post = get(&mut dashboard, Method::POST, "/dashboard/");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    let missing = get(&mut dashboard, Method::GET, "/dashboard/../secret");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}
