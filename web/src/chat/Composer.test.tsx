import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { Composer } from './Composer';

describe('Composer', () => {
  it('sends on Enter and makes a new line on Shift+Enter', async () => {
    const onSend = vi.fn();
    render(<Composer streaming={false} onSend={onSend} onStop={vi.fn()} />);
    const box = screen.getByLabelText('Message');
    const user = userEvent.setup();
    await user.type(box, 'line one{Shift>}{Enter}{/Shift}line two');
    expect(onSend).not.toHaveBeenCalled();
    await user.keyboard('{Enter}');
    expect(onSend).toHaveBeenCalledWith('line one\nline two');
    expect(box).toHaveValue('');
  });

  it('does not send blank messages', async () => {
    const onSend = vi.fn();
    render(<Composer streaming={false} onSend={onSend} onStop={vi.fn()} />);
    await userEvent.setup().type(screen.getByLabelText('Message'), '   {Enter}');
    expect(onSend).not.toHaveBeenCalled();
    expect(screen.getByRole('button', { name: 'Send message' })).toBeDisabled();
  });

  it('shows a stop button while streaming, and Esc stops', async () => {
    const onStop = vi.fn();
    const onSend = vi.fn();
    render(<Composer streaming onSend={onSend} onStop={onStop} />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Message'), 'next{Enter}');
    expect(onSend).not.toHaveBeenCalled();
    await user.keyboard('{Escape}');
    expect(onStop).toHaveBeenCalledTimes(1);
    await user.click(screen.getByRole('button', { name: 'Stop generating' }));
    expect(onStop).toHaveBeenCalledTimes(2);
  });
});
