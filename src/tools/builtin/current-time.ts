import Type from 'typebox';
import { ToolArgumentsError } from '../../errors.js';
import { defineTool } from '../types.js';

export const currentTime = defineTool({
  name: 'current_time',
  description:
    'The current date and time, in UTC and optionally in an IANA time zone such as "Asia/Shanghai".',
  parameters: Type.Object(
    { timezone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA time zone name' })) },
    { additionalProperties: false },
  ),
  handler: ({ timezone }) => {
    const now = new Date();
    const zone = timezone ?? 'UTC';
    let local: string;
    try {
      local = new Intl.DateTimeFormat('en-CA', {
        timeZone: zone,
        dateStyle: 'full',
        timeStyle: 'long',
      }).format(now);
    } catch {
      throw new ToolArgumentsError(`unknown time zone "${zone}"`);
    }
    return { utc: now.toISOString(), timezone: zone, local, unix_ms: now.getTime() };
  },
});
