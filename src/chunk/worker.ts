// A CodecPool worker thread: runs encodeChunk/decodeChunk on buffers transferred from the main thread and
// transfers them back, with the error (if any) flattened to name/code/message for the pool to rebuild.
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
  | { id: number; kind: 'encode'; input: TransferredView; output: TransferredView }
  | { id: number; kind: 'decode'; input: TransferredView; output: TransferredView; codec: ExtentCodec; digest: Uint8Array }
  | { id: number; kind: 'decodeMany'; input: TransferredView; output: TransferredView; items: DecodeItem[] };

export interface SerializedError {
  name: string;
  code: string | undefined;
  message: string;
  /** decodeMany: the index of the item that failed. */
  item?: number;
}

export type CodecReply =
  | { type: 'ready' }
  | {
      type: 'done';
      id: number;
      input: ArrayBuffer;
      output: ArrayBuffer;
      /** Encode only: the digest's own 32-byte ArrayBuffer, and what encodeChunk returned. */
      encoded?: { digest: ArrayBuffer; zero: boolean; codec: ExtentCodec; length: number };
      error?: SerializedError;
    };

const port = parentPort;
if (port === null) throw new Error('src/chunk/worker.ts runs only as a worker thread of CodecPool');
const { level } = workerData as CodecWorkerData;

port.on('message', (request: CodecRequest) => {
  const input = new Uint8Array(request.input.buffer, request.input.offset, request.input.length);
  const output = new Uint8Array(request.output.buffer, request.output.offset, request.output.length);
  const transfer: ArrayBuffer[] = [request.input.buffer, request.output.buffer];
  const reply: CodecReply = { type: 'done', id: request.id, input: request.input.buffer, output: request.output.buffer };
  let current = 0;
  try {
    if (request.kind === 'encode') {
      const digest = new Uint8Array(DIGEST_BYTES);
      const result = encodeChunk(input, output, level, digest);
      reply.encoded = { digest: digest.buffer, zero: result.zero, codec: result.codec, length: result.length };
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
    reply.error = {
      name: typeof e.name === 'string' ? e.name : 'Error',
      code: typeof e.code === 'string' ? e.code : undefined,
      message: typeof e.message === 'string' ? e.message : String(error),
      ...(request.kind === 'decodeMany' ? { item: current } : {}),
    };
  }
  port.postMessage(reply, transfer);
});

port.postMessage({ type: 'ready' } satisfies CodecReply);
