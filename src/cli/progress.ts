// A progress bar on stderr (cli-progress) for people at a terminal; nothing at all for cron, pipes and --json.
import cliProgress from 'cli-progress';
import { formatBytes } from './units.ts';

export interface Progress {
  /** `done` of `total` (pages or bytes); `uploaded` bytes so far, shown beside page counts. */
  update(done: number, total: number, uploaded?: number): void;
  stop(): void;
}

const none: Progress = { update() {}, stop() {} };

export function createProgress(enabled: boolean, unit: 'pages' | 'bytes'): Progress {
  if (!enabled) return none;
  const format =
    unit === 'pages'
      ? '{bar} {percentage}% | {value}/{total} pages | {uploaded} uploaded | {duration_formatted}'
      : '{bar} {percentage}% | {done} of {all} | {duration_formatted}';
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format, hideCursor: true, barsize: 30, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, uploaded = 0) {
      const payload = { uploaded: formatBytes(uploaded), done: formatBytes(done), all: formatBytes(total) };
      // The page estimate comes from the file size and may be passed by a growing database.
      const shownTotal = Math.max(total, done, 1);
      if (!started) {
        bar.start(shownTotal, done, payload);
        started = true;
      } else {
        bar.setTotal(shownTotal);
        bar.update(done, payload);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
