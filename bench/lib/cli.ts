// Small pieces every benchmark uses: command-line options and medians.

/** The value after `name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** A comma-separated list of numbers: `--sizes 256,1024`. */
export function numbers(name: string, fallback: string): number[] {
  const values = arg(name, fallback).split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v) || v <= 0)) throw new Error(`${name} wants positive numbers separated by commas, got ${arg(name, fallback)}`);
  return values;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
