// The SEO studio's routes (crates/seo/src/api), over the app's client.
import type { ApiClient } from '../api/client';
import { download } from '../api/download';
import type {
  Generation,
  Package,
  PackageDiff,
  Project,
  ProjectChanges,
  ProjectInput,
  ProjectPage,
  ScoreHistory,
  ScoreReport,
  ScoreRequest,
  Transcript,
  Version,
  VersionList,
} from './types';

const BASE = '/api/v1/seo';

export interface ListQuery {
  q?: string;
  archived?: boolean;
  cursor?: string | null;
  limit?: number;
}

export type ExportFormat = 'json' | 'text';

export function seoApi(client: ApiClient) {
  const project = (id: string) => `${BASE}/projects/${encodeURIComponent(id)}`;
  return {
    list(query: ListQuery, signal?: AbortSignal) {
      const p = new URLSearchParams();
      if (query.q) p.set('q', query.q);
      if (query.archived !== undefined) p.set('archived', String(query.archived));
      if (query.cursor) p.set('cursor', query.cursor);
      if (query.limit) p.set('limit', String(query.limit));
      const qs = p.toString();
      return client.get<ProjectPage>(`${BASE}/projects${qs ? `?${qs}` : ''}`, { signal });
    },
    create: (input: ProjectInput) => client.post<Project>(`${BASE}/projects`, input),
    get: (id: string) => client.get<Project>(project(id)),
    update: (id: string, changes: ProjectChanges) => client.patch<Project>(project(id), changes),
    remove: (id: string) => client.delete(project(id)),
    transcript: (id: string) => client.get<Transcript>(`${project(id)}/transcript`),
    generate: (id: string) => client.post<Generation>(`${project(id)}/generation`, {}),
    generation: (id: string) => client.get<Generation>(`${project(id)}/generation`),
    /** The path of the project's generation feed (server-sent events). */
    eventsPath: (id: string) => `${project(id)}/generation/events`,
    versions: (id: string) => client.get<VersionList>(`${project(id)}/versions`),
    version: (id: string, n: number) => client.get<Version>(`${project(id)}/versions/${n}`),
    saveVersion: (id: string, pkg: Package) => client.post<Version>(`${project(id)}/versions`, pkg),
    restore: (id: string, n: number) => client.post<Version>(`${project(id)}/versions/${n}/restore`, {}),
    diff: (id: string, from: number, to: number) =>
      client.get<PackageDiff>(`${project(id)}/diff?from=${from}&to=${to}`),
    exportPath: (id: string, format: ExportFormat, version?: number) =>
      `${project(id)}/export?format=${format}${version ? `&version=${version}` : ''}`,
    /** The text export, for the clipboard. */
    async exportText(id: string, version?: number): Promise<string> {
      const response = await client.fetch(`${project(id)}/export?format=text${version ? `&version=${version}` : ''}`);
      return response.text();
    },
    downloadExport: (id: string, format: ExportFormat, version?: number) =>
      download(
        client,
        `${project(id)}/export?format=${format}${version ? `&version=${version}` : ''}`,
        `seo-${id}.${format === 'json' ? 'json' : 'txt'}`,
      ),
    downloadCsv: (ids: string[]) =>
      download(client, `${BASE}/export.csv?ids=${ids.map(encodeURIComponent).join(',')}`, 'seo-projects.csv'),
    score: (request: ScoreRequest, signal?: AbortSignal) =>
      client.post<ScoreReport>(`${BASE}/score`, request, { signal }),
    scores: (days: number) => client.get<ScoreHistory>(`${BASE}/scores?days=${days}`),
  };
}

export type SeoApi = ReturnType<typeof seoApi>;
