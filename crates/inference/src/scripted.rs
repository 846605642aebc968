//! The scripted provider: a deterministic stand-in for a model, for tests and demos. It
//! answers with its configured reply (`{last}` becomes the last user message), one word per
//! token, optionally with a delay between words.

use std::time::Duration;

use futures::StreamExt;

use crate::text::{StopMatcher, StopOutcome};
use crate::types::{ChatEvent, ChatRequest, ChatStream, FinishReason, Role, Usage};

#[derive(Debug, Clone)]
pub struct Scripted {
    pub reply: String,
    pub delay: Duration,
}

/// Words with their following space, so joining the pieces gives the text back.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl Scripted {
    /// The reply with `{last}` as the last user message's text and `{images}` as the images
    /// of the whole request, counted with their types (`2 images: image/png, image/jpeg`).
    pub fn answer(&self, request: &ChatRequest) -> String {
        let last = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let images: Vec<&str> = request
            .messages
            .iter()
            .flat_map(|m| m.images.iter().map(|i| i.media_type.as_str()))
            .collect();
        let images = match images.len() {
            0 => "no images".to_owned(),
            1 => format!("1 image: {}", images[0]),
            n => format!("{n} images: {}", images.join(", ")),
        };
        self.reply
            .replace("{last}", last)
            .replace("{images}", &images)
    }

    pub fn stream(&self, request: &ChatRequest) -> ChatStream {
        let prompt_tokens: usize = request
            .messages
            .iter()
            .map(|m| pieces(&m.content).len())
            .sum();
        let prompt_tokens = u32::try_from(prompt_tokens).unwrap_or(u32::MAX);
        let words = pieces(&self.answer(request));
        let max = request.params.max_tokens.map_or(usize::MAX, |m| m as usize);
        let delay = self.delay;
        let mut stops = StopMatcher::new(request.params.stop.clone());
        let truncated = words.len() > max;
        let words: Vec<String> = words.into_iter().take(max).collect();
        let total = u32::try_from(words.len()).unwrap_or(u32::MAX);
        let mut events = vec![Ok(ChatEvent::Started)];
        let mut reason = if truncated {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let mut generated = 0;
        for word in words {
            generated += 1;
            match stops.push(&word) {
                StopOutcome::Emit(text) if text.is_empty() => {}
                StopOutcome::Emit(text) => events.push(Ok(ChatEvent::Delta(text))),
                StopOutcome::Stopped(text) => {
                    if !text.is_empty() {
                        events.push(Ok(ChatEvent::Delta(text)));
                    }
                    reason = FinishReason::Stop;
                    break;
                }
            }
        }
        let rest = stops.finish();
        if !rest.is_empty() && generated == total {
            events.push(Ok(ChatEvent::Delta(rest)));
        }
        events.push(Ok(ChatEvent::Finished {
            reason,
            usage: Usage::new(prompt_tokens, generated),
        }));
        futures::stream::iter(events)
            .then(move |event| async move {
                if !delay.is_zero() && matches!(event, Ok(ChatEvent::Delta(_))) {
                    tokio::time::sleep(delay).await;
                }
                event
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChatMessage, SamplingParams};

    fn request(params: SamplingParams) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::new(Role::User, "ping pong")],
            params,
            response_format: None,
            stream: true,
        }
    }

    async fn collect(stream: ChatStream) -> (String, FinishReason, Usage) {
        let events: Vec<_> = stream.collect().await;
        let mut text = String::new();
        for event in &events {
            if let Ok(ChatEvent::Delta(d)) = event {
                text.push_str(d);
            }
        }
        match events.last() {
            Some(Ok(ChatEvent::Finished { reason, usage })) => (text, *reason, *usage),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn answers_deterministically_with_limits() {
        let scripted = Scripted {
            reply: "You said: {last}. Bye now".into(),
            delay: Duration::ZERO,
        };
        let (text, reason, usage) =
            collect(scripted.stream(&request(SamplingParams::default()))).await;
        assert_eq!(text, "You said: ping pong. Bye now");
        assert_eq!(reason, FinishReason::Stop);
        assert_eq!(usage, Usage::new(2, 6));
        let limited = SamplingParams {
            max_tokens: Some(2),
            ..SamplingParams::default()
        };
        let (text, reason, _) = collect(scripted.stream(&request(limited))).await;
        assert_eq!(
            (text.as_str(), reason),
            ("You said: ", FinishReason::Length)
        );
        let stopped = SamplingParams {
            stop: vec!["pong".into()],
            ..SamplingParams::default()
        };
        let (text, reason, _) = collect(scripted.stream(&request(stopped))).await;
        assert_eq!(
            (text.as_str(), reason),
            ("You said: ping ", FinishReason::Stop)
        );
    }
}
