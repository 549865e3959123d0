import { isMap, isScalar, isSeq, type Document } from 'yaml';
import { keyText, type ConfigPath } from './positions.js';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Substitutes `${NAME}` in one string. `$${` stands for a literal `${`.
 * Returns the new text, or a message naming every unset variable (or the
 * first malformed reference).
 *
 * @example
 * substitute('redis://${HOST}:6379', { HOST: 'db' }); // { text: 'redis://db:6379' }
 */
export function substitute(text: string, env: Env): { text: string } | { error: string } {
  let out = '';
  const unset: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (text.startsWith('${', i)) {
      const close = text.indexOf('}', i + 2);
      if (close < 0) return { error: 'unterminated "${" (write "$${" for a literal "${")' };
      const name = text.slice(i + 2, close);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        return { error: `invalid variable reference "\${${name}}": expected \${NAME} with letters, digits and _` };
      }
      const value = env[name];
      if (value === undefined) unset.push(name);
      else out += value;
      i = close + 1;
    } else {
      out += text[i];
      i += 1;
    }
  }
  if (unset.length === 1) return { error: `environment variable ${unset[0]} is not set` };
  if (unset.length > 1) return { error: `environment variables ${unset.join(', ')} are not set` };
  return { text: out };
}

// `${NAME}` is not valid inside a YAML flow collection (`{ password: ${PW} }`):
// `{` and `}` are flow indicators there. Before parsing, each well-formed
// reference is therefore replaced by a placeholder of the same length made of
// private-use characters, which YAML reads as ordinary text anywhere; positions
// in the source are unchanged. After parsing, every scalar gets its `${…}`
// back before substitution.
const OPEN = '\uE000\uE001';
const CLOSE = '\uE002';
const PLACEHOLDER_CHARS = /[\uE000-\uE002]/;

/**
 * Replaces each `${NAME}` in config text by a same-length placeholder so
 * that YAML accepts it in flow collections too; {@link substituteDocument}
 * undoes it.
 */
export function protectReferences(text: string): string {
  if (PLACEHOLDER_CHARS.test(text)) return text; // never rewrite text that already uses them
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => `${OPEN}${name}${CLOSE}`);
}

function restoreReferences(text: string): string {
  return text.replaceAll(OPEN, '${').replaceAll(CLOSE, '}');
}

export interface SubstitutionProblem {
  readonly path: ConfigPath;
  readonly message: string;
}

/**
 * Substitutes `${NAME}` in every string value of the document, in place,
 * after undoing {@link protectReferences}. Keys are not substituted. A scalar
 * that fails keeps its text and is reported.
 */
export function substituteDocument(doc: Document, env: Env): SubstitutionProblem[] {
  const problems: SubstitutionProblem[] = [];
  const visit = (node: unknown, path: ConfigPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key) && typeof pair.key.value === 'string') {
          pair.key.value = restoreReferences(pair.key.value);
        }
        visit(pair.value, [...path, keyText(pair.key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, [...path, index]));
    } else if (isScalar(node) && typeof node.value === 'string') {
      const text = restoreReferences(node.value);
      node.value = text;
      if (!text.includes('${')) return;
      const result = substitute(text, env);
      if ('error' in result) problems.push({ path, message: result.error });
      else node.value = result.text;
    }
    // Aliases are skipped: their anchor is substituted where it is defined.
  };
  visit(doc.contents, []);
  return problems;
}
