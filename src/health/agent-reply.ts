/**
 * Agent replies, parsed (pure). The format is HAProxy's `agent-check` reply
 * with two additions, `weight:N` and a bare load number:
 *
 *   75%            weight = 75 % of the configured weight
 *   weight:40      weight = 40
 *   0.35           load: weight = configured × (1 − 0.35), at least 1
 *   up | down      operational state (`fail`, `stopped` mean down)
 *   ready | drain | maint   administrative state
 *   maxconn:N      accepted, no effect (yet)
 *   # text         a description, ignored
 *
 * Words are separated by spaces, tabs or commas (`up 75%`, `drain,#busy`);
 * the reply ends at the first line break. Any word not listed makes the whole
 * reply nonsense, which changes nothing.
 */
import { MAX_WEIGHT, type WeightDirective } from './weight.js';

export interface AgentReply {
  readonly weight?: WeightDirective;
  readonly operational?: 'up' | 'down';
  readonly admin?: 'ready' | 'drain' | 'maint';
  readonly maxConn?: number;
  readonly description?: string;
}

export type AgentParse = { readonly ok: true; readonly reply: AgentReply } | { readonly ok: false; readonly error: string };

/** Longest reply considered; the rest is ignored. */
export const MAX_AGENT_REPLY = 1024;

const PERCENT = /^(\d{1,4}(?:\.\d+)?)%$/;
const NUMBER = /^\d+(?:\.\d+)?$/;
const INTEGER = /^\d{1,9}$/;

export function parseAgentReply(text: string): AgentParse {
  const line = text.slice(0, MAX_AGENT_REPLY).split(/\r?\n/, 1)[0] ?? '';
  const hash = line.indexOf('#');
  const words = (hash >= 0 ? line.slice(0, hash) : line).split(/[\s,]+/).filter((w) => w !== '');
  const description = hash >= 0 ? line.slice(hash + 1).trim() : undefined;
  if (words.length === 0) return { ok: false, error: line.trim() === '' ? 'empty reply' : 'no word before #' };
  let weight: WeightDirective | undefined;
  let operational: AgentReply['operational'];
  let admin: AgentReply['admin'];
  let maxConn: number | undefined;
  for (const raw of words) {
    const word = raw.toLowerCase();
    const pct = PERCENT.exec(word);
    if (pct !== null) {
      const percent = Number(pct[1]);
      if (percent > 1000) return { ok: false, error: `percentage out of range: ${raw}` };
      weight = { kind: 'percent', percent };
    } else if (word.startsWith('weight:')) {
      const n = word.slice(7);
      if (!INTEGER.test(n) || Number(n) > MAX_WEIGHT) return { ok: false, error: `weight out of range 0..${MAX_WEIGHT}: ${raw}` };
      weight = { kind: 'absolute', weight: Number(n) };
    } else if (word.startsWith('maxconn:')) {
      const n = word.slice(8);
      if (!INTEGER.test(n)) return { ok: false, error: `bad maxconn: ${raw}` };
      maxConn = Number(n);
    } else if (NUMBER.test(word)) {
      weight = { kind: 'load', load: Number(word) };
    } else if (word === 'up') {
      operational = 'up';
    } else if (word === 'down' || word === 'fail' || word === 'stopped') {
      operational = 'down';
    } else if (word === 'ready' || word === 'drain' || word === 'maint') {
      admin = word;
    } else {
      return { ok: false, error: `unknown word: ${printable(raw)}` };
    }
  }
  const reply: AgentReply = {
    ...(weight !== undefined ? { weight } : {}),
    ...(operational !== undefined ? { operational } : {}),
    ...(admin !== undefined ? { admin } : {}),
    ...(maxConn !== undefined ? { maxConn } : {}),
    ...(description !== undefined && description !== '' ? { description } : {}),
  };
  return { ok: true, reply };
}

/** A reply word for a log line: short, control characters escaped. */
export function printable(text: string, max = 40): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(cut);
}
