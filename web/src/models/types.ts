// Shapes of the models API: aliases of the types generated from the server's OpenAPI document
// (../api/schema.gen.ts), and helpers over them.
import type { components } from '../api/schema.gen';

type Schemas = components['schemas'];

/** A GGUF file in the server's local model store (`path` is for admins only). */
export type LocalModel = Schemas['InstalledLocalModel'];
/** GET /api/v1/models → `{ items: InstalledModel[] }`. */
export type InstalledModel = Schemas['InstalledModel'];
/** One entry of GET /api/v1/models/catalog. */
export type CatalogEntry = Schemas['CatalogEntry'];
export type CatalogPage = Schemas['CatalogPage'];
export type PullState = Schemas['PullState'];
/** A pull as the server reports it (POST/GET /api/v1/models/pulls, and each SSE event). */
export type PullStatus = Schemas['PullStatus'];

export function isFinal(state: PullState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}
