// ambient.d.ts: the few Node.js and WHATWG globals this package uses, declared here so that it
// builds with Debian 12's tsc alone (no @types/node from npm).

declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}

declare const process: {
  argv: string[];
  exitCode: number | undefined;
  exit(code?: number): never;
  stdin: AsyncIterable<unknown>;
  stdout: { write(s: string): boolean };
  stderr: { write(s: string): boolean };
};

declare const Buffer: {
  from(s: string, encoding: "hex"): Uint8Array;
};

declare module "node:readline" {
  export function createInterface(options: { input: unknown; crlfDelay?: number }): AsyncIterable<string>;
}

interface ImportMeta {
  url: string;
}

declare class URL {
  constructor(url: string, base?: string | URL);
  readonly href: string;
  readonly pathname: string;
}

declare module "node:module" {
  export function createRequire(path: string | URL): (id: string) => unknown;
}

declare module "node:fs/promises" {
  export function readFile(path: string | URL): Promise<Uint8Array>;
}
