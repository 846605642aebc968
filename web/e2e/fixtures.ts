// Files the end-to-end tests upload.

/** A 16×16 PNG (a blue and orange checkerboard). */
export const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAJElEQVR42mPQqDgBRw+CjOAIlzjDINRAjCJk8cGoYTQeBoUGAFosZhBZ1kj5AAAAAElFTkSuQmCC',
  'base64',
);

/** A one-page PDF with nothing on it. */
export const PDF = Buffer.from(
  [
    '%PDF-1.4',
    '1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj',
    '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj',
    '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj',
    'trailer << /Root 1 0 R >>',
    '%%EOF',
    '',
  ].join('\n'),
);
