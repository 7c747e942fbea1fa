import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

/**
 * Writes `bench/results/<name>-<date>.json` and returns its path; a later run the same day writes
 * `<name>-<date>-2.json`, `-3`…, never replacing an earlier result.
 */
export function writeResult(name: string, data: unknown): string {
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stem = `${name}-${new Date().toISOString().slice(0, 10)}`;
  let path = join(dir, `${stem}.json`);
  for (let n = 2; existsSync(path); n++) path = join(dir, `${stem}-${n}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/**
 * Replaces the text between `<!-- bench:<section>:start -->` and `<!-- bench:<section>:end -->`
 * in docs/benchmarks.md (appending the section if it is new), so reruns keep the page true.
 */
export function updateDocs(section: string, markdown: string): void {
  const path = join(root, 'docs', 'benchmarks.md');
  const start = `<!-- bench:${section}:start -->`;
  const end = `<!-- bench:${section}:end -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const next =
    from !== -1 && to > from
      ? text.slice(0, from) + block + text.slice(to + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}

/** A Markdown table from rows of cells. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
