// `npm run bench -- prune`: retention and verification of a large vault on fauxqs (in its own process). The
// vault: a real full snapshot of a database of --size MiB (default 1024) and --real (default 10) real
// incremental snapshots after small changes (100 random row updates each), then copies of those, one every 15
// minutes going back in time, up to --snapshots (default 1000) snapshots in all: a copy is a manifest of its own
// id over its original's extent table and packs, which is what a cron job's snapshots of a database that hardly
// changed look like. Each measurement runs in a process of its own (its peak RSS is its own):
//
//   verify --read-data   over every snapshot, against a bare download (GetObject, same concurrency) of the same
//                        objects it downloads: every extent table and pack, and every manifest
//   prune, first run     --keep-hourly 24 --keep-daily 7: forgets and marks
//   prune, second run    a grace period later: deletes
//
// Goals (issue 11): prune peak RSS < 200 MB; verify --read-data >= 0.8x the bare download. verify and the bare
// download alternate, twice each, and the faster run of each is kept.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { prune, snapshot, verify, type StorageOptions } from '../src/index.ts';
import { listObjects, openStorage } from '../src/storage/index.ts';
import { newSnapshotId } from '../src/vault/ids.ts';
import { extentTableKey, manifestKey } from '../src/vault/layout.ts';
import { encodeManifest } from '../src/vault/manifest.ts';
import { listSnapshotIds, readManifest } from '../src/vault/repository.ts';
import { runAll } from '../src/util/run-all.ts';
import { startFauxqs } from '../test/helpers/servers.ts';
import { childJob, peakRss, reportFromChild, runInChild } from './lib/child.ts';
import { arg } from './lib/cli.ts';
import { cachedDatabase } from './lib/database.ts';
import { createRealisticDatabase, updateRandom } from './lib/realistic-db.ts';
import { bareClient, type Endpoint } from './lib/s3.ts';
import { formatTable } from './lib/table.ts';

const MiB = 1024 * 1024;
// Long enough for a loaded machine's windows, short enough to wait for between the two prunes.
const GRACE_MS = 10_000;
const CONCURRENCY = 8;

interface Job {
  kind: 'verify' | 'structure' | 'bare' | 'prune';
  endpoint: Endpoint;
  url: string;
}

function storageOptions(e: Endpoint): StorageOptions {
  return { s3: { endpoint: e.endpoint, forcePathStyle: true, credentials: async () => ({ accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey }) } };
}

async function child(job: Job): Promise<void> {
  const started = performance.now();
  const opts = { url: job.url, storageOptions: storageOptions(job.endpoint) };
  if (job.kind === 'verify' || job.kind === 'structure') {
    const r = await verify({ ...opts, readData: job.kind === 'verify', concurrency: CONCURRENCY });
    if (!r.ok) throw new Error(`the bench vault does not verify: ${JSON.stringify(r.damaged.slice(0, 3))}`);
    reportFromChild({ ms: performance.now() - started, rss: peakRss(), bytes: r.bytesRead, requests: r.requests.total, snapshots: r.snapshots, packs: r.packs });
  } else if (job.kind === 'bare') {
    // What verify downloads, the plain way: every manifest, extent table and pack, whole, CONCURRENCY at once.
    const storage = openStorage(job.url, storageOptions(job.endpoint));
    const keys: string[] = [];
    for (const prefix of ['manifests/', 'extents/', 'packs/']) for await (const o of listObjects(storage, prefix)) keys.push(o.key);
    await storage.close();
    const s3 = bareClient(job.endpoint);
    const [, bucket, prefix] = /^s3:\/\/([^/]+)\/(.+)$/.exec(job.url)!;
    let bytes = 0;
    await runAll(keys, CONCURRENCY, async (key) => {
      const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${key}` }));
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) bytes += chunk.length;
    }, { what: 'bare download' });
    s3.destroy();
    reportFromChild({ ms: performance.now() - started, rss: peakRss(), bytes, requests: keys.length + 3 });
  } else {
    const r = await prune({ ...opts, policy: { keepHourly: 24, keepDaily: 7 }, graceMs: GRACE_MS });
    reportFromChild({ ms: performance.now() - started, rss: peakRss(), requests: r.requests.total, byOp: r.requests.byOp, kept: r.kept.length, forgotten: r.forgotten.length, deleted: r.deleted, waiting: r.waiting });
  }
}

async function buildVault(url: string, e: Endpoint, sizeMiB: number, total: number, real: number): Promise<void> {
  const source = cachedDatabase(`prune-${sizeMiB}m.db`, (p) => createRealisticDatabase(p, sizeMiB * MiB));
  const work = `${source}.work`;
  const { copyFileSync, rmSync } = await import('node:fs');
  copyFileSync(source, work);
  const so = storageOptions(e);
  const bases: string[] = [];
  for (let i = 0; i <= real; i++) {
    if (i > 0) updateRandom(work, 100, 1000 + i);
    bases.push((await snapshot({ source: work, url, storageOptions: so, sourceCheck: 'none' })).id);
    process.stderr.write(`real snapshot ${i + 1}/${real + 1}\r`);
  }
  rmSync(work, { force: true });
  const storage = openStorage(url, so);
  const originals = await Promise.all(bases.map(async (id) => ({ manifest: await readManifest(storage, id), table: await storage.getObject(extentTableKey(id)) })));
  const copies = total - originals.length;
  const newestCopy = Date.parse(originals[0]!.manifest.createdAt) - 15 * 60_000;
  let parent: string | null = null;
  const jobs = Array.from({ length: copies }, (_, i) => {
    const base = originals[Math.min(originals.length - 1, Math.floor((i * originals.length) / copies))]!;
    const at = new Date(newestCopy - (copies - 1 - i) * 15 * 60_000);
    const id = newSnapshotId(at);
    const manifest = { ...base.manifest, id, parent, createdAt: at.toISOString(), completedAt: new Date(at.getTime() + 2000).toISOString() };
    delete (manifest as { byteLength?: number }).byteLength;
    parent = id;
    return { id, manifest, table: base.table };
  });
  await runAll(jobs, CONCURRENCY, async (j) => {
    await storage.putIfAbsent(extentTableKey(j.id), j.table);
    await storage.putIfAbsent(manifestKey(j.id), encodeManifest(j.manifest));
  }, { what: 'synthetic snapshots' });
  const count = (await listSnapshotIds(storage)).length;
  await storage.close();
  if (count !== total) throw new Error(`the bench vault has ${count} snapshots, not ${total}`);
}

async function main(): Promise<void> {
  const total = Number(arg('--snapshots', '1000'));
  const sizeMiB = Number(arg('--size', '1024'));
  const real = Math.min(Number(arg('--real', '10')), total - 1);
  const server = await startFauxqs({ inProcess: false });
  const e: Endpoint = { endpoint: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
  try {
    await server.createBucket('bench');
    const url = 's3://bench/vault';
    const built = performance.now();
    await buildVault(url, e, sizeMiB, total, real);
    process.stderr.write(`\nbuilt a vault of ${total} snapshots of ${sizeMiB} MiB in ${((performance.now() - built) / 1000).toFixed(0)} s\n`);
    const job = (kind: Job['kind']) => runInChild<Record<string, any>>(import.meta.url, { kind, endpoint: e, url } satisfies Job, kind);
    // Alternating, twice each, the faster of each kept: the server warms up and the machine's load varies.
    const fastest = (runs: Record<string, any>[]) => runs.reduce((a, r) => (r.ms < a.ms ? r : a));
    const runs = [job('verify'), job('bare'), job('verify'), job('bare')];
    const v = fastest([runs[0]!, runs[2]!]);
    const b = fastest([runs[1]!, runs[3]!]);
    const st = job('structure');
    const p1 = job('prune');
    await sleep(GRACE_MS + 500);
    const p2 = job('prune');
    const mbps = (bytes: number, ms: number) => (bytes / MiB / (ms / 1000)).toFixed(0);
    // Both download the same objects (verify: each pack's live bytes once, every extent table and manifest).
    const verifyRatio = b.ms / v.ms;
    const rows = [
      ['verify --read-data', `${(v.ms / 1000).toFixed(1)} s`, `${mbps(v.bytes, v.ms)} MiB/s of packs`, String(v.requests), `${(v.rss / MiB).toFixed(0)} MiB`, `${verifyRatio.toFixed(2)}x bare`, verifyRatio >= 0.8 ? 'pass (>= 0.8x)' : 'FAIL (>= 0.8x)'],
      ['verify (no --read-data)', `${(st.ms / 1000).toFixed(1)} s`, `${st.snapshots} manifests and extent tables`, String(st.requests), `${(st.rss / MiB).toFixed(0)} MiB`, '', ''],
      ['bare download', `${(b.ms / 1000).toFixed(1)} s`, `${mbps(b.bytes, b.ms)} MiB/s of all objects`, String(b.requests), `${(b.rss / MiB).toFixed(0)} MiB`, '', ''],
      ['prune (forget, mark)', `${(p1.ms / 1000).toFixed(1)} s`, `kept ${p1.kept}, forgot ${p1.forgotten}`, String(p1.requests), `${(p1.rss / MiB).toFixed(0)} MiB`, '', p1.rss < 200 * MiB ? 'pass (< 200 MB)' : 'FAIL (< 200 MB)'],
      ['prune (delete)', `${(p2.ms / 1000).toFixed(1)} s`, `deleted ${p2.deleted.objects} objects, ${(p2.deleted.bytes / MiB).toFixed(0)} MiB`, String(p2.requests), `${(p2.rss / MiB).toFixed(0)} MiB`, '', p2.rss < 200 * MiB ? 'pass (< 200 MB)' : 'FAIL (< 200 MB)'],
    ];
    console.log(`${total} snapshots of a ${sizeMiB} MiB database (${real} real incrementals), fauxqs, concurrency ${CONCURRENCY}; verify read ${(v.bytes / MiB).toFixed(0)} MiB of packs, the bare download ${(b.bytes / MiB).toFixed(0)} MiB of objects (packs, extent tables, manifests: what verify downloads)`);
    console.log(formatTable(['phase', 'wall', 'what', 'requests', 'peak RSS', 'ratio', 'goal'], rows));
    console.log(`prune requests by operation: first ${JSON.stringify(p1.byOp)}; second ${JSON.stringify(p2.byOp)}`);
  } finally {
    await server.stop();
  }
}

const job = childJob<Job>();
if (job) await child(job);
else await main();
