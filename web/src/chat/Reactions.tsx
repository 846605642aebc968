import type { Reaction } from '../api/types';

/** The emoji offered on every message (the server takes any short text without spaces). */
export const QUICK_REACTIONS = ['👍', '👎', '❤️', '😂', '🎉'];

export interface ReactionsProps {
  reactions?: Reaction[];
  disabled?: boolean;
  onToggle(emoji: string): void;
}

/**
 * The quick reactions with their counts, and any other reactions the message has. Each is a
 * toggle button (`React 👍`, pressed when it is yours).
 */
export function Reactions({ reactions = [], disabled, onToggle }: ReactionsProps) {
  const byEmoji = new Map(reactions.map((r) => [r.emoji, r]));
  const shown = [...QUICK_REACTIONS, ...reactions.map((r) => r.emoji).filter((e) => !QUICK_REACTIONS.includes(e))];
  return (
    <span className="reactions" role="group" aria-label="Reactions">
      {shown.map((emoji) => {
        const r = byEmoji.get(emoji);
        const count = r?.count ?? 0;
        const mine = !!r?.mine;
        return (
          <button
            key={emoji}
            type="button"
            className={`reaction${count > 0 ? ' given' : ''}${mine ? ' mine' : ''}`}
            aria-label={`React ${emoji}`}
            aria-pressed={mine}
            title={`${mine ? `Take back ${emoji}` : `React ${emoji}`}${count > 0 ? ` (${count})` : ''}`}
            disabled={disabled}
            onClick={() => onToggle(emoji)}
          >
            <span aria-hidden>{emoji}</span>
            {count > 0 && (
              <span className="reaction-count" data-testid="reaction-count">
                {count}
              </span>
            )}
          </button>
        );
      })}
    </span>
  );
}
