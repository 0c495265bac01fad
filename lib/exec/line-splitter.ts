/** Turns a stream of chunks into complete lines; flush() hands over the rest. */
export class LineSplitter {
  private pending = '';
  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: string): void {
    const parts = (this.pending + chunk).split('\n');
    this.pending = parts.pop() ?? '';
    for (const line of parts) this.emit(line.replace(/\r$/, ''));
  }

  flush(): void {
    if (this.pending !== '') this.emit(this.pending);
    this.pending = '';
  }
}
