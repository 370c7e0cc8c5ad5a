import { destination, pino } from 'pino';

// Secrets must never reach a log line: redact every field that could carry one.
export const logger = pino({
  level: process.env.TERN_LOG_LEVEL ?? 'info',
  base: { service: 'tern-api' },
  redact: {
    paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'req.headers.authorization', 'req.headers.cookie'],
    censor: '[redacted]',
  },
}, destination(2)); // stdout is for what a person reads (the start banner); logs go to stderr
export type Logger = typeof logger;
