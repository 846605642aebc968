import { Typography } from 'antd';

export default function AdminPage() {
  return <Typography.Title level={2}>Admin</Typography.Title>;
}
