//! Chat templates: turning messages into the prompt a model was trained on. llama.cpp's
//! built-in support comes first (it recognises the common templates stored in GGUF files);
//! templates it does not know are rendered with minijinja from the GGUF's Jinja source, and a
//! model without any template gets ChatML.

use minijinja::{Environment, Error, ErrorKind, context};

use crate::error::InferenceError;
use crate::types::ChatMessage;

/// ChatML, for models that carry no template.
pub const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

pub enum Template {
    #[cfg(feature = "llama")]
    Llama(llama_cpp_2::model::LlamaChatTemplate),
    Jinja {
        source: String,
        bos: String,
        eos: String,
    },
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(feature = "llama")]
            Template::Llama(_) => f.write_str("Template::Llama"),
            Template::Jinja { .. } => f.write_str("Template::Jinja"),
        }
    }
}

impl Template {
    /// The template of a loaded model.
    #[cfg(feature = "llama")]
    pub fn for_model(model: &llama_cpp_2::model::LlamaModel) -> Self {
        use crate::types::Role;
        let vocab = model.vocab();
        let piece =
            |token| String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned();
        let (bos, eos) = (piece(vocab.bos()), piece(vocab.eos()));
        match model.chat_template(None) {
            Ok(template) => {
                let probe = [ChatMessage::new(Role::User, "hi")];
                if crate::engine::apply_llama_template(model, &template, &probe).is_ok() {
                    Template::Llama(template)
                } else {
                    let source = template.to_string().unwrap_or_else(|_| CHATML.to_owned());
                    Template::Jinja { source, bos, eos }
                }
            }
            Err(_) => Template::Jinja {
                source: CHATML.to_owned(),
                bos,
                eos,
            },
        }
    }

    /// The prompt for `messages`, ending where the assistant's answer starts.
    #[cfg(feature = "llama")]
    pub fn render(
        &self,
        model: &llama_cpp_2::model::LlamaModel,
        messages: &[ChatMessage],
    ) -> Result<String, InferenceError> {
        match self {
            Template::Llama(template) => {
                crate::engine::apply_llama_template(model, template, messages)
                    .map_err(|e| InferenceError::Engine(format!("chat template: {e}")))
            }
            Template::Jinja { source, bos, eos } => render_jinja(source, messages, bos, eos),
        }
    }
}

/// Renders a Hugging Face style chat template.
pub fn render_jinja(
    source: &str,
    messages: &[ChatMessage],
    bos: &str,
    eos: &str,
) -> Result<String, InferenceError> {
    let mut env = Environment::new();
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_template("chat", source).map_err(|e| {
        InferenceError::Engine(format!("the model's chat template does not parse: {e}"))
    })?;
    let messages: Vec<_> = messages
        .iter()
        .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
        .collect();
    env.get_template("chat")
        .and_then(|t| {
            t.render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => bos,
                eos_token => eos,
            })
        })
        .map_err(|e| InferenceError::InvalidRequest {
            param: Some("messages"),
            message: format!("the model's chat template refused these messages: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Role;

    #[test]
    fn chatml_renders() {
        let prompt = render_jinja(
            CHATML,
            &[
                ChatMessage::new(Role::System, "be brief"),
                ChatMessage::new(Role::User, "hi"),
            ],
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn template_errors_are_reported() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok";
        let err = render_jinja(source, &[ChatMessage::new(Role::System, "x")], "", "").unwrap_err();
        assert!(err.to_string().contains("first must be user"), "{err}");
    }
}
