import { Typography } from 'antd';

export default function ModelsPage() {
  return <Typography.Title level={2}>Models</Typography.Title>;
}
