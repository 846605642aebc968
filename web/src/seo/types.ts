// The SEO studio's shapes: aliases of the generated API types (schema.gen.ts), so they cannot
// drift from the server. Only the live events (not in the OpenAPI document) are written here,
// after crates/seo/src/events.rs.
import type { components } from '../api/schema.gen';

type Schemas = components['schemas'];

export type Project = Schemas['Project'];
export type ProjectInput = Schemas['ProjectInput'];
export type ProjectChanges = Schemas['ProjectChanges'];
export type ProjectPage = Schemas['Page_Project'];
export type Tone = Schemas['Tone'];
export type Link = Schemas['Link'];
export type Generation = Schemas['Generation'];
export type Package = Schemas['Package'];
export type TitleCandidate = Schemas['TitleCandidate'];
export type TitleStrategy = Schemas['TitleStrategy'];
export type Version = Schemas['Version'];
export type VersionList = Schemas['VersionList'];
export type VersionSource = Schemas['VersionSource'];
export type PackageDiff = Schemas['PackageDiff'];
export type DiffLine = Schemas['DiffLine'];
export type ScoreRequest = Schemas['ScoreRequest'];
export type ScoreReport = Schemas['ScoreReport'];
export type Score = Schemas['Score'];
export type ScoreComponent = Schemas['Component'];
export type Violation = Schemas['Violation'];
export type Field = Schemas['Field'];
export type ScorePoint = Schemas['ScorePoint'];
export type ScoreHistory = Schemas['ScoreHistory'];
export type Research = Schemas['Research'];
export type Competitor = Schemas['Competitor'];
export type Competition = Schemas['Competition'];
export type CompetitionLevel = Schemas['CompetitionLevel'];
export type TitlePatterns = Schemas['TitlePatterns'];
export type TagCount = Schemas['TagCount'];
export type TagOverlap = Schemas['TagOverlap'];
export type QuotaView = Schemas['QuotaView'];
export type BucketUsage = Schemas['BucketUsage'];
export type Bucket = Schemas['Bucket'];
export type VideoRequest = Schemas['VideoRequest'];
export type VideoAudit = Schemas['VideoAudit'];
export type VideoSummary = Schemas['VideoSummary'];
export type ChannelView = Schemas['ChannelView'];
export type ApplyRequest = Schemas['ApplyRequest'];
export type Applied = Schemas['Applied'];
export type ConnectResponse = Schemas['ConnectResponse'];

/** Every tone the server knows, in the order the generated enum lists them. */
export const TONES: readonly Tone[] = [
  'neutral',
  'friendly',
  'professional',
  'enthusiastic',
  'educational',
  'humorous',
  'authoritative',
] as const satisfies readonly Tone[];
// Fails to compile when the server adds a tone this list lacks.
type MissingTone = Exclude<Tone, (typeof TONES)[number]>;
const noMissingTone: MissingTone extends never ? true : false = true;
void noMissingTone;

/** The transcript as the server parsed it (GET …/transcript). */
export type Transcript = Schemas['TranscriptView'];

/** Where a generation stands (the `stage` of a progress event). */
export type Stage = 'queued' | 'summarising' | 'analysis' | 'generation' | 'repair' | 'saving';

export interface GenerationProgress {
  project_id: string;
  job_id: string;
  stage: Stage;
  percent: number;
}

export interface GenerationCompleted {
  project_id: string;
  job_id: string;
  version: number;
  score: number;
}

export interface GenerationFailed {
  project_id: string;
  job_id: string;
  code: string;
  message: string;
}
