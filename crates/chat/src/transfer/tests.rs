//! Tests of both import formats side by side, and of the export's round trip.

use super::*;

const CHATGPT: &str = r#"[{
  "title": "Fox facts", "create_time": 1700000000.5, "update_time": 1700000100.0,
  "current_node": "a2",
  "mapping": {
    "root": {"id": "root", "message": null, "parent": null, "children": ["sys"]},
    "sys": {"id": "sys", "message": {"author": {"role": "system"}, "content": {"content_type": "text", "parts": [""]}}, "parent": "root", "children": ["u1"]},
    "u1": {"id": "u1", "message": {"author": {"role": "user"}, "create_time": 1700000001.0, "content": {"content_type": "text", "parts": ["Tell me about foxes"]}}, "parent": "sys", "children": ["a1", "a2"]},
    "a1": {"id": "a1", "message": {"author": {"role": "assistant"}, "create_time": 1700000002.0, "content": {"content_type": "text", "parts": ["Foxes are canids."]}, "metadata": {"model_slug": "gpt-4o"}}, "parent": "u1", "children": []},
    "a2": {"id": "a2", "message": {"author": {"role": "assistant"}, "create_time": 1700000003.0, "content": {"content_type": "text", "parts": ["Foxes are small canids."]}}, "parent": "u1", "children": []}
  }
}]"#;

#[test]
fn chatgpt_trees_import_with_their_branches() {
    let imported = read_import(CHATGPT.as_bytes(), 0).unwrap();
    assert_eq!(imported.len(), 1);
    let c = &imported[0];
    assert_eq!(c.conversation.title, "Fox facts");
    assert_eq!(c.conversation.created_at, 1_700_000_000_500);
    assert_eq!(c.messages.len(), 3);
    let question = &c.messages[0];
    assert_eq!((question.role, question.parent_id), (Author::User, None));
    assert!(
        c.messages[1..]
            .iter()
            .all(|m| m.parent_id == Some(question.id))
    );
    assert_eq!(c.messages[1].model.as_deref(), Some("gpt-4o"));
    assert_eq!(c.conversation.active_leaf_id, Some(c.messages[2].id));
}

fn problems(bytes: &[u8]) -> Vec<String> {
    match read_import(bytes, 0) {
        Err(ImportError::Invalid(problems)) => problems,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_files_are_refused_with_places() {
    let found = problems(b"{\"format\": \"confab.conversations\", \"version\": 1, \"exported_at\": \"2026-01-01T00:00:00Z\", \"conversations\": [{\"id\": \"0190f6a0-0000-7000-8000-000000000001\", \"title\": \"t\", \"model\": null, \"system_prompt\": null, \"folder\": null, \"active_leaf_id\": null, \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\", \"messages\": [{\"id\": \"0190f6a0-0000-7000-8000-000000000002\", \"parent_id\": \"0190f6a0-0000-7000-8000-000000000009\", \"role\": \"user\", \"content\": \"hi\", \"status\": \"complete\", \"model\": null, \"error\": null, \"prompt_tokens\": null, \"completion_tokens\": null, \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\"}]}]}");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("conversations[0].messages[0].parent_id"),
        "{found:?}"
    );
    let found =
        problems(b"{\"format\": \"confab.conversations\", \"version\": 1, \"conversations\": 3}");
    assert!(
        found[0].contains("exported_at") || found[0].contains("conversations"),
        "{found:?}"
    );
    assert!(problems(b"not json")[0].starts_with("not JSON"));
    assert!(problems(b"{\"a\": ")[0].starts_with("not JSON"));
    assert!(problems(b"{\"a\": 1}")[0].starts_with("unknown format"));
    assert!(problems(b"3")[0].starts_with("unknown format"));
    let problems = problems(b"[{\"title\": \"x\"}]");
    assert_eq!(
        problems,
        vec!["[0].mapping: missing: not a ChatGPT conversation"]
    );
}

/// An over-size mapping is refused while it is read: the file after the node over the cap
/// is not even looked at (here it is not JSON, and that is not what is reported).
#[test]
fn an_over_size_mapping_is_refused_before_it_is_read_whole() {
    let nodes: Vec<String> = (0..=MAX_MAPPING_NODES)
        .map(|i| format!(r#""n{i}": {{"message": null, "parent": null}}"#))
        .collect();
    let text = format!(
        r#"[{{"title": "big", "mapping": {{{}, this is not JSON"#,
        nodes.join(",")
    );
    match read_import(text.as_bytes(), 0) {
        Err(ImportError::TooLarge(message)) => {
            assert!(message.starts_with("[0].mapping"), "{message}");
            assert!(message.contains("at most 20000"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // At the cap, it is read.
    let nodes: Vec<String> = (0..MAX_MAPPING_NODES)
        .map(|i| format!(r#""n{i}": {{"message": null, "parent": null}}"#))
        .collect();
    let text = format!(
        r#"[{{"title": "big", "mapping": {{{}}}}}]"#,
        nodes.join(",")
    );
    assert_eq!(
        read_import(text.as_bytes(), 0).unwrap()[0].messages.len(),
        0
    );
}

/// A Confab file goes through the same limits as the API: a 100,000-character system
/// prompt, a 10,000-character folder and a 5,000-character model were stored before.
#[test]
fn confab_imports_keep_the_field_limits() {
    let export = |system: usize, folder: usize, model: usize, tags: usize| {
        let tags: Vec<String> = (0..tags).map(|i| format!("t{i}")).collect();
        serde_json::json!({
            "format": FORMAT, "version": 1, "exported_at": "2026-01-01T00:00:00Z",
            "conversations": [{
                "id": "0190f6a0-0000-7000-8000-000000000001", "title": "  t  ",
                "model": "m".repeat(model), "system_prompt": "s".repeat(system),
                "folder": "f".repeat(folder), "tags": tags, "active_leaf_id": null,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "messages": []
            }]
        })
        .to_string()
    };
    let problems = match read_import(export(100_000, 10_000, 5_000, 21).as_bytes(), 0) {
        Err(ImportError::Invalid(problems)) => problems,
        other => panic!("{other:?}"),
    };
    assert_eq!(problems.len(), 4, "{problems:?}");
    for field in ["system_prompt", "folder", "model"] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("conversations[0]: {field} is"))),
            "{field}: {problems:?}"
        );
    }
    assert!(problems.contains(&"conversations[0]: at most 20 tags, got 21".to_owned()));
    let imported = read_import(export(20_000, 100, 200, 20).as_bytes(), 0).unwrap();
    // Normalised as the API does: the title trimmed.
    assert_eq!(imported[0].conversation.title, "t");
}
