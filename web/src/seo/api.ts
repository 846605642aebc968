// The SEO studio's routes (crates/seo/src/api), over the app's client.
import type { ApiClient } from '../api/client';
import { download } from '../api/download';
import type {
  Applied,
  ApplyRequest,
  ChannelView,
  ConnectResponse,
  Generation,
  Package,
  PackageDiff,
  Project,
  ProjectChanges,
  ProjectInput,
  ProjectPage,
  QuotaView,
  Research,
  ScoreHistory,
  ScoreReport,
  ScoreRequest,
  Transcript,
  Version,
  VersionList,
  VideoAudit,
  VideoRequest,
} from './types';

const BASE = '/api/v1/seo';

export interface ListQuery {
  q?: string;
  archived?: boolean;
  cursor?: string | null;
  limit?: number;
}

export interface ResearchQuery {
  keyword: string;
  region?: string;
  language?: string;
  projectId?: string;
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
    research(query: ResearchQuery, signal?: AbortSignal) {
      const p = new URLSearchParams({ keyword: query.keyword });
      if (query.region) p.set('region', query.region);
      if (query.language) p.set('language', query.language);
      if (query.projectId) p.set('project_id', query.projectId);
      return client.get<Research>(`${BASE}/research?${p.toString()}`, { signal });
    },
    quota: (days: number) => client.get<QuotaView>(`${BASE}/quota?days=${days}`),
    audit: (request: VideoRequest) => client.post<VideoAudit>(`${BASE}/videos/audit`, request),
    importVideo: (id: string, video: string) => client.post<Version>(`${project(id)}/versions/import`, { video }),
    apply: (id: string, request: ApplyRequest) => client.post<Applied>(`${project(id)}/apply`, request),
    channel: () => client.get<ChannelView>(`${BASE}/channel`),
    connect: (redirectUri: string) =>
      client.post<ConnectResponse>(`${BASE}/channel/connect`, { redirect_uri: redirectUri }),
    disconnect: () => client.delete(`${BASE}/channel`),
  };
}

export type SeoApi = ReturnType<typeof seoApi>;
