//! What users may store in a conversation's or preset's fields, and the one validation every
//! way in (create, PATCH, presets, imports) goes through.

use uuid::Uuid;

use super::{Params, Preset};

/// The longest title, folder name or tag, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_FOLDER_CHARS: usize = 100;
pub const MAX_TAG_CHARS: usize = 50;
pub const MAX_TAGS: usize = 20;
/// The longest model name a conversation or message may name.
pub const MAX_MODEL_CHARS: usize = 200;
/// The longest system prompt and message, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// The longest error an answer may carry (imports bring their own).
pub const MAX_ERROR_CHARS: usize = 10_000;

/// Checks a text field's length; `None` when fine, else the problem.
pub fn too_long(field: &str, value: &str, max: usize) -> Option<String> {
    let n = value.chars().count();
    (n > max).then(|| format!("{field} is {n} characters; at most {max} are allowed"))
}

/// Normalises tags (trimmed, lower-case, unique, in order) and lists what is wrong with them.
/// The count is checked before any tag is looked at, and duplicates are found with a set, so
/// the work is linear in the input and a huge list is refused at once.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(vec![format!("at most {MAX_TAGS} tags, got {}", tags.len())]);
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    let mut seen = std::collections::HashSet::with_capacity(tags.len());
    let mut problems = Vec::new();
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() {
            problems.push("tags may not be empty".to_owned());
            continue;
        }
        if let Some(p) = too_long("a tag", &tag, MAX_TAG_CHARS) {
            problems.push(p);
            continue;
        }
        if seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// An optional text field as stored: trimmed, and empty means unset.
pub fn optional_text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The fields users set on a conversation or a preset, as they come in: by create, PATCH,
/// a preset, or either import format. Unset fields are not checked. [`Fields::check`] is the
/// one validation they all go through, so no way in skips a limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub title: Option<&'a str>,
    /// A preset's name: required, at most [`MAX_TITLE_CHARS`].
    pub name: Option<&'a str>,
    pub model: Option<&'a str>,
    pub system_prompt: Option<&'a str>,
    pub folder: Option<&'a str>,
    pub params: Option<&'a Params>,
    pub tags: Option<&'a [String]>,
}

impl Fields<'_> {
    /// Checks every field given. Returns the tags normalised (when given), or every problem.
    pub fn check(&self) -> Result<Option<Vec<String>>, Vec<String>> {
        let mut problems = self.params.map(Params::problems).unwrap_or_default();
        if self.name.is_some_and(|n| n.trim().is_empty()) {
            problems.push("name may not be empty".into());
        }
        let limits = [
            ("title", self.title, MAX_TITLE_CHARS),
            ("name", self.name, MAX_TITLE_CHARS),
            ("model", self.model, MAX_MODEL_CHARS),
            ("system_prompt", self.system_prompt, MAX_SYSTEM_PROMPT_CHARS),
            ("folder", self.folder, MAX_FOLDER_CHARS),
        ];
        for (field, value, max) in limits {
            if let Some(p) = value.and_then(|v| too_long(field, v, max)) {
                problems.push(p);
            }
        }
        let tags = match self.tags.map(normalize_tags) {
            Some(Ok(tags)) => Some(tags),
            Some(Err(p)) => {
                problems.extend(p);
                None
            }
            None => None,
        };
        if problems.is_empty() {
            Ok(tags)
        } else {
            Err(problems)
        }
    }
}

/// A new conversation as a user asks for it.
#[derive(Debug, Clone, Default)]
pub struct ConversationInput {
    pub title: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Option<Params>,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    /// Start from a preset's system prompt and parameters (explicit fields win).
    pub preset_id: Option<Uuid>,
}

/// A new conversation's fields, normalised and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationFields {
    /// Empty: untitled (the first message gives it a provisional title).
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub params: Params,
    pub folder: Option<String>,
    pub tags: Vec<String>,
}

impl ConversationInput {
    /// The fields of the conversation to create: texts trimmed, empty ones unset, the system
    /// prompt and parameters the user left out taken from `preset` (the one `preset_id`
    /// names), tags normalised, and everything checked by [`Fields::check`]. Every problem
    /// is listed, not only the first.
    pub fn check(self, preset: Option<&Preset>) -> Result<ConversationFields, Vec<String>> {
        let title = self.title.map(|t| t.trim().to_owned()).unwrap_or_default();
        let model = optional_text(self.model);
        let system_prompt = optional_text(self.system_prompt)
            .or_else(|| preset.and_then(|p| p.system_prompt.clone()));
        let params = self
            .params
            .or_else(|| preset.map(|p| p.params.clone()))
            .unwrap_or_default();
        let folder = optional_text(self.folder);
        let tags = Fields {
            title: Some(&title),
            model: model.as_deref(),
            system_prompt: system_prompt.as_deref(),
            folder: folder.as_deref(),
            params: Some(&params),
            tags: Some(&self.tags),
            ..Fields::default()
        }
        .check()?
        .unwrap_or_default();
        Ok(ConversationFields {
            title,
            model,
            system_prompt,
            params,
            folder,
            tags,
        })
    }
}

/// Changes to a conversation; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationChanges {
    pub title: Option<String>,
    pub model: Option<Option<String>>,
    pub system_prompt: Option<Option<String>>,
    pub params: Option<Params>,
    pub folder: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    pub active_leaf_id: Option<Uuid>,
}

impl ConversationChanges {
    /// The changes as they are stored: the title trimmed; the model, system prompt and folder
    /// trimmed, an empty one clearing the field; tags normalised; every field given checked
    /// by [`Fields::check`] (all problems listed).
    pub fn check(mut self) -> Result<Self, Vec<String>> {
        if let Some(title) = &mut self.title {
            *title = title.trim().to_owned();
        }
        for value in [&mut self.model, &mut self.system_prompt, &mut self.folder]
            .into_iter()
            .flatten()
        {
            *value = optional_text(value.take());
        }
        let tags = Fields {
            title: self.title.as_deref(),
            model: self.model.clone().flatten().as_deref(),
            system_prompt: self.system_prompt.clone().flatten().as_deref(),
            folder: self.folder.clone().flatten().as_deref(),
            params: self.params.as_ref(),
            tags: self.tags.as_deref(),
            ..Fields::default()
        }
        .check()?;
        if tags.is_some() {
            self.tags = tags;
        }
        Ok(self)
    }
}

/// A preset's fields as a user sends them (creating or replacing one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresetInput {
    pub name: String,
    pub system_prompt: Option<String>,
    pub params: Params,
}

impl PresetInput {
    /// The fields as stored: the name trimmed (and required), the system prompt trimmed with
    /// empty meaning none, everything checked by [`Fields::check`].
    pub fn check(self) -> Result<Self, Vec<String>> {
        let name = self.name.trim().to_owned();
        let system_prompt = optional_text(self.system_prompt);
        Fields {
            name: Some(&name),
            system_prompt: system_prompt.as_deref(),
            params: Some(&self.params),
            ..Fields::default()
        }
        .check()?;
        Ok(Self {
            name,
            system_prompt,
            params: self.params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised_and_checked() {
        assert_eq!(
            normalize_tags(&[" Work ".into(), "work".into(), "Ideas".into()]),
            Ok(vec!["work".to_owned(), "ideas".to_owned()])
        );
        let problems = normalize_tags(&["".into(), "x".repeat(51)]).unwrap_err();
        assert_eq!(problems.len(), 2);
    }

    #[test]
    fn too_many_tags_are_refused_before_any_is_looked_at() {
        // Tags that would each be a problem if they were looked at: only the count is named.
        let many: Vec<String> = vec![String::new(); 80_000];
        assert_eq!(
            normalize_tags(&many),
            Err(vec!["at most 20 tags, got 80000".to_owned()])
        );
        let twenty_one: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(
            normalize_tags(&twenty_one),
            Err(vec!["at most 20 tags, got 21".to_owned()])
        );
        let twenty: Vec<String> = (0..20).map(|i| format!("T{i}")).collect();
        assert_eq!(normalize_tags(&twenty).unwrap().len(), 20);
    }

    #[test]
    fn fields_are_checked_in_one_place() {
        let long = "x".repeat(20_001);
        let tags = vec!["A".to_owned(), "a".to_owned()];
        let params = Params {
            temperature: Some(5.0),
            ..Params::default()
        };
        let problems = Fields {
            title: Some(&long),
            name: Some(" "),
            model: Some(&long),
            system_prompt: Some(&long),
            folder: Some(&long),
            params: Some(&params),
            tags: None,
        }
        .check()
        .unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("system_prompt is 20001"))
        );
        assert!(problems.iter().any(|p| p.starts_with("folder is 20001")));
        assert!(problems.iter().any(|p| p.starts_with("model is 20001")));
        let fine = Fields {
            title: Some("t"),
            tags: Some(&tags),
            ..Fields::default()
        };
        assert_eq!(fine.check(), Ok(Some(vec!["a".to_owned()])));
        assert_eq!(Fields::default().check(), Ok(None));
    }

    #[test]
    fn a_new_conversation_is_trimmed_filled_from_its_preset_and_checked() {
        let preset = Preset {
            id: Uuid::nil(),
            name: "Terse".into(),
            system_prompt: Some("Be brief.".into()),
            params: Params {
                temperature: Some(0.1),
                ..Params::default()
            },
            created_at: 0,
            updated_at: 0,
        };
        let fields = ConversationInput {
            title: Some("  Plans ".into()),
            model: Some("   ".into()),
            folder: Some(" Work ".into()),
            tags: vec!["B".into(), "b".into()],
            ..ConversationInput::default()
        }
        .check(Some(&preset))
        .unwrap();
        assert_eq!(
            fields,
            ConversationFields {
                title: "Plans".into(),
                model: None,
                system_prompt: Some("Be brief.".into()),
                params: preset.params.clone(),
                folder: Some("Work".into()),
                tags: vec!["b".into()],
            }
        );
        // What the user gives wins over the preset.
        let own = ConversationInput {
            system_prompt: Some("Be thorough.".into()),
            params: Some(Params::default()),
            ..ConversationInput::default()
        }
        .check(Some(&preset))
        .unwrap();
        assert_eq!(own.system_prompt.as_deref(), Some("Be thorough."));
        assert_eq!(own.params, Params::default());
        assert_eq!(own.title, "");
        // Every problem at once.
        let problems = ConversationInput {
            title: Some("t".repeat(201)),
            folder: Some("f".repeat(101)),
            params: Some(Params {
                top_p: Some(2.0),
                ..Params::default()
            }),
            tags: vec![String::new()],
            ..ConversationInput::default()
        }
        .check(None)
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn changes_are_trimmed_cleared_when_empty_and_checked() {
        let changes = ConversationChanges {
            title: Some(" New ".into()),
            model: Some(Some(" ".into())),
            system_prompt: Some(Some(" Be kind. ".into())),
            folder: None,
            tags: Some(vec!["X".into()]),
            ..ConversationChanges::default()
        }
        .check()
        .unwrap();
        assert_eq!(changes.title.as_deref(), Some("New"));
        assert_eq!(changes.model, Some(None), "an empty model clears it");
        assert_eq!(changes.system_prompt, Some(Some("Be kind.".into())));
        assert_eq!(changes.folder, None, "not given: unchanged");
        assert_eq!(changes.tags, Some(vec!["x".to_owned()]));
        let problems = ConversationChanges {
            system_prompt: Some(Some("s".repeat(20_001))),
            model: Some(Some("m".repeat(201))),
            params: Some(Params {
                max_tokens: Some(0),
                ..Params::default()
            }),
            ..ConversationChanges::default()
        }
        .check()
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(
            ConversationChanges::default().check(),
            Ok(ConversationChanges::default())
        );
    }

    #[test]
    fn presets_need_a_name_and_keep_to_the_limits() {
        let preset = PresetInput {
            name: " Terse ".into(),
            system_prompt: Some("  ".into()),
            params: Params::default(),
        }
        .check()
        .unwrap();
        assert_eq!(preset.name, "Terse");
        assert_eq!(preset.system_prompt, None);
        let problems = PresetInput {
            name: "  ".into(),
            system_prompt: Some("s".repeat(20_001)),
            params: Params {
                temperature: Some(-1.0),
                ..Params::default()
            },
        }
        .check()
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
