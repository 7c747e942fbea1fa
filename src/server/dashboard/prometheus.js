// Reading agentd's own /metrics in the browser: the Prometheus text format, counter increases that
// survive restarts (counter resets), and histogram quantiles computed the way PromQL's
// histogram_quantile() computes them, so the page and a Grafana panel agree.

/** Parses the Prometheus text exposition format into samples: { name, labels, value }. */
export function parsePrometheus(text) {
  const samples = [];
  const types = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const match = /^#\s+TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (match !== null) types.set(match[1], match[2]);
      continue;
    }
    const sample = parseSample(line);
    if (sample !== undefined) samples.push(sample);
  }
  return { samples, types };
}

function parseSample(line) {
  let i = 0;
  while (i < line.length && line[i] !== '{' && line[i] !== ' ' && line[i] !== '\t') i++;
  const name = line.slice(0, i);
  const labels = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (i >= line.length) return undefined;
      if (line[i] === '}') {
        i++;
        break;
      }
      const eq = line.indexOf('=', i);
      if (eq === -1 || line[eq + 1] !== '"') return undefined;
      const key = line.slice(i, eq).trim();
      let value = '';
      let j = eq + 2;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length) {
          j++;
          value += line[j] === 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.length) return undefined;
      labels[key] = value;
      i = j + 1;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0]);
  if (name === '' || value === undefined) return undefined;
  return { name, labels, value };
}

function parseValue(text) {
  if (text === undefined || text === '') return undefined;
  // Like Go's ParseFloat (what Prometheus uses): NaN and Inf in any case (prom-client writes "Nan").
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

/** A stable key for a sample's series: its name and labels in sorted order. */
export function seriesKey(name, labels) {
  const keys = Object.keys(labels).sort();
  let key = name;
  for (const k of keys) key += `\u0000${k}=${labels[k]}`;
  return key;
}

/**
 * How much a counter grew over consecutive readings, as PromQL's increase() counts it without
 * extrapolation: a reading lower than the one before is a reset (a restart), after which the
 * counter started again from zero.
 */
export function counterIncrease(values) {
  let total = 0;
  for (let i = 1; i < values.length; i++) {
    const previous = values[i - 1];
    const current = values[i];
    total += current >= previous ? current - previous : current;
  }
  return total;
}

/**
 * The q-quantile of a classic histogram's cumulative buckets ([{ le, count }], `le` a number,
 * +Inf included), exactly as PromQL's histogram_quantile(): linear interpolation inside the
 * bucket holding the rank, the lowest bucket starting at 0, and a rank in the +Inf bucket
 * answered with the highest finite bound. NaN when there is nothing to rank.
 */
export function histogramQuantile(q, buckets) {
  if (Number.isNaN(q)) return Number.NaN;
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  if (sorted.length === 0 || sorted[sorted.length - 1].le !== Number.POSITIVE_INFINITY) return Number.NaN;
  // Buckets with the same bound are summed; counts are made monotonic (scrapes can race).
  const merged = [];
  for (const bucket of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.le === bucket.le) last.count += bucket.count;
    else merged.push({ le: bucket.le, count: bucket.count });
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const bucket of merged) {
    if (bucket.count < max) bucket.count = max;
    else max = bucket.count;
  }
  if (merged.length < 2) return Number.NaN;
  const observations = merged[merged.length - 1].count;
  if (observations === 0) return Number.NaN;
  let rank = q * observations;
  let b = 0;
  while (b < merged.length - 1 && merged[b].count < rank) b++;
  if (b === merged.length - 1) return merged[merged.length - 2].le;
  if (b === 0 && merged[0].le <= 0) return merged[0].le;
  let start = 0;
  let count = merged[b].count;
  if (b > 0) {
    start = merged[b - 1].le;
    count -= merged[b - 1].count;
    rank -= merged[b - 1].count;
  }
  return start + (merged[b].le - start) * (rank / count);
}

/** Sums the samples named `name` by the values of `by` (label names): Map of label tuple → sum. */
export function sumBy(samples, name, by) {
  const out = new Map();
  for (const sample of samples) {
    if (sample.name !== name) continue;
    const key = by.map((label) => sample.labels[label] ?? '').join('\u0000');
    out.set(key, (out.get(key) ?? 0) + sample.value);
  }
  return out;
}

/**
 * The buckets of histogram `name` summed by the labels in `by`: Map of label tuple → [{ le, count }]
 * (the shape histogramQuantile takes), like `sum by (…, le) (…_bucket)`.
 */
export function bucketsBy(samples, name, by) {
  const groups = new Map();
  const bucketName = `${name}_bucket`;
  for (const sample of samples) {
    if (sample.name !== bucketName) continue;
    const key = by.map((label) => sample.labels[label] ?? '').join('\u0000');
    const le = parseValue(sample.labels.le);
    if (le === undefined) continue;
    let byLe = groups.get(key);
    if (byLe === undefined) {
      byLe = new Map();
      groups.set(key, byLe);
    }
    byLe.set(le, (byLe.get(le) ?? 0) + sample.value);
  }
  const out = new Map();
  for (const [key, byLe] of groups)
    out.set(
      key,
      [...byLe].map(([le, count]) => ({ le, count })),
    );
  return out;
}

/**
 * Scrapes kept over time, for rates and windowed quantiles. Each scrape is a Map of series key →
 * value; series are matched by key across scrapes so resets are detected per series.
 */
export class MetricsHistory {
  constructor(capacity = 60) {
    this.capacity = capacity;
    this.scrapes = [];
  }

  /** Records a parsed scrape taken at `time` (milliseconds). */
  add(time, samples) {
    const values = new Map();
    for (const sample of samples) values.set(seriesKey(sample.name, sample.labels), sample);
    this.scrapes.push({ time, samples, values });
    if (this.scrapes.length > this.capacity) this.scrapes.shift();
  }

  get latest() {
    return this.scrapes[this.scrapes.length - 1];
  }

  /**
   * The samples of the latest scrape with each value replaced by its increase over the kept
   * window (resets counted), or undefined with fewer than two scrapes.
   */
  windowIncrease() {
    if (this.scrapes.length < 2) return undefined;
    const latest = this.latest;
    const out = [];
    for (const [key, sample] of latest.values) {
      const values = [];
      for (const scrape of this.scrapes) {
        const seen = scrape.values.get(key);
        if (seen !== undefined) values.push(seen.value);
      }
      // A series born inside the window grew from zero.
      if (!this.scrapes[0].values.has(key)) values.unshift(0);
      out.push({ name: sample.name, labels: sample.labels, value: counterIncrease(values) });
    }
    return out;
  }

  /**
   * Per-interval rates of `sum by (by) (name)`: [{ key, points: [[time, perSecond], …] }], one
   * point per pair of consecutive scrapes, resets counted.
   */
  rates(name, by) {
    const series = new Map();
    for (let i = 1; i < this.scrapes.length; i++) {
      const before = this.scrapes[i - 1];
      const after = this.scrapes[i];
      const seconds = (after.time - before.time) / 1000;
      if (seconds <= 0) continue;
      const sums = new Map();
      for (const [key, sample] of after.values) {
        if (sample.name !== name) continue;
        const previous = before.values.get(key)?.value ?? 0;
        const grown = counterIncrease([previous, sample.value]);
        const group = by.map((label) => sample.labels[label] ?? '').join('\u0000');
        sums.set(group, (sums.get(group) ?? 0) + grown);
      }
      for (const [group, grown] of sums) {
        let points = series.get(group);
        if (points === undefined) {
          points = [];
          series.set(group, points);
        }
        points.push([after.time, grown / seconds]);
      }
    }
    return [...series].map(([key, points]) => ({ key, points }));
  }
}
