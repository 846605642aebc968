//! Accounts: registration (the first user becomes an admin), users made by admins or the
//! command line, the profile, and passwords (change, and the end of an admin's reset).

use super::*;
use crate::actions::AuthAction;

impl AuthService {
    /// Creates an account as the registration policy allows. The first account is an admin.
    pub async fn register(
        &self,
        email: &str,
        name: &str,
        password: &str,
        client: &ClientMeta,
    ) -> AuthResult<SignedIn> {
        let policy = self.registration();
        if policy == RegistrationPolicy::Closed {
            self.audit(
                AuditEvent::new(AuthAction::Register, Outcome::Failure, client)
                    .details(json!({"reason": "closed"})),
            )
            .await;
            return Err(AuthError::RegistrationClosed);
        }
        let status = match policy {
            RegistrationPolicy::Approval => UserStatus::Pending,
            _ => UserStatus::Active,
        };
        let user = self
            .create_user(email, name, password, Role::User, status, true)
            .await?;
        self.audit(
            AuditEvent::new(AuthAction::Register, Outcome::Success, client)
                .actor(user.id)
                .target(user.id.to_string())
                .details(json!({"role": user.role, "status": user.status})),
        )
        .await;
        let tokens = match user.status {
            UserStatus::Active => Some(self.start_session(&user, client).await?),
            _ => None,
        };
        Ok(SignedIn {
            user: self.view(&user).await?,
            tokens,
        })
    }

    /// Creates an account directly (the CLI and admins); `first_is_admin` as in registration.
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password: &str,
        role: Role,
        status: UserStatus,
        first_is_admin: bool,
    ) -> AuthResult<User> {
        let email = normalize_email(email).map_err(|m| AuthError::invalid("invalid_email", m))?;
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        Self::check_password_policy(password, &email)?;
        let password_hash = hash(password.to_owned()).await?;
        let now = now_ms();
        let user = User {
            id: new_id(),
            email,
            name,
            password_hash,
            role,
            status,
            failed_logins: 0,
            locked_until: None,
            must_change_password: false,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_user(&user, first_is_admin).await {
            Ok(user) => {
                self.publish(Envelope::typed(&UserRegistered {
                    user_id: user.id,
                    email: user.email.clone(),
                    status: user.status.as_str().to_owned(),
                }))
                .await;
                Ok(user)
            }
            Err(StoreError::Conflict(_)) => Err(AuthError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a new password after an administrator's reset: the temporary password proves
    /// who it is (failures are counted like sign-ins); then signs in.
    pub async fn complete_password_reset(
        &self,
        email: &str,
        temporary: &str,
        new: &str,
        client: &ClientMeta,
    ) -> AuthResult<SignedIn> {
        let user = self.check_credentials(email, temporary, client).await?;
        if !user.must_change_password {
            return Err(AuthError::Conflict {
                code: "no_reset_pending",
                message: "no password reset is pending for this account; use POST /api/v1/auth/password while signed in".into(),
            });
        }
        Self::check_password_policy(new, &user.email)?;
        if temporary == new {
            return Err(AuthError::invalid(
                "weak_password",
                "the new password must differ from the temporary one",
            ));
        }
        let new_hash = hash(new.to_owned()).await?;
        self.store
            .set_password(user.id, &new_hash, false, now_ms())
            .await?;
        self.audit(
            AuditEvent::new(AuthAction::PasswordResetCompleted, Outcome::Success, client)
                .actor(user.id)
                .target(user.id.to_string()),
        )
        .await;
        let user = self
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        self.signed_in(user, client).await
    }

    pub async fn user(&self, id: Uuid) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        self.view(&user).await
    }

    pub async fn update_name(&self, id: Uuid, name: &str) -> AuthResult<UserView> {
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        self.store.update_name(id, &name, now_ms()).await?;
        self.audit(
            AuditEvent::new(
                AuthAction::ProfileUpdated,
                Outcome::Success,
                &ClientMeta::default(),
            )
            .actor(id)
            .target(id.to_string())
            .details(json!({"name": name})),
        )
        .await;
        self.user(id).await
    }

    /// Changes the password, signs out every other session and revokes every API key.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        current: &str,
        new: &str,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        if current.len() > domain::MAX_PASSWORD_BYTES
            || !verify(current.to_owned(), user.password_hash.clone()).await?
        {
            self.audit(
                AuditEvent::new(AuthAction::PasswordChange, Outcome::Failure, client)
                    .actor(user_id)
                    .target(user_id.to_string()),
            )
            .await;
            return Err(AuthError::WrongPassword);
        }
        Self::check_password_policy(new, &user.email)?;
        if current == new {
            return Err(AuthError::invalid(
                "weak_password",
                "the new password must differ from the current one",
            ));
        }
        let new_hash = hash(new.to_owned()).await?;
        let now = now_ms();
        self.store
            .set_password(user_id, &new_hash, false, now)
            .await?;
        let revoked = self
            .store
            .revoke_sessions_of(user_id, Some(session_id), "password changed", now)
            .await?;
        // A password change is what a user does after a suspected compromise: keys made by
        // whoever knew the old password must stop working too.
        let revoked_keys = self.store.revoke_api_keys_of(user_id, now).await?;
        self.forget_user(user_id, "password_changed").await;
        self.access_revoked(user_id, None, "password_changed").await;
        self.audit(
            AuditEvent::new(AuthAction::PasswordChange, Outcome::Success, client)
                .actor(user_id)
                .target(user_id.to_string())
                .details(json!({"revoked_sessions": revoked, "revoked_api_keys": revoked_keys})),
        )
        .await;
        Ok(())
    }
}
