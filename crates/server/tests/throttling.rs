//! Issue 9 item 5: failed sign-ins are throttled per client and user, with backoff, and a
//! valid credential is never throttled, whatever others sent from anywhere.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::{ADA_PASSWORD, Harness, Who, b64, harness_with};
use kestrel_server::FailureLimit;
use std::net::SocketAddr;
use std::time::Duration;

const ROUTE: &str = "/api/v1/main/flows/search";
const ATTACKER: &str = "203.0.113.7:40000";
const OFFICE: &str = "198.51.100.20:50000";

async fn limited() -> Harness {
    harness_with(|o| {
        o.failure_limit = FailureLimit {
            max_failures: 10,
            window: Duration::from_secs(60),
        }
    })
    .await
}

/// `GET ROUTE` from `client` with `authorization`.
async fn from(h: &Harness, client: &str, authorization: &str) -> StatusCode {
    let mut request = Request::get(ROUTE)
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .unwrap();
    let address: SocketAddr = client.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(address));
    h.call(request).await.status
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", b64(&format!("{user}:{password}")))
}

#[tokio::test]
async fn issue_9_5_wrong_passwords_from_elsewhere_do_not_lock_a_user_out() {
    let h = limited().await;
    let mut answers = Vec::new();
    for guess in 0..25 {
        answers.push(from(&h, ATTACKER, &basic("ada", &format!("guess-{guess}"))).await);
    }
    assert!(answers[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    assert!(
        answers[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    let right = basic("ada", ADA_PASSWORD);
    assert_eq!(
        from(&h, OFFICE, &right).await,
        StatusCode::OK,
        "another address"
    );
    assert_eq!(
        from(&h, ATTACKER, &right).await,
        StatusCode::OK,
        "the same address"
    );
}

#[tokio::test]
async fn issue_9_5_bad_tokens_do_not_block_a_good_token() {
    let h = limited().await;
    for n in 0..25 {
        from(&h, OFFICE, &format!("Bearer kst_forged-{n}")).await;
    }
    let forged = from(&h, OFFICE, "Bearer kst_forged-again").await;
    assert_eq!(forged.as_u16(), 429, "failures are throttled");
    let good = h.authorization(Who::Admin).unwrap();
    assert_eq!(from(&h, OFFICE, &good).await, StatusCode::OK);
    assert_eq!(from(&h, ATTACKER, &good).await, StatusCode::OK);
}

#[tokio::test]
async fn issue_9_5_failures_are_counted_per_client_and_user() {
    let h = limited().await;
    for guess in 0..12 {
        from(&h, ATTACKER, &basic("ada", &format!("guess-{guess}"))).await;
    }
    let other_user = basic("bob", "first-try");
    assert_eq!(
        from(&h, ATTACKER, &other_user).await,
        StatusCode::UNAUTHORIZED
    );
    let same_user_elsewhere = basic("ada", "typo");
    assert_eq!(
        from(&h, OFFICE, &same_user_elsewhere).await,
        StatusCode::UNAUTHORIZED
    );
}
