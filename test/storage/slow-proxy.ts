// A slow link for tests: an HTTP proxy on a random loopback port that forwards every request to an S3 server,
// pacing request and response bodies at a fixed rate, so that a request can be caught mid-body. It logs each
// request with the body bytes forwarded so far in each direction and whether the client went away first.
import { createServer, request, type IncomingMessage } from 'node:http';
import type { Readable, Writable } from 'node:stream';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** Request body bytes passed on to the server so far. */
  up: number;
  /** Response body bytes passed on to the client so far. */
  down: number;
  status?: number;
  /** The client closed its connection before the exchange was complete. */
  clientGone: boolean;
  done: boolean;
}

export interface SlowProxy {
  readonly endpoint: string;
  readonly log: ProxiedRequest[];
  /** Resolves with the first logged request that `match` accepts, once it does; rejects after `ms`. */
  waitFor(match: (r: ProxiedRequest) => boolean, ms?: number): Promise<ProxiedRequest>;
  close(): Promise<void>;
}

/** Copies `from` into `to` at about `bytesPerSecond`, counting into `count`. */
function pace(from: Readable, to: Writable, bytesPerSecond: number, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    to.write(chunk);
    from.pause();
    setTimeout(() => from.resume(), (chunk.length / bytesPerSecond) * 1000);
  });
  from.on('end', () => to.end());
}

export async function startSlowProxy(upstream: string, bytesPerSecond: number): Promise<SlowProxy> {
  const target = new URL(upstream);
  const log: ProxiedRequest[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const entry: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', up: 0, down: 0, clientGone: false, done: false };
    log.push(entry);
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      entry.status = answer.statusCode;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      pace(answer, res, bytesPerSecond, (n) => (entry.down += n));
      answer.on('end', () => (entry.done = true));
    });
    up.on('error', () => req.socket.destroy());
    res.on('close', () => {
      if (!entry.done) {
        entry.clientGone = true;
        up.destroy();
      }
    });
    pace(req, up, bytesPerSecond, (n) => (entry.up += n));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    log,
    async waitFor(match, ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = log.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching request through the slow proxy within ${ms} ms: ${log.map((r) => `${r.method} ${r.url}`).join(', ')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
