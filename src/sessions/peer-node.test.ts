import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { findSelf } from './peer-node.js';

describe('findSelf', () => {
  const peers = ['10.9.9.1:42425', '127.0.0.1:42426', `${hostname()}:42427`, '[::1]:42428'];
  it('matches the listen address exactly', () => {
    assert.equal(findSelf(peers, { host: '10.9.9.1', port: 42425 }), '10.9.9.1:42425');
  });
  it('matches a wildcard listen to a local address or this host name, by port', () => {
    assert.equal(findSelf(peers, { host: '0.0.0.0', port: 42426 }), '127.0.0.1:42426');
    assert.equal(findSelf(peers, { host: '0.0.0.0', port: 42427 }), `${hostname()}:42427`);
    assert.equal(findSelf(peers, { host: '::', port: 42428 }), '[::1]:42428');
  });
  it('finds nothing for a port no entry has, or another machine on the same port', () => {
    assert.equal(findSelf(peers, { host: '0.0.0.0', port: 1 }), undefined);
    assert.equal(findSelf(['10.9.9.2:42425'], { host: '0.0.0.0', port: 42425 }), undefined);
  });
});
