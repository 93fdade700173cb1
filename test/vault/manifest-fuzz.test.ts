// Damage of every kind to a small manifest: the decoder either returns the original (impossible for most
// mutations, given the digest) or throws IntegrityError with a stable code; never a crash, never a RangeError.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { test } from 'node:test';
import { IntegrityError } from '../../src/errors.ts';
import { decodeManifest, encodeManifest } from '../../src/vault/manifest.ts';
import type { Manifest } from '../../src/vault/model.ts';
import { bodyOf, ID, seal, smallManifest } from './fixtures.ts';

const CODES = new Set(['MANIFEST_DAMAGED', 'MANIFEST_VERSION']);

type Outcome = { ok: Manifest } | { code: string };

function attempt(bytes: Buffer, expectedId?: string): Outcome {
  try {
    return { ok: decodeManifest(bytes, expectedId) };
  } catch (err) {
    assert.ok(err instanceof IntegrityError, `not an IntegrityError: ${(err as Error)?.stack ?? String(err)}`);
    assert.ok(CODES.has(err.code), `unexpected code ${err.code}`);
    assert.match(err.message, /^manifest /);
    return { code: err.code };
  }
}

function mutations(original: Buffer, rounds: number): Buffer[] {
  const out: Buffer[] = [];
  for (let length = 0; length < original.length; length++) out.push(original.subarray(0, length));
  for (let n = 1; n <= 64; n++) out.push(Buffer.concat([original, randomBytes(n)]));
  for (let i = 0; i < rounds; i++) {
    const b = Buffer.from(original);
    for (let flips = randomInt(1, 4); flips > 0; flips--) {
      const at = randomInt(b.length);
      b[at] = b[at]! ^ randomInt(1, 256);
    }
    // Two flips of one byte by the same value cancel out (about one run in 25): that is no mutation.
    if (!b.equals(original)) out.push(b);
  }
  return out;
}

test('flipped bytes, every truncation and appended junk: the original or an IntegrityError', () => {
  const m = smallManifest();
  const original = encodeManifest(m);
  let decoded = 0;
  for (const bytes of mutations(original, 3000)) {
    const outcome = attempt(bytes, ID);
    if ('ok' in outcome) {
      assert.deepEqual(outcome.ok, m);
      decoded++;
    }
  }
  // The SHA-256 covers every byte: no mutation of the encoded manifest decodes at all.
  assert.equal(decoded, 0);
});

// The same damage inside the body, sealed again with a correct digest (a buggy writer or a forger): the
// structural checks alone must hold. Whatever decodes must be a manifest the encoder accepts.
test('damage behind a valid digest: a manifest the encoder accepts, or an IntegrityError', () => {
  const m = smallManifest();
  const body = bodyOf(encodeManifest(m));
  const outcomes = { ok: 0, damaged: 0 };
  for (const mutated of mutations(body, 5000)) {
    for (const sealed of [seal(mutated), seal(mutated, { compressed: false })]) {
      const outcome = attempt(sealed);
      if ('ok' in outcome) {
        assert.doesNotThrow(() => encodeManifest(outcome.ok));
        outcomes.ok++;
      } else {
        assert.equal(outcome.code, 'MANIFEST_DAMAGED');
        outcomes.damaged++;
      }
    }
  }
  // Some flips (in a digest, a length, a time's digit) leave a valid manifest; most break it.
  assert.ok(outcomes.ok > 0 && outcomes.damaged > outcomes.ok, JSON.stringify(outcomes));
});

test('random bytes after a valid header: never a crash', () => {
  for (let i = 0; i < 2000; i++) {
    const version = i % 3 === 0 ? 1 : randomInt(0, 4);
    const garbage = randomBytes(randomInt(0, 200));
    attempt(seal(garbage, { version, compressed: i % 2 === 0 }));
    attempt(Buffer.concat([Buffer.from('PVMANIF\0', 'latin1'), garbage]));
  }
});
