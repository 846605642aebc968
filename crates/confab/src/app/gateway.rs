//! The gateway's process (`confab serve --services gateway`): the single entry point of a
//! split deployment. It keeps no tables: it verifies credentials with the auth service's JWKS
//! (and asks auth about API keys and sessions, cached), limits and caches through the shared
//! ports (Redis), forwards to the services' instances, and serves the web UI.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use confab_core::auth::{DynAuthenticator, ServiceTokens, WithServiceTokens};
use confab_core::config::Config;
use confab_core::http::ops_router;
use confab_core::metrics::MetricsBuilder;
use confab_gateway::{Gateway, GatewayDeps};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Process;
use super::shared::Shared;
use super::split;
use crate::services::Services;

/// Builds the gateway's process.
pub(super) async fn build(config: &Config, services: &Services) -> anyhow::Result<Process> {
    super::check_split(config, services)?;
    let url = config
        .bus
        .nats_url
        .as_deref()
        .context("split mode has bus.nats_url")?;
    let token = config
        .services
        .token
        .as_ref()
        .context("split mode has services.token")?;
    let tokens = ServiceTokens::new(token.expose().as_bytes())
        .map_err(|e| anyhow::anyhow!("services.token: {e}"))?;
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let mut metrics = MetricsBuilder::new();
    super::ops_metrics::common(&mut metrics, config, false);
    let tls = crate::tls::ServerTls::load(&config.server.tls, &mut metrics).await?;
    // Live events only: revocations reach the edge's credential caches through them.
    let nats = confab_bus::NatsBus::connect(url).await.with_context(|| {
        format!(
            "cannot reach NATS at bus.nats_url `{}`",
            confab_core::config::redact_url(url)
        )
    })?;
    super::ops_metrics::nats(&mut metrics, nats.clone());
    let events: Arc<dyn confab_bus::EventBus> = Arc::new(nats);
    let remote = split::authenticator(config, services, &tokens, events, &tasks, shutdown.clone())?;
    // Services' own calls through the gateway (chat to inference) carry service tokens,
    // which the deployment's secret verifies here; users' credentials go to auth.
    let authenticator: DynAuthenticator = Arc::new(WithServiceTokens {
        inner: Arc::new(remote.clone()),
        tokens: tokens.clone(),
    });
    let shared = Shared::build(config, &mut metrics)?;
    let (gateway, router) = Gateway::new(
        GatewayDeps {
            authenticator,
            service_tokens: tokens,
            limiter: shared.rate.clone(),
            cache: shared.response_cache.clone(),
            metrics: &mut metrics,
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
            fallback: Router::new().fallback(crate::web::fallback),
            tls: confab_core::service_tls::ServiceTls::from_config(&config.services)?,
        },
        &config.gateway,
    )
    .await
    .map_err(|e| anyhow::anyhow!("gateway: {e}"))?;
    let metrics = metrics.finish();
    let ops = || {
        ops_router(
            metrics.clone(),
            vec![
                gateway.readiness(),
                Arc::new(split::AuthKeysLoaded(remote.clone())),
            ],
            config.server.metrics_token.clone(),
        )
    };
    // One router a serving thread, each with its own pool, Redis connection and so limiter
    // and cache; `router`, over the process's own, is not served (in-process callers).
    let mut lanes = Vec::new();
    for _ in 0..config.gateway.serving_threads() {
        let (limiter, cache) = shared.edge_ports()?;
        let lane = gateway.lane(limiter, cache).merge(ops());
        lanes.push(super::parts::with_common_layers(
            lane,
            metrics.clone(),
            config,
        )?);
    }
    let router = super::parts::with_common_layers(router.merge(ops()), metrics, config)?;
    Ok(Process {
        router,
        lanes,
        db: None,
        services: services.clone(),
        inference: None,
        tasks,
        shutdown,
        tls,
    })
}
