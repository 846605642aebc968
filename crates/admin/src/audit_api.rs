//! The audit log's HTTP API, for admins: list with filters (`/api/v1/admin/audit`), export as
//! CSV or JSON Lines (`…/export`, streamed page by page) and verify the chain (`…/verify`).
//! Reading the log is not itself audited (that would feed the log to itself); an export is,
//! as `audit.exported`.

use crate::actions::AuditLogAction;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Query, State};
use axum::response::{IntoResponse, Response};
use confab_core::ApiError;
use confab_core::audit::{AuditEvent, Outcome};
use confab_core::auth::{AdminUser, DynAuthenticator};
use confab_core::error::ErrorEnvelope;
use confab_core::error::responses::{AdminOnly, Authenticated, BadQuery};
use confab_core::extract::{ClientMeta, Json};
use confab_core::pagination::{Page, PageParams, encode_cursor};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{ActionMatch, AuditEntry, AuditError, AuditFilter, AuditReader, VerifyReport};

/// Entries per page of a listing unless asked otherwise, and at most.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
/// Entries read per query while exporting.
const EXPORT_PAGE: i64 = 500;

/// What the audit routes share.
#[derive(Clone)]
pub struct AuditState {
    pub log: Arc<dyn AuditReader>,
    pub authenticator: DynAuthenticator,
    /// Where archive files are; `verify` checks those it finds there.
    pub archive_dir: Option<PathBuf>,
}

impl FromRef<AuditState> for DynAuthenticator {
    fn from_ref(state: &AuditState) -> Self {
        state.authenticator.clone()
    }
}

/// The audit routes with their OpenAPI description.
pub fn router(state: AuditState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(verify))
        .with_state(state)
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Store(confab_store::StoreError::Unavailable(detail)) => {
                ApiError::unavailable(detail)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Filters shared by the listing and the export. Times are RFC 3339
/// (`2026-01-31T12:00:00Z`); `from` is inclusive, `to` exclusive.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// The acting user's id.
    #[param(value_type = Option<Uuid>)]
    pub actor: Option<String>,
    /// An action (`auth.login`), or a prefix ending in `*` (`auth.*`).
    pub action: Option<String>,
    /// What the action was done to (a user id, a key id, an email…), exactly.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// Entries at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Entries before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
}

/// Paging of the listing (newest first).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Entries per page (1 to 500, default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `jsonl` (default: one entry per line, as the listing shows it) or `csv`.
    pub format: Option<String>,
}

fn invalid(parameter: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::validation("invalid_filter", format!("{parameter}: {message}"))
}

fn parse_time(parameter: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            time::OffsetDateTime::parse(text, &Rfc3339)
                .map(confab_core::id::datetime_to_ms)
                .map_err(|_| {
                    invalid(
                        parameter,
                        format!("`{text}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"),
                    )
                })
        })
        .transpose()
}

impl FilterQuery {
    /// The filter, or 422 `invalid_filter` naming the parameter.
    pub fn filter(&self) -> Result<AuditFilter, ApiError> {
        let actor = match self.actor.as_deref() {
            None => None,
            Some(text) => Some(
                Uuid::parse_str(text)
                    .map_err(|_| invalid("actor", format!("`{text}` is not a user id")))?
                    .to_string(),
            ),
        };
        let action = match self.action.as_deref() {
            None | Some("*") => None,
            Some(text) if text.is_empty() || text.len() > 200 => {
                return Err(invalid("action", "must be 1 to 200 characters"));
            }
            Some(text) => match text.strip_suffix('*') {
                Some(prefix) if !prefix.contains('*') => {
                    Some(ActionMatch::Prefix(prefix.to_owned()))
                }
                None if !text.contains('*') => Some(ActionMatch::Exact(text.to_owned())),
                _ => {
                    return Err(invalid(
                        "action",
                        "`*` may only end a prefix, as in `auth.*`",
                    ));
                }
            },
        };
        if self.target.as_deref().is_some_and(|t| t.len() > 1000) {
            return Err(invalid("target", "must be at most 1000 characters"));
        }
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some(o @ ("success" | "failure")) => Some(o.to_owned()),
            Some(other) => {
                return Err(invalid(
                    "outcome",
                    format!("`{other}` is neither success nor failure"),
                ));
            }
        };
        let from_ms = parse_time("from", self.from.as_deref())?;
        let to_ms = parse_time("to", self.to.as_deref())?;
        if let (Some(from), Some(to)) = (from_ms, to_ms)
            && from >= to
        {
            return Err(invalid("to", "must be later than from"));
        }
        Ok(AuditFilter {
            actor,
            action,
            target: self.target.clone(),
            outcome,
            from_ms,
            to_ms,
        })
    }
}

/// List audit entries, newest first (admin). Reading the log is not audited.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin",
    params(FilterQuery, ListQuery),
    responses(Authenticated, AdminOnly, BadQuery,
        (status = 200, body = Page<AuditEntry>),
        (status = 400, body = ErrorEnvelope, description = "invalid_limit, invalid_cursor"),
        (status = 422, body = ErrorEnvelope, description = "invalid_filter")),
    security(("bearer" = [])))]
async fn list(
    State(state): State<AuditState>,
    _admin: AdminUser,
    Query(filter): Query<FilterQuery>,
    Query(page): Query<ListQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let filter = filter.filter()?;
    let limit = match page.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be between 1 and {MAX_LIMIT}, got `{text}`"),
                )
            })?,
    };
    let before = PageParams {
        cursor: page.cursor,
        limit: None,
    }
    .position::<i64>()?;
    let rows = state.log.list(&filter, before, limit + 1).await?;
    Ok(Json(Page::from_rows(
        rows,
        u32::try_from(limit).unwrap_or(u32::MAX),
        |e| encode_cursor(&e.seq),
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

/// Export audit entries in chain order (oldest first), streamed (admin). Filters as for the
/// listing; the export is recorded as `audit.exported` and covers what was there before it.
#[utoipa::path(get, path = "/api/v1/admin/audit/export", tag = "admin",
    params(FilterQuery, ExportQuery),
    responses(Authenticated, AdminOnly, BadQuery,
        (status = 200, description = "JSON Lines (one entry per line) or, with format=csv, CSV with a header row",
            content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 422, body = ErrorEnvelope, description = "invalid_filter, invalid_format")),
    security(("bearer" = [])))]
async fn export(
    State(state): State<AuditState>,
    admin: AdminUser,
    client: ClientMeta,
    Query(filter_query): Query<FilterQuery>,
    Query(export): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let filter = filter_query.filter()?;
    let format = match export.format.as_deref() {
        None | Some("jsonl") => Format::Jsonl,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::validation(
                "invalid_format",
                format!("format: `{other}` is neither csv nor jsonl"),
            ));
        }
    };
    let recorded = state
        .log
        .append(
            AuditEvent::new(AuditLogAction::Exported, Outcome::Success, &client)
                .actor(admin.principal().user_id)
                .details(serde_json::json!({
                    "format": if format == Format::Csv { "csv" } else { "jsonl" },
                    "filter": {
                        "actor": filter_query.actor,
                        "action": filter_query.action,
                        "target": filter_query.target,
                        "outcome": filter_query.outcome,
                        "from": filter_query.from,
                        "to": filter_query.to,
                    },
                })),
        )
        .await?;
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    let body = Body::from_stream(export_stream(
        state.log.clone(),
        filter,
        format,
        recorded.seq,
    ));
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"audit-{}.{extension}\"",
                    recorded.seq - 1
                ),
            ),
        ],
        body,
    )
        .into_response())
}

/// The export's body: one chunk per page, so memory stays bounded whatever the log's size.
fn export_stream(
    log: Arc<dyn AuditReader>,
    filter: AuditFilter,
    format: Format,
    until_seq: i64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct Cursor {
        log: Arc<dyn AuditReader>,
        filter: AuditFilter,
        after: i64,
        header: bool,
        done: bool,
    }
    let start = Cursor {
        log,
        filter,
        after: 0,
        header: format == Format::Csv,
        done: false,
    };
    futures::stream::try_unfold(start, move |mut cursor| async move {
        if cursor.header {
            cursor.header = false;
            return Ok(Some((Bytes::from_static(CSV_HEADER.as_bytes()), cursor)));
        }
        if cursor.done {
            return Ok(None);
        }
        let page = cursor
            .log
            .list_ascending(&cursor.filter, cursor.after, until_seq, EXPORT_PAGE)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit export failed; the download is cut short");
                std::io::Error::other(e.to_string())
            })?;
        cursor.done = (page.len() as i64) < EXPORT_PAGE;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        cursor.after = last.seq;
        let mut chunk = Vec::with_capacity(page.len() * 512);
        for entry in &page {
            match format {
                Format::Csv => csv_row(&mut chunk, entry),
                Format::Jsonl => {
                    serde_json::to_writer(&mut chunk, entry).map_err(std::io::Error::other)?;
                    chunk.push(b'\n');
                }
            }
        }
        Ok(Some((Bytes::from(chunk), cursor)))
    })
}

const CSV_HEADER: &str = "seq,id,at,actor,action,target,outcome,ip,user_agent,request_id,\
                          details,prev_hash,hash\r\n";

/// One CSV record (RFC 4180: fields with a comma, quote or line break are quoted, quotes
/// doubled; records end with CRLF). A value that a spreadsheet would run as a formula gets a
/// leading `'` ([`confab_core::csv::field`]); JSON Lines keeps every value exactly as stored (for
/// recomputing the hashes).
fn csv_row(out: &mut Vec<u8>, entry: &AuditEntry) {
    let at = confab_core::id::ms_to_datetime(entry.at)
        .format(&Rfc3339)
        .unwrap_or_default();
    let seq = entry.seq.to_string();
    let details = entry.details.to_string();
    let fields: [&str; 13] = [
        &seq,
        &entry.id,
        &at,
        entry.actor.as_deref().unwrap_or(""),
        &entry.action,
        entry.target.as_deref().unwrap_or(""),
        &entry.outcome,
        entry.ip.as_deref().unwrap_or(""),
        entry.user_agent.as_deref().unwrap_or(""),
        entry.request_id.as_deref().unwrap_or(""),
        &details,
        &entry.prev_hash,
        &entry.hash,
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_field(out, field);
    }
    out.extend_from_slice(b"\r\n");
}

fn csv_field(out: &mut Vec<u8>, field: &str) {
    out.extend_from_slice(confab_core::csv::field(field).as_bytes());
}

/// Walk the hash chain and report the first broken entry, if any (admin). Archive files
/// present in the archive directory are checked too. Not audited.
#[utoipa::path(get, path = "/api/v1/admin/audit/verify", tag = "admin",
    responses(Authenticated, AdminOnly,
        (status = 200, body = VerifyReport)),
    security(("bearer" = [])))]
async fn verify(
    State(state): State<AuditState>,
    _admin: AdminUser,
) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(
        state
            .log
            .verify_with_archives(state.archive_dir.as_deref())
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        for field in ["plain", "a,b", "say \"hi\"", "two\nlines", ""] {
            csv_field(&mut out, field);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"||"
        );
    }

    #[test]
    fn filters_parse_or_name_the_parameter() {
        let query = FilterQuery {
            action: Some("auth.*".into()),
            from: Some("2026-01-31T12:00:00Z".into()),
            ..FilterQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.action, Some(ActionMatch::Prefix("auth.".into())));
        assert_eq!(filter.from_ms, Some(1_769_860_800_000));
        for (query, parameter) in [
            (
                FilterQuery {
                    actor: Some("bob".into()),
                    ..FilterQuery::default()
                },
                "actor",
            ),
            (
                FilterQuery {
                    action: Some("a*b".into()),
                    ..FilterQuery::default()
                },
                "action",
            ),
            (
                FilterQuery {
                    outcome: Some("maybe".into()),
                    ..FilterQuery::default()
                },
                "outcome",
            ),
            (
                FilterQuery {
                    to: Some("yesterday".into()),
                    ..FilterQuery::default()
                },
                "to",
            ),
        ] {
            let error = query.filter().unwrap_err();
            assert_eq!(error.code, "invalid_filter");
            assert!(error.message.starts_with(parameter), "{}", error.message);
        }
    }
}
