// Shapes of the server's JSON: aliases of the types generated from its OpenAPI document
// (schema.gen.ts, web/scripts/gen-api-types.sh), so they cannot drift from the server. Only
// what the document does not describe (live stream events, the UI's own limits) is written here.
import type { components } from './schema.gen';

type Schemas = components['schemas'];

export type Role = Schemas['Role'];
export type UserStatus = Schemas['UserStatus'];
export type User = Schemas['UserView'];
export type TokenResponse = Schemas['TokenResponse'];
export type RegisterResponse = Schemas['RegisterResponse'];
export type Scope = Schemas['Scope'];
export type ApiKey = Schemas['ApiKeyView'];
export type CreatedApiKey = Schemas['CreatedApiKeyResponse'];

/** A page of a cursor-paginated list (the document has one `Page_*` schema per item type). */
export type Page<T> = Omit<Schemas['Page_Conversation'], 'items'> & { items: T[] };

/** An installed model (GET /api/v1/models). */
export type Model = Schemas['InstalledModel'];

/** Sampling settings of a conversation or preset; unset ones take the model's defaults. */
export type Params = Schemas['Params'];

/** Limits the server checks (crates/chat/src/domain.rs). */
export const LIMITS = {
  title: 200,
  folder: 100,
  tag: 50,
  tags: 20,
  systemPrompt: 20_000,
} as const;

export type Conversation = Schemas['Conversation'];
export type MessageStatus = Schemas['MessageStatus'];

/** The generated schema `K`, or `Else` while schema.gen.ts does not have it yet. */
type SchemaOr<K extends string, Else> = Schemas extends Record<K, infer T> ? T : Else;

/**
 * A file attached to a message (the files service's file, as chat keeps it). The generated
 * schema says `kind` is a string; it is one of the files service's kinds.
 */
export type ChatAttachment = Omit<
  SchemaOr<'ChatAttachment', { file_id: string; name: string; content_type: string; kind: string; size: number }>,
  'kind'
> & { kind: Schemas['FileKind'] };

/** The most files one message may carry (crates/chat/src/domain: MAX_ATTACHMENTS). */
export const MAX_ATTACHMENTS = 8;

// `attachments` is written here (as optional: older answers and other tabs' events may lack
// it) whether or not schema.gen.ts has it yet.
type WithAttachments<T> = Omit<T, 'attachments'> & { attachments?: ChatAttachment[] };

export type Message = WithAttachments<Schemas['Message']>;
export type Branches = Schemas['Branches'];
/** An emoji with its count and whether the reader gave it. */
export type Reaction = Schemas['Reaction'];
export type PathMessage = WithAttachments<Schemas['PathMessage']>;
/** A named system prompt with parameters. */
export type Preset = Schemas['Preset'];

// The events of a streamed answer (text/event-stream): the OpenAPI document does not describe
// their data, so these follow crates/chat/src/api (the `start` and `delta` events).
export interface StreamStart {
  user_message: Message | null;
  assistant_message: Message;
}

export interface DeltaEvent {
  message_id: string;
  offset: number;
  content: string;
}

export type SnippetPart = Schemas['SnippetPart'];
export type SearchHit = Schemas['SearchHit'];
/** A read-only link to a snapshot of a conversation's active branch; `url` is `/s/{token}`. */
export type ShareLink = Schemas['ShareLink'];
export type ErrorBody = Schemas['ErrorBody'];
