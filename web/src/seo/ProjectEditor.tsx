import { ArrowLeftOutlined } from '@ant-design/icons';
import { Alert, App, Card, Collapse, Result, Space, Spin, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link, useParams } from 'react-router';
import { ApiError } from '../api/errors';
import { seoMessage } from './errors';
import { ExportButtons } from './ExportButtons';
import { GenerationPanel } from './GenerationPanel';
import { PackageEditor } from './PackageEditor';
import { ProjectForm, toChanges, valuesOf } from './ProjectForm';
import { ScoreTag } from './ScoreTag';
import type { Project, Version } from './types';
import { useGeneration } from './useGeneration';
import { useSeoApi } from './useSeoApi';
import { VersionsPanel } from './VersionsPanel';
import { YouTubeCard } from './YouTubeCard';

export default function ProjectEditor() {
  const { projectId = '' } = useParams();
  const seo = useSeoApi();
  const { message } = App.useApp();
  const [project, setProject] = useState<Project | null>(null);
  const [transcript, setTranscript] = useState('');
  const [versions, setVersions] = useState<Version[]>([]);
  const [error, setError] = useState<unknown>(null);

  const loadVersions = useCallback(async () => {
    setVersions((await seo.versions(projectId)).items);
  }, [seo, projectId]);

  const reload = useCallback(async () => {
    try {
      const p = await seo.get(projectId);
      // The transcript before the project: the details form starts from both, and saving it
      // with an empty transcript box would remove the transcript.
      setTranscript(p.has_transcript ? (await seo.transcript(projectId)).text : '');
      setProject(p);
      await loadVersions();
    } catch (e) {
      setError(e);
    }
  }, [seo, projectId, loadVersions]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const afterNewVersion = useCallback(async () => {
    try {
      setProject(await seo.get(projectId));
      await loadVersions();
    } catch (e) {
      setError(e);
    }
  }, [seo, projectId, loadVersions]);

  const generation = useGeneration(projectId, project?.generation_job, () => void afterNewVersion());

  if (error instanceof ApiError && error.status === 404) {
    return <Result status="404" title="Project not found" subTitle={seoMessage(error)} extra={<Link to="/seo">All projects</Link>} />;
  }
  if (!project) {
    return error ? (
      <Alert type="error" showIcon role="alert" title={seoMessage(error)} />
    ) : (
      <div style={{ padding: 48, textAlign: 'center' }} role="status" aria-label="Loading">
        <Spin />
      </div>
    );
  }

  const newest = versions[0];
  return (
    <Space direction="vertical" size={16} style={{ width: '100%' }}>
      <div className="seo-toolbar">
        <Space direction="vertical" size={0}>
          <Link to="/seo">
            <ArrowLeftOutlined aria-hidden /> All projects
          </Link>
          <Typography.Title level={2} style={{ margin: 0, fontSize: 20 }}>
            {project.topic} <ScoreTag score={project.latest_score} />
          </Typography.Title>
        </Space>
        <ExportButtons projectId={projectId} disabled={!newest} />
      </div>
      {!!error && <Alert type="error" showIcon role="alert" title={seoMessage(error)} closable={{ onClose: () => setError(null) }} />}
      <Collapse
        items={[
          {
            key: 'details',
            label: 'Video details',
            children: (
              <ProjectForm
                key={`${project.updated_at}`}
                initial={valuesOf(project, transcript)}
                submitLabel="Save details"
                transcriptHelp="Plain text, SRT or WebVTT. Empty it to remove the transcript."
                onSubmit={async (values) => {
                  const updated = await seo.update(projectId, toChanges(values, values.transcript !== transcript));
                  setProject(updated);
                  if (values.transcript !== transcript) setTranscript(values.transcript);
                  message.success('Details saved.');
                }}
              />
            ),
          },
        ]}
      />
      <Card title="Generate" size="small">
        <GenerationPanel generation={generation} hasVersions={versions.length > 0} />
      </Card>
      {newest && (
        <Card title={`Package — version ${newest.number}`} size="small">
          <PackageEditor
            key={newest.number}
            initial={newest.package}
            project={project}
            onSave={async (pkg) => {
              await seo.saveVersion(projectId, pkg);
              message.success('Saved as a new version.');
              await afterNewVersion();
            }}
          />
        </Card>
      )}
      <Card title="Versions" size="small">
        <VersionsPanel
          projectId={projectId}
          versions={versions}
          onRestored={(v) => {
            message.success(`Version restored as version ${v.number}.`);
            void afterNewVersion();
          }}
        />
      </Card>
      <YouTubeCard projectId={projectId} newest={newest} onImported={() => void afterNewVersion()} />
    </Space>
  );
}
