// Shapes of the server's JSON (see /api/openapi.json).

export type Role = 'admin' | 'user' | string;
export type UserStatus = 'active' | 'pending' | 'disabled' | string;

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  status: UserStatus;
  groups: string[];
  must_change_password: boolean;
  created_at: string;
}

export interface TokenResponse {
  access_token: string;
  /** Only for clients without cookies; browsers keep it in the HttpOnly cookie alone. */
  refresh_token?: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export interface RegisterResponse {
  user: User;
  access_token?: string;
  refresh_token?: string;
  token_type?: string;
  expires_in?: number;
}

export type Scope = 'inference' | 'chat' | 'admin' | string;

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

export interface CreatedApiKey {
  key: string;
  api_key: ApiKey;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Model {
  id: string;
  provider: string;
  default: boolean;
  context_tokens: number | null;
  local: unknown;
}

/** Sampling settings of a conversation or preset; unset ones take the model's defaults. */
export interface Params {
  /** 0 to 2. */
  temperature?: number;
  /** Above 0, at most 1. */
  top_p?: number;
  /** At least 1. */
  max_tokens?: number;
  seed?: number;
}

/** Limits the server checks (crates/chat/src/domain.rs). */
export const LIMITS = {
  title: 200,
  folder: 100,
  tag: 50,
  tags: 20,
  systemPrompt: 20_000,
} as const;

export interface Conversation {
  id: string;
  title: string;
  model: string | null;
  system_prompt: string | null;
  params: Params;
  folder: string | null;
  tags: string[];
  pinned: boolean;
  archived: boolean;
  active_leaf_id: string | null;
  created_at: string;
  updated_at: string;
}

export type MessageStatus = 'streaming' | 'complete' | 'stopped' | 'interrupted' | 'error';

export interface Message {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: 'user' | 'assistant';
  content: string;
  status: MessageStatus;
  model: string | null;
  error: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  created_at: string;
  updated_at: string;
}

export interface Branches {
  sibling_ids: string[];
  index: number;
}

/** An emoji with its count and whether the reader gave it. */
export interface Reaction {
  emoji: string;
  count: number;
  mine: boolean;
}

export interface PathMessage extends Message {
  branches: Branches;
  reactions: Reaction[];
}

/** A named system prompt with parameters. */
export interface Preset {
  id: string;
  name: string;
  system_prompt: string | null;
  params: Params;
  created_at: string;
  updated_at: string;
}

export interface StreamStart {
  user_message: Message | null;
  assistant_message: Message;
}

export interface DeltaEvent {
  message_id: string;
  offset: number;
  content: string;
}

export interface SnippetPart {
  text: string;
  highlight: boolean;
}

export interface SearchHit {
  kind: 'title' | 'message';
  conversation_id: string;
  conversation_title: string;
  message_id: string | null;
  role: 'user' | 'assistant' | null;
  snippet: SnippetPart[];
  created_at: string;
}

export interface ErrorBody {
  code: string;
  message: string;
  request_id?: string;
  details?: string[];
}
