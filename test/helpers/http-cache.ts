/** A real HTTP server on 127.0.0.1 answering like a binary cache, for client tests. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestCache {
  readonly url: string;
  /** request paths, in order */
  readonly requests: string[];
  /** path -> body; absent paths answer 404 "missed hash" */
  readonly files: Map<string, string>;
  close(): Promise<void>;
}

export async function startTestCache(files: Record<string, string> = {}): Promise<TestCache> {
  const table = new Map(Object.entries({ '/nix-cache-info': 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n', ...files }));
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = table.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/plain' });
    res.end(body ?? 'missed hash');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    files: table,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A URL on which nothing listens. */
export async function deadCacheUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}
