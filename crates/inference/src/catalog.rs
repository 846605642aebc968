//! The catalog of installable models: a curated, versioned file (`catalog.toml`) compiled into
//! the binary, searchable by text with filters on capability and size.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const CATALOG: &str = include_str!("../catalog.toml");

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub name: String,
    pub family: String,
    pub parameters: String,
    pub quantization: String,
    pub size_bytes: u64,
    pub context_length: u64,
    pub license: String,
    pub capabilities: Vec<String>,
    /// What a pull takes: `org/repo/file.gguf` on Hugging Face.
    pub source: String,
    /// Checked after download when present.
    #[serde(default)]
    pub sha256: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: u32,
    models: Vec<CatalogEntry>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub version: u32,
    pub models: Vec<CatalogEntry>,
}

impl Catalog {
    /// The built-in catalog.
    pub fn builtin() -> Result<Self, String> {
        let file: CatalogFile =
            toml::from_str(CATALOG).map_err(|e| format!("catalog.toml: {e}"))?;
        Ok(Self {
            version: file.version,
            models: file.models,
        })
    }

    /// Entries matching the filters, best text match first (all, by name, without a query).
    pub fn search(
        &self,
        query: Option<&str>,
        capability: Option<&str>,
        max_size: Option<u64>,
    ) -> Vec<CatalogEntry> {
        let terms: Vec<String> = query
            .unwrap_or("")
            .split(|c: char| !c.is_alphanumeric() && c != '.')
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut scored: Vec<(u32, &CatalogEntry)> = self
            .models
            .iter()
            .filter(|m| {
                capability.is_none_or(|c| {
                    m.capabilities
                        .iter()
                        .any(|have| have.eq_ignore_ascii_case(c))
                })
            })
            .filter(|m| max_size.is_none_or(|max| m.size_bytes <= max))
            .filter_map(|m| {
                if terms.is_empty() {
                    return Some((0, m));
                }
                let name = m.name.to_lowercase();
                let family = m.family.to_lowercase();
                let description = m.description.to_lowercase();
                let mut score = 0;
                for term in &terms {
                    let hit = if name == *term {
                        8
                    } else if name.starts_with(term.as_str()) {
                        5
                    } else if name.contains(term.as_str()) || family.contains(term.as_str()) {
                        3
                    } else if description.contains(term.as_str())
                        || m.parameters.eq_ignore_ascii_case(term)
                    {
                        1
                    } else {
                        // Every term must match somewhere.
                        return None;
                    };
                    score += hit;
                }
                Some((score, m))
            })
            .collect();
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.size_bytes.cmp(&b.1.size_bytes))
        });
        scored.into_iter().map(|(_, m)| m.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_parses_and_searches() {
        let catalog = Catalog::builtin().unwrap();
        assert!(catalog.version >= 1 && catalog.models.len() >= 5);
        for model in &catalog.models {
            assert!(
                crate::models::Source::parse(&model.source).is_ok(),
                "{}",
                model.source
            );
            assert!(model.sha256.as_deref().is_none_or(|s| s.len() == 64));
        }
        let smol = catalog.search(Some("smollm2"), None, None);
        assert!(smol.len() >= 2 && smol.iter().all(|m| m.family == "smollm2"));
        let exact = catalog.search(Some("Qwen2.5-0.5B-Instruct-Q4_K_M"), None, None);
        assert_eq!(exact[0].name, "Qwen2.5-0.5B-Instruct-Q4_K_M");
        let small = catalog.search(None, Some("chat"), Some(500_000_000));
        assert!(small.iter().all(|m| m.size_bytes <= 500_000_000) && !small.is_empty());
        assert!(
            catalog
                .search(Some("llama"), Some("tools"), None)
                .iter()
                .all(|m| m.capabilities.contains(&"tools".to_owned()))
        );
        assert!(catalog.search(Some("no-such-thing"), None, None).is_empty());
    }
}
