/**
 * A tokenizer-free token estimate: about four characters of English per token, which is what
 * OpenAI documents as a rule of thumb. Used for windows and pre-flight budget checks; billing
 * always uses the provider's reported usage.
 */
export function estimateTokens(text: string | null | undefined): number {
  if (!text) return 0;
  return Math.ceil(text.length / 4);
}
