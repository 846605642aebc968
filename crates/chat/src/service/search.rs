//! Search over a user's conversation titles and finished messages.

use confab_core::auth::Principal;

use super::{ChatError, ChatService};
use crate::domain::{self, SearchHit};

/// The longest query, in characters.
const MAX_QUERY_CHARS: usize = 200;

impl ChatService {
    /// Full-text search over the user's titles and finished messages.
    pub async fn search(
        &self,
        principal: &Principal,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, ChatError> {
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(ChatError::invalid(
                "invalid_query",
                "the query is longer than 200 characters",
            ));
        }
        let words = domain::query_words(query);
        if words.is_empty() {
            return Err(ChatError::invalid(
                "invalid_query",
                "the query has no words to search for",
            ));
        }
        Ok(self
            .store
            .search(principal.user_id, &words, limit.clamp(1, 100))
            .await?)
    }
}
