//! The embedded engine on a real model (SmolLM2-135M-Instruct, fetched by scripts/test.sh):
//! deterministic greedy answers, streaming, limits, stop sequences, context overflow,
//! cancellation, queueing, grammar-constrained JSON and the orderly stop at shutdown.

use std::sync::Arc;

use confab_core::auth::{Credential, Principal};
use confab_core::config::InferenceConfig;
use confab_inference::InferenceService;
use confab_inference::error::InferenceError;
use confab_inference::metrics::InferenceMetrics;
use confab_inference::service::{InferenceDeps, InferenceSettings};
use confab_inference::types::{
    ChatEvent, ChatMessage, ChatRequest, EmbedRequest, FinishReason, JsonSchemaFormat,
    ResponseFormat, Role, SamplingParams, Usage,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Who the tests ask as: a user of their own.
fn caller() -> Principal {
    Principal {
        user_id: uuid::Uuid::now_v7(),
        role: confab_core::auth::Role::User,
        credential: Credential::Session {
            session_id: uuid::Uuid::now_v7(),
        },
    }
}

fn service(parallel: u32) -> Arc<InferenceService> {
    let mut config = InferenceConfig::default();
    config.engine.context_size = 512;
    config.engine.parallel = parallel;
    // Tests run side by side; one thread each keeps them from fighting over the cores.
    config.engine.threads = 1;
    let metrics = InferenceMetrics::register(&mut confab_core::metrics::MetricsBuilder::new());
    Arc::new(
        InferenceService::new(
            InferenceDeps::standalone(metrics),
            InferenceSettings {
                config,
                models_dir: confab_testkit::test_models_dir().unwrap(),
            },
        )
        .unwrap(),
    )
}

fn request(prompt: &str, params: SamplingParams) -> ChatRequest {
    ChatRequest {
        model: confab_testkit::SMOLLM2.into(),
        messages: vec![ChatMessage::new(Role::User, prompt)],
        params,
        response_format: None,
        stream: true,
    }
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ..SamplingParams::default()
    }
}

/// The deltas and the finish of a whole generation.
async fn run(
    service: &Arc<InferenceService>,
    request: &ChatRequest,
) -> (Vec<String>, FinishReason, Usage) {
    let mut stream = service
        .chat_completion(&caller(), request.clone(), CancellationToken::new())
        .await
        .unwrap()
        .stream;
    let mut deltas = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            ChatEvent::Delta(text) => deltas.push(text),
            ChatEvent::Finished { reason, usage } => return (deltas, reason, usage),
            ChatEvent::Started => {}
        }
    }
    panic!("the stream ended without finishing");
}

#[tokio::test]
async fn greedy_answers_are_deterministic_and_streamed() {
    let service = service(1);
    let ask = request("What is the capital of France?", greedy(40));
    let (first, reason, usage) = run(&service, &ask).await;
    let (second, _, _) = run(&service, &ask).await;
    let text = first.concat();
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(text, second.concat(), "greedy decoding is deterministic");
    assert!(first.len() > 2, "the answer arrives in pieces: {first:?}");
    assert_eq!(reason, FinishReason::Stop);
    assert!(usage.prompt_tokens > 5 && usage.completion_tokens as usize >= first.len());
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
}

#[tokio::test]
async fn limits_and_stop_sequences() {
    let service = service(1);
    let (deltas, reason, usage) = run(
        &service,
        &request("Tell me a long story about a dragon.", greedy(5)),
    )
    .await;
    assert_eq!(reason, FinishReason::Length);
    assert_eq!(usage.completion_tokens, 5);
    let full = deltas.concat();

    // Stop at a word the greedy answer is known to contain: the text ends just before it.
    let word = full.split_whitespace().nth(2).unwrap().to_owned();
    let mut params = greedy(5);
    params.stop = vec![word.clone()];
    let (deltas, reason, _) = run(
        &service,
        &request("Tell me a long story about a dragon.", params),
    )
    .await;
    let stopped = deltas.concat();
    assert_eq!(reason, FinishReason::Stop);
    assert!(!stopped.contains(&word), "{stopped:?} still has {word:?}");
    assert!(full.starts_with(&stopped), "{full:?} / {stopped:?}");
}

#[tokio::test]
async fn an_over_long_prompt_fails_before_streaming() {
    let service = service(1);
    let prompt = "word ".repeat(600);
    let error = service
        .chat_completion(
            &caller(),
            request(&prompt, greedy(5)),
            CancellationToken::new(),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, InferenceError::ContextLengthExceeded(ref m) if m.contains("512")),
        "{error}"
    );
}

#[tokio::test]
async fn images_are_refused_by_the_text_only_engine_with_a_clear_error() {
    let service = service(1);
    let mut ask = request("What is in this picture?", greedy(5));
    ask.messages[0].images = vec![confab_inference::types::ImageInput::from_bytes(
        "image/png",
        b"\x89PNG",
    )];
    let error = service
        .chat_completion(&caller(), ask, CancellationToken::new())
        .await
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(
        matches!(error, InferenceError::Unsupported(_)) && message.contains("reads text only"),
        "{message}"
    );
    // An image shown earlier in the conversation (to another model) is left out: the newest
    // message, text only, is answered.
    let mut ask = request("What is the capital of France?", greedy(8));
    ask.messages.insert(
        0,
        ChatMessage::new(Role::User, "[Attached image: cat.png]").with_images(vec![
            confab_inference::types::ImageInput::from_bytes("image/png", b"\x89PNG"),
        ]),
    );
    ask.messages
        .insert(1, ChatMessage::new(Role::Assistant, "A cat."));
    let (deltas, _, _) = run(&service, &ask).await;
    assert!(!deltas.concat().is_empty());
}

#[tokio::test]
async fn cancelling_stops_generation_and_frees_the_slot() {
    let service = service(1);
    let cancel = CancellationToken::new();
    let mut stream = service
        .chat_completion(
            &caller(),
            request("Tell me a long story about a dragon.", greedy(400)),
            cancel.clone(),
        )
        .await
        .unwrap()
        .stream;
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(first, ChatEvent::Delta(_)));
    cancel.cancel();
    let mut deltas_after = 0;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            ChatEvent::Delta(_) => deltas_after += 1,
            ChatEvent::Finished { .. } => panic!("a cancelled generation must not finish"),
            ChatEvent::Started => {}
        }
    }
    assert!(deltas_after < 399, "the worker kept going after cancel");
    // The single slot is free again.
    let (_, reason, _) = run(&service, &request("Hi", greedy(3))).await;
    assert_eq!(reason, FinishReason::Length);
}

#[tokio::test]
async fn requests_queue_for_a_busy_model() {
    let service = service(1);
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move {
                run(
                    &service,
                    &request(&format!("Say the number {i}."), greedy(8)),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        let (_, _, usage) = task.await.unwrap();
        assert!(usage.completion_tokens > 0);
    }
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_instead_of_growing() {
    use confab_inference::engine::{Engine, EngineSettings};
    let path = confab_testkit::test_models_dir()
        .unwrap()
        .join(format!("{}.gguf", confab_testkit::SMOLLM2));
    let settings = EngineSettings {
        threads: 1,
        context_size: 512,
        parallel: 1,
        batch_size: 512,
        queue: 1,
    };
    let engine = tokio::task::spawn_blocking(move || Engine::load("m", &path, &settings))
        .await
        .unwrap()
        .unwrap();
    let long = || {
        vec![ChatMessage::new(
            Role::User,
            "Tell me a long story about a dragon.",
        )]
    };
    let cancel = CancellationToken::new();
    // The worker takes the first job: once it streams, the queue is empty again.
    let mut first = engine
        .generate(long(), greedy(400), None, cancel.clone())
        .unwrap();
    first.recv().await.unwrap().unwrap();
    // The second waits in the queue, which holds one.
    let mut second = engine
        .generate(long(), greedy(4), None, cancel.clone())
        .unwrap();
    // The third is refused at once, as busy, with a time to retry.
    let refused = engine
        .generate(long(), greedy(4), None, cancel.clone())
        .unwrap_err();
    assert!(
        matches!(
            refused,
            InferenceError::Busy {
                retry_after_secs: Some(_),
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!((refused.status(), refused.code()), (503, "model_busy"));
    // The engine stops in order before the test process exits: a process that exits while a
    // worker thread is still inside llama.cpp can crash in the library's teardown (SIGSEGV
    // after "ok"). Both jobs end with the shutting-down error; the engine refuses more.
    assert!(engine.shutdown(std::time::Duration::from_secs(20)).await);
    for receiver in [&mut first, &mut second] {
        let mut last = None;
        while let Some(event) = receiver.recv().await {
            last = Some(event);
        }
        assert!(
            matches!(last, Some(Err(InferenceError::Unavailable(_)))),
            "{last:?}"
        );
    }
    let refused = engine
        .generate(long(), greedy(4), None, cancel)
        .unwrap_err();
    assert!(
        matches!(refused, InferenceError::Unavailable(ref m) if m.contains("shutting down")),
        "{refused:?}"
    );
}

/// What a process does before it exits: a generation in flight ends at its next token with the
/// shutting-down error, a queued one is refused, the workers are joined within the bound (none
/// is left inside llama.cpp for the static destructors), and later requests are refused.
#[tokio::test]
async fn shutdown_stops_generations_and_joins_the_workers() {
    let service = service(1);
    let mut running = service
        .chat_completion(
            &caller(),
            request("Tell me a long story about a dragon.", greedy(400)),
            CancellationToken::new(),
        )
        .await
        .unwrap()
        .stream;
    assert!(matches!(
        running.next().await.unwrap().unwrap(),
        ChatEvent::Delta(_)
    ));
    // The single worker is busy: this one waits in the queue.
    let queued = tokio::spawn({
        let service = service.clone();
        async move {
            service
                .chat_completion(
                    &caller(),
                    request("Hi", greedy(3)),
                    CancellationToken::new(),
                )
                .await
                .map(|_| ())
        }
    });

    let bound = std::time::Duration::from_secs(20);
    let started = std::time::Instant::now();
    assert!(service.shutdown(bound).await, "every worker was joined");
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());

    // The running stream ends (an error, or a finish if it got there first), it does not hang.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut deltas = 0;
        while let Some(event) = running.next().await {
            match event {
                Ok(ChatEvent::Delta(_)) => deltas += 1,
                Ok(ChatEvent::Started) => {}
                Ok(ChatEvent::Finished { .. }) => return (deltas, None),
                Err(e) => return (deltas, Some(e)),
            }
        }
        panic!("the stream ended without an error or a finish");
    })
    .await
    .expect("the stream ends once the engine stops");
    if let (deltas, Some(error)) = ended {
        assert!(deltas < 399, "the worker kept going after shutdown");
        assert!(
            matches!(error, InferenceError::Unavailable(ref m) if m.contains("shutting down")),
            "{error:?}"
        );
    }
    let queued = queued.await.unwrap().unwrap_err();
    assert!(
        matches!(queued, InferenceError::Unavailable(ref m) if m.contains("shutting down")),
        "{queued:?}"
    );

    // Refused from now on with the clear error (503), and no model is loaded again.
    let refused = service
        .chat_completion(
            &caller(),
            request("Hi", greedy(3)),
            CancellationToken::new(),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(refused, InferenceError::Unavailable(ref m) if m.contains("shutting down")),
        "{refused:?}"
    );
    assert_eq!(refused.status(), 503);
    // Stopping again finds nothing left to join.
    assert!(service.shutdown(bound).await);
}

#[tokio::test]
async fn an_abandoned_embeddings_request_stops_before_its_next_batch() {
    let service = service(1);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let request = EmbedRequest {
        model: "all-MiniLM-L6-v2".into(),
        texts: vec!["a sentence to embed".into(); 256],
    };
    let error = service
        .embeddings(&caller(), request, cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(error, InferenceError::Unavailable(ref m) if m.contains("cancelled")),
        "{error:?}"
    );
}

#[tokio::test]
async fn json_output_follows_the_grammar() {
    let service = service(1);
    let mut ask = request("Describe a cat as JSON with its name and age.", greedy(80));
    ask.response_format = Some(ResponseFormat::JsonObject);
    let (deltas, _, _) = run(&service, &ask).await;
    let value: serde_json::Value = serde_json::from_str(&deltas.concat()).unwrap();
    assert!(value.is_object(), "{value}");

    ask.response_format = Some(ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: "cat".into(),
            schema: serde_json::json!({
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": false
            }),
            strict: Some(true),
            description: None,
        },
    });
    let (deltas, _, _) = run(&service, &ask).await;
    let value: serde_json::Value = serde_json::from_str(&deltas.concat()).unwrap();
    assert!(
        value["name"].is_string() && value["age"].is_i64(),
        "{value}"
    );
}

#[tokio::test]
async fn local_models_are_listed_with_their_metadata() {
    let service = service(1);
    let models = service.models();
    let smol = models
        .iter()
        .find(|m| m.id == confab_testkit::SMOLLM2)
        .unwrap();
    assert_eq!(smol.provider, "embedded");
    let meta = &smol.local.as_ref().unwrap().meta;
    assert_eq!(meta.architecture.as_deref(), Some("llama"));
    assert_eq!(meta.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(meta.parameters.as_deref(), Some("135M"));
    assert_eq!(meta.context_length, Some(8192));
    assert!(meta.has_chat_template);
    assert_eq!(
        service.default_model().as_deref(),
        Some(confab_testkit::SMOLLM2)
    );
    let missing = service
        .chat_completion(
            &caller(),
            ChatRequest {
                model: "missing".into(),
                ..request("x", greedy(1))
            },
            CancellationToken::new(),
        )
        .await
        .err()
        .unwrap();
    assert!(matches!(missing, InferenceError::ModelNotFound(_)));
}

#[tokio::test]
async fn local_embeddings_are_normalised_and_meaningful() {
    let service = service(1);
    assert!(service.models().iter().any(|m| m.id == "all-MiniLM-L6-v2"));
    let texts = [
        "A cat sits on the mat.",
        "A kitten rests on a rug.",
        "The stock market fell today.",
    ];
    let embed = |model: &str, texts: Vec<String>| {
        let service = service.clone();
        let request = EmbedRequest {
            model: model.to_owned(),
            texts,
        };
        async move {
            service
                .embeddings(&caller(), request, CancellationToken::new())
                .await
                .map(|(e, _)| (e.vectors, e.prompt_tokens))
        }
    };
    let (vectors, tokens) = embed(
        "all-MiniLM-L6-v2",
        texts.iter().map(|t| (*t).to_owned()).collect(),
    )
    .await
    .unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(vectors.iter().all(|v| v.len() == 384));
    assert!(tokens > 10);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for v in &vectors {
        assert!((dot(v, v) - 1.0).abs() < 1e-4, "unit length");
    }
    let similar = dot(&vectors[0], &vectors[1]);
    let unrelated = dot(&vectors[0], &vectors[2]);
    assert!(
        similar > 0.5 && unrelated < 0.2 && similar > unrelated,
        "{similar} vs {unrelated}"
    );
    // The same text embeds the same whatever it is batched with.
    let (alone, _) = embed("all-MiniLM-L6-v2", vec![texts[0].to_owned()])
        .await
        .unwrap();
    assert!(dot(&alone[0], &vectors[0]) > 0.9999);
    let missing = embed("no-such-encoder", vec!["x".into()])
        .await
        .unwrap_err();
    assert!(matches!(missing, InferenceError::ModelNotFound(_)));
}
