import { CopyOutlined, DownloadOutlined } from '@ant-design/icons';
import { App, Button, Space } from 'antd';
import { copyText } from '../chat/CopyButton';
import { seoMessage } from './errors';
import { useSeoApi } from './useSeoApi';

/** Downloads of the newest version (JSON, plain text) and its text on the clipboard. */
export function ExportButtons({ projectId, disabled }: { projectId: string; disabled: boolean }) {
  const seo = useSeoApi();
  const { message } = App.useApp();
  const run = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      message.success(done);
    } catch (e) {
      message.error(seoMessage(e));
    }
  };
  return (
    <Space wrap>
      <Button icon={<DownloadOutlined />} disabled={disabled} onClick={() => void run(() => seo.downloadExport(projectId, 'json'), 'JSON downloaded.')}>
        Download JSON
      </Button>
      <Button icon={<DownloadOutlined />} disabled={disabled} onClick={() => void run(() => seo.downloadExport(projectId, 'text'), 'Text downloaded.')}>
        Download text
      </Button>
      <Button
        icon={<CopyOutlined />}
        disabled={disabled}
        onClick={() => void run(async () => copyText(await seo.exportText(projectId)), 'Copied. Paste it into YouTube Studio.')}
      >
        Copy for YouTube Studio
      </Button>
    </Space>
  );
}
