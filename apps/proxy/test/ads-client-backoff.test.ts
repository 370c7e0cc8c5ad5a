import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../src/ads/index.ts';

test('reconnect backoff doubles from the base up to the max, with jitter in the upper half, and resets', () => {
  const lows = new Backoff(250, 30_000, () => 0);
  assert.deepEqual(Array.from({ length: 10 }, () => lows.next()), [125, 250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  const highs = new Backoff(250, 30_000, () => 1);
  assert.deepEqual(Array.from({ length: 9 }, () => highs.next()), [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  highs.reset();
  assert.equal(highs.next(), 250);
  const real = new Backoff();
  for (let i = 0; i < 50; i++) {
    const d = real.next();
    assert.ok(d >= 125 && d <= 30_000, `delay ${d} within bounds`);
  }
});
