// A fault-injecting HTTP proxy on a random loopback port, in front of an S3 server. Per request it either
// forwards, or injects one fault:
//   reset        close the connection before the server sees the request
//   reset-after  forward, let the server act, then close the connection without answering (a lost response)
//   stall        never answer (the client's idle timeout must fire)
//   truncate     forward, send the headers and half the body, then close the connection
//   500 / 503    answer InternalError / SlowDown without forwarding
//   403          answer AccessDenied without forwarding (a permanent error: must not be retried)
//   etag         forward, but answer with an ETag that is not the MD5 of the bytes (as SSE-KMS does)
//   no-range     forward without the Range header (a server that ignores Range: 200 and the whole object)
// Faults come from deterministic rules (first match, optionally a limited number of times) or from random
// rates with a seeded generator. Every request is logged with what happened to it, so tests can prove that
// faults were injected and see what reached the server (e.g. the AbortMultipartUpload after a failure).
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Fault = 'reset' | 'reset-after' | 'stall' | 'truncate' | '500' | '503' | '403' | 'etag' | 'no-range';

export interface FaultRule {
  /** Which requests; e.g. r => r.method === 'PUT' && r.url.includes('partNumber=2&'). */
  match: (r: { method: string; url: string; path: string }) => boolean;
  fault: Fault;
  /** How many matching requests get the fault; default: all of them. */
  times?: number;
}

export interface LoggedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** The path alone, decoded: /bucket/prefix/key. */
  path: string;
  fault?: Fault;
  /** Status the server answered, for forwarded requests. */
  status?: number;
}

export interface FaultProxy {
  readonly endpoint: string;
  readonly port: number;
  readonly log: LoggedRequest[];
  /** Requests that got each fault. */
  counts(): Partial<Record<Fault, number>>;
  setRules(rules: FaultRule[]): void;
  setRates(rates: Partial<Record<Fault, number>>): void;
  close(): Promise<void>;
}

const errorBodies: Record<'500' | '503' | '403', [number, string, string]> = {
  '500': [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  '503': [503, 'SlowDown', 'Please reduce your request rate.'],
  '403': [403, 'AccessDenied', 'Access Denied'],
};

/** A small seeded generator (mulberry32) so that a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startFaultProxy(upstream: string, options: { seed?: number; rules?: FaultRule[]; rates?: Partial<Record<Fault, number>> } = {}): Promise<FaultProxy> {
  const target = new URL(upstream);
  const random = seeded(options.seed ?? 1);
  let rules = (options.rules ?? []).map((r) => ({ ...r }));
  let rates = options.rates ?? {};
  const log: LoggedRequest[] = [];
  const sockets = new Set<Socket>();

  const choose = (r: { method: string; url: string; path: string }): Fault | undefined => {
    for (const rule of rules) {
      if ((rule.times === undefined || rule.times > 0) && rule.match(r)) {
        if (rule.times !== undefined) rule.times--;
        return rule.fault;
      }
    }
    let x = random();
    for (const [fault, rate] of Object.entries(rates) as Array<[Fault, number]>) {
      if (x < rate) return fault;
      x -= rate;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, entry: LoggedRequest, onResponse: (up: IncomingMessage) => void): void => {
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (res) => {
        entry.status = res.statusCode;
        onResponse(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const path = decodeURIComponent(url.split('?', 1)[0]!);
    const fault = choose({ method, url, path });
    const entry: LoggedRequest = { method, url, path, ...(fault ? { fault } : {}) };
    log.push(entry);
    switch (fault) {
      case undefined:
        return forward(req, entry, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
      case 'reset':
        req.socket.destroy();
        return;
      case 'etag':
        return forward(req, entry, (up) => {
          const headers = { ...up.headers, ...(up.headers.etag ? { etag: '"0badc0de0badc0de0badc0de0badc0de"' } : {}) };
          res.writeHead(up.statusCode ?? 502, headers);
          up.pipe(res);
        });
      case 'no-range':
        delete req.headers.range;
        return forward(req, entry, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
      case 'reset-after':
        return forward(req, entry, (up) => {
          up.resume();
          up.on('end', () => req.socket.destroy());
        });
      case 'stall':
        req.resume(); // read the body, answer nothing
        return;
      case 'truncate':
        return forward(req, entry, (up) => {
          const length = Number(up.headers['content-length'] ?? 0);
          res.writeHead(up.statusCode ?? 502, up.headers);
          let sent = 0;
          up.on('data', (chunk: Buffer) => {
            const room = Math.floor(length / 2) - sent;
            if (room > 0) res.write(chunk.subarray(0, room));
            sent += chunk.length;
            if (sent >= length / 2) {
              up.destroy();
              req.socket.destroy();
            }
          });
          up.on('end', () => req.socket.destroy());
        });
      default: {
        const [status, code, message] = errorBodies[fault];
        req.resume();
        req.on('end', () => {
          const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
          res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
      }
    }
  };

  const server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    log,
    counts() {
      const out: Partial<Record<Fault, number>> = {};
      for (const e of log) if (e.fault) out[e.fault] = (out[e.fault] ?? 0) + 1;
      return out;
    },
    setRules(next) {
      rules = next.map((r) => ({ ...r }));
    },
    setRates(next) {
      rates = next;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
