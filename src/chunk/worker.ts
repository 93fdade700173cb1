// A CodecPool worker thread: runs encodeChunk/decodeChunk on buffers transferred from the main thread and
// transfers them back, with the error (if any) flattened to name/code/message for the pool to rebuild. One
// message may carry several requests (the pool batches small encodes), answered in one message.
import { parentPort, workerData } from 'node:worker_threads';
import type { ExtentCodec } from '../vault/model.ts';
import { DIGEST_BYTES, decodeChunk, encodeChunk } from './codec.ts';

/** What the pool passes as workerData. */
export interface CodecWorkerData {
  level: number;
}

/** A view's place in a transferred ArrayBuffer. */
export interface TransferredView {
  buffer: ArrayBuffer;
  offset: number;
  length: number;
}

/** One chunk of a decodeMany job: where its bytes are in the input and where it decodes to in the output. */
export interface DecodeItem {
  at: number;
  length: number;
  codec: ExtentCodec;
  digest: Uint8Array;
  outAt: number;
  rawLength: number;
}

export type CodecRequest =
  | {
      id: number;
      kind: 'encode';
      input: TransferredView;
      output: TransferredView;
      /** A digest the chunk may already be stored under: when it has it, it is not compressed (see encodeChunk). */
      knownDigest?: Uint8Array;
    }
  | { id: number; kind: 'decode'; input: TransferredView; output: TransferredView; codec: ExtentCodec; digest: Uint8Array }
  | { id: number; kind: 'decodeMany'; input: TransferredView; output: TransferredView; items: DecodeItem[] };

export interface SerializedError {
  name: string;
  code: string | undefined;
  message: string;
  /** decodeMany: the index of the item that failed. */
  item?: number;
}

/** What the pool posts: one or more requests, each with its buffers in the transfer list. */
export interface CodecMessage {
  requests: CodecRequest[];
}

/** The answer to one request. */
export interface CodecResult {
  id: number;
  input: ArrayBuffer;
  output: ArrayBuffer;
  /** Encode only: the digest's own 32-byte ArrayBuffer, and what encodeChunk returned. */
  encoded?: { digest: ArrayBuffer; zero: boolean; known: boolean; codec: ExtentCodec; length: number };
  error?: SerializedError;
}

export type CodecReply = { type: 'ready' } | { type: 'done'; results: CodecResult[] };

const port = parentPort;
if (port === null) throw new Error('src/chunk/worker.ts runs only as a worker thread of CodecPool');
const { level } = workerData as CodecWorkerData;

function run(request: CodecRequest, transfer: ArrayBuffer[]): CodecResult {
  const input = new Uint8Array(request.input.buffer, request.input.offset, request.input.length);
  const output = new Uint8Array(request.output.buffer, request.output.offset, request.output.length);
  transfer.push(request.input.buffer, request.output.buffer);
  const result: CodecResult = { id: request.id, input: request.input.buffer, output: request.output.buffer };
  let current = 0;
  try {
    if (request.kind === 'encode') {
      const digest = new Uint8Array(DIGEST_BYTES);
      const r = encodeChunk(input, output, level, digest, request.knownDigest);
      result.encoded = { digest: digest.buffer, zero: r.zero, known: r.known, codec: r.codec, length: r.length };
      transfer.push(digest.buffer);
    } else if (request.kind === 'decode') {
      decodeChunk(input, request.codec, output, request.digest);
    } else {
      // Many chunks of one ranged read in one round trip: per-message overhead would dominate small chunks.
      request.items.forEach((item, i) => {
        current = i;
        decodeChunk(input.subarray(item.at, item.at + item.length), item.codec, output.subarray(item.outAt, item.outAt + item.rawLength), item.digest);
      });
    }
  } catch (error) {
    const e = error as { name?: unknown; code?: unknown; message?: unknown };
    result.error = {
      name: typeof e.name === 'string' ? e.name : 'Error',
      code: typeof e.code === 'string' ? e.code : undefined,
      message: typeof e.message === 'string' ? e.message : String(error),
      ...(request.kind === 'decodeMany' ? { item: current } : {}),
    };
  }
  return result;
}

port.on('message', (message: CodecMessage) => {
  const transfer: ArrayBuffer[] = [];
  const results = message.requests.map((request) => run(request, transfer));
  port.postMessage({ type: 'done', results } satisfies CodecReply, transfer);
});

port.postMessage({ type: 'ready' } satisfies CodecReply);
