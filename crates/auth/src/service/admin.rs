//! Administration: users (list, role and status, lock, unlock, password reset, deletion by a
//! durable purge job) and groups; admin operations take the `AdminUser` capability. The
//! command line's `*_by_email` operations act as the machine's operator.

use super::*;
use crate::actions::AuthAction;

impl AuthService {
    /// An administrator resets a user's password: a temporary password (returned once) that
    /// only lets the user choose a new one; every session and API key of the user ends.
    pub async fn reset_password(
        &self,
        admin: &AdminUser,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<String> {
        let user = self.existing_user(id).await?;
        let temporary = secret::random_token();
        let temp_hash = hash(temporary.clone()).await?;
        let now = now_ms();
        self.store.set_password(id, &temp_hash, true, now).await?;
        let revoked = self
            .store
            .revoke_sessions_of(id, None, "password reset by an administrator", now)
            .await?;
        // Whoever may have learnt the old password may also have made keys with it.
        let revoked_keys = self.store.revoke_api_keys_of(id, now).await?;
        self.forget_user(id, "password_reset").await;
        self.access_revoked(id, None, "password_reset").await;
        self.audit_as(
            admin,
            AuditEvent::new(AuthAction::PasswordReset, Outcome::Success, client)
                .target(user.id.to_string())
                .details(json!({"revoked_sessions": revoked, "revoked_api_keys": revoked_keys})),
        )
        .await;
        Ok(temporary)
    }

    pub async fn list_users(&self, filter: &UserFilter) -> AuthResult<Vec<UserView>> {
        let users = self.store.list_users(filter).await?;
        let mut views = Vec::with_capacity(users.len());
        for user in &users {
            views.push(self.view(user).await?);
        }
        Ok(views)
    }

    /// Admin changes to a user's role or status; refuses to leave no active admin.
    pub async fn update_user(
        &self,
        admin: &AdminUser,
        id: Uuid,
        changes: &UserChanges,
        client: &ClientMeta,
    ) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        self.keep_an_admin(
            &user,
            Some((
                changes.role.unwrap_or(user.role),
                changes.status.unwrap_or(user.status),
            )),
        )
        .await?;
        let now = now_ms();
        if let Some(role) = changes.role.filter(|r| *r != user.role) {
            self.store.set_role(id, role, now).await?;
            self.audit_as(
                admin,
                AuditEvent::new(AuthAction::RoleChanged, Outcome::Success, client)
                    .target(id.to_string())
                    .details(json!({"from": user.role, "to": role})),
            )
            .await;
        }
        if let Some(status) = changes.status.filter(|s| *s != user.status) {
            self.store.set_status(id, status, now).await?;
            if status == UserStatus::Disabled {
                self.store
                    .revoke_sessions_of(id, None, "account disabled", now)
                    .await?;
            }
            let action = match (user.status, status) {
                (UserStatus::Pending, UserStatus::Active) => AuthAction::UserApproved,
                (_, UserStatus::Disabled) => AuthAction::UserDisabled,
                _ => AuthAction::UserStatusChanged,
            };
            self.audit_as(
                admin,
                AuditEvent::new(action, Outcome::Success, client)
                    .target(id.to_string())
                    .details(json!({"from": user.status, "to": status})),
            )
            .await;
        }
        // Whatever changed, sessions and keys must be looked up afresh, here and on every
        // replica; a lookup that read the old state meanwhile is not kept (the caches'
        // tickets).
        let reason = if changes.role.is_some_and(|r| r != user.role) {
            "role_changed"
        } else {
            "status_changed"
        };
        self.forget_user(id, reason).await;
        if let Some(status) = changes.status.filter(|s| *s != user.status)
            && status != UserStatus::Active
        {
            let reason = if status == UserStatus::Disabled {
                "disabled"
            } else {
                "status_changed"
            };
            self.access_revoked(id, None, reason).await;
        } else if changes.role.is_some_and(|r| r != user.role) {
            self.access_revoked(id, None, "role_changed").await;
        }
        self.user(id).await
    }

    /// Locks an account: it cannot sign in and its sessions and keys stop working at once,
    /// until an admin unlocks it.
    pub async fn lock_user(
        &self,
        admin: &AdminUser,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        if user.status == UserStatus::Disabled {
            return self.view(&user).await;
        }
        if id == admin.principal().user_id {
            return Err(AuthError::Conflict {
                code: "cannot_lock_self",
                message: "you cannot lock your own account".into(),
            });
        }
        self.keep_an_admin(&user, Some((user.role, UserStatus::Disabled)))
            .await?;
        let now = now_ms();
        self.store.set_status(id, UserStatus::Disabled, now).await?;
        let revoked = self
            .store
            .revoke_sessions_of(id, None, "account locked", now)
            .await?;
        self.forget_user(id, "locked").await;
        self.access_revoked(id, None, "locked").await;
        self.audit_as(
            admin,
            AuditEvent::new(AuthAction::UserLocked, Outcome::Success, client)
                .target(id.to_string())
                .details(json!({"from": user.status, "revoked_sessions": revoked})),
        )
        .await;
        self.user(id).await
    }

    /// Unlocks an account: ends the waits after failed sign-ins early, and re-enables an
    /// account an admin locked.
    pub async fn unlock_user(
        &self,
        admin: &AdminUser,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<UserView> {
        let user = self.existing_user(id).await?;
        self.guard.forget(&user.email).await;
        // Lockouts of earlier versions were kept in the row; end those too.
        self.store.clear_failed_logins(user.id).await?;
        if user.status == UserStatus::Disabled {
            self.store
                .set_status(id, UserStatus::Active, now_ms())
                .await?;
            self.forget_user(id, "status_changed").await;
        }
        self.audit_as(
            admin,
            AuditEvent::new(AuthAction::UserUnlocked, Outcome::Success, client)
                .target(id.to_string())
                .details(json!({"was": user.status})),
        )
        .await;
        self.user(id).await
    }

    /// Applies the last-admin rule (`domain::leaves_no_active_admin`) to an operation that
    /// leaves `user` in the standing `after` (`None`: deleted). The admins are counted only
    /// when the operation takes an active admin away.
    pub(super) async fn keep_an_admin(
        &self,
        user: &User,
        after: Option<(Role, UserStatus)>,
    ) -> AuthResult<()> {
        let before = (user.role, user.status);
        let takes_one_away = domain::is_active_admin(before.0, before.1)
            && !after.is_some_and(|(role, status)| domain::is_active_admin(role, status));
        if !takes_one_away {
            return Ok(());
        }
        let admins = self.store.count_active_admins().await?;
        if domain::leaves_no_active_admin(before, after, admins) {
            return Err(AuthError::Conflict {
                code: "last_admin",
                message: "this is the only active admin; make another admin first".into(),
            });
        }
        Ok(())
    }

    /// Deletes a user with all their data, as one operation that survives a crash: the
    /// account is disabled and signed out at once, then a `user.purge` job asks every
    /// data-holding service to delete the user's data (a durable event each handles for its
    /// own tables), waits for their answers and finally deletes the account itself
    /// ([`AuthService::run_purge`]). Returns the job's id.
    pub async fn delete_user(
        &self,
        admin: &AdminUser,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<Uuid> {
        let Some(jobs) = &self.jobs else {
            return Err(AuthError::Internal(
                "user deletion needs the job queue".into(),
            ));
        };
        let user = self.existing_user(id).await?;
        if id == admin.principal().user_id {
            return Err(AuthError::Conflict {
                code: "cannot_delete_self",
                message: "you cannot delete your own account; ask another admin".into(),
            });
        }
        self.keep_an_admin(&user, None).await?;
        let now = now_ms();
        self.store.set_status(id, UserStatus::Disabled, now).await?;
        self.store
            .revoke_sessions_of(id, None, "account deleted", now)
            .await?;
        self.forget_user(id, "deleted").await;
        self.access_revoked(id, None, "deleted").await;
        let job = jobs
            .enqueue(
                NewJob::new(PURGE_USER_JOB, json!({"user_id": id}))
                    .priority(10)
                    // An attempt waits up to five minutes for the services' answers, and a
                    // failing one backs off up to five minutes: 48 attempts outlast a
                    // service, the database or the bus being down for hours.
                    .max_attempts(48)
                    .created_by(admin.principal().user_id),
            )
            .await
            // The bus is down: 503, and the admin asks again (the account stays disabled).
            .map_err(|e| {
                AuthError::Store(StoreError::Unavailable(format!(
                    "cannot queue the purge: {e}"
                )))
            })?;
        self.audit_as(
            admin,
            AuditEvent::new(AuthAction::UserDeleted, Outcome::Success, client)
                .target(id.to_string())
                .details(json!({"email": user.email, "job": job.id})),
        )
        .await;
        Ok(job.id)
    }

    /// The last step of a user's purge: the account row with its sessions, keys and group
    /// memberships. Idempotent: `false` when it was already gone.
    pub async fn purge_account(&self, id: Uuid) -> AuthResult<bool> {
        let deleted = self.store.delete_user(id).await?;
        self.forget_user(id, "deleted").await;
        if deleted {
            self.publish(Envelope::typed(&UserDeleted { user_id: id }))
                .await;
        }
        Ok(deleted)
    }

    pub async fn create_group(
        &self,
        admin: &AdminUser,
        name: &str,
        client: &ClientMeta,
    ) -> AuthResult<GroupView> {
        let name = normalize_name(name).map_err(|m| AuthError::invalid("invalid_name", m))?;
        let id = new_id();
        let now = now_ms();
        match self.store.create_group(id, &name, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(AuthError::Conflict {
                    code: "group_exists",
                    message: format!("a group named `{name}` already exists"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.audit_as(
            admin,
            AuditEvent::new(AuthAction::GroupCreated, Outcome::Success, client)
                .target(id.to_string())
                .details(json!({"name": name})),
        )
        .await;
        Ok(GroupView {
            id,
            name,
            members: Vec::new(),
            created_at: now,
        })
    }

    pub async fn list_groups(&self) -> AuthResult<Vec<GroupView>> {
        Ok(self.store.list_groups().await?)
    }

    pub async fn delete_group(
        &self,
        admin: &AdminUser,
        id: Uuid,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        if !self.store.delete_group(id).await? {
            return Err(AuthError::NotFound("group"));
        }
        self.audit_as(
            admin,
            AuditEvent::new(AuthAction::GroupDeleted, Outcome::Success, client)
                .target(id.to_string()),
        )
        .await;
        Ok(())
    }

    pub async fn set_membership(
        &self,
        admin: &AdminUser,
        group_id: Uuid,
        user_id: Uuid,
        member: bool,
        client: &ClientMeta,
    ) -> AuthResult<()> {
        if member {
            match self.store.add_member(group_id, user_id, now_ms()).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(AuthError::NotFound("group or user")),
                Err(e) => return Err(e.into()),
            }
        } else if !self.store.remove_member(group_id, user_id).await? {
            return Err(AuthError::NotFound("membership"));
        }
        self.audit_as(
            admin,
            AuditEvent::new(
                if member {
                    AuthAction::GroupMemberAdded
                } else {
                    AuthAction::GroupMemberRemoved
                },
                Outcome::Success,
                client,
            )
            .target(group_id.to_string())
            .details(json!({"user": user_id})),
        )
        .await;
        Ok(())
    }

    /// Records what `admin` did: as their account, or — for the command line's operator, who
    /// has none — as done `via: cli`.
    async fn audit_as(&self, admin: &AdminUser, event: AuditEvent) {
        let event = if admin.is_operator() {
            let mut details = event.details.clone();
            if let Some(map) = details.as_object_mut() {
                map.insert("via".into(), json!("cli"));
            } else {
                details = json!({"via": "cli"});
            }
            event.details(details)
        } else {
            event.actor(admin.principal().user_id)
        };
        self.audit(event).await;
    }

    /// Records an action of the command line's operator (a key rotation, a user made at the
    /// terminal) the way every admin action is recorded.
    pub async fn audit_cli(&self, action: AuthAction, target: String, details: serde_json::Value) {
        let event = AuditEvent::new(action, Outcome::Success, &ClientMeta::default())
            .target(target)
            .details(details);
        self.audit_as(&AdminUser::operator(), event).await;
    }

    /// The user with this email, for the command line.
    async fn user_by_email(&self, email: &str) -> AuthResult<User> {
        let email = normalize_email(email).map_err(|m| AuthError::invalid("invalid_email", m))?;
        self.store
            .user_by_email(&email)
            .await?
            .ok_or(AuthError::NotFound("user"))
    }

    /// For the CLI: a user's role by email; the admin path, as the machine's operator.
    pub async fn set_role_by_email(&self, email: &str, role: Role) -> AuthResult<UserView> {
        let user = self.user_by_email(email).await?;
        let changes = UserChanges {
            role: Some(role),
            status: None,
        };
        self.update_user(
            &AdminUser::operator(),
            user.id,
            &changes,
            &ClientMeta::default(),
        )
        .await
    }

    /// For the CLI: approve a pending user by email; the admin path, as the machine's operator.
    pub async fn approve_by_email(&self, email: &str) -> AuthResult<UserView> {
        let user = self.user_by_email(email).await?;
        let changes = UserChanges {
            role: None,
            status: Some(UserStatus::Active),
        };
        self.update_user(
            &AdminUser::operator(),
            user.id,
            &changes,
            &ClientMeta::default(),
        )
        .await
    }
}
