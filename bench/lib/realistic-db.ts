// A deterministic application-like database for benchmarks: customers, orders with JSON line items and free
// text, attachments (photos that do not compress and receipts that do), an event log, and the indexes such an
// application keeps. Everything comes from a seeded PRNG, so every run and every machine builds the same file
// and applies the same updates, and results of different runs are comparable.
import Database from 'better-sqlite3';

/** xoshiro128** seeded through splitmix32: fast, 32-bit integer arithmetic only, good enough for test data. */
export class Prng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]!;
  }

  /** `n` bytes of noise: what a compressed photo looks like to zstd. */
  bytes(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.u32();
    return Buffer.from(words.buffer, 0, n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const firstNames = ['Ada', 'Bruno', 'Chiara', 'Dmitri', 'Elif', 'Farah', 'Goran', 'Hana', 'Ines', 'Jonas', 'Kofi', 'Lena', 'Mateo', 'Nadia', 'Oskar', 'Priya', 'Quentin', 'Rosa', 'Sven', 'Tomoko'];
const lastNames = ['Abara', 'Becker', 'Costa', 'Dubois', 'Eriksen', 'Fischer', 'Garcia', 'Haddad', 'Ivanova', 'Jensen', 'Kowalski', 'Lindqvist', 'Moreau', 'Novak', 'Okafor', 'Petrov', 'Rossi', 'Sato', 'Tanaka', 'Weber'];
const countries = ['DE', 'FR', 'IT', 'ES', 'NL', 'SE', 'PL', 'JP', 'US', 'BR', 'NG', 'IN'];
const statuses = ['pending', 'paid', 'packed', 'shipped', 'delivered', 'returned'];
const products = ['lamp', 'kettle', 'desk', 'chair', 'notebook', 'pen', 'backpack', 'monitor', 'cable', 'mug', 'blanket', 'shelf', 'router', 'headphones', 'plant pot'];
const adjectives = ['blue', 'large', 'recycled', 'walnut', 'matte', 'spare', 'compact', 'heavy', 'gift-wrapped', 'fragile'];
const phrases = [
  'please leave the parcel with the neighbour',
  'customer asked for an invoice with the company address',
  'delivery window moved to the afternoon',
  'item was out of stock and back-ordered',
  'call before delivery',
  'second attempt after a failed delivery',
  'replacement for a damaged item',
  'do not ring the bell, the baby is asleep',
];
const eventKinds = ['order.created', 'payment.captured', 'label.printed', 'carrier.scan', 'email.sent'];

const schema = `
  CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, country TEXT NOT NULL,
                         created_at INTEGER NOT NULL, profile TEXT NOT NULL);
  CREATE UNIQUE INDEX customers_email ON customers(email);
  CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL,
                      total_cents INTEGER NOT NULL, created_at INTEGER NOT NULL, items TEXT NOT NULL, note TEXT);
  CREATE INDEX orders_customer ON orders(customer_id);
  CREATE INDEX orders_status ON orders(status, created_at);
  CREATE TABLE attachments(id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL);
  CREATE INDEX attachments_order ON attachments(order_id);
  CREATE TABLE events(id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);
  CREATE INDEX events_at ON events(at);
`;

const ordersPerCustomer = 20;
const epoch = 1_700_000_000;

/**
 * Builds a database of at least `bytes` (whole batches of orders are added until the file is that large), in
 * WAL mode as applications run it. Deterministic for a given `bytes` and `seed`.
 */
export function createRealisticDatabase(path: string, bytes: number, seed = 20240601): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = off');
    db.pragma('synchronous = off');
    db.pragma('cache_size = -262144');
    db.exec(schema);
    const rng = new Prng(seed);
    const insertCustomer = db.prepare('INSERT INTO customers(id, name, email, country, created_at, profile) VALUES (?, ?, ?, ?, ?, ?)');
    const insertOrder = db.prepare('INSERT INTO orders(id, customer_id, status, total_cents, created_at, items, note) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const insertAttachment = db.prepare('INSERT INTO attachments(order_id, kind, data) VALUES (?, ?, ?)');
    const insertEvent = db.prepare('INSERT INTO events(order_id, at, kind, payload) VALUES (?, ?, ?, ?)');
    let orderId = 0;
    const batch = db.transaction((count: number) => {
      for (let n = 0; n < count; n++) {
        const id = ++orderId;
        const createdAt = epoch + id * 37 + rng.below(30);
        if (id % ordersPerCustomer === 1) {
          const c = Math.ceil(id / ordersPerCustomer);
          const first = rng.pick(firstNames);
          const last = rng.pick(lastNames);
          const profile = { locale: rng.pick(countries).toLowerCase(), newsletter: rng.below(2) === 1, tags: [rng.pick(adjectives), rng.pick(products)], loyalty: rng.below(5000) };
          insertCustomer.run(c, `${first} ${last}`, `${first}.${last}.${c}@example.com`.toLowerCase(), rng.pick(countries), createdAt, JSON.stringify(profile));
        }
        const lines = Array.from({ length: rng.between(1, 6) }, () => ({
          sku: `SKU-${rng.between(10000, 99999)}`,
          name: `${rng.pick(adjectives)} ${rng.pick(products)}`,
          qty: rng.between(1, 4),
          unit_cents: rng.between(199, 49999),
        }));
        const total = lines.reduce((sum, l) => sum + l.qty * l.unit_cents, 0);
        const note = rng.below(3) === 0 ? null : Array.from({ length: rng.between(1, 4) }, () => rng.pick(phrases)).join('; ');
        const customer = rng.between(1, Math.ceil(id / ordersPerCustomer));
        insertOrder.run(id, customer, rng.pick(statuses), total, createdAt, JSON.stringify({ lines, currency: 'EUR', gift: rng.below(10) === 0 }), note);
        const kind = rng.below(100);
        if (kind < 12) insertAttachment.run(id, 'photo', rng.bytes(rng.between(1_000, 5_000)));
        else if (kind < 27) {
          const receipt = lines.map((l) => `${l.qty} x ${l.name.padEnd(28)} ${(l.unit_cents / 100).toFixed(2).padStart(9)} EUR`).join('\n');
          insertAttachment.run(id, 'receipt', Buffer.from(`RECEIPT ${id}\n${receipt}\nTOTAL ${(total / 100).toFixed(2)} EUR\n`.repeat(rng.between(1, 3))));
        }
        for (let e = rng.between(1, 3); e > 0; e--) {
          insertEvent.run(id, createdAt + e * 60, rng.pick(eventKinds), JSON.stringify({ by: rng.pick(['api', 'worker', 'admin']), attempt: rng.between(1, 3), ref: rng.u32().toString(16) }));
        }
      }
    });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    while ((db.pragma('page_count', { simple: true }) as number) * pageSize < bytes) batch(5_000);
    db.pragma('journal_mode = wal');
  } finally {
    db.close();
  }
}

/** The orders table's largest id: the workloads below choose their rows from 1..that. */
function orderCount(db: Database.Database): number {
  return db.prepare('SELECT max(id) FROM orders').pluck().get() as number;
}

/**
 * Updates 1% of the orders in one transaction, a contiguous id range from 40% of the way in: a bulk refund.
 * Rows grow a little (a longer note, one more JSON key), and the status index changes. Returns rows updated.
 */
export function updateClustered(path: string): number {
  const db = new Database(path);
  try {
    db.pragma('synchronous = off');
    const count = orderCount(db);
    const first = Math.floor(count * 0.4);
    const last = first + Math.ceil(count * 0.01) - 1;
    return db
      .prepare(`UPDATE orders SET status = 'refunded', total_cents = -total_cents, items = json_set(items, '$.refunded', 1),
                note = coalesce(note || '; ', '') || 'refunded in bulk' WHERE id BETWEEN ? AND ?`)
      .run(first, last).changes;
  } finally {
    db.close();
  }
}

/** `updates` single-row updates of randomly chosen orders, each its own transaction. Returns rows updated. */
export function updateRandom(path: string, updates = 1000, seed = 7): number {
  const db = new Database(path);
  try {
    db.pragma('synchronous = off');
    const rng = new Prng(seed);
    const count = orderCount(db);
    const update = db.prepare('UPDATE orders SET status = ?, total_cents = total_cents + ? WHERE id = ?');
    let changed = 0;
    for (let i = 0; i < updates; i++) changed += update.run(rng.pick(statuses), rng.between(1, 500), rng.between(1, count)).changes;
    return changed;
  } finally {
    db.close();
  }
}
