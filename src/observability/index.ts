export { createLogger, type Logger, type LoggerOptions, REDACT_PATHS } from './logger.js';
