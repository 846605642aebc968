// Shapes of the admin APIs (crates/auth/src/api.rs, crates/admin/src/*_api.rs, settings.rs)
// and small helpers the admin screens share.
import type { ApiClient } from '../api/client';
import { query } from '../api/query';
import type { Page, User } from '../api/types';

export type { Page };

export type UserStatusFilter = 'active' | 'pending' | 'disabled';

/** `POST /api/v1/auth/users/{id}/password-reset`. */
export interface PasswordReset {
  user_id: string;
  temporary_password: string;
}

/** `DELETE /api/v1/auth/users/{id}` (202). */
export interface UserDeletion {
  user_id: string;
  job_id: string;
}

export interface Group {
  id: string;
  name: string;
  /** User ids. */
  members: string[];
  created_at: string;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const JOB_STATES: JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
/** The job kinds the server runs today (crates/confab/src/jobs.rs). */
export const KNOWN_JOB_KINDS = ['model.pull', 'chat.title', 'user.purge'];

export interface Job {
  id: string;
  kind: string;
  payload: unknown;
  priority: number;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_after: string;
  /** 0–100 when the job reports it. */
  progress: number | null;
  progress_message: string | null;
  result: unknown;
  error: string | null;
  cancel_requested: boolean;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  worker: string | null;
}

/** The data of a `job.updated` event on `/api/v1/admin/jobs/events`. */
export interface JobEvent {
  id: string;
  kind: string;
  state: JobState;
  progress: number | null;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  error: string | null;
  created_by: string | null;
}

export interface AuditEntry {
  id: string;
  seq: number;
  at: string;
  actor: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure' | string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: unknown;
  prev_hash: string;
  hash: string;
}

export interface BrokenEntry {
  seq: number | null;
  id: string | null;
  kind: string;
  reason: string;
}

export interface VerifyReport {
  entries: number;
  archived_entries: number;
  archive_files_checked: number;
  head_seq: number;
  first_broken: BrokenEntry | null;
}

export type RegistrationPolicy = 'open' | 'approval' | 'closed';

export interface LimitLevels {
  user_requests_per_minute: number;
  user_tokens_per_day: number;
  key_requests_per_minute: number;
  key_tokens_per_day: number;
}

export interface RuntimeSettings {
  registration: RegistrationPolicy;
  default_model: string | null;
  user_models: string[];
  limits: LimitLevels;
}

export interface SettingsView {
  settings: RuntimeSettings;
  /** 0 while nothing was changed since installation. */
  version: number;
  updated_at: string | null;
  updated_by: string | null;
}

/** `PATCH /api/v1/admin/settings`: only the fields given change. */
export interface SettingsPatch {
  registration?: RegistrationPolicy;
  default_model?: string;
  user_models?: string[];
  limits?: Partial<LimitLevels>;
  version: number;
}

export type GroupBy = 'user' | 'model' | 'day';

export interface UsageStats {
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  tokens: number;
  latency_avg_ms: number | null;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export interface UsageRow extends UsageStats {
  /** A user id, a model name or a day, as grouped. */
  key: string;
}

export interface SeriesPoint extends UsageStats {
  day: string;
}

export interface UsageReport {
  group_by: GroupBy;
  from: string;
  to: string;
  totals: UsageStats;
  rows: UsageRow[];
  series: SeriesPoint[];
}

export type AdminUser = User;

/** Every user, a page of 200 at a time, up to `max` users (names for ids in other screens). */
export async function listAllUsers(client: ApiClient, max = 2000): Promise<User[]> {
  const users: User[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<User> = await client.get<Page<User>>(`/api/v1/auth/users${query({ limit: 200, cursor })}`);
    users.push(...page.items);
    cursor = page.next_cursor;
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
