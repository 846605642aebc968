//! `ChatService` over the harness's fake ports (`harness.rs`): the service's own rules, no HTTP.

use std::time::Duration;

use confab_bus::{Envelope, EventBus, Received, user_topic};
use confab_chat::domain::{Author, ConversationInput, MessageStatus};
use confab_chat::events::MessageCompleted;
use confab_chat::ports::ConversationChanges;
use confab_chat::service::Follow;
use confab_chat::{ChatSettings, TitleJob};
use confab_model_client::ModelError;
use futures::StreamExt;
use uuid::Uuid;

use crate::harness::{Harness, Step, quiet_settings};

#[tokio::test]
async fn a_sent_message_is_answered_completely_with_the_configured_sampling() {
    let h = Harness::new(ChatSettings {
        default_temperature: 0.3,
        default_top_p: 0.9,
        ..quiet_settings()
    })
    .await;
    let mut events = h.events.subscribe(&user_topic(h.user.user_id));
    let c = h
        .conversation(ConversationInput {
            system_prompt: Some("Be brief.".into()),
            ..ConversationInput::default()
        })
        .await;
    h.model.script(vec![
        Step::Delta("Hello, "),
        Step::Delta("world"),
        Step::Finish,
    ]);
    let (question, answer) = h.send(c, "Hi there").await;
    assert_eq!(answer.status, MessageStatus::Streaming);
    assert_eq!(answer.parent_id, Some(question.id));
    let done = h.followed(c, answer.id).await;
    assert_eq!(
        (done.content.as_str(), done.status, done.error),
        ("Hello, world", MessageStatus::Complete, None)
    );
    assert_eq!(
        (done.prompt_tokens, done.completion_tokens),
        (Some(7), Some(3))
    );

    // The model was asked with the system prompt, the message and the configured defaults.
    let request = h.model.requests.lock()[0].clone();
    assert_eq!(request.model, "scripted");
    assert_eq!(request.messages.len(), 2);
    assert_eq!(request.params.temperature, 0.3);
    assert_eq!(request.params.top_p, 0.9);
    assert!(request.stream);

    // The tabs were told, with the typed event.
    let completed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Received::Event(envelope)) = events.next().await {
            if let Some(event) = Envelope::decode::<MessageCompleted>(&envelope) {
                return event;
            }
        }
        panic!("no message.completed");
    })
    .await
    .unwrap();
    assert_eq!(completed.message.id, answer.id);
    assert_eq!(completed.message.status, MessageStatus::Complete);
    h.settle().await;
    assert_eq!(h.service.live_answers(), 0);
}

#[tokio::test]
async fn a_stopped_answer_keeps_its_text_as_stopped() {
    let h = Harness::new(quiet_settings()).await;
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("Partial"), Step::Hang]);
    let (_, answer) = h.send(c, "Tell me everything").await;
    let mut events = h.service.follow(&h.user, c, answer.id, 0).await.unwrap();
    // Stop once the first text is there.
    match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        Ok(Some(Follow::Delta { content, .. })) => assert_eq!(content, "Partial"),
        other => panic!("expected the first text, got {other:?}"),
    }
    h.service.stop(&h.user, c, answer.id).await.unwrap();
    let done = h.followed(c, answer.id).await;
    assert_eq!(
        (done.content.as_str(), done.status),
        ("Partial", MessageStatus::Stopped)
    );
    // Ended: nothing to stop any more.
    let again = h.service.stop(&h.user, c, answer.id).await.unwrap_err();
    assert!(again.to_string().contains("not being generated"), "{again}");
}

#[tokio::test]
async fn an_answer_cut_off_by_shutdown_is_interrupted() {
    let h = Harness::new(quiet_settings()).await;
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("Half"), Step::Hang]);
    let (_, answer) = h.send(c, "Go on").await;
    let mut events = h.service.follow(&h.user, c, answer.id, 0).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(10), events.next()).await,
        Ok(Some(Follow::Delta { .. }))
    ));
    h.shutdown.cancel();
    h.settle().await;
    let saved = h.followed(c, answer.id).await;
    assert_eq!(
        (saved.content.as_str(), saved.status),
        ("Half", MessageStatus::Interrupted)
    );
}

#[tokio::test]
async fn a_model_failure_ends_the_answer_with_the_safe_message_only() {
    let h = Harness::new(quiet_settings()).await;
    let c = h.conversation(ConversationInput::default()).await;
    let failure = ModelError::Upstream {
        provider: "remote".into(),
        status: 502,
        message: "proxy at http://10.0.0.7/internal failed: /srv/secret.txt".into(),
        retry_after_secs: None,
    };
    h.model
        .script(vec![Step::Delta("Start"), Step::Fail(failure.clone())]);
    let (_, answer) = h.send(c, "Hello").await;
    let done = h.followed(c, answer.id).await;
    assert_eq!(done.status, MessageStatus::Error);
    assert_eq!(done.content, "Start");
    let error = done.error.unwrap();
    assert_eq!(error, failure.public_message());
    assert!(
        !error.contains("10.0.0.7") && !error.contains("secret"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_finishing_is_an_error() {
    let h = Harness::new(quiet_settings()).await;
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("Cut")]);
    let (_, answer) = h.send(c, "Hello").await;
    let done = h.followed(c, answer.id).await;
    assert_eq!(done.status, MessageStatus::Error);
    assert_eq!(
        done.error.as_deref(),
        Some(confab_chat::domain::UNFINISHED_ANSWER)
    );
}

#[tokio::test]
async fn regenerating_makes_a_sibling_of_the_old_answer() {
    let h = Harness::new(quiet_settings()).await;
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("First"), Step::Finish]);
    h.model.script(vec![Step::Delta("Second"), Step::Finish]);
    let (question, first) = h.send(c, "Pick a number").await;
    h.followed(c, first.id).await;
    let second = h
        .service
        .regenerate(&h.user, c, first.id, None)
        .await
        .unwrap();
    assert_eq!(second.parent_id, Some(question.id));
    assert_eq!(second.role, Author::Assistant);
    assert_eq!(h.followed(c, second.id).await.content, "Second");
    let path = h.service.active_path(&h.user, c).await.unwrap();
    let (last, branches) = path.last().unwrap();
    assert_eq!(last.id, second.id);
    assert_eq!(branches.sibling_ids, [first.id, second.id]);
    // The regenerated answer was asked the same question, without the old answer.
    let request = h.model.requests.lock()[1].clone();
    assert_eq!(request.messages.len(), 1);
    h.settle().await;
}

#[tokio::test]
async fn the_title_job_names_only_a_provisionally_titled_conversation() {
    let h = Harness::new(ChatSettings::default()).await;
    // Automatic: after the first exchange the model's suggestion replaces the provisional
    // title.
    let c = h.conversation(ConversationInput::default()).await;
    h.model
        .script(vec![Step::Delta("Foxes are canids."), Step::Finish]);
    h.model
        .script(vec![Step::Delta("\"Fox facts.\""), Step::Finish]);
    let (_, answer) = h.send(c, "Tell me about foxes").await;
    h.followed(c, answer.id).await;
    h.settle().await;
    assert_eq!(h.model.calls(), 2);
    assert_eq!(
        h.service.conversation(&h.user, c).await.unwrap().title,
        "Fox facts"
    );
    let job = |conversation_id| TitleJob {
        user_id: h.user.user_id,
        role: h.user.role,
        key_id: None,
        conversation_id,
    };
    // Named already: a second run changes nothing and asks no model.
    assert_eq!(h.service.run_title_job(&job(c)).await.unwrap(), None);
    assert_eq!(h.model.calls(), 2);

    // Renamed by the user before the job ran: their name stays.
    let quiet = Harness::new(quiet_settings()).await;
    let renamed = quiet.conversation(ConversationInput::default()).await;
    quiet
        .model
        .script(vec![Step::Delta("Owls hoot."), Step::Finish]);
    let (_, answer) = quiet.send(renamed, "Tell me about owls").await;
    quiet.followed(renamed, answer.id).await;
    assert_eq!(
        quiet
            .service
            .conversation(&quiet.user, renamed)
            .await
            .unwrap()
            .title,
        "Tell me about owls",
        "provisional until named"
    );
    quiet
        .service
        .update(
            &quiet.user,
            renamed,
            ConversationChanges {
                title: Some("Mine".into()),
                ..ConversationChanges::default()
            },
        )
        .await
        .unwrap();
    let quiet_job = TitleJob {
        user_id: quiet.user.user_id,
        role: quiet.user.role,
        key_id: None,
        conversation_id: renamed,
    };
    assert_eq!(quiet.service.run_title_job(&quiet_job).await.unwrap(), None);
    assert_eq!(quiet.model.calls(), 1, "no model asked");
    assert_eq!(
        quiet
            .service
            .conversation(&quiet.user, renamed)
            .await
            .unwrap()
            .title,
        "Mine"
    );
    // Another user's conversation is not theirs to name.
    let stranger = TitleJob {
        user_id: Uuid::now_v7(),
        ..quiet_job
    };
    assert_eq!(quiet.service.run_title_job(&stranger).await.unwrap(), None);
    quiet.settle().await;
}

#[tokio::test]
async fn a_title_job_whose_model_fails_is_an_error_to_retry() {
    let h = Harness::new(quiet_settings()).await;
    let c = h.conversation(ConversationInput::default()).await;
    h.model.script(vec![Step::Delta("Answer"), Step::Finish]);
    let (_, answer) = h.send(c, "Question").await;
    h.followed(c, answer.id).await;
    h.model
        .script(vec![Step::Fail(ModelError::Unavailable("down".into()))]);
    let job = TitleJob {
        user_id: h.user.user_id,
        role: h.user.role,
        key_id: None,
        conversation_id: c,
    };
    let error = h.service.run_title_job(&job).await.unwrap_err();
    assert!(
        matches!(
            error,
            confab_chat::TitleError::Model(ModelError::Unavailable(_))
        ),
        "{error:?}"
    );
    assert_eq!(
        h.service.conversation(&h.user, c).await.unwrap().title,
        "Question"
    );
    h.settle().await;
}
