//! OAuth against the fake token endpoint: the consent URL, the PKCE code exchange, refresh
//! before expiry, one refresh for many concurrent callers, and `invalid_grant`.

use std::time::Duration;

use confab_core::config::Secret;
use confab_seo::youtube::TokenSource;
use confab_seo::youtube::oauth::{AccessTokens, OAuthError, Pkce};
use confab_testkit::youtube::Fault;

use crate::youtube::{env, oauth_client};

#[tokio::test]
async fn consent_url_and_code_exchange_use_pkce() {
    let env = env().await;
    let oauth = oauth_client(&env);
    let pkce = Pkce::generate();
    let url = url::Url::parse(
        &oauth
            .authorization_url("http://localhost/cb", &pkce)
            .unwrap(),
    )
    .unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query["scope"],
        "https://www.googleapis.com/auth/youtube.force-ssl"
    );
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["prompt"], "consent");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"], pkce.challenge);
    assert_eq!(query["state"], pkce.state);

    env.fake.add_auth_code("code-1", &pkce.challenge);
    let wrong = Secret::new("x".repeat(64));
    assert!(matches!(
        oauth
            .exchange_code("code-1", &wrong, "http://localhost/cb")
            .await,
        Err(OAuthError::ReconnectNeeded)
    ));
    env.fake.add_auth_code("code-2", &pkce.challenge);
    let tokens = oauth
        .exchange_code("code-2", &pkce.verifier, "http://localhost/cb")
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    assert!(
        !format!("{tokens:?}").contains("ya29"),
        "tokens must not show in Debug"
    );
    let source = TokenSource::with_tokens(oauth, tokens.clone()).unwrap();
    assert_eq!(source.access_token().await.unwrap(), tokens.access_token);
    assert_eq!(env.fake.calls("token"), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let env = env().await;
    env.fake.add_refresh_token("1//r");
    env.fake
        .fail_next("token", 1, Fault::Delay(Duration::from_millis(200)));
    let source = TokenSource::new(oauth_client(&env), Secret::new("1//r"));
    let tokens = futures::future::join_all((0..20).map(|_| source.access_token())).await;
    let first = tokens[0].as_ref().unwrap().clone();
    assert!(tokens.iter().all(|t| t.as_ref().unwrap() == &first));
    assert_eq!(env.fake.calls("token"), 1);

    // A 401 seen by many callers at once is one refresh too.
    let refreshed =
        futures::future::join_all((0..20).map(|_| source.refresh_after_rejection(&first))).await;
    assert!(refreshed.iter().all(|t| t.as_ref().unwrap() != &first));
    assert_eq!(env.fake.calls("token"), 2);
}

#[tokio::test]
async fn tokens_are_refreshed_a_minute_before_they_expire() {
    let env = env().await;
    env.fake.add_refresh_token("1//r");
    let source = TokenSource::new(oauth_client(&env), Secret::new("1//r"));
    let first = source.access_token().await.unwrap();
    env.clock.advance(Duration::from_secs(3_500));
    assert_eq!(source.access_token().await.unwrap(), first);
    assert_eq!(env.fake.calls("token"), 1);
    env.clock.advance(Duration::from_secs(50));
    assert_ne!(source.access_token().await.unwrap(), first);
    assert_eq!(env.fake.calls("token"), 2);
}

#[tokio::test]
async fn invalid_grant_means_reconnect() {
    let env = env().await;
    let source = TokenSource::new(oauth_client(&env), Secret::new("1//revoked"));
    assert!(matches!(
        source.access_token().await,
        Err(OAuthError::ReconnectNeeded)
    ));
}
