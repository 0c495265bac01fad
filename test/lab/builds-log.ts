/**
 * builds.log, the lab's record of every build (test/lab/flake.sh appends a
 * line per derivation built, wherever it is built): the one place that knows
 * its format, for the lab tests (test/e2e/lab.ts) and the benchmark (bench/lab.ts).
 */

/**
 * One finished lab build, a line of builds.log:
 * `<host> <derivation name> <generation> <start> <end>`. `host` is the host
 * that built it (`hawk` for this machine's root namespace); `start` and `end`
 * are epoch seconds with fractions, read from the builder's clock (every lab
 * host shares this machine's), so two records' times compare (NaN on a line
 * written before builds.log had them).
 */
export interface BuildRecord {
  readonly host: string;
  readonly name: string;
  readonly generation: string;
  /** epoch seconds (fractional) when the builder started */
  readonly start: number;
  /** epoch seconds (fractional) when it finished */
  readonly end: number;
}

/** builds.log's lines (empty ones skipped), oldest first. */
export function parseBuildsLog(lines: readonly string[]): BuildRecord[] {
  return lines.map((line) => {
    const [host = '', name = '', generation = '', start, end] = line.split(' ');
    return { host, name, generation, start: Number(start), end: Number(end) };
  });
}
