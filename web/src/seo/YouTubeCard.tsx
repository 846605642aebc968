import { Alert, App, Button, Card, Descriptions, Divider, Input, Space, Typography } from 'antd';
import { useState } from 'react';
import { ChannelStatus } from './ChannelCard';
import { videoMessage } from './errors';
import type { Applied, Version } from './types';
import { useSeoApi } from './useSeoApi';

/** One video id or URL box with its button; reports failures in words under it. */
function VideoAction({
  label,
  button,
  disabled,
  onRun,
}: {
  label: string;
  button: string;
  disabled?: boolean;
  onRun: (video: string) => Promise<void>;
}) {
  const [video, setVideo] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await onRun(video.trim());
    } catch (e) {
      setError(videoMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Space direction="vertical" size={4} style={{ width: '100%' }}>
      <Space.Compact style={{ width: '100%', maxWidth: 560 }}>
        <Input
          aria-label={label}
          placeholder="Video id or https://www.youtube.com/watch?v=…"
          value={video}
          onChange={(e) => setVideo(e.target.value)}
          onPressEnter={() => video.trim() && !disabled && void run()}
        />
        <Button type="primary" loading={busy} disabled={disabled || !video.trim()} onClick={() => void run()}>
          {button}
        </Button>
      </Space.Compact>
      {error && <Alert type="error" showIcon role="alert" title={error} />}
    </Space>
  );
}

/** The project on YouTube: the channel, applying the newest version, importing a video's metadata. */
export function YouTubeCard({ projectId, newest, onImported }: { projectId: string; newest?: Version; onImported: (v: Version) => void }) {
  const seo = useSeoApi();
  const { message } = App.useApp();
  const [applied, setApplied] = useState<Applied | null>(null);
  return (
    <Card title="On YouTube" size="small">
      <ChannelStatus />
      <Divider style={{ margin: '12px 0' }} />
      <Typography.Text strong>Apply to video</Typography.Text>
      <Typography.Paragraph type="secondary" style={{ margin: '0 0 6px' }}>
        {newest
          ? `Writes version ${newest.number}’s title, description and tags to a video of your channel.`
          : 'Save or generate a version first.'}
      </Typography.Paragraph>
      <VideoAction
        label="Video to apply to"
        button="Apply"
        disabled={!newest}
        onRun={async (video) => {
          setApplied(null);
          const a = await seo.apply(projectId, { video, version: newest?.number });
          setApplied(a);
          message.success(`Version ${a.version} applied to the video.`);
        }}
      />
      {applied && (
        <Descriptions size="small" column={1} bordered style={{ marginTop: 8 }} title="What YouTube stored" aria-label="What YouTube stored">
          <Descriptions.Item label="Video">
            <a href={`https://www.youtube.com/watch?v=${encodeURIComponent(applied.video_id)}`} target="_blank" rel="noreferrer noopener">
              {applied.video_id}
            </a>{' '}
            (version {applied.version})
          </Descriptions.Item>
          <Descriptions.Item label="Title">{applied.title}</Descriptions.Item>
          <Descriptions.Item label="Description">
            <span style={{ whiteSpace: 'pre-wrap' }}>{applied.description}</span>
          </Descriptions.Item>
          <Descriptions.Item label="Tags">{applied.tags.join(', ') || 'none'}</Descriptions.Item>
        </Descriptions>
      )}
      <Divider style={{ margin: '12px 0' }} />
      <Typography.Text strong>Import from video</Typography.Text>
      <Typography.Paragraph type="secondary" style={{ margin: '0 0 6px' }}>
        Saves any public video’s title, description and tags as a new version of this project.
      </Typography.Paragraph>
      <VideoAction
        label="Video to import"
        button="Import"
        onRun={async (video) => {
          const v = await seo.importVideo(projectId, video);
          message.success(`Imported as version ${v.number}.`);
          onImported(v);
        }}
      />
    </Card>
  );
}
