//! Backups and restores on the backend under test (SQLite, or PostgreSQL with `pg_dump` and
//! `pg_restore`): a backup taken while a writer keeps writing holds everything acknowledged
//! before it began, restores into an empty database and data directory (and refuses a
//! non-empty one), verifies in a scratch place, and fails verification when a file is
//! damaged; the binary's `backup`, `backup verify`, `backup prune` and `restore` commands;
//! the record of the last backup that `confab_backup_last_success_timestamp_seconds` exports.

use std::sync::Arc;

use confab_testkit::TestDb;
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{PASSWORD, TestApp, test_config};

/// What the writer had acknowledged: conversation ids and registered emails.
#[derive(Default, Clone)]
struct Acknowledged {
    conversations: Vec<String>,
    users: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writing_restores_all_that_was_acknowledged_before_it() {
    let (config, db) = test_config().await;
    let app = TestApp::serve(
        confab::app::build(&config).await.unwrap(),
        config.clone(),
        db,
    )
    .await;
    app.register("ada@example.com").await;
    let (token, _) = app.login("ada@example.com", PASSWORD).await;
    // An archive file too: the entries so far moved out of the database, as retention does.
    let archived = confab_admin::SqlAuditLog::new(app.db.clone())
        .archive_older_than(
            confab_core::now_ms() + 1,
            &confab_admin::archive_dir(&config.data_dir),
        )
        .await
        .unwrap();
    assert!(archived.entries > 0);
    let app = Arc::new(app);

    // The writer: conversations, and every fifth round a new user (an audit entry each).
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let (progress, mut rounds) = tokio::sync::watch::channel(0_usize);
    let stop = CancellationToken::new();
    let writer = tokio::spawn({
        let (app, token, acknowledged, stop) = (
            app.clone(),
            token.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        async move {
            let mut round = 0_usize;
            while !stop.is_cancelled() {
                round += 1;
                let created = app
                    .post(
                        "/api/v1/conversations",
                        Some(&token),
                        json!({"title": format!("conversation {round}")}),
                    )
                    .await;
                assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
                let id = created.body["id"].as_str().unwrap().to_owned();
                acknowledged.lock().conversations.push(id);
                if round.is_multiple_of(5) {
                    let email = format!("user{round}@example.com");
                    app.register(&email).await;
                    acknowledged.lock().users.push(email);
                }
                progress.send_replace(round);
            }
            round
        }
    });
    rounds.wait_for(|n| *n >= 10).await.unwrap();
    let before = acknowledged.lock().clone();
    let backups = tempfile::tempdir().unwrap();
    let created = confab::backup::create(&config, backups.path())
        .await
        .unwrap();
    // The writer went on during the backup; let it write a few more after it.
    let after_backup = *rounds.borrow();
    rounds.wait_for(|n| *n >= after_backup + 3).await.unwrap();
    stop.cancel();
    let total_rounds = writer.await.unwrap();
    assert!(created.recorded, "the backup is recorded in admin_backups");
    assert!(created.dir.join("manifest.json").is_file());
    assert!(
        created
            .manifest
            .files
            .iter()
            .any(|f| f.path.starts_with("data/audit-archive/audit-")),
        "{:?}",
        created.manifest.files
    );
    let conversations_in_backup = created.manifest.row_counts["conversations"];
    assert!(
        conversations_in_backup >= before.conversations.len() as i64,
        "{conversations_in_backup} conversations in the backup, {} acknowledged before it",
        before.conversations.len()
    );
    assert!(
        (conversations_in_backup as usize) < total_rounds + 1,
        "writes after the backup are not in it"
    );

    // The record of the last backup, as the admin service exports it.
    let log = confab_admin::backups::SqlBackupLog::new(app.db.clone());
    assert_eq!(
        log.last_completed_at().await.unwrap(),
        Some(created.manifest.completed_at_ms)
    );
    let mut builder = confab_core::metrics::MetricsBuilder::new();
    let gauge = confab_admin::backups::BackupMetrics::register(&mut builder);
    gauge.refresh(&log).await.unwrap();
    assert_eq!(
        gauge.last_success_seconds(),
        created.manifest.completed_at_ms / 1000
    );
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("confab_backup_last_success_timestamp_seconds"),
        "{metrics}"
    );
    let app = Arc::into_inner(app).expect("the writer is done");
    app.stop().await;

    // Destroyed: a new, empty database and data directory; restore into them.
    let (target, target_db) = target_config(&config).await;
    let restored = confab::backup::restore(&target, backups.path())
        .await
        .unwrap();
    assert!(restored.ok(), "{:?}", restored.problems);
    assert!(restored.audit_entries > 0, "the audit chain was checked");
    let again = confab::backup::restore(&target, backups.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("not empty"), "{again}");

    // The restored platform: the same accounts and every acknowledged conversation.
    let restored_app = TestApp::serve(
        confab::app::build(&target).await.unwrap(),
        target.clone(),
        target_db,
    )
    .await;
    let (token, _) = restored_app.login("ada@example.com", PASSWORD).await;
    for id in &before.conversations {
        let found = restored_app
            .get(&format!("/api/v1/conversations/{id}"), Some(&token))
            .await;
        assert_eq!(
            found.status,
            StatusCode::OK,
            "conversation {id}: {}",
            found.text
        );
    }
    for email in &before.users {
        restored_app.login(email, PASSWORD).await;
    }
    restored_app.stop().await;

    // Verification restores into a scratch place; a damaged file fails it.
    let verified = confab::backup::verify(&config, backups.path())
        .await
        .unwrap();
    assert!(verified.ok(), "{:?}", verified.problems);
    let largest = created
        .manifest
        .files
        .iter()
        .max_by_key(|f| f.size)
        .unwrap();
    let path = created.dir.join(&largest.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let damaged = confab::backup::verify(&config, backups.path())
        .await
        .unwrap();
    assert!(!damaged.ok());
    assert!(
        damaged.problems.iter().any(|p| p.contains("sha256")),
        "{:?}",
        damaged.problems
    );
    let (fresh, _fresh_db) = target_config(&config).await;
    let refused = format!(
        "{:#}",
        confab::backup::restore(&fresh, backups.path())
            .await
            .unwrap_err()
    );
    assert!(refused.contains("damaged"), "{refused}");
    assert!(refused.contains(&largest.path), "{refused}");
    // Nothing was restored half-way: the target is as empty as before.
    let untouched = confab_store::Db::connect(&fresh.database_url(), &fresh.database)
        .await
        .unwrap();
    assert_eq!(untouched.table_count().await.unwrap(), 0);
    untouched.close().await;
    assert!(!confab_admin::archive_dir(&fresh.data_dir).exists());
}

/// A configuration like `config` over a new, empty database and data directory.
async fn target_config(
    config: &confab_core::config::Config,
) -> (confab_core::config::Config, TestDb) {
    let db = TestDb::new().await.unwrap();
    let mut target = config.clone();
    target.data_dir = db.dir.path().to_path_buf();
    target.database.url = Some(confab_core::config::Secret::new(db.url.clone()));
    (target, db)
}

#[tokio::test]
async fn the_binary_backs_up_verifies_prunes_and_restores() {
    let db = TestDb::new().await.unwrap();
    let (code, _, stderr) = crate::binary::confab(&db, &["migrate"], &[], None).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = crate::binary::confab(
        &db,
        &["users", "create", "--email", "ops@example.com", "--admin"],
        &[],
        Some(PASSWORD),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let backups = tempfile::tempdir().unwrap();
    let to = backups.path().to_str().unwrap();
    for _ in 0..3 {
        let (code, stdout, stderr) =
            crate::binary::confab(&db, &["backup", "--to", to], &[], None).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("confab-"), "{stdout}");
    }
    let (code, stdout, stderr) =
        crate::binary::confab(&db, &["backup", "verify", to], &[], None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("verified"), "{stdout}");
    let (code, stdout, stderr) =
        crate::binary::confab(&db, &["backup", "prune", to, "--keep", "2"], &[], None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 backups kept, 1 removed"), "{stdout}");

    // A fresh database and data directory take the newest backup.
    let target = TestDb::new().await.unwrap();
    let (code, stdout, stderr) =
        crate::binary::confab(&target, &["restore", "--from", to], &[], None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("restored"), "{stdout}");
    let (code, stdout, _) = crate::binary::confab(&target, &["users", "list"], &[], None).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("ops@example.com"), "{stdout}");

    // Damage: verification exits non-zero and names the file.
    let newest = confab::backup::resolve(backups.path()).unwrap();
    let manifest = confab::backup::Manifest::read(&newest).unwrap();
    let file = newest.join(&manifest.files[0].path);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let (code, _, stderr) = crate::binary::confab(&db, &["backup", "verify", to], &[], None).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&manifest.files[0].path), "{stderr}");
    assert!(stderr.contains("sha256"), "{stderr}");

    // A directory that is not there, or holds no backup: a clear error, nothing done.
    let missing = backups.path().join("no-such-dir");
    let missing = missing.to_str().unwrap();
    for args in [
        &["backup", "verify", missing][..],
        &["restore", "--from", missing],
        &["backup", "prune", missing, "--keep", "1"],
    ] {
        let (code, _, stderr) = crate::binary::confab(&target, args, &[], None).await;
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("not a directory"), "{args:?}: {stderr}");
    }
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = crate::binary::confab(
        &target,
        &["backup", "verify", empty.path().to_str().unwrap()],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("holds no complete backup"), "{stderr}");
    let (code, _, stderr) = crate::binary::confab(&target, &["backup"], &[], None).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--to"), "{stderr}");
}

/// The S3-compatible server scripts/test.sh starts (s3s-fs), as the `AWS_*` variables the
/// binary reads, and its bucket; `None` without one.
fn s3_env() -> Option<(Vec<(&'static str, String)>, String)> {
    let endpoint = std::env::var("TEST_S3_ENDPOINT").ok()?;
    Some((
        vec![
            ("AWS_ENDPOINT_URL", endpoint),
            (
                "AWS_ACCESS_KEY_ID",
                std::env::var("TEST_S3_ACCESS_KEY").ok()?,
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                std::env::var("TEST_S3_SECRET_KEY").ok()?,
            ),
        ],
        std::env::var("TEST_S3_BUCKET").ok()?,
    ))
}

#[tokio::test]
async fn the_binary_backs_up_to_s3_verifies_prunes_and_restores_from_it() {
    let Some((env, bucket)) = s3_env() else {
        eprintln!("skipped: TEST_S3_ENDPOINT is not set (scripts/test.sh starts s3s-fs)");
        return;
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = TestDb::new().await.unwrap();
    let (code, _, stderr) = crate::binary::confab(&db, &["migrate"], &env, None).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = crate::binary::confab(
        &db,
        &["users", "create", "--email", "ops@example.com", "--admin"],
        &env,
        Some(PASSWORD),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let place = format!("s3://{bucket}/backups/{}", uuid::Uuid::now_v7().simple());
    let mut made = Vec::new();
    for _ in 0..3 {
        let (code, stdout, stderr) =
            crate::binary::confab(&db, &["backup", "--to", &place], &env, None).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.starts_with(&format!("{place}/confab-")), "{stdout}");
        made.push(stdout.split('\t').next().unwrap().to_owned());
    }
    // The staging copies are gone from the data directory.
    let left: Vec<_> = std::fs::read_dir(db.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".backup-staging")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The admin service's record names the S3 location.
    let recorded = confab_store::Db::connect(&db.url, &Default::default())
        .await
        .unwrap();
    let locations: Vec<String> =
        sqlx::query_scalar("SELECT location FROM admin_backups ORDER BY completed_at")
            .fetch_all(recorded.pool())
            .await
            .unwrap();
    assert_eq!(locations, made);
    recorded.close().await;

    let (code, stdout, stderr) =
        crate::binary::confab(&db, &["backup", "verify", &place], &env, None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("backup {} verified", made[2])),
        "{stdout}"
    );
    // One backup by its own URL.
    let (code, stdout, stderr) =
        crate::binary::confab(&db, &["backup", "verify", &made[0]], &env, None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("verified"), "{stdout}");
    let (code, stdout, stderr) =
        crate::binary::confab(&db, &["backup", "prune", &place, "--keep", "2"], &env, None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("removed {}", made[0])), "{stdout}");
    assert!(stdout.contains("2 backups kept, 1 removed"), "{stdout}");
    let (code, _, stderr) =
        crate::binary::confab(&db, &["backup", "verify", &made[0]], &env, None).await;
    assert_eq!(code, 1, "a pruned backup is gone: {stderr}");

    // A fresh database and data directory take the newest backup from S3.
    let target = TestDb::new().await.unwrap();
    let (code, stdout, stderr) =
        crate::binary::confab(&target, &["restore", "--from", &place], &env, None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("restored {}", made[2])),
        "{stdout}"
    );
    let (code, stdout, _) = crate::binary::confab(&target, &["users", "list"], &env, None).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("ops@example.com"), "{stdout}");

    // Damage in the bucket: verification exits non-zero and names the file.
    let newest = made[2].strip_prefix(&format!("s3://{bucket}/")).unwrap();
    let store = confab_blob::ObjectBlobs::s3(
        &confab_core::config::S3Config {
            endpoint: Some(env[0].1.to_owned()),
            access_key_id: Some(confab_core::config::Secret::new(env[1].1)),
            secret_access_key: Some(confab_core::config::Secret::new(env[2].1)),
            ..Default::default()
        },
        confab_blob::S3Target {
            bucket: &bucket,
            prefix: newest,
        },
    )
    .unwrap();
    use confab_blob::BlobStore as _;
    let manifest_key = confab_blob::BlobKey::new("manifest.json").unwrap();
    let read = store.get(&manifest_key, None).await.unwrap();
    let bytes: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(read.body).await.unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes.concat()).unwrap();
    let victim = manifest["files"][0]["path"].as_str().unwrap().to_owned();
    store
        .put(
            &confab_blob::BlobKey::new(victim.as_str()).unwrap(),
            bytes::Bytes::from_static(b"not what was backed up"),
        )
        .await
        .unwrap();
    let (code, _, stderr) =
        crate::binary::confab(&db, &["backup", "verify", &place], &env, None).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&victim), "{stderr}");

    // Wrong credentials, an empty prefix, a bad URL: clear errors, nothing made.
    let wrong: Vec<(&str, &str)> = vec![env[0], env[1], ("AWS_SECRET_ACCESS_KEY", "wrong")];
    let (code, _, stderr) =
        crate::binary::confab(&db, &["backup", "--to", &place], &wrong, None).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot upload"), "{stderr}");
    let empty = format!("s3://{bucket}/nothing/{}", uuid::Uuid::now_v7().simple());
    let (code, _, stderr) =
        crate::binary::confab(&db, &["backup", "verify", &empty], &env, None).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("holds no complete backup"), "{stderr}");
    let (code, _, stderr) =
        crate::binary::confab(&db, &["backup", "--to", "s3://Bad_Bucket/x"], &env, None).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("bucket name"), "{stderr}");
}
