// Small SVG charts drawn with DOM calls (no library, no inline styles: the page's CSP forbids
// them). Colours come from the stylesheet through the s0…s5 classes.

const SVG = 'http://www.w3.org/2000/svg';

function node(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  parent?.appendChild(element);
  return element;
}

function text(content, attributes, parent) {
  const element = node('text', attributes, parent);
  element.textContent = content;
  return element;
}

/** A number in a short, readable form with its unit (s values shown as ms under a second). */
export function formatValue(value, unit) {
  if (!Number.isFinite(value)) return '–';
  if (unit === 's') {
    if (value < 0.001) return `${(value * 1e6).toFixed(0)} µs`;
    if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms`;
    return `${value.toFixed(2)} s`;
  }
  if (unit === 'usd') return `$${value < 0.01 && value > 0 ? value.toFixed(5) : value.toFixed(2)}`;
  const abs = Math.abs(value);
  const short =
    abs >= 1e9
      ? `${(value / 1e9).toFixed(1)}G`
      : abs >= 1e6
        ? `${(value / 1e6).toFixed(1)}M`
        : abs >= 1e4
          ? `${(value / 1e3).toFixed(1)}k`
          : abs >= 100 || Number.isInteger(value)
            ? value.toFixed(0)
            : value.toFixed(2);
  return unit ? `${short} ${unit}` : short;
}

function empty(container, message) {
  const p = document.createElement('p');
  p.className = 'empty';
  p.textContent = message;
  container.replaceChildren(p);
}

function legend(container, names) {
  const list = document.createElement('ul');
  list.className = 'legend';
  names.forEach((name, i) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `swatch s${i % 6}`;
    item.append(swatch, document.createTextNode(name));
    list.appendChild(item);
  });
  container.appendChild(list);
}

/**
 * A line chart of series over time: series = [{ name, points: [[timeMs, value], …] }]. Replaces
 * the container's content.
 */
export function lineChart(container, series, { unit = '', emptyText = 'No data yet.' } = {}) {
  const drawn = series.filter((s) => s.points.length > 0);
  if (drawn.length === 0) return empty(container, emptyText);
  const width = 480;
  const height = 160;
  const pad = { left: 52, right: 8, top: 8, bottom: 20 };
  let minT = Number.POSITIVE_INFINITY;
  let maxT = Number.NEGATIVE_INFINITY;
  let maxV = 0;
  for (const s of drawn) {
    for (const [t, v] of s.points) {
      minT = Math.min(minT, t);
      maxT = Math.max(maxT, t);
      if (Number.isFinite(v)) maxV = Math.max(maxV, v);
    }
  }
  if (maxV === 0) maxV = 1;
  const spanT = Math.max(1, maxT - minT);
  const x = (t) => pad.left + ((t - minT) / spanT) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / maxV) * (height - pad.top - pad.bottom);
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  for (const fraction of [0, 0.5, 1]) {
    const v = maxV * fraction;
    node('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid' }, svg);
    text(formatValue(v, unit), { x: pad.left - 4, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, svg);
  }
  const seconds = Math.round(spanT / 1000);
  text(
    `last ${seconds} s`,
    { x: width - pad.right, y: height - 4, class: 'axis', 'text-anchor': 'end' },
    svg,
  );
  drawn.forEach((s, i) => {
    const points = s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(Number.isFinite(v) ? v : 0).toFixed(1)}`);
    if (points.length === 1) {
      const [t, v] = s.points[0];
      node('circle', { cx: x(t), cy: y(v), r: 3, class: `dot s${i % 6}` }, svg);
    } else {
      node('polyline', { points: points.join(' '), class: `line s${i % 6}` }, svg);
    }
  });
  container.replaceChildren(svg);
  legend(
    container,
    drawn.map((s) => {
      const last = s.points[s.points.length - 1][1];
      return `${s.name} (${formatValue(last, unit)})`;
    }),
  );
}

/**
 * Grouped horizontal bars: groups = [{ label, bars: [{ name, value }] }], every group with the same
 * bar names in the same order. Replaces the container's content.
 */
export function barChart(container, groups, { unit = '', emptyText = 'No data yet.' } = {}) {
  if (groups.length === 0) return empty(container, emptyText);
  const names = groups[0].bars.map((bar) => bar.name);
  const barHeight = 12;
  const groupGap = 10;
  const width = 480;
  const labelWidth = 130;
  const valueWidth = 70;
  const height = groups.length * (names.length * barHeight + groupGap) + 4;
  let max = 0;
  for (const group of groups)
    for (const bar of group.bars) if (Number.isFinite(bar.value)) max = Math.max(max, bar.value);
  if (max === 0) max = 1;
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  let top = 2;
  for (const group of groups) {
    const middle = top + (names.length * barHeight) / 2 + 4;
    const label = group.label.length > 20 ? `${group.label.slice(0, 19)}…` : group.label;
    const title = node('title', {}, text(label, { x: 0, y: middle, class: 'label' }, svg));
    title.textContent = group.label;
    group.bars.forEach((bar, i) => {
      const value = Number.isFinite(bar.value) ? bar.value : 0;
      const w = Math.max(1, (value / max) * (width - labelWidth - valueWidth));
      const y = top + i * barHeight;
      node('rect', { x: labelWidth, y, width: w, height: barHeight - 2, class: `bar s${i % 6}` }, svg);
      text(
        formatValue(bar.value, unit),
        { x: labelWidth + w + 4, y: y + barHeight - 3, class: 'value' },
        svg,
      );
    });
    top += names.length * barHeight + groupGap;
  }
  container.replaceChildren(svg);
  if (names.length > 1) legend(container, names);
}
