// S3-compatible servers for tests and benchmarks, each on a random loopback port, each with a stop function:
// - fauxqs 1.9.2, in this process (fast to start) or in a child process (so that a benchmark does not share
//   its event loop with the server); bound to 127.0.0.1 through its buildApp() instead of startFauxqs(),
//   which always listens on 0.0.0.0;
// - the @20minutes/s3rver fork, always a child process: it needs --openssl-legacy-provider (DES continuation
//   tokens), the access key S3RVER, and allowMismatchedSignatures for the SDK's bucket-level calls.
// Children exit when their stdin closes, so a crashed test run leaves no server behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

// The SDK warns once per process that releases after January 2027 need Node >= 22; its documented switch.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface S3Server {
  /** 'fauxqs' or 's3rver'. */
  readonly kind: string;
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly port: number;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Creates a bucket through the S3 API. */
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** An SDK client for test set-up (buckets, inspection), with the settings docs/DESIGN.md gives for these servers. */
export function adminClient(server: Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

function withBuckets(base: Omit<S3Server, 'createBucket'>): S3Server {
  return {
    ...base,
    async createBucket(name) {
      const s3 = adminClient(base);
      try {
        await s3.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        s3.destroy();
      }
    },
  };
}

/** Starts fauxqs (in memory). `inProcess: false` runs it in a child process. */
export async function startFauxqs(options: { inProcess?: boolean } = {}): Promise<S3Server> {
  const credentials = { accessKeyId: 'fauxqs', secretAccessKey: 'fauxqs' };
  if (options.inProcess === false) {
    const script = `
      import { buildApp } from 'fauxqs';
      const app = buildApp({ logger: false });
      await app.listen({ port: 0, host: '127.0.0.1' });
      process.stdout.write(JSON.stringify({ port: app.server.address().port }) + '\\n');
      process.stdin.on('end', () => process.exit(0)).resume();
    `;
    const { child, port } = await spawnServer(['--input-type=module', '-e', script]);
    return withBuckets({ kind: 'fauxqs', endpoint: `http://127.0.0.1:${port}`, port, ...credentials, stop: () => stopChild(child) });
  }
  const { buildApp } = await import('fauxqs');
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return withBuckets({
    kind: 'fauxqs',
    endpoint: `http://127.0.0.1:${port}`,
    port,
    ...credentials,
    stop: async () => {
      await app.close();
    },
  });
}

/** Starts the s3rver fork in a child process, storing objects in a fresh temp directory removed on stop. */
export async function startS3rver(): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'pagevault-s3rver-'));
  const script = `
    const S3rver = require('@20minutes/s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(directory)},
                 allowMismatchedSignatures: true, vhostBuckets: false })
      .run()
      .then(({ port }) => process.stdout.write(JSON.stringify({ port }) + '\\n'));
    // Orphaned (the test process died): remove the data directory too.
    const bye = () => { require('fs').rmSync(${JSON.stringify(directory)}, { recursive: true, force: true }); process.exit(0); };
    process.stdin.on('end', bye).resume();
    process.on('SIGTERM', bye);
  `;
  try {
    const { child, port } = await spawnServer(['--openssl-legacy-provider', '-e', script]);
    return withBuckets({
      kind: 's3rver',
      endpoint: `http://127.0.0.1:${port}`,
      port,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      stop: async () => {
        await stopChild(child);
        await rm(directory, { recursive: true, force: true });
      },
    });
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
}

/** Spawns `node args...` in the repository root and waits for its first stdout line, {"port": N}. */
function spawnServer(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('server did not start within 20 s')), 20_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${stderr}`));
    };
    child.once('exit', (code) => fail(new Error(`server exited with code ${code} before listening`)));
    child.once('error', fail);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (!out.includes('\n') || line === undefined) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout!.removeAllListeners('data');
      child.stdout!.resume();
      resolve({ child, port: (JSON.parse(line) as { port: number }).port });
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
