//! What changed between two package versions, field by field, for the versions view.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};
use utoipa::ToSchema;

use super::Package;

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TextChange {
    pub before: String,
    pub after: String,
}

/// How a description line fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Same,
    Added,
    Removed,
}

/// One line of the description's diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DiffLine {
    pub kind: LineKind,
    /// The line, without its line break.
    pub text: String,
}

/// Two packages compared. Tags and thumbnail texts compare as sets (case kept, order of
/// the newer package); the description as a line diff (Myers), every line included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PackageDiff {
    /// `None` when the title is the same.
    pub title: Option<TextChange>,
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
    /// Whether the tags are the same list, order included.
    pub tags_same: bool,
    pub description_changed: bool,
    pub description: Vec<DiffLine>,
    pub thumbnail_texts_added: Vec<String>,
    pub thumbnail_texts_removed: Vec<String>,
}

impl PackageDiff {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.tags_same
            && !self.description_changed
            && self.thumbnail_texts_added.is_empty()
            && self.thumbnail_texts_removed.is_empty()
    }
}

/// Compares `before` with `after`.
pub fn diff(before: &Package, after: &Package) -> PackageDiff {
    let title = (before.title != after.title).then(|| TextChange {
        before: before.title.clone(),
        after: after.title.clone(),
    });
    let (tags_added, tags_removed) = set_diff(&before.tags, &after.tags);
    let (thumbnail_texts_added, thumbnail_texts_removed) =
        set_diff(&before.thumbnail_texts, &after.thumbnail_texts);
    let text_diff = TextDiff::from_lines(&before.description, &after.description);
    let description = text_diff
        .iter_all_changes()
        .map(|change| DiffLine {
            kind: match change.tag() {
                ChangeTag::Equal => LineKind::Same,
                ChangeTag::Insert => LineKind::Added,
                ChangeTag::Delete => LineKind::Removed,
            },
            text: change
                .value()
                .strip_suffix('\n')
                .unwrap_or(change.value())
                .to_owned(),
        })
        .collect();
    PackageDiff {
        title,
        tags_added,
        tags_removed,
        tags_same: before.tags == after.tags,
        description_changed: before.description != after.description,
        description,
        thumbnail_texts_added,
        thumbnail_texts_removed,
    }
}

/// What is in `after` and not `before`, and the reverse; exact matches.
fn set_diff(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    use std::collections::HashSet;
    let old: HashSet<&str> = before.iter().map(String::as_str).collect();
    let new: HashSet<&str> = after.iter().map(String::as_str).collect();
    let added = after
        .iter()
        .filter(|t| !old.contains(t.as_str()))
        .cloned()
        .collect();
    let removed = before
        .iter()
        .filter(|t| !new.contains(t.as_str()))
        .cloned()
        .collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(title: &str, description: &str, tags: &[&str]) -> Package {
        Package {
            title: title.into(),
            description: description.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            thumbnail_texts: vec!["Bake It Now".into()],
            ..Package::default()
        }
    }

    #[test]
    fn each_field_is_compared() {
        let a = package("Old", "hook\nbody\n#a", &["x", "y"]);
        let b = package("New", "hook\nnew body\n#a", &["y", "z"]);
        let d = diff(&a, &b);
        assert_eq!(
            d.title,
            Some(TextChange {
                before: "Old".into(),
                after: "New".into()
            })
        );
        assert_eq!(d.tags_added, ["z"]);
        assert_eq!(d.tags_removed, ["x"]);
        let kinds: Vec<(LineKind, &str)> = d
            .description
            .iter()
            .map(|l| (l.kind, l.text.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (LineKind::Same, "hook"),
                (LineKind::Removed, "body"),
                (LineKind::Added, "new body"),
                (LineKind::Same, "#a"),
            ]
        );
        assert!(!d.is_empty());
        assert!(diff(&a, &a).is_empty());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["description"][1]["kind"], "removed");
    }
}
