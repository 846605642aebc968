//! Test 2 of the cluster: the official `openai` Python SDK (tests/sdk) against the gateway, with
//! the local model (SmolLM2-135M-Instruct) on both inference replicas — the cluster's one test
//! with a real model. Runs when `target/sdk-venv` exists (scripts/test.sh and CI make it) and
//! the model was fetched (`TEST_MODELS_DIR`, else target/test-models).

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Cluster, Deps, Options};

#[tokio::test]
async fn cluster_serves_the_openai_sdk_through_the_gateway() {
    let test = "cluster_serves_the_openai_sdk_through_the_gateway";
    let Some(deps) = Deps::from_env(test) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pytest = root.join("target/sdk-venv/bin/pytest");
    if !pytest.exists() {
        eprintln!(
            "{test}: skipped, {} does not exist (scripts/test.sh makes the venv from \
             tests/sdk/requirements.txt)",
            pytest.display()
        );
        return;
    }
    let models = match confab_testkit::test_models_dir() {
        Ok(dir) => dir.display().to_string(),
        Err(e) => {
            eprintln!("{test}: skipped, {e}");
            return;
        }
    };
    let cluster = Cluster::start(
        &deps,
        Options {
            config: format!(
                "[inference]\nmodels_dir = \"{models}\"\ndefault_model = \"{}\"\n\
                 [inference.engine]\ncontext_size = 512\n",
                confab_testkit::SMOLLM2
            ),
            ..Options::default()
        },
    )
    .await;
    let started = Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new(&pytest)
            .args(["-q", "tests/sdk"])
            .current_dir(&root)
            .env("TEST_CONFAB_BASE_URL", cluster.url("gw1", ""))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK tests end within 240 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "sdk: pytest against gw1 in {:.1} s:\n{stdout}{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the openai SDK tests failed");
    assert!(stdout.contains("passed"), "{stdout}");
}
