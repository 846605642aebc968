import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { Markdown } from './Markdown';

describe('Markdown', () => {
  it('renders a highlighted code block with a copy button that copies its text', async () => {
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    const { container } = render(
      <Markdown text={'Here:\n\n```rust\nfn main() { println!("hi"); }\n```\n\nand **bold** text.'} />,
    );
    expect(screen.getByText('bold').tagName).toBe('STRONG');
    const code = container.querySelector('pre code');
    expect(code).not.toBeNull();
    expect(code!.className).toContain('hljs');
    expect(code!.querySelector('.hljs-keyword')?.textContent).toBe('fn');
    expect(screen.getByText('rust')).toBeInTheDocument();
    fireEvent.click(screen.getByRole('button', { name: 'Copy code' }));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith('fn main() { println!("hi"); }\n'));
    expect(await screen.findByRole('button', { name: 'Copied' })).toBeInTheDocument();
  });

  it('renders GitHub tables and does not render raw HTML', () => {
    const { container } = render(<Markdown text={'| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script><b>x</b>'} />);
    expect(container.querySelector('table td')?.textContent).toBe('1');
    expect(container.querySelector('script')).toBeNull();
    expect(container.querySelector('b')).toBeNull();
  });

  it('renders a half-streamed code fence without breaking', () => {
    const { container } = render(<Markdown text={'```python\nprint("hel'} />);
    expect(container.querySelector('pre code')?.textContent).toContain('print("hel');
  });
});
