import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { findOriginalDst } from '../src/dataplane/original-dst.ts';

// The conntrack lookup on table text as the kernel prints it (/proc/net/nf_conntrack). The real
// table, with real iptables rules, is exercised by e2e/transparent-redirect.test.ts.

const TABLE = [
  'ipv4     2 udp      17 29 src=10.0.0.5 dst=10.96.0.10 sport=40000 dport=53 src=10.96.0.10 dst=10.0.0.5 sport=53 dport=40000 mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.96.4.7 sport=51234 dport=9080 src=127.0.0.1 dst=10.0.0.5 sport=15001 dport=51234 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.96.4.8 sport=51235 dport=8080 src=127.0.0.1 dst=10.0.0.5 sport=15001 dport=51235 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 120 SYN_SENT src=10.0.0.9 dst=10.0.0.5 sport=43000 dport=9080 [UNREPLIED] src=127.0.0.1 dst=10.0.0.9 sport=15006 dport=43000 mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=52000 dport=15001 src=127.0.0.1 dst=127.0.0.1 sport=15001 dport=52000 [ASSURED] mark=0 zone=0 use=2',
  'ipv6     10 tcp      6 431999 ESTABLISHED src=fd00:0000:0000:0000:0000:0000:0000:0005 dst=fd00:0000:0000:0000:0000:0000:0004:0007 sport=51300 dport=9080 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0005 sport=15001 dport=51300 [ASSURED] mark=0 zone=0 use=2',
].join('\n') + '\n';

describe('original destination from the conntrack table', () => {
  test('a redirected IPv4 connection: the destination the client dialled', () => {
    assert.deepEqual(findOriginalDst(TABLE, { address: '10.0.0.5', port: 51234 }, { address: '127.0.0.1', port: 15001 }), { address: '10.96.4.7', port: 9080 });
    assert.deepEqual(findOriginalDst(TABLE, { address: '10.0.0.5', port: 51235 }, { address: '127.0.0.1', port: 15001 }), { address: '10.96.4.8', port: 8080 });
  });

  test('Node’s v4-mapped spelling of the socket addresses matches the kernel’s', () => {
    assert.deepEqual(findOriginalDst(TABLE, { address: '::ffff:10.0.0.5', port: 51234 }, { address: '::ffff:127.0.0.1', port: 15001 }), { address: '10.96.4.7', port: 9080 });
  });

  test('an entry still in SYN_SENT / UNREPLIED is found (inbound redirect)', () => {
    assert.deepEqual(findOriginalDst(TABLE, { address: '10.0.0.9', port: 43000 }, { address: '127.0.0.1', port: 15006 }), { address: '10.0.0.5', port: 9080 });
  });

  test('IPv6: the kernel writes addresses in full, Node compressed', () => {
    assert.deepEqual(findOriginalDst(TABLE, { address: 'fd00::5', port: 51300 }, { address: '::1', port: 15001 }), { address: 'fd00:0000:0000:0000:0000:0000:0004:0007', port: 9080 });
  });

  test('a connection made to the port directly was not redirected: no original destination', () => {
    assert.equal(findOriginalDst(TABLE, { address: '127.0.0.1', port: 52000 }, { address: '127.0.0.1', port: 15001 }), undefined);
  });

  test('no entry for the connection, or one for another client port or address: undefined', () => {
    assert.equal(findOriginalDst(TABLE, { address: '10.0.0.5', port: 59999 }, { address: '127.0.0.1', port: 15001 }), undefined);
    assert.equal(findOriginalDst(TABLE, { address: '10.0.0.6', port: 51234 }, { address: '127.0.0.1', port: 15001 }), undefined);
    assert.equal(findOriginalDst(TABLE, { address: '10.0.0.5', port: 51234 }, { address: '127.0.0.1', port: 15006 }), undefined);
    assert.equal(findOriginalDst('', { address: '10.0.0.5', port: 51234 }, { address: '127.0.0.1', port: 15001 }), undefined);
  });

  test('UDP entries are not TCP connections', () => {
    assert.equal(findOriginalDst(TABLE, { address: '10.96.0.10', port: 53 }, { address: '10.0.0.5', port: 40000 }), undefined);
  });
});
