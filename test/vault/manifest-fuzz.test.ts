// Damage of every kind to a small manifest and its extent table: the decoders either return the original
// (impossible for most mutations, given the digest) or throw IntegrityError with a stable code; never a crash.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { test } from 'node:test';
import { IntegrityError } from '../../src/errors.ts';
import { openExtentTable } from '../../src/vault/extent-table.ts';
import { decodeManifest, encodeManifest } from '../../src/vault/manifest.ts';
import type { Manifest } from '../../src/vault/model.ts';
import { bodyOf, encodeSnapshot, ID, seal, sealTable, smallManifest } from './fixtures.ts';

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
  const { manifest: m, bytes: original } = encodeSnapshot(smallManifest());
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
  const body = bodyOf(encodeSnapshot(smallManifest()).bytes);
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
    const version = i % 3 === 0 ? 2 : randomInt(0, 4);
    const garbage = randomBytes(randomInt(0, 200));
    attempt(seal(garbage, { version, compressed: i % 2 === 0 }));
    attempt(Buffer.concat([Buffer.from('PVMANIF\0', 'latin1'), garbage]));
  }
});

test('the extent table: any change to its bytes is refused (its manifest names its SHA-256); damage behind a valid digest never crashes', () => {
  const s = smallManifest();
  const { manifest, table } = encodeSnapshot(s);
  const open = (bytes: Buffer, m = manifest): string | undefined => {
    try {
      openExtentTable(bytes, m).extents().next();
      return undefined;
    } catch (err) {
      assert.ok(err instanceof IntegrityError, `not an IntegrityError: ${(err as Error)?.stack ?? String(err)}`);
      assert.ok(['EXTENTS_DAMAGED', 'MANIFEST_VERSION'].includes(err.code), err.code);
      return err.code;
    }
  };
  for (const bytes of mutations(table.bytes, 2000)) assert.equal(open(bytes), 'EXTENTS_DAMAGED');
  let decoded = 0;
  for (const body of mutations(bodyOf(table.bytes), 3000)) {
    const sealed = sealTable(s, body);
    if (open(sealed.bytes, sealed.manifest) === undefined) decoded++;
  }
  assert.ok(decoded < 3000, 'most damage is caught by the structure alone');
});
