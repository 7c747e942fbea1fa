/** Turns text into vectors. Implementations: the offline `HashingEmbedder`, `OpenAiEmbedder`. */
export interface Embedder {
  /** Recorded with the data: vectors of different embedders are never mixed. */
  readonly name: string;
  readonly dimensions: number;
  /** Vectors for texts to store. */
  embedDocuments(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
  /** The vector of a search query (may weight terms by what the stored corpus contains). */
  embedQuery(text: string, signal?: AbortSignal): Promise<Float32Array>;
  /** Told when stored texts come (+1) and go (-1), for embedders that learn corpus statistics. */
  observe?(text: string, delta: 1 | -1): void;
}

/** Scales a vector to unit length in place (a zero vector stays zero). */
export function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i]! * vector[i]!;
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < vector.length; i++) vector[i]! *= scale;
  }
  return vector;
}
