// The files service's shapes (/api/v1/files, /api/v1/admin/files), written by hand after the
// API spec: the server's OpenAPI document does not describe these routes yet. Once it does,
// each of these becomes an alias of schema.gen.ts (`export type FileView = Schemas['FileView']`,
// as in ../api/types.ts), so they cannot drift from the server.

/** What a stored file is, as the server classifies it from its bytes. */
export type FileKind = 'image' | 'pdf' | 'document' | 'text' | 'markdown' | 'audio' | 'video' | 'archive';

/**
 * Where a file is in the virus scan: `pending` (being scanned), `clean`, `infected`
 * (quarantined: it cannot be read or shared) or `unscanned` (no scanner is configured).
 */
export type FileState = 'pending' | 'clean' | 'infected' | 'unscanned';

export const FILE_STATES: FileState[] = ['pending', 'clean', 'infected', 'unscanned'];

/** A stored file (GET /api/v1/files/{id}). */
export interface FileView {
  id: string;
  name: string;
  content_type: string;
  kind: FileKind;
  size: number;
  sha256: string;
  state: FileState;
  /** The scanner's name for what it found, when `infected`. */
  threat: string | null;
  width: number | null;
  height: number | null;
  /** Images have JPEG/PNG variants at /thumbnail and /preview. */
  has_thumbnail: boolean;
  /** RFC 3339. */
  created_at: string;
  scanned_at: string | null;
}

/** A page of the caller's files, newest first; `next` is the `before` of the following page. */
export interface FilePage {
  files: FileView[];
  next: string | null;
}

/** GET /api/v1/files/usage. */
export interface FilesUsage {
  usage: { bytes: number; files: number };
  quota: { max_bytes: number; max_files: number };
  max_file_bytes: number;
  /** False when no virus scanner is configured: new files are stored `unscanned`. */
  scanning: boolean;
  allowed_kinds: string[];
}

/** A resumable upload (POST /api/v1/files/uploads, GET /api/v1/files/uploads/{id}). */
export interface UploadSession {
  id: string;
  /** Every part but the last is this long. */
  part_bytes: number;
  parts: number;
  /** The parts the server has, numbered from 0. */
  received: number[];
  expires_at: string;
}

export interface CreateUpload {
  name: string;
  size: number;
  content_type?: string;
}

/**
 * A share link. `url` is a path (`/f/<token>`) known only in the answer that creates it; the
 * list gives null.
 */
export interface LinkView {
  id: string;
  url: string | null;
  expires_at: string;
  revoked: boolean;
  created_at: string;
}

/** The answer of POST /api/v1/files/{id}/links: the one time the url is known. */
export type CreatedLink = LinkView & { url: string };

export interface LinkList {
  links: LinkView[];
}

/** A file as the admin list shows it: with its owner's user id. */
export type AdminFileView = FileView & { owner: string };

export interface AdminFilePage {
  files: AdminFileView[];
  next: string | null;
}

/** GET /api/v1/admin/files/storage. */
export interface StorageReport {
  users: { owner: string; bytes: number; files: number }[];
  totals: {
    bytes: number;
    by_state: Record<FileState, number>;
  };
  scanner: {
    configured: boolean;
    address: string | null;
    /** null when not configured (or not checked). */
    reachable: boolean | null;
  };
}
