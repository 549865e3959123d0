import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAddress, parseCidr, formatCidr, parseHost, isHostName } from './address.js';
import { parseDuration } from './duration.js';
import { ConfigValueError } from './errors.js';
import { didYouMean } from './suggest.js';
import type { Address, Duration } from './types.js';

/**
 * Readers for single config values. Each takes whatever YAML produced for one
 * key and returns the normalized value or an {@link Invalid} saying what was
 * expected. The schema wraps them into zod; the relation checks reuse them to
 * read sibling values tolerantly.
 */

/** A rejected value; the message is shown to the user after the key's path. */
export class Invalid {
  constructor(readonly message: string) {}
}

export type Read<T> = (value: unknown) => T | Invalid;

/** The value of a reader, or undefined when it rejects the input. */
export function tryRead<T>(read: Read<T>, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  const result = read(value);
  return result instanceof Invalid ? undefined : result;
}

/** How a YAML value is named in messages. */
export function describe(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

function expected(what: string, value: unknown): Invalid {
  return new Invalid(`expected ${what}, got ${describe(value)}`);
}

function fromParser<T>(parse: (text: string) => T, what: string): Read<T> {
  return (value) => {
    if (typeof value !== 'string') return expected(what, value);
    try {
      return parse(value);
    } catch (error) {
      if (error instanceof ConfigValueError) return new Invalid(error.message);
      throw error;
    }
  };
}

/** A non-empty string. */
export const readText: Read<string> = (value) => {
  if (typeof value === 'string') return value.length > 0 ? value : new Invalid('must not be empty');
  if (typeof value === 'number' || typeof value === 'boolean') {
    return new Invalid(`expected a string, got ${describe(value)} (quote it to make it a string)`);
  }
  return expected('a string', value);
};

/** A non-empty string that is never echoed back in messages (passwords, keys). */
export const readSecret: Read<string> = (value) => {
  if (typeof value === 'string') return value.length > 0 ? value : new Invalid('must not be empty');
  const kind = value === null ? 'nothing' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
  return new Invalid(`expected a string, got ${kind}${kind === 'a number' ? ' (quote it)' : ''}`);
};

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Names of frontends, backends and servers: they appear in URLs, metrics and `backend/server`. */
export const readName: Read<string> = (value) => {
  const text = readText(value);
  if (text instanceof Invalid) return text;
  if (!NAME.test(text)) {
    return expected('a name of letters, digits, ".", "_" and "-" (not starting with "." or "-", at most 64)', text);
  }
  return text;
};

/** An integer in `min..max`; a string of digits is accepted too, so `${VAR}` works. */
export function readInt(min: number, max: number = Number.MAX_SAFE_INTEGER): Read<number> {
  const what = max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`;
  return (value) => {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) return expected(what, value);
    return n;
  };
}

export const readPort: Read<number> = readInt(1, 65535);

/** `true` or `false` (also as strings, so `${VAR}` works). */
export const readBool: Read<boolean> = (value) => {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return expected('true or false', value);
};

export function readEnum<const T extends string>(values: readonly T[]): Read<T> {
  const what = `one of ${values.join(', ')}`;
  return (value) => {
    if (typeof value === 'string' && (values as readonly string[]).includes(value)) return value as T;
    const hint = typeof value === 'string' ? didYouMean(value, values) : '';
    return new Invalid(`expected ${what}, got ${describe(value)}${hint}`);
  };
}

const parseDurationText: Read<Duration> = fromParser(parseDuration, 'a duration such as 500ms, 2s or 1m30s');

export const readDuration: Read<Duration> = (value) =>
  typeof value === 'number' ? parseDurationText(String(value)) : parseDurationText(value);

export const readAddress: Read<Address> = fromParser(parseAddress, 'host:port such as 127.0.0.1:8080');

/** A network, normalized to `address/prefix`. */
export const readCidr: Read<string> = fromParser(
  (text) => formatCidr(parseCidr(text)),
  'an IP address or a network such as 10.0.0.0/8',
);

export const readHost: Read<string> = fromParser(parseHost, 'a host name or IP address');

/** A route's host: an exact name or `*.suffix`, lower-cased (matching is case-insensitive). */
export const readHostPattern: Read<string> = (value) => {
  if (typeof value !== 'string') return expected('a host name or *.domain', value);
  const name = value.startsWith('*.') ? value.slice(2) : value;
  if (!isHostName(name)) return expected('a host name such as api.example.com or *.example.com', value);
  return value.toLowerCase();
};

/** An HTTP token (RFC 9110 §5.6.2): header and cookie names. */
export const readToken: Read<string> = (value) => {
  if (typeof value !== 'string') return expected('a header or cookie name', value);
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) {
    return expected('a name of letters, digits and !#$%&\'*+-.^_`|~ (no spaces)', value);
  }
  return value;
};

/** A URL path: starts with `/`, no whitespace. */
export const readPath: Read<string> = (value) => {
  if (typeof value !== 'string') return expected('a path starting with /', value);
  if (!/^\/\S*$/.test(value)) return expected('a path starting with / (no spaces)', value);
  return value;
};

/** `backend/server`, as used by `track`. */
export const readTrack: Read<{ backend: string; server: string }> = (value) => {
  if (typeof value !== 'string') return expected('backend/server', value);
  const parts = value.split('/');
  const [backend, server] = parts;
  if (parts.length !== 2 || backend === undefined || server === undefined) {
    return expected('backend/server such as app/app1', value);
  }
  if (readName(backend) instanceof Invalid || readName(server) instanceof Invalid) {
    return expected('backend/server, both valid names', value);
  }
  return { backend, server };
};

/**
 * A URL with one of `schemes` (like `redis:`). The value is not echoed in
 * messages: URLs carry passwords.
 */
export function readUrl(schemes: readonly string[]): Read<string> {
  const what = `a ${schemes.map((s) => `${s}//`).join(' or ')} URL`;
  return (value) => {
    if (typeof value !== 'string') return expected(what, value);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return new Invalid(`expected ${what}, got something that is not a URL`);
    }
    if (!schemes.includes(url.protocol)) {
      return new Invalid(`expected ${what}, got a ${url.protocol}// URL`);
    }
    return value;
  };
}

/** `auto` or a number of processes. */
export const readWorkers: Read<number | 'auto'> = (value) => {
  if (value === 'auto') return 'auto';
  const n = readInt(1, 1024)(value);
  return n instanceof Invalid ? expected('auto or a number of processes from 1 to 1024', value) : n;
};

/** A network interface name (Linux allows 15 characters, no spaces or `/`). */
export const readInterface: Read<string> = (value) => {
  if (typeof value !== 'string' || !/^[^\s/]{1,15}$/.test(value)) {
    return expected('an interface name such as eth0', value);
  }
  return value;
};

const STATUS_WHAT = 'a status code (200), a range ("200-399"), a class ("2xx") or a list of them';

/** `200`, `[200, 204]`, `"200-399"`, `"2xx"`, `"2xx,3xx"` → inclusive ranges. */
export const readExpectStatus: Read<[number, number][]> = (value) => {
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return expected(STATUS_WHAT, value);
  const ranges: [number, number][] = [];
  for (const item of items) {
    const parts = typeof item === 'string' ? item.split(',').map((p) => p.trim()) : [item];
    for (const part of parts) {
      const range = statusRange(part);
      if (range === undefined) return expected(STATUS_WHAT, Array.isArray(value) ? item : value);
      ranges.push(range);
    }
  }
  return ranges;
};

function statusRange(part: unknown): [number, number] | undefined {
  const valid = (n: number): boolean => Number.isInteger(n) && n >= 100 && n <= 599;
  if (typeof part === 'number') return valid(part) ? [part, part] : undefined;
  if (typeof part !== 'string') return undefined;
  let m = /^(\d{3})$/.exec(part);
  if (m) return valid(Number(m[1])) ? [Number(m[1]), Number(m[1])] : undefined;
  m = /^([1-5])xx$/i.exec(part);
  if (m) return [Number(m[1]) * 100, Number(m[1]) * 100 + 99];
  m = /^(\d{3})\s*-\s*(\d{3})$/.exec(part);
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    return valid(lo) && valid(hi) && lo <= hi ? [lo, hi] : undefined;
  }
  return undefined;
}

/**
 * A file path, resolved against `baseDir` (the config file's directory).
 * With `mustExist`, the file has to be a readable regular file now.
 */
export function readFile(baseDir: string, mustExist: boolean): Read<string> {
  return (value) => {
    if (typeof value !== 'string' || value.length === 0) return expected('a file path', value);
    const path = resolve(baseDir, value);
    if (!mustExist) return path;
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat === undefined) return new Invalid(`file not found: ${path}`);
    if (!stat.isFile()) return new Invalid(`not a regular file: ${path}`);
    try {
      accessSync(path, constants.R_OK);
    } catch {
      return new Invalid(`file is not readable: ${path}`);
    }
    return path;
  };
}
