import { ThunderboltOutlined } from '@ant-design/icons';
import { Alert, Button, Progress, Space, Typography } from 'antd';
import { STAGE_WORDS, type GenerationView } from './useGeneration';

/** The Generate button, and the generation's progress while it runs. */
export function GenerationPanel({ generation, hasVersions }: { generation: GenerationView; hasVersions: boolean }) {
  const g = generation;
  return (
    <div>
      <Space wrap align="center">
        <Button type="primary" icon={<ThunderboltOutlined />} loading={g.running} disabled={g.running} onClick={() => void g.start()}>
          {hasVersions ? 'Generate again' : 'Generate'}
        </Button>
        <Typography.Text type="secondary">
          The studio writes five title ideas, a description with chapters, tags and thumbnail texts.
        </Typography.Text>
      </Space>
      {g.running && (
        <div role="status" aria-label="Generation progress" style={{ marginTop: 12 }}>
          <Progress percent={g.percent} status="active" />
          <Typography.Text>{g.stage ? STAGE_WORDS[g.stage] : 'Starting…'}</Typography.Text>
        </div>
      )}
      {!g.running && g.lastScore !== null && (
        <Alert type="success" showIcon title={`A new version is ready (score ${g.lastScore}).`} style={{ marginTop: 12 }} />
      )}
      {g.error && <Alert type="error" showIcon role="alert" title={g.error} style={{ marginTop: 12 }} />}
    </div>
  );
}
