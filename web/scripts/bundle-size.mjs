// Prints the gzip size of what a first visit downloads (index.html, its entry script, the
// modules it preloads and its styles) and of each lazily loaded chunk, and fails when the
// first load is over the budget: node scripts/bundle-size.mjs [dist] [budget KB].
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = path.resolve(process.argv[2] ?? 'dist');
const budgetKb = Number(process.argv[3] ?? 500);
const gz = (file) => gzipSync(readFileSync(file), { level: 9 }).length;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

const html = readFileSync(path.join(dist, 'index.html'), 'utf8');
const initial = new Set();
for (const m of html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)) initial.add(m[1]);
if (initial.size === 0) {
  console.error(`bundle-size: no assets referenced by ${dist}/index.html`);
  process.exit(1);
}
let total = gz(path.join(dist, 'index.html'));
for (const asset of initial) total += gz(path.join(dist, asset));

const lazy = readdirSync(path.join(dist, 'assets'))
  .filter((f) => f.endsWith('.js') && !initial.has(`assets/${f}`))
  .map((f) => [f, gz(path.join(dist, 'assets', f))])
  .sort((a, b) => b[1] - a[1]);

console.log(`first load (gzip): ${kb(total)} in ${initial.size + 1} files (budget ${budgetKb} KB)`);
console.log(`largest lazy chunks (gzip): ${lazy.slice(0, 6).map(([f, n]) => `${f} ${kb(n)}`).join(', ')}`);
if (total > budgetKb * 1024) {
  console.error(`bundle-size: the first load is ${kb(total)}, over the ${budgetKb} KB budget`);
  process.exit(1);
}
