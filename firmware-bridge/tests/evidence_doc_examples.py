# Recomputes the worked examples of docs/evidence.md section 9 without any
# eport code (hashlib, python3-cbor2, python3-nacl/libsodium, a CRC-32C of its
# own, the reading bodies built from docs/firmware-bridge.md section 6.3) and
# compares them with the doc's hex blocks: the examples are right by an
# independent implementation, not only by agreeing with the C library.
# Usage: /usr/bin/python3 evidence_doc_examples.py docs/evidence.md
import re, sys
import hashlib, cbor2, nacl.signing
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8): c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF
t = 1718000000000
def body(payload):
    b = bytes([2, 3]) + payload
    return b + crc32c(b).to_bytes(4, 'little')
le = lambda v, n: v.to_bytes(n, 'little', signed=v < 0)
def hdr(seq, tm, kind): return le(seq, 8) + le(tm, 8) + bytes([kind])
R = {
 1001: body(hdr(1001, t, 0) + le(519225000, 4) + le(44791700, 4) + bytes([1, 9, 7]) + le(250, 2) + le(9000, 2) + le(90, 2)),
 1002: body(hdr(1002, t + 1000, 1) + bytes([1, 9]) + b'SL-778812'),
 1003: body(hdr(1003, t + 2000, 2) + bytes([2])),
 1004: body(hdr(1004, t + 60000, 0) + le(-338688000, 4) + le(1512093000, 4) + bytes([0, 0, 0])),
 1005: body(hdr(1005, t + 3000, 3) + bytes([0x13]) + le(-1850, 2) + le(8120, 2) + bytes([87])),
}
src = 'TU-0042'
out = {}
head = hashlib.sha256(b'eport-ev1 genesis' + bytes([len(src)]) + src.encode()).digest()
out['genesis'] = head
def link(h, s): return hashlib.sha256(b'eport-ev1 link' + h + s.to_bytes(8, 'little') + R[s]).digest()
for s in (1001, 1002, 1003):
    head = link(head, s); out['head_%d' % s] = head
sk1 = nacl.signing.SigningKey(bytes(range(32))); sk2 = nacl.signing.SigningKey(bytes(range(32, 64)))
pub1, pub2 = bytes(sk1.verify_key), bytes(sk2.verify_key)
kid1, kid2 = hashlib.sha256(pub1).digest()[:8], hashlib.sha256(pub2).digest()[:8]
prot = cbor2.dumps({1: -8, 4: kid1}, canonical=True)
def cose(payload):
    tbs = cbor2.dumps(['Signature1', prot, b'', payload], canonical=True)
    sig = sk1.sign(tbs).signature
    return tbs, cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]), canonical=True)
p1 = cbor2.dumps({1: src, 2: 1, 3: 1001, 4: 1003, 5: 3, 6: head, 8: t + 2000}, canonical=True)
tbs1, c1 = cose(p1)
out['checkpoint_1_tbs'] = tbs1; out['checkpoint_1'] = c1
cid1 = hashlib.sha256(tbs1).digest(); out['checkpoint_1_id'] = cid1
out['reading_1004'] = R[1004]
for s in (1004, 1005): head = link(head, s)
out['next_key'] = pub2
p2 = cbor2.dumps({1: src, 2: 2, 3: 1004, 4: 1005, 5: 2, 6: head, 7: cid1, 8: t + 3000, 9: [-8, kid2, pub2]}, canonical=True)
tbs2, c2 = cose(p2); out['checkpoint_2'] = c2
doc = open(sys.argv[1]).read()
found = dict(re.findall(r'<!-- ev-example: (\S+) -->\n```\n(.*?)```', doc, re.S))
bad = 0
for name, want in out.items():
    got = bytes.fromhex(found.get(name, '').replace('\n', ' '))
    if got != want:
        print('%s: doc %s, recomputed %s' % (name, got.hex(), want.hex()))
        bad += 1
if set(found) != set(out):
    print('examples in the doc but not recomputed, or missing:', sorted(set(found) ^ set(out)))
    bad += 1
print('%d of %d evidence doc examples recomputed independently' % (len(out) - bad, len(out)))
sys.exit(1 if bad else 0)
