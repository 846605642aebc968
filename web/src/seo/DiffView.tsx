import { Empty, Space, Tag, Typography } from 'antd';
import type { PackageDiff } from './types';

const MARK = { added: '+ ', removed: '- ', same: '  ' } as const;

/** What changed between two versions: title, tags, thumbnail texts and the description line by line. */
export function DiffView({ diff, from, to }: { diff: PackageDiff; from: number; to: number }) {
  const nothing =
    !diff.title &&
    diff.tags_same &&
    !diff.description_changed &&
    !diff.thumbnail_texts_added.length &&
    !diff.thumbnail_texts_removed.length;
  return (
    <section aria-label={`Changes from version ${from} to version ${to}`}>
      {nothing && <Empty description="These versions are the same." />}
      <Typography.Title level={5}>Title</Typography.Title>
      {diff.title ? (
        <div aria-label="Title change">
          <div className="seo-diff">
            <span className="removed">- {diff.title.before}</span>
            <span className="added">+ {diff.title.after}</span>
          </div>
        </div>
      ) : (
        <Typography.Paragraph type="secondary">Title unchanged.</Typography.Paragraph>
      )}
      <Typography.Title level={5}>Tags</Typography.Title>
      {diff.tags_added.length || diff.tags_removed.length ? (
        <Space wrap aria-label="Tag changes">
          {diff.tags_added.map((t) => (
            <Tag color="green" key={`+${t}`} aria-label={`Tag added: ${t}`}>
              + {t}
            </Tag>
          ))}
          {diff.tags_removed.map((t) => (
            <Tag color="red" key={`-${t}`} aria-label={`Tag removed: ${t}`}>
              − {t}
            </Tag>
          ))}
        </Space>
      ) : (
        <Typography.Paragraph type="secondary">{diff.tags_same ? 'Tags unchanged.' : 'Same tags, new order.'}</Typography.Paragraph>
      )}
      {(diff.thumbnail_texts_added.length > 0 || diff.thumbnail_texts_removed.length > 0) && (
        <>
          <Typography.Title level={5}>Thumbnail texts</Typography.Title>
          <Space wrap>
            {diff.thumbnail_texts_added.map((t) => (
              <Tag color="green" key={`+${t}`}>
                + {t}
              </Tag>
            ))}
            {diff.thumbnail_texts_removed.map((t) => (
              <Tag color="red" key={`-${t}`}>
                − {t}
              </Tag>
            ))}
          </Space>
        </>
      )}
      <Typography.Title level={5}>Description</Typography.Title>
      {diff.description_changed ? (
        <pre className="seo-diff" aria-label="Description changes">
          {diff.description.map((line, i) => (
            <span key={i} className={line.kind} data-kind={line.kind}>
              {MARK[line.kind]}
              {line.text || ' '}
            </span>
          ))}
        </pre>
      ) : (
        <Typography.Paragraph type="secondary">Description unchanged.</Typography.Paragraph>
      )}
    </section>
  );
}
