import { destination, pino } from 'pino';

// stdout carries the access log (one JSON line per request); diagnostics go to stderr.
export const logger = pino({
  level: process.env.TERN_LOG_LEVEL ?? 'info',
  base: { service: 'tern-proxy' },
  redact: {
    paths: ['authorization', '*.authorization', 'cookie', '*.cookie', 'token', '*.token'],
    censor: '[redacted]',
  },
}, destination(2));
export type Logger = typeof logger;
