//! The operator's console at `/ui/` over real HTTP: sign-in with the admin
//! token only, the session cookie's flags, CSRF on state changes, the
//! security headers, and pages built from the real state (the overview's
//! upstreams, "who can see what" from the real discovery code).

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::common::{ANALYST_TOKEN, ControlPlane, between};

const ADMIN_TOKEN: &str = "admin-demo-token";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sign in with `token` as a form field: the answer.
async fn sign_in(cp: &ControlPlane, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client()
        .post(cp.admin_url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The session cookie a sign-in set (`name=value`).
fn session_cookie(response: &reqwest::Response) -> String {
    let set = response.headers()[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The text of every cell (`th`, `td`) or item under the elements of
/// `page` that `selector` picks, in order; an element without cells
/// counts as one. What the page shows, not how it is marked up.
fn cells(page: &str, selector: &str) -> Vec<String> {
    let html = scraper::Html::parse_document(page);
    let picked = scraper::Selector::parse(selector).unwrap();
    let cell = scraper::Selector::parse("th, td").unwrap();
    let text = |element: scraper::ElementRef| element.text().collect::<String>().trim().to_owned();
    let mut found = Vec::new();
    for element in html.select(&picked) {
        let inner: Vec<String> = element.select(&cell).map(text).collect();
        match inner.is_empty() {
            true => found.push(text(element)),
            false => found.extend(inner),
        }
    }
    found
}

async fn get(cp: &ControlPlane, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut request = client().get(cp.admin_url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_admin_token_signs_in_and_the_session_is_guarded() {
    let cp = ControlPlane::start_example();
    cp.wait_all_ready().await;

    // Not signed in: the sign-in form, nothing else.
    let (status, page) = get(&cp, "/ui/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("name=\"token\"") && !page.contains("marketdata"),
        "{page}"
    );

    // An agent's token never opens the console.
    let refused = sign_in(&cp, ANALYST_TOKEN, &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    // Nor does a sign-in posted from another site.
    let forged = sign_in(&cp, ADMIN_TOKEN, &[("origin", "http://evil.example")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get(SET_COOKIE).is_none());

    let signed_in = sign_in(&cp, ADMIN_TOKEN, &[]).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/ui/");
    let set = signed_in.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let behind_tls = sign_in(&cp, ADMIN_TOKEN, &[("x-forwarded-proto", "https")]).await;
    assert!(
        behind_tls.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    let cookie = session_cookie(&signed_in);
    // Each sign-in, refused or accepted, is in the audit trail.
    let sign_ins = cp.audit_matching(4, |r| r["action"] == "sign_in").await;
    let outcomes: Vec<(&str, &str)> = (sign_ins.iter())
        .map(|r| {
            (
                r["agent_id"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("", "unauthenticated")) && outcomes.contains(&("ops", "ok")),
        "{outcomes:?}"
    );

    // The overview: the example's three upstreams, ready, by name and
    // address; the catalog version in force; no token anywhere.
    let (status, page) = get(&cp, "/ui/", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let ready: Value = cp.readyz().await;
    assert!(
        page.contains(ready["catalog"]["version"].as_str().unwrap()),
        "{page}"
    );
    for server in ["marketdata", "execution", "research"] {
        let row = cells(&page, &format!("tr[data-server={server}]"));
        assert_eq!(row[..2], [server, "ready"], "{row:?}");
    }
    let rows = cells(&page, "tr[data-server]");
    assert!(
        rows.iter()
            .any(|cell| cell == "2025-11-25" || cell == "2026-07-28"),
        "the protocol revision: {rows:?}"
    );
    assert!(!page.contains(ADMIN_TOKEN) && !page.contains(ANALYST_TOKEN));

    // Who can see what: exactly what the agent's own /tools returns.
    let (_, page) = get(&cp, "/ui/access?agent=agent-42", Some(&cookie)).await;
    let listed: Value = cp.get_tools(ANALYST_TOKEN, "").await.json().await.unwrap();
    let listed: Vec<&str> = (listed["tools"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(cells(&page, "ul#tools li"), listed, "{page}");

    // Charts of the last hour, from the audit store: three calls made now.
    for _ in 0..3 {
        let body =
            serde_json::json!({"action": "read_positions", "payload": {"account": "ACC-001"}});
        let trace = cp
            .invoke(Some(ANALYST_TOKEN), body)
            .await
            .json::<Value>()
            .await
            .unwrap();
        cp.audit_record(trace["trace_id"].as_str().unwrap()).await;
    }
    let (_, page) = get(&cp, "/ui/charts", Some(&cookie)).await;
    assert_eq!(cells(&page, "svg#calls-per-minute").len(), 1, "{page}");
    let legend = cells(&page, "li[data-outcome=ok]");
    let ok: u32 = legend[0].strip_prefix("ok: ").unwrap().parse().unwrap();
    assert!(ok >= 3, "{legend:?}");
    let p50 = "g[data-tool=read_positions][data-p50]";
    assert_eq!(cells(&page, p50).len(), 1, "{page}");

    // The overview now has marketdata's recent latency (it served them).
    let (_, page) = get(&cp, "/ui/", Some(&cookie)).await;
    let row = cells(&page, "tr[data-server=marketdata]");
    assert!(row.last().unwrap().ends_with(" ms"), "{row:?}");
    let idle = cells(&page, "tr[data-server=execution]");
    assert_eq!(idle.last().unwrap(), "none yet", "{idle:?}");

    // For one tool: whose role grants it and whose listing shows it.
    let (_, page) = get(&cp, "/ui/access?tool=execute_trade", Some(&cookie)).await;
    let reach = cells(&page, "table#reach tr");
    for agent in [
        ["agent-7", "trader", "yes", "yes"],
        ["agent-42", "analyst", "no", "no"],
    ] {
        let found = reach.windows(4).any(|row| row == agent);
        assert!(found, "{agent:?} in {reach:?}");
    }

    // Signing out needs the session's CSRF token.
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"").to_owned();
    let logout = |body: String| {
        client()
            .post(cp.admin_url("/ui/logout"))
            .header(COOKIE, &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(
        logout("csrf=forged".into()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&cp, "/ui/access", Some(&cookie)).await.0,
        StatusCode::OK,
        "still signed in"
    );
    let out = logout(format!("csrf={csrf}")).await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (_, page) = get(&cp, "/ui/", Some(&cookie)).await;
    assert!(
        page.contains("name=\"token\""),
        "signed out: the form again"
    );
}
