import type { ErrorBody } from './types';

/** The server's error body, or one the UI makes itself (which has no request id). */
export type ErrorInfo = Omit<ErrorBody, 'request_id'> & { request_id?: string };

/** A failed API call: the server's error envelope, or a network failure (`network_error`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: string[];
  readonly requestId?: string;
  /** Seconds, from the `Retry-After` header. */
  readonly retryAfter?: number;

  constructor(
    status: number,
    body: ErrorInfo,
    retryAfter?: number,
  ) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.details = body.details ?? [];
    this.requestId = body.request_id;
    this.retryAfter = retryAfter;
  }
}

/** Builds an ApiError from a failed response, whatever its body. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const retryHeader = response.headers.get('retry-after');
  const retryAfter = retryHeader && /^\d+$/.test(retryHeader) ? Number(retryHeader) : undefined;
  let body: ErrorInfo | undefined;
  try {
    const json = (await response.json()) as { error?: ErrorBody };
    if (json && typeof json.error === 'object' && json.error && typeof json.error.code === 'string') {
      body = json.error;
    }
  } catch {
    // not JSON
  }
  if (!body) {
    body = {
      code: response.status >= 500 ? 'server_error' : `http_${response.status}`,
      message: response.statusText || `The server answered ${response.status}.`,
    };
  }
  return new ApiError(response.status, body, retryAfter);
}

/** Error codes with which the server refuses a message for its attached files. */
export const ATTACHMENT_ERRORS: ReadonlySet<string> = new Set([
  'too_many_attachments',
  'attachment_not_found',
  'attachment_not_ready',
  'attachment_quarantined',
  'attachments_unavailable',
]);

function waitWords(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** What to tell a person about an error, by its code; else the server's own message. */
export function friendlyMessage(error: unknown): string {
  if (!(error instanceof ApiError)) {
    if (error instanceof Error && error.name === 'AbortError') return 'Stopped.';
    return error instanceof Error ? error.message : String(error);
  }
  switch (error.code) {
    case 'invalid_credentials':
      return 'Email or password is wrong.';
    case 'account_pending':
      return 'Your account is waiting for an administrator’s approval.';
    case 'account_disabled':
      return 'This account has been disabled. Ask an administrator.';
    case 'login_throttled':
      return error.retryAfter
        ? `Too many failed sign-ins. Try again in ${waitWords(error.retryAfter)}.`
        : 'Too many failed sign-ins. Try again later.';
    case 'registration_closed':
      return 'Sign-ups are closed on this server. Ask an administrator for an account.';
    case 'email_taken':
      return 'An account with this email already exists. Sign in instead.';
    case 'invalid_email':
      return 'That does not look like an email address.';
    case 'weak_password':
      return error.details.length
        ? `Choose a stronger password: ${error.details.join('; ')}.`
        : `Choose a stronger password: ${error.message}`;
    case 'wrong_password':
      return 'The current password is wrong.';
    case 'password_change_required':
      return 'You must choose a new password before continuing.';
    case 'rate_limited':
      return error.retryAfter
        ? `Too many requests. Try again in ${waitWords(error.retryAfter)}.`
        : 'Too many requests. Wait a moment and try again.';
    case 'token_expired':
    case 'invalid_refresh_token':
    case 'refresh_token_reused':
    case 'unauthorized':
      return 'Your session has ended. Sign in again.';
    case 'model_unavailable':
      return 'The model is not available right now. Try again or pick another model.';
    case 'unknown_model':
      return 'That model is not installed on this server.';
    case 'forbidden':
      return 'Only an administrator can do this.';
    case 'insufficient_scope':
      return `This API key is not allowed to do this: ${error.message}.`;
    case 'invalid_source':
      return `The server cannot pull that source: ${error.message}`;
    case 'invalid_sha256':
      return 'A SHA-256 checksum is 64 hexadecimal digits.';
    case 'upstream_error':
      return `The model server failed: ${error.message}`;
    case 'payload_too_large':
      return 'The file is larger than the server accepts.';
    case 'invalid_import':
      return 'The file was not imported; nothing changed.';
    case 'last_admin':
      return 'This is the only active administrator. Make another user an admin first.';
    case 'cannot_lock_self':
      return 'You cannot lock your own account.';
    case 'cannot_delete_self':
      return 'You cannot delete your own account; ask another administrator.';
    case 'group_exists':
      return 'A group with this name already exists.';
    case 'job_state':
      return `That is not possible in the task’s current state (${error.message}).`;
    case 'settings_changed':
      return 'Someone else changed the settings meanwhile. Reload them and make your change again.';
    case 'invalid_settings':
      return error.details.length ? `The settings were not saved: ${error.details.join('; ')}.` : error.message;
    case 'too_many_attachments':
      return 'A message can carry at most 8 files. Remove some and send again.';
    case 'attachment_not_found':
      return 'An attached file is no longer among your files. Remove it and attach it again.';
    case 'attachment_not_ready':
      return 'An attached file is still being scanned for viruses. Send again once it is ready.';
    case 'attachment_quarantined':
      return 'An attached file was found infected and is quarantined. Remove it and send again.';
    case 'attachments_unavailable':
      return 'This server does not take files with messages. Remove the attachments and send again.';
    case 'network_error':
      return 'Cannot reach the server. Check your connection.';
    case 'server_error':
    case 'internal':
      return `Something went wrong on the server${error.requestId ? ` (request ${error.requestId})` : ''}.`;
    default:
      return error.message;
  }
}
