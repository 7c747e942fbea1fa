/**
 * Most chunks of a streamed answer carry one text delta and nothing else:
 *   {"id":…,"object":"chat.completion.chunk",…,"choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}
 * JSON.parse allocates a tree of objects per chunk only to read one string. This reads the
 * string directly when what follows it is exactly the tail of a plain delta (no tool calls,
 * finish reason or usage can hide there), and returns undefined otherwise so the caller falls
 * back to JSON.parse. Tests check it against JSON.parse on fuzzed input.
 */
const CONTENT_KEY = '"delta":{"content":"';
/** What may follow the content string in a plain delta (OpenAI adds `logprobs`). */
const PLAIN_TAILS = ['"},"finish_reason":null}]}', '"},"logprobs":null,"finish_reason":null}]}'];

export function plainContentDelta(data: string): string | undefined {
  const key = data.indexOf(CONTENT_KEY);
  if (key === -1) return undefined;
  const start = key + CONTENT_KEY.length;
  let escaped = false;
  for (let i = start; i < data.length; i++) {
    const c = data.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      escaped = true;
      i++;
      continue;
    }
    if (c < 0x20) return undefined;
    if (c !== 0x22 /* " */) continue;
    const tail = data.length - i;
    if (
      !(tail === PLAIN_TAILS[0]!.length && data.startsWith(PLAIN_TAILS[0]!, i)) &&
      !(tail === PLAIN_TAILS[1]!.length && data.startsWith(PLAIN_TAILS[1]!, i))
    ) {
      return undefined;
    }
    const raw = data.slice(start, i);
    if (!escaped) return raw;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
