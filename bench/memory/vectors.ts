/**
 * Synthetic embeddings for the memory benchmarks: a seeded generator (the same vectors on every
 * run) of unit vectors around random cluster centres, the shape real embeddings have.
 */
let seed = 7;

/** Uniform in [0, 1), from a fixed-seed linear congruential generator. */
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
}

function gauss(): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/** `count` unit vectors of `dim` dimensions around `clusters` random centres, back to back. */
export function clustered(count: number, clusters: number, dim: number): Float32Array {
  const centres = new Float32Array(clusters * dim).map(() => gauss());
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const c = Math.floor(rand() * clusters);
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = centres[c * dim + d]! + 0.6 * gauss();
      out[i * dim + d] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[i * dim + d]! *= scale;
  }
  return out;
}
