// CountStore counts the requests made through it, by operation: a prune says in its result what it cost. Stacked
// over the retry wrapper it counts each request once, however many attempts it took.
import { StorageWrapper, type Call } from './wrapper.ts';

export class CountStore extends StorageWrapper {
  readonly #counts = new Map<string, number>();

  /** Requests so far, by operation (`list`, `get`, `head`, `create`, `delete`, ...), and their total. */
  get requests(): { total: number; byOp: Record<string, number> } {
    const byOp = Object.fromEntries([...this.#counts].sort(([a], [b]) => (a < b ? -1 : 1)));
    return { total: [...this.#counts.values()].reduce((a, b) => a + b, 0), byOp };
  }

  protected override async around<T>(call: Call, fn: () => Promise<T>): Promise<T> {
    this.#counts.set(call.op, (this.#counts.get(call.op) ?? 0) + 1);
    return fn();
  }
}
