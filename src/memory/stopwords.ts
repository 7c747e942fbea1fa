/**
 * Common English function words. They carry no topic, so full-text queries and the hashing
 * embedder skip them (a query made only of them keeps them, so it still matches something).
 */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both ' +
    'but by can could did do does doing down during each few for from further had has have having he her here hers ' +
    'herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on ' +
    'once only or other our ours ourselves out over own same she should so some such than that the their theirs ' +
    'them themselves then there these they this those through to too under until up very was we were what when ' +
    'where which while who whom why will with would you your yours yourself yourselves s t d ll m re ve'
  ).split(' '),
);

/**
 * The last text split, and its words: an added memory's text is split by the hashing embedder's
 * statistics and then by the BM25 index, one right after the other.
 */
let lastText: string | undefined;
let lastWords: readonly string[] = [];

/** The text's lower-cased words without stopwords (all of them when nothing else is left). */
export function contentWords(text: string): readonly string[] {
  if (text === lastText) return lastWords;
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const content = words.filter((w) => !STOPWORDS.has(w));
  lastText = text;
  lastWords = content.length > 0 ? content : words;
  return lastWords;
}
