import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { protectReferences, substituteDocument } from './env.js';
import { formatPath, SourcePositions, type ConfigPath } from './positions.js';
import { checkRelations, type Finding } from './relations.js';
import { configSchema } from './schema.js';
import { didYouMean } from './suggest.js';
import { formatProblem } from './problem.js';
import type { ConfigProblem, LoadResult } from './types.js';
import { describe } from './values.js';

/**
 * Parses, validates and normalizes a config file's text.
 *
 * Every problem is collected, each with the position of the offending YAML
 * node: YAML errors; `${VAR}` references to unset variables; unknown keys
 * (at the key), missing keys (at the map that lacks them) and invalid values;
 * broken references and other rules between values. Relative file paths are
 * resolved against `file`'s directory, and TLS files must exist.
 *
 * On success the config is deeply frozen.
 *
 * @param file the name problems are reported under, and the base for relative paths.
 * @param env where `${VAR}` is looked up.
 * @example
 * const result = parseConfig(text, 'corral.yaml');
 * if (!result.ok) for (const p of result.problems) console.error(formatProblem(p));
 */
export function parseConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): LoadResult {
  const lineCounter = new LineCounter();
  // `merge`: `<<: *anchor` copies a mapping's keys, handy for servers that share settings.
  const doc = parseDocument(protectReferences(text), { lineCounter, prettyErrors: false, merge: true });
  const positions = new SourcePositions(doc, lineCounter);

  // On a malformed document, structural checks would only add noise.
  const yamlErrors = [...doc.errors, ...doc.warnings];
  if (yamlErrors.length > 0) {
    return failure(
      yamlErrors.map((e) => ({ file, ...positions.atOffset(e.pos[0]), message: `invalid YAML: ${e.message}` })),
    );
  }

  const substitution = substituteDocument(doc, env);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 }) ?? {};
  } catch (error) {
    return failure([{ file, line: 1, col: 1, message: `invalid YAML: ${(error as Error).message}` }]);
  }

  const knownKeys = new Map<string, readonly string[]>();
  const parsed = configSchema(dirname(resolve(file))).safeParse(raw, {
    reportInput: true,
    // Remember which keys the map that has unknown ones allows, for "did you mean".
    error: (issue) => {
      if (issue.code === 'unrecognized_keys' && issue.inst instanceof z.ZodObject) {
        knownKeys.set(pathKey(toPath(issue.path ?? [])), Object.keys(issue.inst.shape));
      }
      return undefined;
    },
  });

  const findings: Finding[] = [];
  if (!parsed.success) findings.push(...parsed.error.issues.flatMap((issue) => fromIssue(issue, knownKeys)));
  findings.push(...checkRelations(raw, (path) => positions.of(path).line));

  // A value whose substitution failed is reported once, for the substitution.
  const failed = substitution.map((p) => p.path);
  const relevant = findings.filter((f) => !failed.some((path) => isWithin(f.path, path)));

  const all: Finding[] = [...substitution, ...relevant];
  if (all.length > 0 || !parsed.success) {
    return failure(
      all.map((f) => ({
        file,
        ...positions.of(f.path, f.at),
        message: f.bare === true ? f.message : `${formatPath(f.path)}: ${f.message}`,
      })),
    );
  }
  return { ok: true, config: deepFreeze(parsed.data) };
}

/**
 * Reads and parses a config file; see {@link parseConfig}. A file that cannot
 * be read is one problem at 1:1.
 *
 * @example
 * const result = await loadConfigFile('/etc/corral/corral.yaml');
 */
export async function loadConfigFile(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return failure([{ file: path, line: 1, col: 1, message: `cannot read config file: ${message}` }]);
  }
  return parseConfig(text, path, env);
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

function fromIssue(issue: z.core.$ZodIssue, knownKeys: ReadonlyMap<string, readonly string[]>): Finding[] {
  const path = toPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        path: [...path, key],
        at: 'key',
        message: `unknown key${didYouMean(key, knownKeys.get(pathKey(path)) ?? [])}`,
      }));
    case 'invalid_type': {
      if (issue.input === undefined && path.length > 0) {
        return [{ path: path.slice(0, -1), message: `missing required key "${String(path[path.length - 1])}"` }];
      }
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return [{ path, message: `expected ${expected}, got ${describe(issue.input)}` }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}

function toPath(path: readonly PropertyKey[]): ConfigPath {
  return path.map((s) => (typeof s === 'number' ? s : String(s)));
}

function pathKey(path: ConfigPath): string {
  return JSON.stringify(path);
}

function isWithin(path: ConfigPath, prefix: ConfigPath): boolean {
  return prefix.length <= path.length && prefix.every((s, i) => path[i] === s);
}

/** Problems in reading order, each reported once. */
function failure(problems: ConfigProblem[]): LoadResult {
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const key = formatProblem(p);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  unique.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, problems: unique };
}

/** Freezes a value and everything it holds, and drops keys whose value is undefined. */
function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (!Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) if (record[key] === undefined) delete record[key];
  }
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
