import { pino } from 'pino';

export type Logger = pino.Logger;

/** Paths that may carry secrets; pino replaces their values before anything is written. */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'api_key',
  'apiKey',
  '*.api_key',
  '*.apiKey',
  'config.providers.*.api_key',
];

export interface LoggerOptions {
  level: string;
  /** Where to write (defaults to stdout); tests pass a stream to capture lines. */
  destination?: pino.DestinationStream;
}

/** The structured JSON logger; disabled levels cost a no-op call. */
export function createLogger(options: LoggerOptions): Logger {
  const config = {
    level: options.level,
    base: { service: 'agentd' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}
