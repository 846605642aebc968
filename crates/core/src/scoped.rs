//! [`scoped_user!`](crate::scoped_user): the one definition of each service's extractor for a
//! signed-in user whose credential carries the service's scope.

/// Declares a service's extractor for a signed-in user allowed into it: the struct (holding the
/// `Principal`) exists only after the credential was authenticated and found to carry the
/// scope (an API key without it is refused with 403 `insufficient_scope`). One definition for
/// every service (chat's `Chatter`, the studio's `Creator`, files' `Owner`).
///
/// ```ignore
/// confab_core::scoped_user! {
///     /// A signed-in user allowed to chat (an API key needs the `chat` scope).
///     struct Chatter: confab_core::auth::Scope::Chat;
/// }
/// ```
#[macro_export]
macro_rules! scoped_user {
    ($(#[$meta:meta])* $vis:vis struct $name:ident: $scope:expr;) => {
        $(#[$meta])*
        $vis struct $name(pub $crate::auth::Principal);

        impl<S> ::axum::extract::FromRequestParts<S> for $name
        where
            S: Send + Sync,
            $crate::auth::DynAuthenticator: ::axum::extract::FromRef<S>,
        {
            type Rejection = $crate::ApiError;

            async fn from_request_parts(
                parts: &mut ::axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let $crate::auth::CurrentUser(principal) =
                    <$crate::auth::CurrentUser as ::axum::extract::FromRequestParts<S>>::from_request_parts(
                        parts, state,
                    )
                    .await?;
                principal.require_scope($scope)?;
                Ok($name(principal))
            }
        }
    };
}
