import { memo, useRef, type ComponentProps } from 'react';
import { CopyButton } from './CopyButton';
import ReactMarkdown, { type Components } from 'react-markdown';
import rehypeHighlight from 'rehype-highlight';
import remarkGfm from 'remark-gfm';
import darkCss from 'highlight.js/styles/github-dark.css?inline';
import lightCss from 'highlight.js/styles/github.css?inline';
import { useTheme } from '../theme/ThemeContext';

/** highlight.js's GitHub colours, light or dark with the app's theme (bundled, not fetched). */
export function HighlightStyles() {
  const { dark } = useTheme();
  return <style>{dark ? darkCss : lightCss}</style>;
}

type PreProps = ComponentProps<'pre'> & { node?: { children?: Array<{ properties?: { className?: unknown } }> } };

function CodeBlock({ children, node, ...rest }: PreProps) {
  const ref = useRef<HTMLPreElement>(null);
  const classes = node?.children?.[0]?.properties?.className;
  const language = Array.isArray(classes)
    ? (classes.find((c) => typeof c === 'string' && c.startsWith('language-')) as string | undefined)?.slice(9)
    : undefined;
  return (
    <div className="code-block">
      <div className="code-block-header">
        <span>{language ?? 'text'}</span>
        <CopyButton label="Copy code" text={() => ref.current?.textContent ?? ''} />
      </div>
      <pre ref={ref} {...rest}>
        {children}
      </pre>
    </div>
  );
}

const components: Components = {
  pre: CodeBlock as Components['pre'],
  a: ({ node: _node, ...props }) => <a {...props} target="_blank" rel="noopener noreferrer nofollow" />,
};

/** A message's markdown: GitHub flavour, code highlighted offline, raw HTML not rendered. */
export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown
        remarkPlugins={[remarkGfm]}
        rehypePlugins={[[rehypeHighlight, { detect: false }]]}
        components={components}
      >
        {text}
      </ReactMarkdown>
    </div>
  );
});
