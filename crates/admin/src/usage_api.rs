//! The usage statistics API: `GET /api/v1/admin/usage` (admin: every user's usage grouped by
//! user, model or day, with a per-day series for charts), `GET /api/v1/admin/usage/export`
//! (admin: CSV, one row per day, user and model, streamed) and `GET /api/v1/usage` (the
//! signed-in user's own usage by model, with the per-day series). Dates are UTC days
//! `YYYY-MM-DD`, inclusive, 30 days up to today by default, at most 366 days.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Query, State};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::auth::{AdminUser, CurrentUser, DynAuthenticator};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{AdminOnly, Authenticated, BadQuery};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::usage::{
    DailyUsage, DateRange, GroupBy, QueryError, UsageQuery, UsageReadModel, UsageReport, today,
};

#[derive(Clone)]
pub struct UsageState {
    pub usage: Arc<UsageReadModel>,
    pub authenticator: DynAuthenticator,
}

impl FromRef<UsageState> for DynAuthenticator {
    fn from_ref(state: &UsageState) -> Self {
        state.authenticator.clone()
    }
}

pub fn router(state: UsageState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(admin_usage))
        .routes(routes!(export_usage))
        .routes(routes!(my_usage))
        .with_state(state)
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::validation(e.code(), e.to_string())
    }
}

fn store_error(e: confab_store::StoreError) -> ApiError {
    match e {
        confab_store::StoreError::Unavailable(detail) => ApiError::unavailable(detail),
        other => ApiError::internal(other.to_string()),
    }
}

/// Every parameter is read as text and checked here, so a bad one gets its own code.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminUsageParams {
    /// `user` (default), `model` or `day`.
    pub group_by: Option<String>,
    /// First day, `YYYY-MM-DD` (UTC); default 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included; default today.
    pub to: Option<String>,
    /// Only this user's usage (a user id).
    pub user: Option<String>,
}

fn parse_user(user: Option<&str>) -> Result<Option<Uuid>, QueryError> {
    user.map(|u| {
        u.parse::<Uuid>()
            .map_err(|_| QueryError::InvalidUser(u.into()))
    })
    .transpose()
}

/// Usage of every user (admin), grouped by user, model or day, with a per-day series.
#[utoipa::path(get, path = "/api/v1/admin/usage", tag = "usage", params(AdminUsageParams),
    responses(Authenticated, AdminOnly, BadQuery,
        (status = 200, body = UsageReport),
        (status = 422, body = ErrorEnvelope, description = "invalid_group_by, invalid_date, invalid_range, invalid_user")),
    security(("bearer" = [])))]
async fn admin_usage(
    State(state): State<UsageState>,
    _admin: AdminUser,
    Query(params): Query<AdminUsageParams>,
) -> Result<axum::Json<UsageReport>, ApiError> {
    let group_by = params
        .group_by
        .as_deref()
        .map_or(Ok(GroupBy::User), str::parse)?;
    let query = UsageQuery {
        group_by,
        range: DateRange::parse(params.from.as_deref(), params.to.as_deref(), today())?,
        user: parse_user(params.user.as_deref())?,
    };
    Ok(axum::Json(
        state.usage.report(&query).await.map_err(store_error)?,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (the default and only format).
    pub format: Option<String>,
    /// First day, `YYYY-MM-DD` (UTC); default 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included; default today.
    pub to: Option<String>,
    /// Only this user's usage (a user id).
    pub user: Option<String>,
}

const CSV_HEADER: &str = "day,user_id,model,requests,errors,prompt_tokens,completion_tokens,\
                          latency_avg_ms,latency_p50_ms,latency_p95_ms\n";

fn csv_line(row: &DailyUsage) -> String {
    let stats = row.stats();
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{}\n",
        row.day,
        confab_core::csv::field(&row.user_id),
        confab_core::csv::field(&row.model),
        row.requests,
        row.errors,
        row.prompt_tokens,
        row.completion_tokens,
        opt(stats.latency_avg_ms),
        opt(stats.latency_p50_ms),
        opt(stats.latency_p95_ms),
    )
}

/// Usage as CSV (admin): a header, then one row per day, user and model, in that order.
/// Streamed as it is read; a failure part way ends the body early (and is logged).
#[utoipa::path(get, path = "/api/v1/admin/usage/export", tag = "usage", params(ExportParams),
    responses(Authenticated, AdminOnly, BadQuery,
        (status = 200, content_type = "text/csv", body = String,
            description = "day,user_id,model,requests,errors,prompt_tokens,completion_tokens,latency_avg_ms,latency_p50_ms,latency_p95_ms"),
        (status = 422, body = ErrorEnvelope, description = "invalid_format, invalid_date, invalid_range, invalid_user")),
    security(("bearer" = [])))]
async fn export_usage(
    State(state): State<UsageState>,
    _admin: AdminUser,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    if let Some(format) = params.format.as_deref().filter(|f| *f != "csv") {
        return Err(QueryError::InvalidFormat(format.into()).into());
    }
    let range = DateRange::parse(params.from.as_deref(), params.to.as_deref(), today())?;
    let user = parse_user(params.user.as_deref())?;
    let rows = state.usage.export(range, user).map(|row| match row {
        Ok(row) => Ok(Bytes::from(csv_line(&row))),
        Err(e) => {
            tracing::error!(error = %e, "the usage export stopped part way");
            Err(std::io::Error::other(e.to_string()))
        }
    });
    let body =
        futures::stream::once(async { Ok(Bytes::from_static(CSV_HEADER.as_bytes())) }).chain(rows);
    let name = format!(
        "usage-{}-{}.csv",
        crate::usage::format_day(range.from),
        crate::usage::format_day(range.to)
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyUsageParams {
    /// First day, `YYYY-MM-DD` (UTC); default 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included; default today.
    pub to: Option<String>,
}

/// The signed-in user's own usage: rows by model, and the per-day series.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", params(MyUsageParams),
    responses(Authenticated, BadQuery,
        (status = 200, body = UsageReport),
        (status = 422, body = ErrorEnvelope, description = "invalid_date, invalid_range")),
    security(("bearer" = [])))]
async fn my_usage(
    State(state): State<UsageState>,
    CurrentUser(principal): CurrentUser,
    Query(params): Query<MyUsageParams>,
) -> Result<axum::Json<UsageReport>, ApiError> {
    let query = UsageQuery {
        group_by: GroupBy::Model,
        range: DateRange::parse(params.from.as_deref(), params.to.as_deref(), today())?,
        user: Some(principal.user_id),
    };
    Ok(axum::Json(
        state.usage.report(&query).await.map_err(store_error)?,
    ))
}
