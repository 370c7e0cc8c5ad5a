import { pino } from 'pino';

// Secrets must never reach a log line: redact every field that could carry one.
export const logger = pino({
  level: process.env.TERN_LOG_LEVEL ?? 'info',
  base: { service: 'tern-api' },
  redact: {
    paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'req.headers.authorization', 'req.headers.cookie'],
    censor: '[redacted]',
  },
});
export type Logger = typeof logger;
