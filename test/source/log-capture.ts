// A pino logger at debug level whose lines are kept, parsed, for a test to look at.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export function captureLogger(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}
