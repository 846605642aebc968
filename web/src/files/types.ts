// The files service's shapes (/api/v1/files, /api/v1/admin/files): aliases of the generated API
// types (../api/schema.gen.ts), so they cannot drift from the server.
import type { components } from '../api/schema.gen';

type Schemas = components['schemas'];

/** What a stored file is, as the server classifies it from its bytes. */
export type FileKind = Schemas['FileKind'];

/**
 * Where a file is in the virus scan: `pending` (being scanned), `clean`, `infected`
 * (quarantined: it cannot be read or shared) or `unscanned` (no scanner is configured).
 */
export type FileState = Schemas['FileState'];

/** Every state, in the order the generated enum lists them. */
export const FILE_STATES: readonly FileState[] = ['pending', 'clean', 'infected', 'unscanned'] as const satisfies readonly FileState[];
// Fails to compile when the server adds a state this list lacks.
type MissingState = Exclude<FileState, (typeof FILE_STATES)[number]>;
const noMissingState: [MissingState] extends [never] ? true : never = true;
void noMissingState;

/** A stored file (GET /api/v1/files/{id}). */
export type FileView = Schemas['FileView'];

/** A page of the caller's files, newest first; `next` is the `before` of the following page. */
export type FilePage = Schemas['FileList'];

/** GET /api/v1/files/usage: what the user stores against their quota, and the limits of an upload. */
export type FilesUsage = Schemas['UsageView'];

/** A resumable upload (POST /api/v1/files/uploads, GET /api/v1/files/uploads/{id}). */
export type UploadSession = Schemas['UploadView'];

/** The body that starts a resumable upload. */
export type CreateUpload = Schemas['NewUploadBody'];

/**
 * A share link. `url` is a path (`/f/<token>`) known only in the answer that creates it; the
 * list gives null.
 */
export type LinkView = Schemas['LinkView'];

/** The answer of POST /api/v1/files/{id}/links: the one time the url is known. */
export type CreatedLink = LinkView & { url: string };

export type LinkList = Schemas['LinkList'];

/** A file as the admin list shows it: with its owner's user id. */
export type AdminFileView = Schemas['AdminFileView'];

export type AdminFilePage = Schemas['AdminFileList'];

/** GET /api/v1/admin/files/storage. */
export type StorageReport = Schemas['StorageView'];

/** What the last comparison of stored blobs with the files' rows found. */
export type Reconciliation = Schemas['ReconciliationView'];
