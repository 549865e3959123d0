import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ConfigValueError } from './errors.js';
import type { Address } from './types.js';

const EXPECTED = 'expected host:port such as 127.0.0.1:8080, lb.example.com:443, [::1]:8080 or *:8080';

/**
 * Parses a `host:port` address.
 *
 * - IPv6 literals go in brackets: `[::1]:8080` (the host is returned without them).
 * - `*:8080` means every IPv4 interface and is returned as host `0.0.0.0`.
 * - The port is 0..65535; 0 asks the system for a free port.
 * - The host is an IPv4 or IPv6 literal or an RFC 1123 host name
 *   (underscores allowed, as container runtimes use them).
 *
 * @throws {ConfigValueError} with a message saying what is expected.
 * @example
 * parseAddress('[::1]:8080'); // { host: '::1', port: 8080 }
 * parseAddress('*:80');       // { host: '0.0.0.0', port: 80 }
 */
export function parseAddress(text: string): Address {
  const fail = (reason: string): ConfigValueError =>
    new ConfigValueError(`${reason}, got ${JSON.stringify(text)}`);

  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw fail(`missing "]" after the IPv6 address; ${EXPECTED}`);
    host = text.slice(1, close);
    if (!isIPv6(host)) throw fail('brackets hold an IPv6 address only');
    if (text[close + 1] !== ':') throw fail(`missing port; ${EXPECTED}`);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw fail(`missing port; ${EXPECTED}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) {
      const hint = isIPv6(host) ? `: [${host}]:${portText}` : '';
      throw fail(`IPv6 addresses go in brackets${hint}`);
    }
    if (host === '') throw fail('missing host; use *:PORT or 0.0.0.0:PORT to listen on every interface');
    if (host === '*') host = '0.0.0.0';
    else checkHost(host, fail);
  }
  return { host, port: parsePort(portText, fail) };
}

/**
 * Formats an address as `host:port`, bracketing IPv6 hosts; the inverse of
 * {@link parseAddress}.
 *
 * @example
 * formatAddress({ host: '::1', port: 8080 }); // '[::1]:8080'
 */
export function formatAddress(address: Address): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Validates a bare host: an IPv4 or IPv6 literal (no brackets) or a host name.
 *
 * @throws {ConfigValueError}
 * @example
 * parseHost('db.internal'); // 'db.internal'
 */
export function parseHost(text: string): string {
  const fail = (reason: string): ConfigValueError =>
    new ConfigValueError(`${reason}, got ${JSON.stringify(text)}`);
  if (isIPv6(text)) return text;
  checkHost(text, fail);
  return text;
}

/** True for an RFC 1123 host name (labels of letters, digits, `-`, `_`; 253 characters at most). */
export function isHostName(text: string): boolean {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (!labels.every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label))) {
    return false;
  }
  // A name whose last label is all digits would be read as a (malformed) IPv4 address.
  return !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * True when `host` only reaches this machine: `localhost`, `127.0.0.0/8`,
 * `::1` (and its IPv4-mapped forms). Wildcards such as `0.0.0.0` are not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase();
  if (name === 'localhost' || name === 'localhost.') return true;
  if (isIPv4(host)) return loopback.check(host, 'ipv4');
  if (isIPv6(host)) return loopback.check(host, 'ipv6');
  return false;
}

/** An IP network: an address and a prefix length. */
export interface Cidr {
  /** The address as written (host bits may be set, as in a VIP `10.0.0.100/24`). */
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

/**
 * Parses `10.0.0.0/8`, `::1/128` or a bare IP address, which stands for a
 * single host (`/32` for IPv4, `/128` for IPv6). Host bits may be set.
 * To match addresses against parsed networks, feed them to `node:net`'s
 * `BlockList.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6')`.
 *
 * @throws {ConfigValueError}
 * @example
 * parseCidr('10.0.0.0/8'); // { address: '10.0.0.0', prefix: 8, family: 4 }
 * parseCidr('::1');        // { address: '::1', prefix: 128, family: 6 }
 */
export function parseCidr(text: string): Cidr {
  const fail = (reason: string): ConfigValueError =>
    new ConfigValueError(`${reason}, got ${JSON.stringify(text)}`);
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) {
    throw fail('expected an IP address or a network such as 10.0.0.0/8 or ::1/128');
  }
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix <= max)) throw fail(`expected a prefix length from 0 to ${max} after "/"`);
  return { address, prefix, family };
}

/**
 * Formats a network as `address/prefix`; the inverse of {@link parseCidr}.
 *
 * @example
 * formatCidr(parseCidr('192.0.2.7')); // '192.0.2.7/32'
 */
export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefix}`;
}

function checkHost(host: string, fail: (reason: string) => ConfigValueError): void {
  if (isIPv4(host)) return;
  if (/^[\d.]+$/.test(host)) throw fail('invalid IPv4 address (four numbers 0..255, like 10.0.0.1)');
  if (!isHostName(host)) {
    throw fail('invalid host: expected an IP address or a host name of letters, digits, "-" and "."');
  }
}

function parsePort(text: string, fail: (reason: string) => ConfigValueError): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port <= 65535)) throw fail('the port must be a number from 0 to 65535');
  return port;
}
