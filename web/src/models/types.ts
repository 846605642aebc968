// Shapes of the models API (crates/inference/src/api.rs, pulls.rs, catalog.rs, models.rs, gguf.rs).

/** A GGUF file in the server's local model store (`LocalModel` with its flattened `GgufMeta`). */
export interface LocalModel {
  name: string;
  /** The file on the server: admins only (`null` for everyone else). */
  path: string | null;
  size_bytes: number;
  /** Recorded at pull time. */
  sha256: string | null;
  architecture: string | null;
  display_name: string | null;
  parameters: string | null;
  quantization: string | null;
  context_length: number | null;
  has_chat_template: boolean;
}

/** GET /api/v1/models → `{ items: InstalledModel[] }`. */
export interface InstalledModel {
  id: string;
  /** `embedded` for local GGUF models, else the provider's name. */
  provider: string;
  local: LocalModel | null;
  default: boolean;
  context_tokens: number | null;
}

/** One entry of GET /api/v1/models/catalog → `{ version, items }`. */
export interface CatalogEntry {
  name: string;
  family: string;
  parameters: string;
  quantization: string;
  size_bytes: number;
  context_length: number;
  license: string;
  capabilities: string[];
  /** What a pull fetches: `org/repo/file.gguf` on Hugging Face. */
  source: string;
  sha256: string | null;
  description: string;
}

export interface CatalogPage {
  version: number;
  items: CatalogEntry[];
}

export type PullState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A pull as the server reports it (POST/GET /api/v1/models/pulls, and each SSE event). */
export interface PullStatus {
  id: string;
  source: string;
  model: string;
  state: PullState;
  bytes: number;
  total: number | null;
  percent: number | null;
  /** Bytes per second. */
  rate: number;
  error: string | null;
  created_at: string;
}

export function isFinal(state: PullState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}
