// The CLI's duration parser, the one every flag that takes a time goes through (--busy-timeout now, the
// lifecycle commands' ages later): each unit, a bare number as seconds, and the exact usage error otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/cli/units.ts';

test('parseDuration: every unit, decimals, and a bare number as seconds', () => {
  const cases: [string | number, number][] = [
    ['500ms', 500],
    ['0ms', 0],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['90m', 5_400_000],
    ['36h', 129_600_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1y', 31_536_000_000],
    ['30', 30_000],
    ['0', 0],
    ['0.25', 250],
    [45, 45_000],
    [' 10 s ', 10_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text, 'busy-timeout'), ms, String(text));
});

test('parseDuration: anything else is a usage error naming the flag, the accepted forms and the value', () => {
  for (const bad of ['', ' ', 'abc', '-5s', '-1', '5 seconds', '10M', '1mo', '1h30m', '5x', 's', '1e3', 'Infinity', '1.s', '.5s', '99999999999999999y']) {
    assert.throws(
      () => parseDuration(bad, 'busy-timeout'),
      (err: Error & { code?: string; name?: string }) => {
        assert.equal(err.name, 'UsageError');
        assert.equal(err.code, 'BAD_OPTION');
        assert.equal(err.message, `--busy-timeout must be a duration like 500ms, 30s, 2m, 36h, 7d, 2w or 1y (a bare number is seconds), got ${JSON.stringify(bad)}`);
        return true;
      },
      JSON.stringify(bad),
    );
  }
  assert.throws(() => parseDuration(Number.NaN, 'older-than'), { message: /^--older-than must be a duration .* got "NaN"$/ });
});
