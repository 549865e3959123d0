import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/** A path into the config, as zod reports it: map keys and list indexes. */
export type ConfigPath = readonly (string | number)[];

export interface Position {
  readonly line: number;
  readonly col: number;
}

/**
 * Maps config paths back to where they are written in the YAML source.
 * Positions are 1-based. A path that goes further than the document (a
 * missing key) resolves to the deepest node that exists, which is the map
 * that should have held the key.
 */
export class SourcePositions {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Line and column of a source offset. */
  atOffset(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line, col };
  }

  /**
   * Where the value at `path` is written, or with `at: 'key'` where its key
   * is written (used for unknown keys).
   */
  of(path: ConfigPath, at: 'value' | 'key' = 'value'): Position {
    let node: unknown = this.doc.contents;
    let fallback: Position = { line: 1, col: 1 };
    for (const [i, segment] of path.entries()) {
      node = this.resolve(node);
      const here = this.start(node);
      if (here === undefined) return fallback;
      fallback = here;
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(segment));
        if (pair === undefined) return fallback;
        const keyPos = this.start(pair.key);
        if (i === path.length - 1 && at === 'key' && keyPos !== undefined) return keyPos;
        // `key:` with nothing after it: the key is the best place to point at.
        if (isEmpty(pair.value)) return keyPos ?? fallback;
        node = pair.value;
      } else if (isSeq(node)) {
        if (typeof segment !== 'number') return fallback;
        const item: unknown = node.items[segment];
        if (item === undefined) return fallback;
        node = item;
      } else {
        return fallback;
      }
    }
    return this.start(this.resolve(node)) ?? fallback;
  }

  private resolve(node: unknown): unknown {
    // Follow aliases (bounded: a well-formed document has no alias cycles).
    for (let hops = 0; isAlias(node) && hops < 100; hops++) node = node.resolve(this.doc);
    return node;
  }

  private start(node: unknown): Position | undefined {
    if (!isNodeWithRange(node)) return undefined;
    return this.atOffset(node.range[0]);
  }
}

function isNodeWithRange(node: unknown): node is Node & { range: [number, number, number] } {
  return (isMap(node) || isSeq(node) || isScalar(node) || isAlias(node)) && Array.isArray(node.range);
}

function isEmpty(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null && node.source === '');
}

/** Map keys as zod sees them after `toJS()`: scalars by value, anything else by its text. */
export function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

/** `backends[0].servers[1].weight`; the empty path is "the top level". */
export function formatPath(path: ConfigPath): string {
  if (path.length === 0) return 'the top level';
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}
