//! The model router and gateway over a real socket, against fake OpenAI upstreams: retries,
//! Retry-After, fallback tiers, circuit breakers, first-token timeouts, balancing, the
//! response cache, limits and usage records.

use std::time::{Duration, Instant};

use confab_core::config::{AliasConfig, Balance, Config, ProviderConfig, ProviderKind};
use confab_testkit::fake_openai::{Behavior, FakeOpenAi};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, SCRIPTED_MODEL, TestApp, sse_data};

fn upstream(name: &str, fake: &FakeOpenAi, models: &[&str]) -> ProviderConfig {
    let mut provider = ProviderConfig::new(name, ProviderKind::Openai, models);
    provider.base_url = Some(fake.url());
    provider.timeout_secs = 10;
    provider
}

async fn start(tweak: impl FnOnce(&mut Config)) -> (TestApp, String) {
    let app = TestApp::start_with(|c| {
        c.inference.router.backoff_base_ms = 1;
        c.inference.router.backoff_max_ms = 5;
        tweak(c);
    })
    .await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    let key = app
        .post(
            "/api/v1/auth/api-keys",
            Some(&token),
            json!({"name": "k", "scopes": ["inference"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, key)
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7})
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_before_the_first_token_are_retried() {
    let fake = FakeOpenAi::start(Behavior::Answer("hello from upstream".into()))
        .await
        .unwrap();
    fake.push([
        Behavior::Fail {
            status: 503,
            retry_after: None,
        },
        Behavior::Fail {
            status: 502,
            retry_after: None,
        },
    ]);
    let (app, key) = start(|c| {
        c.inference
            .providers
            .push(upstream("up", &fake, &["gpt-x"]))
    })
    .await;
    let answer = app
        .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.body["choices"][0]["message"]["content"],
        "hello from upstream"
    );
    assert_eq!(fake.hits(), 3);
    assert!(
        metrics(&app)
            .await
            .contains(r#"confab_inference_retries_total{backend="up:gpt-x"} 2"#)
    );

    // A client error is not retried and passes through.
    fake.push([Behavior::Fail {
        status: 400,
        retry_after: None,
    }]);
    let refused = app
        .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.hits(), 4);
    app.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_or_passed_on_when_too_long() {
    let fake = FakeOpenAi::start(Behavior::Answer("ok".into()))
        .await
        .unwrap();
    fake.push([Behavior::Fail {
        status: 429,
        retry_after: Some(1),
    }]);
    let (app, key) = start(|c| {
        c.inference.router.max_retry_after_secs = 5;
        c.inference
            .providers
            .push(upstream("up", &fake, &["gpt-x"]));
    })
    .await;
    let started = Instant::now();
    let answer = app
        .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(fake.hits(), 2);

    fake.push([Behavior::Fail {
        status: 429,
        retry_after: Some(600),
    }]);
    let limited = app
        .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    assert_eq!(limited.header("retry-after"), Some("600"));
    assert_eq!(
        fake.hits(),
        3,
        "a Retry-After beyond the limit is not waited for"
    );
    app.stop().await;
}

#[tokio::test]
async fn aliases_fall_back_to_later_tiers_and_balance_within_one() {
    let down = FakeOpenAi::start(Behavior::Fail {
        status: 500,
        retry_after: None,
    })
    .await
    .unwrap();
    let a = FakeOpenAi::start(Behavior::Answer("from a".into()))
        .await
        .unwrap();
    let b = FakeOpenAi::start(Behavior::Answer("from b".into()))
        .await
        .unwrap();
    let (app, key) = start(|c| {
        c.inference.router.retries = 0;
        c.inference
            .providers
            .push(upstream("down", &down, &["m-down"]));
        c.inference.providers.push(upstream("a", &a, &["m"]));
        c.inference.providers.push(upstream("b", &b, &["m"]));
        c.inference.aliases = vec![
            AliasConfig {
                name: "chain".into(),
                targets: vec![
                    vec!["down:m-down".into()],
                    vec![format!("scripted:{SCRIPTED_MODEL}")],
                ],
                balance: Balance::RoundRobin,
            },
            AliasConfig {
                name: "pair".into(),
                targets: vec![vec!["a:m".into(), "b:m".into()]],
                balance: Balance::RoundRobin,
            },
        ];
    })
    .await;
    let answer = app
        .post("/v1/chat/completions", Some(&key), ask("chain"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.body["choices"][0]["message"]["content"],
        "You said: hi"
    );
    assert_eq!(down.hits(), 1);

    for _ in 0..4 {
        let answer = app
            .post("/v1/chat/completions", Some(&key), ask("pair"))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(
        (a.hits(), b.hits()),
        (2, 2),
        "round robin across equal backends"
    );
    let models = app.get("/v1/models", Some(&key)).await;
    let ids: Vec<&str> = models.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"chain") && ids.contains(&"pair"), "{ids:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_backend_opens_its_circuit() {
    let fake = FakeOpenAi::start(Behavior::Fail {
        status: 500,
        retry_after: None,
    })
    .await
    .unwrap();
    let (app, key) = start(|c| {
        c.inference.router.retries = 0;
        c.inference.router.breaker_failures = 2;
        c.inference.router.breaker_open_secs = 3600;
        c.inference
            .providers
            .push(upstream("up", &fake, &["gpt-x"]));
    })
    .await;
    for _ in 0..2 {
        let failed = app
            .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
            .await;
        assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text);
        assert_eq!(failed.body["error"]["code"], "upstream_error");
    }
    let open = app
        .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(
        open.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        open.text
    );
    assert_eq!(fake.hits(), 2, "an open circuit sends nothing upstream");
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"confab_inference_circuit_state{backend="up:gpt-x"} 2"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_slow_first_token_moves_on() {
    let fake = FakeOpenAi::start(Behavior::Answer("late but fine".into()))
        .await
        .unwrap();
    fake.push([Behavior::Stall(Duration::from_secs(3))]);
    let (app, key) = start(|c| {
        let mut provider = upstream("up", &fake, &["gpt-x"]);
        provider.first_token_timeout_secs = 1;
        c.inference.providers.push(provider);
    })
    .await;
    let mut body = ask("gpt-x");
    body["stream"] = json!(true);
    let text = app.chat_text(&key, &body).await;
    assert!(text.contains("late"), "{text}");
    assert_eq!(fake.hits(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_whole_answer_may_take_longer_than_the_first_token_timeout() {
    // A request that is not streamed is fetched whole from the upstream: its first token is
    // its last, so the provider's total timeout applies, not the first-token timeout.
    let fake = FakeOpenAi::start(Behavior::Answer("unused".into()))
        .await
        .unwrap();
    fake.push([Behavior::Stall(Duration::from_millis(1500))]);
    let (app, key) = start(|c| {
        let mut provider = upstream("up", &fake, &["gpt-x"]);
        provider.first_token_timeout_secs = 1;
        c.inference.providers.push(provider);
    })
    .await;
    let started = std::time::Instant::now();
    let answer = app
        .post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["choices"][0]["message"]["content"], "unused");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(
        fake.hits(),
        1,
        "the stalled upstream answered; nothing was retried"
    );
    app.stop().await;
}

#[tokio::test]
async fn streamed_answers_from_upstream_pass_through() {
    let fake = FakeOpenAi::start(Behavior::Answer("one two three".into()))
        .await
        .unwrap();
    let (app, key) = start(|c| {
        c.inference
            .providers
            .push(upstream("up", &fake, &["gpt-x"]))
    })
    .await;
    let mut body = ask("gpt-x");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = app.chat_text(&key, &body).await;
    let content: String = sse_data(&text)
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "one two three");
    assert!(text.contains(r#""completion_tokens":3"#), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn deterministic_answers_are_cached_per_user() {
    let fake = FakeOpenAi::start(Behavior::Answer("cached answer".into()))
        .await
        .unwrap();
    let (app, key) = start(|c| {
        c.inference
            .providers
            .push(upstream("up", &fake, &["gpt-x"]))
    })
    .await;
    let mut deterministic = ask("gpt-x");
    deterministic["temperature"] = json!(0);
    let first = app
        .post("/v1/chat/completions", Some(&key), deterministic.clone())
        .await;
    let second = app
        .post("/v1/chat/completions", Some(&key), deterministic.clone())
        .await;
    // The same answer, under a completion id of its own.
    assert_eq!(first.body["choices"], second.body["choices"]);
    assert_eq!(first.body["usage"], second.body["usage"]);
    assert_eq!(first.body["model"], second.body["model"]);
    assert_ne!(first.body["id"], second.body["id"]);
    assert_eq!(fake.hits(), 1);
    // Sampling with temperature is not cached.
    app.post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    app.post("/v1/chat/completions", Some(&key), ask("gpt-x"))
        .await;
    assert_eq!(fake.hits(), 3);
    // Another user does not see the first user's cached answer.
    app.register("bob@example.com").await;
    let (bob, _) = app.login("bob@example.com", PASSWORD).await;
    app.post("/v1/chat/completions", Some(&bob), deterministic)
        .await;
    assert_eq!(fake.hits(), 4);
    let text = metrics(&app).await;
    assert!(
        text.contains(r#"confab_inference_cache_total{outcome="hit"} 1"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn limits_send_headers_then_refuse() {
    let (app, key) = start(|c| {
        c.inference.limits.key_requests_per_minute = 2;
        c.inference.limits.user_tokens_per_day = 1000;
    })
    .await;
    let first = app
        .post("/v1/chat/completions", Some(&key), ask(SCRIPTED_MODEL))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining-requests"), Some("1"));
    assert_eq!(first.header("x-ratelimit-limit-tokens"), Some("1000"));
    app.post("/v1/chat/completions", Some(&key), ask(SCRIPTED_MODEL))
        .await;
    let refused = app
        .post("/v1/chat/completions", Some(&key), ask(SCRIPTED_MODEL))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["error"]["code"], "rate_limit_exceeded");
    assert!(refused.header("retry-after").is_some());
    app.stop().await;
}

#[tokio::test]
async fn every_request_is_recorded_for_usage() {
    let (app, key) = start(|_| {}).await;
    for _ in 0..3 {
        app.post("/v1/chat/completions", Some(&key), ask(SCRIPTED_MODEL))
            .await;
    }
    app.post("/v1/chat/completions", Some(&key), ask("missing"))
        .await;
    use confab_inference::usage::UsageLog as _;
    let store = confab_inference::usage::SqlUsageLog::new(app.db.clone());
    let today = confab_inference::usage::day_of(confab_core::now_ms());
    // The writer flushes in the background; poll (bounded) until the rows are there.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = store.daily_totals(None, &today, &today).await.unwrap();
        if rows.iter().map(|r| r.requests).sum::<i64>() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scripted = rows.iter().find(|r| r.model == SCRIPTED_MODEL).unwrap();
    assert_eq!((scripted.requests, scripted.errors), (3, 0));
    assert_eq!(scripted.completion_tokens, 9);
    // An invented model name is recorded as `unknown`, never as itself.
    assert!(!rows.iter().any(|r| r.model == "missing"), "{rows:?}");
    let missing = rows.iter().find(|r| r.model == "unknown").unwrap();
    assert_eq!(missing.errors, 1);
    app.stop().await;
}

#[tokio::test]
async fn usage_batches_of_any_size_are_written_whole() {
    use confab_inference::usage::{SqlUsageLog, UsageLog, UsageRecord, UsageRecorder, day_of};
    let (app, _key) = start(|_| {}).await;
    let tasks = tokio_util::task::TaskTracker::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let log = std::sync::Arc::new(SqlUsageLog::new(app.db.clone()));
    let recorder = UsageRecorder::start(log.clone(), &tasks, shutdown.clone());
    let user = uuid::Uuid::now_v7();
    let now = confab_core::now_ms();
    // 64 + 64 + 8 + 1 rows: every statement size the writer uses.
    for i in 0..137u32 {
        recorder.record(UsageRecord {
            at: now,
            user_id: Some(user),
            api_key_id: None,
            model: format!("model-{}", i % 2),
            backend: "fake:model".into(),
            prompt_tokens: 1,
            completion_tokens: i,
            ttft_ms: Some(1),
            latency_ms: 2,
            status: if i % 10 == 0 { "upstream_error" } else { "ok" }.into(),
            cached: false,
        });
    }
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    let today = day_of(now);
    let rows = log.daily_totals(Some(user), &today, &today).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.requests).sum::<i64>(), 137);
    assert_eq!(rows.iter().map(|r| r.prompt_tokens).sum::<i64>(), 137);
    assert_eq!(
        rows.iter().map(|r| r.completion_tokens).sum::<i64>(),
        (0..137).sum::<i64>()
    );
    assert_eq!(rows.iter().map(|r| r.errors).sum::<i64>(), 14);
    app.stop().await;
}
