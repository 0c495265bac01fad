/** One word for a POSIX sh: as is when it holds only safe characters, else single-quoted (a `'` inside as `'\''`). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
