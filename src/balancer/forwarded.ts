/**
 * Trust decisions for client-sent forwarding headers, and the values Corral
 * adds (X-Forwarded-For/-Proto/-Host, RFC 7239 Forwarded).
 */
import net from 'node:net';

/** Matches a peer address against `trustedProxies` CIDRs (IPv4-mapped IPv6 included). */
export class TrustedProxies {
  private readonly list: net.BlockList | null;

  constructor(cidrs: readonly string[]) {
    if (cidrs.length === 0) {
      this.list = null;
      return;
    }
    const list = new net.BlockList();
    for (const cidr of cidrs) {
      const slash = cidr.indexOf('/');
      const addr = slash === -1 ? cidr : cidr.slice(0, slash);
      const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
      const prefix = slash === -1 ? (type === 'ipv6' ? 128 : 32) : Number(cidr.slice(slash + 1));
      list.addSubnet(addr, prefix, type);
    }
    this.list = list;
  }

  has(ip: string): boolean {
    if (this.list === null || ip === '') return false;
    return this.list.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
  }
}

/** The client address as it should appear in headers (IPv4-mapped IPv6 unwrapped). */
export function displayIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.indexOf('.') !== -1 ? ip.slice(7) : ip;
}

/** One RFC 7239 forwarded-element: `for=…;host=…;proto=…`. */
export function forwardedElement(ip: string, host: string, proto: string): string {
  const node = net.isIPv6(ip) ? `"[${ip}]"` : ip;
  const quotedHost = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(host) ? host : `"${host.replace(/["\\]/g, '\\$&')}"`;
  return `for=${node};host=${quotedHost};proto=${proto}`;
}
