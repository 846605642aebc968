//! Packages out of the studio: plain text to paste into YouTube Studio, and CSV rows for a
//! spreadsheet (through the one CSV helper, [`confab_core::csv`]).

use confab_core::csv;

use super::rules::hashtags_in;
use super::{Package, Project};

/// Title, description and tags (comma-separated, as YouTube Studio's tag box takes them),
/// each under its heading.
pub fn plain_text(package: &Package) -> String {
    let tags = package.tags.join(", ");
    let mut out =
        String::with_capacity(package.title.len() + package.description.len() + tags.len() + 40);
    out.push_str("Title\n");
    out.push_str(&package.title);
    out.push_str("\n\nDescription\n");
    out.push_str(&package.description);
    out.push_str("\n\nTags\n");
    out.push_str(&tags);
    out.push('\n');
    if !package.thumbnail_texts.is_empty() {
        out.push_str("\nThumbnail text\n");
        for text in &package.thumbnail_texts {
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

/// One project for the CSV export: its package and score, when it has one.
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    pub project: &'a Project,
    pub version: Option<u32>,
    pub package: Option<&'a Package>,
    pub score: Option<u8>,
}

/// The CSV's columns.
pub const CSV_HEADER: [&str; 11] = [
    "project_id",
    "topic",
    "primary_keyword",
    "language",
    "version",
    "score",
    "title",
    "description",
    "tags",
    "hashtags",
    "thumbnail_texts",
];

/// A CSV file (RFC 4180, CRLF, formula-like cells defused): the header, then one row a
/// project. Tags and thumbnail texts are joined with `, `, hashtags with a space.
pub fn csv_rows(rows: &[ExportRow<'_>]) -> String {
    let mut out = String::new();
    csv::push_row(&mut out, CSV_HEADER);
    for row in rows {
        let id = row.project.id.to_string();
        let version = row.version.map(|v| v.to_string()).unwrap_or_default();
        let score = row.score.map(|s| s.to_string()).unwrap_or_default();
        let (title, description, tags, hashtags, thumbs) = match row.package {
            Some(p) => (
                p.title.as_str(),
                p.description.as_str(),
                p.tags.join(", "),
                hashtags_in(&p.description).join(" "),
                p.thumbnail_texts.join(", "),
            ),
            None => ("", "", String::new(), String::new(), String::new()),
        };
        csv::push_row(
            &mut out,
            [
                id.as_str(),
                row.project.topic.as_str(),
                row.project.primary_keyword.as_str(),
                row.project.language.as_str(),
                version.as_str(),
                score.as_str(),
                title,
                description,
                tags.as_str(),
                hashtags.as_str(),
                thumbs.as_str(),
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tone;
    use uuid::Uuid;

    fn project() -> Project {
        Project {
            id: Uuid::nil(),
            owner: Uuid::nil(),
            topic: "=cmd|' /C calc'!A0".into(),
            primary_keyword: "sourdough".into(),
            secondary_keywords: vec![],
            language: "en".into(),
            tone: Tone::Neutral,
            audience: None,
            channel_name: None,
            links: vec![],
            call_to_action: None,
            duration_secs: None,
            category_id: None,
            has_transcript: false,
            archived: false,
            latest_version: None,
            latest_score: None,
            generation_job: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn package() -> Package {
        Package {
            title: "Sourdough, simply".into(),
            description: "Hook \"quoted\"\n\n#bread #sourdough".into(),
            tags: vec!["sourdough".into(), "bread baking".into()],
            thumbnail_texts: vec!["Bake It".into()],
            ..Package::default()
        }
    }

    #[test]
    fn plain_text_is_ready_to_paste() {
        assert_eq!(
            plain_text(&package()),
            "Title\nSourdough, simply\n\nDescription\nHook \"quoted\"\n\n#bread #sourdough\n\n\
             Tags\nsourdough, bread baking\n\nThumbnail text\nBake It\n"
        );
    }

    #[test]
    fn csv_quotes_and_defuses() {
        let project = project();
        let package = package();
        let text = csv_rows(&[
            ExportRow {
                project: &project,
                version: Some(2),
                package: Some(&package),
                score: Some(71),
            },
            ExportRow {
                project: &project,
                version: None,
                package: None,
                score: None,
            },
        ]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert!(lines[1].starts_with("00000000-0000-0000-0000-000000000000,'=cmd|' /C calc'!A0,sourdough,en,2,71,\"Sourdough, simply\",\"Hook \"\"quoted\"\"\n"));
        assert!(text.contains("\"sourdough, bread baking\",#bread #sourdough,Bake It\r\n"));
        assert!(text.ends_with(",en,,,,,,,\r\n"));
    }
}
