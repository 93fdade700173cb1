// The byte-level pieces of the vault's binary objects (docs/FORMAT.md, "Varints"): varints, zigzag deltas, a
// growable writer and a bounds-checked reader. A reader's failure is Malformed, which the decoders turn into
// an IntegrityError naming the object.

/** A problem found in bytes being decoded. */
export class Malformed extends Error {}

// Varints: unsigned LEB128, 7 bits a byte, least significant group first, at most 8 bytes, values up to
// Number.MAX_SAFE_INTEGER. Signed deltas are zigzag-mapped first (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...).

export function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

export function unzigzag(v: number): number {
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

export class ByteWriter {
  private buf: Buffer;
  private length = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  varint(n: number): void {
    this.reserve(8);
    while (n >= 0x80) {
      this.buf[this.length++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.length++] = n;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

export class ByteReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(what: string): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw new Malformed(`the body ends inside ${what}`);
    this.pos++;
    return b;
  }

  varint(what: string): number {
    const first = this.buf[this.pos];
    if (first !== undefined && first < 0x80) {
      this.pos++;
      return first;
    }
    let value = 0;
    for (let i = 0, scale = 1; i < 8; i++, scale *= 0x80) {
      const b = this.byte(what);
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (b === 0 && i > 0) throw new Malformed(`${what} is a varint with a redundant trailing byte`);
        if (value > Number.MAX_SAFE_INTEGER) throw new Malformed(`${what} is larger than 2^53 - 1`);
        return value;
      }
    }
    throw new Malformed(`${what} is a varint longer than 8 bytes`);
  }

  bytes(n: number, what: string): Buffer {
    if (n > this.remaining) throw new Malformed(`the body ends inside ${what}`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}
