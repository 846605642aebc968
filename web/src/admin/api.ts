// Shapes of the admin APIs, aliases of the types generated from the server's OpenAPI document
// (../api/schema.gen.ts), and small helpers the admin screens share.
import type { ApiClient } from '../api/client';
import { query } from '../api/query';
import type { components } from '../api/schema.gen';
import type { Page, User } from '../api/types';

type Schemas = components['schemas'];

export type { Page };

export type UserStatusFilter = Schemas['UserStatus'];

/** `POST /api/v1/auth/users/{id}/password-reset`. */
export type PasswordReset = Schemas['PasswordResetResponse'];
/** `DELETE /api/v1/auth/users/{id}` (202). */
export type UserDeletion = Schemas['UserDeletionResponse'];
export type Group = Schemas['GroupView'];

export type Job = Schemas['JobView'];
/** The states the jobs screen knows (the document types a job's `state` as any string). */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const JOB_STATES: JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export function isJobState(state: string): state is JobState {
  return (JOB_STATES as string[]).includes(state);
}
/** The job kinds the server runs today (crates/confab/src/jobs.rs). */
export const KNOWN_JOB_KINDS = ['model.pull', 'chat.title', 'user.purge'];

/**
 * The data of a `job.updated` event on `/api/v1/admin/jobs/events`: these fields of a job
 * (the document does not describe event streams).
 */
export type JobEvent = Pick<
  Job,
  'id' | 'kind' | 'state' | 'progress' | 'progress_message' | 'attempts' | 'max_attempts' | 'error' | 'created_by'
>;

export type AuditEntry = Schemas['AuditEntry'];
export type BrokenEntry = Schemas['BrokenEntry'];
export type VerifyReport = Schemas['VerifyReport'];

export type LimitLevels = Schemas['LimitLevels'];
export type RuntimeSettings = Schemas['RuntimeSettings'];
export type SettingsView = Schemas['SettingsView'];
/** `PATCH /api/v1/admin/settings`: only the fields given change. */
export type SettingsPatch = Schemas['SettingsPatch'];

/** The groupings the usage screen offers (the document types `group_by` as any string). */
export type GroupBy = 'user' | 'model' | 'day';
export type UsageStats = Schemas['UsageStats'];
export type UsageRow = Schemas['UsageRow'];
export type SeriesPoint = Schemas['SeriesPoint'];
export type UsageReport = Schemas['UsageReport'];

export type AdminUser = User;

/** Every user, a page of 200 at a time, up to `max` users (names for ids in other screens). */
export async function listAllUsers(client: ApiClient, max = 2000): Promise<User[]> {
  const users: User[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<User> = await client.get<Page<User>>(`/api/v1/auth/users${query({ limit: 200, cursor })}`);
    users.push(...page.items);
    cursor = page.next_cursor ?? null;
  } while (cursor && users.length < max);
  return users;
}

export function formatTime(t: string | null | undefined): string {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

export function formatNumber(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : n.toLocaleString();
}
