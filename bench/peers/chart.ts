/**
 * `docs/images/peers.svg`: hand-written SVG (no browser, no chart library). One panel per
 * workload, a bar per subject: throughput for workloads 1–3, RSS per in-flight task for the
 * concurrency workloads; every bar is labelled with its value.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { round } from '../lib/stats.js';
import type { Configuration, Row } from './table.js';

const COLORS: Record<string, string> = {
  baseline: '#9e9e9e',
  agentd: '#1565c0',
  mastra: '#ef6c00',
  voltagent: '#6a1b9a',
  'openai-agents': '#2e7d32',
  langgraph: '#c62828',
  'ai-sdk': '#37474f',
};

const escapeXml = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

export function renderChart(
  path: string,
  configurations: Configuration[],
  rows: Record<string, Row[]>,
  machine: Record<string, unknown>,
): void {
  const width = 760;
  const labelWidth = 190;
  const barArea = width - labelWidth - 90;
  const barHeight = 16;
  const gap = 4;
  const out: string[] = [];
  let y = 40;
  for (const configuration of configurations) {
    const list = (rows[configuration.id] ?? []).filter((r) => r.subject !== 'baseline');
    const concurrency = configuration.inflight > 0;
    const value = (r: Row): number => (concurrency ? r.rss_per_task_kib : r.tasks_per_sec);
    const max = Math.max(1, ...list.map(value).filter(Number.isFinite));
    const unit = concurrency ? 'KiB RSS per in-flight task (lower is better)' : 'tasks/s (higher is better)';
    const title = `${configuration.title}${concurrency ? ` — ${configuration.inflight.toLocaleString('en-US')} in flight` : ''}: ${unit}`;
    out.push(`<text x="10" y="${y}" font-weight="bold">${escapeXml(title)}</text>`);
    y += 10;
    for (const row of list) {
      const v = value(row);
      const w = Number.isFinite(v) ? Math.max(1, (v / max) * barArea) : 0;
      out.push(`<text x="${labelWidth - 8}" y="${y + 12}" text-anchor="end">${escapeXml(row.label)}</text>`);
      if (w > 0) {
        out.push(
          `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLORS[row.subject] ?? '#607d8b'}"/>`,
          `<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 12}">${round(v)}</text>`,
        );
      } else {
        out.push(
          `<text x="${labelWidth + 6}" y="${y + 12}" fill="#888">${escapeXml(row.note === undefined ? 'no result' : 'did not run (see table)')}</text>`,
        );
      }
      y += barHeight + gap;
    }
    y += 28;
  }
  const caption = `npm run bench:peers — ${String(machine.cpu)}, ${String(machine.cores)} cores, Node ${String(machine.node)}, ${String(machine.date).slice(0, 10)}`;
  out.push(`<text x="10" y="${y}" fill="#555">${escapeXml(caption)}</text>`);
  const height = y + 16;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">agentd and TypeScript agent frameworks on the same mock model</text>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
}
