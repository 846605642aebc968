import { Card, Typography } from 'antd';
import { useLocation, useNavigate } from 'react-router';
import { EMPTY_PROJECT, ProjectForm, toInput } from './ProjectForm';
import { useSeoApi } from './useSeoApi';

/** What another screen (the chat's "Send to SEO studio") hands over. */
export interface NewProjectPrefill {
  topic?: string;
  transcript?: string;
}

export default function NewProjectPage() {
  const seo = useSeoApi();
  const navigate = useNavigate();
  const prefill = (useLocation().state ?? {}) as NewProjectPrefill;
  return (
    <Card title={<Typography.Title level={2} style={{ margin: 0, fontSize: 20 }}>New project</Typography.Title>}>
      <Typography.Paragraph type="secondary">
        Describe the video. A transcript helps the studio write chapters and a description that match what you say.
      </Typography.Paragraph>
      <ProjectForm
        initial={{ ...EMPTY_PROJECT, topic: prefill.topic ?? '', transcript: prefill.transcript ?? '' }}
        submitLabel="Create project"
        onSubmit={async (values) => {
          const project = await seo.create(toInput(values));
          navigate(`/seo/${project.id}`);
        }}
      />
    </Card>
  );
}
