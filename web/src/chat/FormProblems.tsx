import { Alert } from 'antd';

/** Why a form was not saved: every problem listed under `title` (nothing when there is none). */
export function FormProblems({ title, problems }: { title: string; problems: string[] }) {
  if (problems.length === 0) return null;
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      title={title}
      description={
        <ul style={{ margin: 0, paddingLeft: 18 }}>
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      }
      style={{ marginBottom: 12 }}
    />
  );
}
