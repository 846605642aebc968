//! The OpenAPI 3.1 document (generated from the handlers' annotations) at `/api/openapi.json`,
//! and a readable API reference at `/api/docs`, rendered on the server from that document so the
//! page loads nothing from the internet.

use std::fmt::Write;

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab API",
        description = "Self-hosted AI chat platform. Authenticate with `Authorization: Bearer <access token or cfk_ API key>`. \
                       Errors are `{\"error\": {\"code\", \"message\", \"request_id\"}}` with a stable snake_case code.",
    ),
    modifiers(&BearerAuth),
    components(schemas(confab_core::error::ErrorEnvelope, confab_core::error::ErrorBody)),
    tags(
        (name = "auth", description = "Accounts, sessions and API keys"),
        (name = "users", description = "User and group administration (admin role)"),
        (name = "inference", description = "OpenAI-compatible API: chat completions and models"),
        (name = "models", description = "Installed models and their details"),
        (name = "chat", description = "Conversations, messages and their branches, streamed answers, presets"),
        (name = "admin", description = "Administration (admin role): background jobs, runtime settings, the audit log"),
        (name = "usage", description = "Usage statistics: one's own, and every user's and model's for admins"),
        (name = "internal", description = "Calls between Confab's services as themselves (split mode; an internal service token, never a user's credential); never forwarded by the gateway"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or cfk_ API key")
                    .build(),
            ),
        );
    }
}

/// `/api/openapi.json`, `/api/docs` and its stylesheet.
pub fn router(openapi: &utoipa::openapi::OpenApi) -> anyhow::Result<Router> {
    let json = serde_json::to_value(openapi)?;
    let page = render(&json);
    let body = serde_json::to_string(&json)?;
    Ok(
        Router::new()
            .route(
                "/api/openapi.json",
                get(move || {
                    let body = body.clone();
                    async move {
                        ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
                    }
                }),
            )
            .route(
                "/api/docs",
                get(move || {
                    let page = page.clone();
                    async move { Html(page) }
                }),
            )
            .route(
                "/api/docs.css",
                get(|| async {
                    ([(http::header::CONTENT_TYPE, "text/css")], STYLE).into_response()
                }),
            ),
    )
}

fn anchor(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A schema's type, with links to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!(
            "<a href=\"#schema-{}\">{}</a>",
            anchor(name),
            confab_core::html::escape(name)
        );
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = schema.get(key).and_then(Value::as_array) {
            return items.iter().map(type_of).collect::<Vec<_>>().join(" | ");
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", confab_core::html::escape(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let mut base = match schema.get("type") {
        Some(Value::String(t)) => confab_core::html::escape(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(confab_core::html::escape)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    };
    if let Some(items) = schema.get("items") {
        base = format!("array of {}", type_of(items));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        let _ = write!(base, " ({})", confab_core::html::escape(format));
    }
    base
}

fn render(doc: &Value) -> String {
    let mut html = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} reference</title><link rel=\"stylesheet\" href=\"/api/docs.css\"></head><body><main>\
         <h1>{t} <small>{v}</small></h1><p>{d}</p><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI {o}).</p>",
        t = confab_core::html::escape(title),
        v = confab_core::html::escape(version),
        d = confab_core::html::escape(doc["info"]["description"].as_str().unwrap_or("")),
        o = confab_core::html::escape(doc["openapi"].as_str().unwrap_or("")),
    );

    let mut operations = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                if let Some(op) = item.get(method) {
                    operations.push((path.as_str(), method, op));
                }
            }
        }
    }
    html.push_str("<nav><h2>Endpoints</h2><ul>");
    for (path, method, op) in &operations {
        let _ = write!(
            html,
            "<li><a href=\"#op-{a}\"><span class=\"m {m}\">{M}</span> {p}</a> {s}</li>",
            a = anchor(&format!("{method}{path}")),
            m = method,
            M = method.to_uppercase(),
            p = confab_core::html::escape(path),
            s = confab_core::html::escape(op["summary"].as_str().unwrap_or("")),
        );
    }
    html.push_str("</ul></nav>");

    for (path, method, op) in &operations {
        let public = op
            .get("security")
            .and_then(Value::as_array)
            .is_none_or(|reqs| {
                reqs.iter()
                    .any(|r| r.as_object().is_some_and(serde_json::Map::is_empty))
            });
        let _ = write!(
            html,
            "<section id=\"op-{a}\"><h3><span class=\"m {m}\">{M}</span> <code>{p}</code></h3><p class=\"auth\">{auth}</p>",
            a = anchor(&format!("{method}{path}")),
            m = method,
            M = method.to_uppercase(),
            p = confab_core::html::escape(path),
            auth = if public {
                "Public"
            } else {
                "Requires <code>Authorization: Bearer …</code>"
            },
        );
        for key in ["summary", "description"] {
            if let Some(text) = op[key].as_str() {
                let _ = write!(html, "<p>{}</p>", confab_core::html::escape(text));
            }
        }
        if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
            html.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
            for param in params {
                let _ = write!(
                    html,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    confab_core::html::escape(param["name"].as_str().unwrap_or("")),
                    confab_core::html::escape(param["in"].as_str().unwrap_or("")),
                    type_of(&param["schema"]),
                    if param["required"].as_bool().unwrap_or(false) {
                        "yes"
                    } else {
                        "no"
                    },
                    confab_core::html::escape(param["description"].as_str().unwrap_or("")),
                );
            }
            html.push_str("</table>");
        }
        if let Some(body) = op.get("requestBody") {
            let schema = &body["content"]["application/json"]["schema"];
            let _ = write!(
                html,
                "<h4>Request body</h4><p>{} {}</p>",
                type_of(schema),
                confab_core::html::escape(body["description"].as_str().unwrap_or("")),
            );
        }
        if let Some(responses) = op["responses"].as_object() {
            html.push_str(
                "<h4>Responses</h4><table><tr><th>status</th><th>body</th><th>meaning</th></tr>",
            );
            for (status, response) in responses {
                let schema = &response["content"]["application/json"]["schema"];
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    confab_core::html::escape(status),
                    if schema.is_null() {
                        String::new()
                    } else {
                        type_of(schema)
                    },
                    confab_core::html::escape(response["description"].as_str().unwrap_or("")),
                );
            }
            html.push_str("</table>");
        }
        html.push_str("</section>");
    }

    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        html.push_str("<h2>Schemas</h2>");
        for (name, schema) in schemas {
            let _ = write!(
                html,
                "<section id=\"schema-{}\"><h3>{}</h3>",
                anchor(name),
                confab_core::html::escape(name)
            );
            if let Some(text) = schema["description"].as_str() {
                let _ = write!(html, "<p>{}</p>", confab_core::html::escape(text));
            }
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                html.push_str("<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>");
                for (field, prop) in props {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        confab_core::html::escape(field),
                        type_of(prop),
                        if required.contains(&field.as_str()) {
                            "yes"
                        } else {
                            "no"
                        },
                        confab_core::html::escape(prop["description"].as_str().unwrap_or("")),
                    );
                }
                html.push_str("</table>");
            } else {
                let _ = write!(html, "<p>{}</p>", type_of(schema));
            }
            html.push_str("</section>");
        }
    }
    html.push_str("</main></body></html>");
    html
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}\
main{max-width:960px;margin:0 auto;padding:24px}h1 small{font-size:14px;color:#667}\
section{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:12px 18px;margin:14px 0}\
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-bottom:1px solid #eceef1;padding:4px 8px;text-align:left;vertical-align:top}\
code{font:13px ui-monospace,monospace;background:#f1f3f5;padding:1px 4px;border-radius:4px}\
.m{display:inline-block;min-width:56px;text-align:center;font:600 12px ui-monospace,monospace;border-radius:4px;padding:2px 6px;color:#fff;background:#667}\
.get{background:#2f7d32}.post{background:#1f5fbf}.put{background:#8a5a00}.patch{background:#7a3fb0}.delete{background:#b3261e}\
nav ul{list-style:none;padding:0}nav li{margin:3px 0}a{color:#1f5fbf;text-decoration:none}.auth{color:#556;font-size:13px}\
@media (prefers-color-scheme:dark){body{background:#111418;color:#dfe3e8}section{background:#181c21;border-color:#2a3038}code{background:#222831}td,th{border-color:#2a3038}a{color:#7fb0ff}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_operations_and_schemas() {
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T", "version": "1", "description": "<b>"},
            "paths": {"/x/{id}": {"get": {"summary": "Get x", "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}}}}},
            "components": {"schemas": {"X": {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}}}
        });
        let html = render(&doc);
        assert!(html.contains("&lt;b&gt;"));
        assert!(html.contains("<code>/x/{id}</code>"));
        assert!(html.contains("href=\"#schema-X\""));
        assert!(html.contains("id=\"schema-X\""));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "the page must load nothing external"
        );
    }
}
