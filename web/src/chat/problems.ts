import { ApiError, friendlyMessage } from '../api/errors';

const FIELDS: Array<[RegExp, string]> = [
  [/\bparams\.temperature\b/g, 'Temperature'],
  [/\bparams\.top_p\b/g, 'Top P'],
  [/\bparams\.max_tokens\b/g, 'Max tokens'],
  [/\bparams\.seed\b/g, 'Seed'],
  [/\bsystem_prompt\b/g, 'The system prompt'],
  [/^name\b/g, 'The name'],
  [/^folder\b/g, 'The folder name'],
  [/^title\b/g, 'The title'],
];

function sentence(problem: string): string {
  let s = problem.trim();
  for (const [re, words] of FIELDS) s = s.replace(re, words);
  s = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/**
 * What was wrong with a form the server refused, as sentences a person reads: each problem the
 * server listed (field names in words), or the error's friendly message.
 */
export function formProblems(error: unknown): string[] {
  if (error instanceof ApiError) {
    if (error.code === 'invalid_body') {
      const listed = error.details.length ? error.details : error.message.split('; ');
      return listed.filter((p) => p.trim()).map(sentence);
    }
    if (error.code === 'preset_exists') return ['A preset with this name exists already. Choose another name.'];
  }
  return [friendlyMessage(error)];
}
